/**
 * Credentials: operator tokens for the REST API and the shared secret of the ADS webhook.
 *
 * Every comparison is constant-time over fixed-length digests (timingSafeEqual needs equal lengths, and
 * comparing SHA-256 digests instead of the raw strings keeps the length of the secret from leaking).
 * Credentials are never logged and never echoed in an error message.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Config } from '../config';
import { ApiError } from './errors';

export type Role = 'read' | 'write';

export const SIGNATURE_HEADER = 'x-ads-signature';

/** Constant-time equality of two strings of any length. An empty expected value never matches. */
export function safeEqual(given: string, expected: string): boolean {
  if (expected === '') return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(req: Request): string | undefined {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
  return m?.[1];
}

/** The role a REST token grants; the write token also reads. */
export function roleOf(token: string, api: Pick<Config['api'], 'readToken' | 'writeToken'>): Role | undefined {
  // Both comparisons always run, so the answer time does not tell which token was close.
  const write = safeEqual(token, api.writeToken);
  const read = safeEqual(token, api.readToken);
  return write ? 'write' : read ? 'read' : undefined;
}

/** `X-Actor` lands in workflow history and logs: keep it to a short, printable name. */
const ACTOR = /^[A-Za-z0-9._@+:-]{1,64}$/;

/**
 * REST authorisation: 401 without a valid token, 403 when a read token asks to write. Sets the actor of
 * the request, `api:<role>` plus `:<X-Actor>` when the caller names itself.
 */
export function requireRole(api: Config['api'], needed: Role): RequestHandler {
  return (req, res, next) => {
    const token = bearerToken(req);
    if (!token) throw unauthorized('missing credentials: send Authorization: Bearer <API token>', 'api');
    const role = roleOf(token, api);
    if (!role) throw unauthorized('invalid API token', 'api');
    if (needed === 'write' && role !== 'write') throw new ApiError(403, 'forbidden', 'this action needs the write token (API_WRITE_TOKEN)');
    const named = req.get('x-actor');
    if (named !== undefined && !ACTOR.test(named)) {
      throw new ApiError(400, 'invalid-actor', 'X-Actor must be 1-64 characters of letters, digits and . _ @ + : -');
    }
    res.locals.actor = named ? `api:${role}:${named}` : `api:${role}`;
    next();
  };
}

export function actorOf(res: Response): string {
  return String(res.locals.actor ?? 'api');
}

/** Signed webhook: `X-ADS-Timestamp: <unix seconds>`, `X-ADS-Signature: sha256=<hex HMAC(secret, "<ts>.<raw body>")>`. */
export const TIMESTAMP_HEADER = 'x-ads-timestamp';

/** How far a signed request's timestamp may be from our clock, either way (a captured request is replayable this long). */
export const SIGNATURE_WINDOW_SECONDS = 300;

export interface WebhookAuthPolicy {
  secret: string;
  /** Accept `Authorization: Bearer <secret>` (WEBHOOK_ALLOW_BEARER). */
  allowBearer: boolean;
  /** Accept the old timestamp-less HMAC of the body alone (WEBHOOK_ALLOW_UNTIMED_SIGNATURE): replayable forever. */
  allowUntimedSignature: boolean;
}

export type WebhookAuth =
  | { ok: true; method: 'signature' | 'bearer' | 'untimed-signature' }
  | { ok: false; reason: string };

/**
 * The webhook's credential check. A signed request (`X-ADS-Timestamp` + `X-ADS-Signature`) must be inside
 * the window and carry the HMAC of "<timestamp>.<raw body>"; the window is checked first (it needs no
 * secret) so that the reason can say "check the sender's clock". A bearer secret and the old
 * timestamp-less signature are accepted only when the policy allows them. Comparisons are constant-time.
 */
export function webhookAuth(req: Request, rawBody: Buffer, p: WebhookAuthPolicy, nowMs = Date.now()): WebhookAuth {
  if (p.secret === '') return { ok: false, reason: 'no webhook secret is configured' };
  const signatureHeader = req.get(SIGNATURE_HEADER);
  const timestampHeader = req.get(TIMESTAMP_HEADER);
  if (signatureHeader !== undefined) {
    const signature = /^sha256=([0-9a-f]{64})$/i.exec(signatureHeader.trim());
    if (!signature) return { ok: false, reason: 'X-ADS-Signature must be sha256=<64 hex digits>' };
    const given = Buffer.from(signature[1], 'hex');
    if (timestampHeader === undefined) {
      if (!p.allowUntimedSignature) {
        return { ok: false, reason: 'a signature without X-ADS-Timestamp is refused (replayable): sign "<timestamp>.<body>" and send X-ADS-Timestamp' };
      }
      return timingSafeEqual(given, hmacSha256(p.secret, rawBody)) ? { ok: true, method: 'untimed-signature' } : { ok: false, reason: 'invalid signature' };
    }
    const ts = timestampHeader.trim();
    if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'X-ADS-Timestamp must be unix seconds' };
    if (Math.abs(Number(ts) - nowMs / 1000) > SIGNATURE_WINDOW_SECONDS) {
      return { ok: false, reason: `X-ADS-Timestamp is more than ${SIGNATURE_WINDOW_SECONDS} s from the service's clock: a replay, or the sender's clock is wrong` };
    }
    return timingSafeEqual(given, signedHmac(p.secret, ts, rawBody)) ? { ok: true, method: 'signature' } : { ok: false, reason: 'invalid signature' };
  }
  const token = bearerToken(req);
  if (token !== undefined) {
    if (!p.allowBearer) return { ok: false, reason: 'the bearer secret is turned off (WEBHOOK_ALLOW_BEARER=false): send a signed request' };
    return safeEqual(token, p.secret) ? { ok: true, method: 'bearer' } : { ok: false, reason: 'invalid webhook secret' };
  }
  return { ok: false, reason: 'missing credentials: send X-ADS-Timestamp and X-ADS-Signature (or Authorization: Bearer <WEBHOOK_SECRET>)' };
}

/** HMAC-SHA256(secret, "<timestamp>.<raw body>"): the value of a signed request's X-ADS-Signature. */
export function signedHmac(secret: string, timestamp: string, body: Buffer | string): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

export function hmacSha256(secret: string, body: Buffer | string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

export function unauthorized(message: string, realm: 'api' | 'webhook'): ApiError {
  return new ApiError(401, 'unauthorized', message, undefined, { 'WWW-Authenticate': `Bearer realm="ads-mitigator-${realm}"` });
}
