/** Unit tests of the credential checks and of the error mapping (no servers). */
import { ServiceError } from '@temporalio/client';
import type { Request } from 'express';
import { z } from 'zod';
import { hmacSha256, roleOf, safeEqual, signedHmac, webhookAuth } from '../../src/api/auth';
import { ApiError, isTemporalUnavailable, toApiError } from '../../src/api/errors';
import { BlockError } from '../../src/blocks/service';

const api = { readToken: 'reader', writeToken: 'writer' };
const req = (headers: Record<string, string>) => ({ get: (name: string) => headers[name.toLowerCase()] }) as unknown as Request;

describe('safeEqual', () => {
  it('matches equal strings only, whatever the lengths', () => {
    expect(safeEqual('secret', 'secret')).toBe(true);
    expect(safeEqual('secreT', 'secret')).toBe(false);
    expect(safeEqual('secret-and-more', 'secret')).toBe(false);
    expect(safeEqual('', 'secret')).toBe(false);
  });

  it('never matches an empty expected secret (an unset credential opens nothing)', () => {
    expect(safeEqual('', '')).toBe(false);
  });
});

describe('roleOf', () => {
  it('maps the write token to write, the read token to read, anything else to nothing', () => {
    expect(roleOf('writer', api)).toBe('write');
    expect(roleOf('reader', api)).toBe('read');
    expect(roleOf('hook', api)).toBeUndefined();
  });
});

