/**
 * Page tokens of GET /v1/blocks are Temporal's visibility tokens, sealed with an HMAC: Temporal answers a
 * token it cannot decode with an opaque internal error (a 5xx for what is bad input), so we accept only
 * tokens we issued. The key lives in memory, so a token does not survive a restart of the service (the
 * client starts again from the first page).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors';

const MAC_BYTES = 16;

export class PageTokens {
  private readonly key = randomBytes(32);

  seal(token: string | undefined): string | undefined {
    return token === undefined ? undefined : `${token}.${this.mac(token).toString('base64url')}`;
  }

  /** The inner token, or a 400 for one we did not issue (or issued before a restart). */
  open(sealed: string | undefined): string | undefined {
    if (sealed === undefined) return undefined;
    const dot = sealed.lastIndexOf('.');
    const mac = Buffer.from(sealed.slice(dot + 1), 'base64url');
    const token = sealed.slice(0, dot);
    if (dot < 0 || mac.length !== MAC_BYTES || !timingSafeEqual(mac, this.mac(token))) {
      throw new ApiError(400, 'invalid-page-token', 'pageToken was not issued by this service (or it restarted since): start again from the first page');
    }
    return token;
  }

  private mac(token: string): Buffer {
    return createHmac('sha256', this.key).update(token).digest().subarray(0, MAC_BYTES);
  }
}
