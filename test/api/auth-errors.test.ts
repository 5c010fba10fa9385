/** Unit tests of the credential checks and of the error mapping (no servers). */
import { ServiceError } from '@temporalio/client';
import type { Request } from 'express';
import { z } from 'zod';
import { hmacSha256, roleOf, safeEqual, webhookAuthentic } from '../../src/api/auth';
import { ApiError, isTemporalUnavailable, toApiError } from '../../src/api/errors';
import { BlockError } from '../../src/blocks/service';

const api = { host: '', port: 0, webhookSecret: 'hook', readToken: 'reader', writeToken: 'writer', webhookRateLimit: 600, waitLimitMs: 10_000 };
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

describe('webhookAuthentic', () => {
  const body = Buffer.from('{"lines":[]}');
  const sig = (key: string, b: Buffer | string = body) => `sha256=${hmacSha256(key, b).toString('hex')}`;

  it.each([
    ['the bearer secret', true, { authorization: 'Bearer hook' }],
    ['the bearer secret, scheme in lower case', true, { authorization: 'bearer hook' }],
    ['the HMAC of the body', true, { 'x-ads-signature': sig('hook') }],
    ['the HMAC in upper-case hex', true, { 'x-ads-signature': sig('hook').toUpperCase().replace('SHA256', 'sha256') }],
    ['a wrong bearer', false, { authorization: 'Bearer hook2' }],
    ['the secret without the scheme', false, { authorization: 'hook' }],
    ['an HMAC with another key', false, { 'x-ads-signature': sig('other') }],
    ['an HMAC of another body', false, { 'x-ads-signature': sig('hook', 'x') }],
    ['a truncated HMAC', false, { 'x-ads-signature': sig('hook').slice(0, -2) }],
    ['no credentials', false, {}],
  ])('%s → %s', (_what, expected, headers) => {
    expect(webhookAuthentic(req(headers), body, 'hook')).toBe(expected);
  });

  it('refuses everything when no secret is configured', () => {
    expect(webhookAuthentic(req({ authorization: 'Bearer ' }), body, '')).toBe(false);
    expect(webhookAuthentic(req({ 'x-ads-signature': sig('') }), body, '')).toBe(false);
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