describe('webhookAuth', () => {
  const body = Buffer.from('{"lines":[]}');
  const NOW = 1_750_000_000_000;
  const ts = (offsetS = 0) => String(NOW / 1000 + offsetS);
  const policy = { secret: 'hook', allowBearer: true, allowUntimedSignature: false };
  const signed = (t: string, key = 'hook', b: Buffer | string = body) => ({ 'x-ads-timestamp': t, 'x-ads-signature': `sha256=${signedHmac(key, t, b).toString('hex')}` });
  const untimed = (key: string, b: Buffer | string = body) => ({ 'x-ads-signature': `sha256=${hmacSha256(key, b).toString('hex')}` });
  const auth = (headers: Record<string, string>, p: Partial<typeof policy> = {}) => webhookAuth(req(headers), body, { ...policy, ...p }, NOW);

  it.each<[string, Record<string, string>, string | RegExp]>([
    ['a signature of timestamp and body, now', signed(ts()), 'signature'],
    ['a signature 300 s old (edge of the window)', signed(ts(-300)), 'signature'],
    ['a signature 300 s ahead (sender clock fast)', signed(ts(300)), 'signature'],
    ['a signature in upper-case hex', { ...signed(ts()), 'x-ads-signature': signed(ts())['x-ads-signature'].toUpperCase().replace('SHA256', 'sha256') }, 'signature'],
    ['the bearer secret', { authorization: 'Bearer hook' }, 'bearer'],
    ['the bearer secret, scheme in lower case', { authorization: 'bearer hook' }, 'bearer'],
    ['a signature 301 s old (a replay)', signed(ts(-301)), /more than 300 s from the service's clock/],
    ['a signature 301 s ahead', signed(ts(301)), /more than 300 s/],
    ['a fresh timestamp on an old signature', { ...signed(ts(-600)), 'x-ads-timestamp': ts() }, /^invalid signature$/],
    ['a signature with another key', signed(ts(), 'other'), /^invalid signature$/],
    ['a signature of another body', signed(ts(), 'hook', 'x'), /^invalid signature$/],
    ['a timestamp in milliseconds', signed(String(NOW)), /unix seconds/],
    ['a timestamp that is not a number', signed('yesterday'), /unix seconds/],
    ['a truncated signature', { ...signed(ts()), 'x-ads-signature': signed(ts())['x-ads-signature'].slice(0, -2) }, /sha256=<64 hex digits>/],
    ['the old signature without timestamp', untimed('hook'), /without X-ADS-Timestamp is refused/],
    ['a wrong bearer', { authorization: 'Bearer hook2' }, /invalid webhook secret/],
    ['the secret without the scheme', { authorization: 'hook' }, /missing credentials/],
    ['no credentials', {}, /missing credentials/],
  ])('%s → %s', (_what, headers, expected) => {
    const r = auth(headers);
    if (typeof expected === 'string') expect(r).toEqual({ ok: true, method: expected });
    else expect(r).toEqual({ ok: false, reason: expect.stringMatching(expected) });
  });

  it('refuses the bearer secret when it is turned off, and says so', () => {
    expect(auth({ authorization: 'Bearer hook' }, { allowBearer: false })).toEqual({ ok: false, reason: expect.stringMatching(/WEBHOOK_ALLOW_BEARER=false/) });
    expect(auth(signed(ts()), { allowBearer: false })).toEqual({ ok: true, method: 'signature' });
  });

  it('accepts the old signature only behind the compatibility flag, and only the right one', () => {
    expect(auth(untimed('hook'), { allowUntimedSignature: true })).toEqual({ ok: true, method: 'untimed-signature' });
    expect(auth(untimed('other'), { allowUntimedSignature: true })).toMatchObject({ ok: false });
  });

  it('refuses everything when no secret is configured', () => {
    expect(auth({ authorization: 'Bearer ' }, { secret: '' }).ok).toBe(false);
    expect(webhookAuth(req(signed(ts(), '')), body, { ...policy, secret: '' }, NOW).ok).toBe(false);
  });
});

describe('toApiError', () => {
  it('keeps the status and code of a BlockError', () => {
    expect(toApiError(new BlockError(422, 'ip-private', 'private'))).toMatchObject({ status: 422, code: 'ip-private', message: 'private' });
  });

  it('turns a zod error into 400 with the issues', () => {
    const r = z.object({ ip: z.string() }).safeParse({ ip: 1 });
    expect(toApiError(r.error)).toMatchObject({ status: 400, code: 'invalid-request', details: { issues: [expect.objectContaining({ path: 'ip' })] } });
  });

  it('turns a Temporal transport failure (gRPC UNAVAILABLE or DEADLINE_EXCEEDED) into 503 with Retry-After', () => {
    for (const code of [14, 4]) {
      const err = new ServiceError('Failed to start workflow', { cause: Object.assign(new Error('unavailable'), { code }) });
      expect(isTemporalUnavailable(err)).toBe(true);
      expect(toApiError(err)).toMatchObject({ status: 503, code: 'temporal-unavailable', headers: { 'Retry-After': expect.any(String) } });
    }
  });

  it('turns a Temporal INVALID_ARGUMENT (e.g. a bad page token) into 400', () => {
    const err = new ServiceError('Failed to list workflows', { cause: Object.assign(new Error('3 INVALID_ARGUMENT'), { code: 3, details: 'bad token' }) });
    expect(toApiError(err)).toMatchObject({ status: 400, code: 'invalid-argument', message: expect.stringContaining('bad token') });
  });

  it('answers anything unknown with 500 and no internal detail', () => {
    const e = toApiError(new Error('secret internals'));
    expect(e).toMatchObject({ status: 500, code: 'internal' });
    expect(e.message).not.toContain('secret internals');
    expect(isTemporalUnavailable(new ServiceError('x', { cause: Object.assign(new Error('not found'), { code: 5 }) }))).toBe(false);
  });

  it('maps body-parser errors to their 4xx', () => {
    const tooLarge = Object.assign(new Error('request entity too large'), { type: 'entity.too.large', status: 413, expose: true });
    expect(toApiError(tooLarge)).toMatchObject({ status: 413, code: 'body-too-large' });
    expect(toApiError(new ApiError(418, 'teapot', 'x'))).toMatchObject({ status: 418, code: 'teapot' });
  });
});
