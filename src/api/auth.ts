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
export function roleOf(token: string, api: Config['api']): Role | undefined {
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

/**
 * The webhook accepts either the secret as a bearer token, or an HMAC-SHA256 of the raw body keyed with
 * the secret (`X-ADS-Signature: sha256=<hex>`), which a forwarder can use without sending the secret.
 */
export function webhookAuthentic(req: Request, rawBody: Buffer, secret: string): boolean {
  if (secret === '') return false;
  const token = bearerToken(req);
  const bearerOk = token !== undefined && safeEqual(token, secret);
  const signature = /^sha256=([0-9a-f]{64})$/i.exec(req.get(SIGNATURE_HEADER)?.trim() ?? '');
  const signatureOk = signature !== null && timingSafeEqual(Buffer.from(signature[1], 'hex'), hmacSha256(secret, rawBody));
  return bearerOk || signatureOk;
}

export function hmacSha256(secret: string, body: Buffer | string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

export function unauthorized(message: string, realm: 'api' | 'webhook'): ApiError {
  return new ApiError(401, 'unauthorized', message, undefined, { 'WWW-Authenticate': `Bearer realm="ads-mitigator-${realm}"` });
}
