/**
 * The operators' REST API against the real stack: tokens (401 vs 403), validation (400 with zod issues),
 * BlockService errors mapped through (404, 409, 422), IPv6 and CIDR in the path, list filters and paging,
 * extend and unblock; and the probes, metrics and OpenAPI document.
 */
import type { Express } from 'express';
import fc from 'fast-check';
import pino from 'pino';
import { createApp } from '../../src/api/app';
import { eventually } from '../support/stack';
import { blockWorkflowId } from '../../workflows/messages';
import { ApiStack, call, GROUP4, startApiStack, TARGET } from './harness';

let s: ApiStack;

beforeAll(async () => {
  // CIDR blocks up to /24 (IPv6 /64) are allowed here, to exercise CIDR in paths and filters.
  s = await startApiStack({ ipPolicy: { maxPrefixV4: 24, maxPrefixV6: 64, allowlist: ['192.0.2.0/24'] } });
});
afterAll(async () => {
  await s?.stop();
});

const read = (path: string) => call(s.url, path, { token: s.secrets.read });
const write = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  call(s.url, path, { method, token: s.secrets.write, body, headers });
const block = (ip: string, extra: Record<string, unknown> = {}) => write('POST', '/v1/blocks', { ip, ...extra });
const isMember = (ip: string) => async () => ((await s.stack.firewall.getGroup('ipv4', GROUP4))?.members ?? []).includes(`ads-${ip}`);
const listed = async (query: string) => (await read(`/v1/blocks?${query}`)).body.blocks.map((b: { ip: string }) => b.ip).sort();

describe('authorisation', () => {
  it('answers 401 without a token or with a wrong one, naming no credential', async () => {
    for (const token of [undefined, 'nope', `${s.secrets.read}x`]) {
      const r = await call(s.url, '/v1/blocks', { token });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('unauthorized');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
  });

  it('does not accept the webhook secret as an API token', async () => {
    expect((await call(s.url, '/v1/blocks', { token: s.secrets.webhook })).status).toBe(401);
  });

  it('lets the read token read and answers 403 when it tries to write', async () => {
    expect((await read('/v1/blocks')).status).toBe(200);
    const r = await call(s.url, '/v1/blocks', { token: s.secrets.read, body: { ip: '203.0.113.99' } });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
    const del = await call(s.url, '/v1/blocks/203.0.113.99', { method: 'DELETE', token: s.secrets.read });
    expect(del.status).toBe(403);
  });

  it('lets the write token read', async () => {
    expect((await call(s.url, '/v1/blocks', { token: s.secrets.write })).status).toBe(200);
  });

  it('refuses an X-Actor that is not a short name', async () => {
    const r = await write('POST', '/v1/blocks', { ip: '203.0.113.98' }, { 'x-actor': 'a b;c' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid-actor');
  });
});

describe('POST /v1/blocks', () => {
  it('starts a block (201), records the actor with X-Actor, and the address reaches the firewall', async () => {
    const r = await write('POST', '/v1/blocks', { ip: '203.0.113.40', ttl: '30m', reason: 'manual test' }, { 'x-actor': 'alice' });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ ip: '203.0.113.40', results: [expect.objectContaining({ target: TARGET, outcome: 'started' })] });
    const expiresIn = Date.parse(r.body.results[0].expiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(29 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(30 * 60_000);
    await eventually(isMember('203.0.113.40'), 20_000, 'member');
    // The member lands on the firewall a moment before the group's reply turns the block active.
    const shown = await eventually(async () => { const r = await read('/v1/blocks/203.0.113.40'); return r.body.state === 'active' && r; }, 20_000, 'active');
    expect(shown.body).toMatchObject({ ip: '203.0.113.40', state: 'active', reason: 'manual test', actor: 'api:write:alice' });
    // Its first task may wait seconds for its enforcer's commit in a burst: a task timeout of its own (BLOCK_TASK_TIMEOUT).
    const { raw } = await s.stack.client.workflow.getHandle(blockWorkflowId(TARGET, '203.0.113.40')).describe();
    expect(Number(raw.executionConfig?.defaultWorkflowTaskTimeout?.seconds)).toBe(20);
  });

  it('answers 200 (not 201) when the address is already blocked', async () => {
    await block('203.0.113.41');
    const again = await block('203.0.113.41');
    expect(again.status).toBe(200);
    expect(again.body.results[0].outcome).toBe('extended');
  });

  it('replies with the canonical form of the address', async () => {
    const r = await block('2001:DB8:0:0::0:51');
    expect(r.status).toBe(201);
    expect(r.body.ip).toBe('2001:db8::51');
  });

  it.each([
    ['a private address', { ip: '10.0.0.1' }, 'ip-private'],
    ['an allowlisted address', { ip: '192.0.2.53' }, 'ip-allowlisted'],
    ['a loopback address', { ip: '127.0.0.1' }, 'ip-reserved'],
    ['an address with host bits under a prefix', { ip: '203.0.113.1/24' }, 'ip-host-bits-set'],
    ['a block wider than the policy allows', { ip: '203.0.112.0/23' }, 'ip-prefix-too-wide'],
    ['a TTL beyond the maximum', { ip: '203.0.113.42', ttl: '400d' }, 'ttl-out-of-range'],
    ['an unknown target', { ip: '203.0.113.42', targets: ['nope'] }, 'unknown-target'],
  ])('refuses %s with 422 %s', async (_what, body, code) => {
    const r = await write('POST', '/v1/blocks', body);
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe(code);
  });

  it('names settings and durations the way operators write them (ALLOW_PRIVATE, MAX_PREFIX_V4, 30d)', async () => {
    expect((await write('POST', '/v1/blocks', { ip: '10.0.0.1' })).body.error.message).toMatch(/blocked only when ALLOW_PRIVATE is set$/);
    expect((await write('POST', '/v1/blocks', { ip: '203.0.112.0/23' })).body.error.message).toContain('(MAX_PREFIX_V4)');
    const ttl = await write('POST', '/v1/blocks', { ip: '203.0.113.42', ttl: '400d' });
    expect(ttl.body.error.message).toBe('ttl 400d is longer than the longest block allowed: at most 30d (BLOCK_MAX_TTL)');
    expect(ttl.body.error.message).not.toMatch(/\d{7,}/);
  });

  it.each([
    ['a bad duration', { ip: '203.0.113.43', ttl: '6 parsecs' }, 'ttl'],
    ['a missing ip', { ttl: '1h' }, 'ip'],
    ['an unknown field', { ip: '203.0.113.43', tll: '1h' }, ''],
    ['a wrongly typed field', { ip: 42 }, 'ip'],
  ])('refuses %s with 400 and the zod issues', async (_what, body, path) => {
    const r = await write('POST', '/v1/blocks', body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid-request');
    expect(r.body.error.details.issues).toContainEqual(expect.objectContaining({ path, message: expect.any(String) }));
  });

  it('refuses malformed JSON with 400', async () => {
    const r = await write('POST', '/v1/blocks', '{"ip": ', { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('malformed-json');
  });
});

describe('GET /v1/blocks/:ip', () => {
  beforeAll(async () => {
    await block('2001:db8:1::1');
    await block('203.0.113.0/25');
  });

  it('finds an IPv6 block by its address in the path', async () => {
    const r = await read('/v1/blocks/2001:db8:1::1');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ip: '2001:db8:1::1', family: 'ipv6', target: TARGET });
  });

  it('finds a CIDR block by its percent-encoded path', async () => {
    const r = await read('/v1/blocks/203.0.113.0%2F25');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ip: '203.0.113.0/25', family: 'ipv4' });
  });

  it('answers 404 for an address that is not blocked and 400 for one that is not an address', async () => {
    const missing = await read('/v1/blocks/198.51.100.77');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not-blocked');
    const bad = await read('/v1/blocks/not-an-ip');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('ip-invalid');
  });

  it('answers 400 for a malformed percent-escape in the path', async () => {
    const r = await read('/v1/blocks/%E0%A4%A');
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad-request');
  });

  it('answers 422 for an unknown ?target=', async () => {
    const r = await read('/v1/blocks/2001:db8:1::1?target=nope');
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('unknown-target');
  });
});

describe('GET /v1/blocks', () => {
  const ips = ['198.51.100.1', '198.51.100.130', '198.51.100.2']; // in the (string) order listed() sorts to
  beforeAll(async () => {
    for (const ip of ips) await block(ip, { ttl: '2h' });
    await eventually(async () => (await listed('ip=198.51.100.0%2F24&state=active')).length === 3, 20_000, 'three active blocks listed');
  });

  it('filters by a CIDR block and by an exact address', async () => {
    expect(await listed('ip=198.51.100.0/25')).toEqual(['198.51.100.1', '198.51.100.2']);
    expect(await listed('ip=198.51.100.130')).toEqual(['198.51.100.130']);
  });

  it('filters by target, state and expiry', async () => {
    expect(await listed(`ip=198.51.100.0/24&target=${TARGET}`)).toEqual(ips);
    expect(await listed('ip=198.51.100.0/24&target=other')).toEqual([]);
    expect(await listed('ip=198.51.100.0/24&state=cancelled')).toEqual([]);
    const inThreeHours = new Date(Date.now() + 3 * 3_600_000).toISOString();
    const inOneHour = new Date(Date.now() + 3_600_000).toISOString();
    expect(await listed(`ip=198.51.100.0/24&expiresBefore=${inThreeHours}`)).toEqual(ips);
    expect(await listed(`ip=198.51.100.0/24&expiresBefore=${inOneHour}`)).toEqual([]);
  });

  it('pages with pageSize and pageToken', async () => {
    const first = await read('/v1/blocks?pageSize=2');
    expect(first.body.blocks).toHaveLength(2);
    expect(first.body.nextPageToken).toEqual(expect.any(String));
    const second = await read(`/v1/blocks?pageSize=2&pageToken=${encodeURIComponent(first.body.nextPageToken)}`);
    expect(second.status).toBe(200);
    const firstIds = first.body.blocks.map((b: { workflowId: string }) => b.workflowId);
    for (const b of second.body.blocks) expect(firstIds).not.toContain(b.workflowId);
  });

  it.each([
    ['an unknown state', 'state=gone', 'state'],
    ['a time without a zone', 'expiresBefore=2030-01-01T00:00:00', 'expiresBefore'],
    ['a page size out of range', 'pageSize=0', 'pageSize'],
    ['an unknown parameter', 'expires_before=2030-01-01T00:00:00Z', ''],
    ['a repeated parameter', 'target=a&target=b', 'target'],
  ])('refuses %s with 400', async (_what, query, path) => {
    const r = await read(`/v1/blocks?${query}`);
    expect(r.status).toBe(400);
    expect(r.body.error.details.issues).toContainEqual(expect.objectContaining({ path }));
  });

  it('refuses a page token it did not issue with 400, not 500', async () => {
    const first = await read('/v1/blocks?pageSize=1');
    const token: string = first.body.nextPageToken;
    const forged = `${token.slice(0, token.lastIndexOf('.'))}x${token.slice(token.lastIndexOf('.'))}`;
    for (const pageToken of ['garbage', 'Z2FyYmFnZQ.AAAAAAAAAAAAAAAAAAAAAA', forged]) {
      const r = await read(`/v1/blocks?pageToken=${encodeURIComponent(pageToken)}`);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid-page-token');
    }
  });

  it('treats quotes in a filter as data, not as query syntax', async () => {
    expect(await listed(`target=${encodeURIComponent(`${TARGET}" OR "x`)}`)).toEqual([]);
  });
});

describe('POST /v1/blocks/:ip/extend', () => {
  const ip = '203.0.113.60';
  beforeAll(async () => {
    await block(ip, { ttl: '1h' });
  });

  it('adds "by" to the current expiry', async () => {
    const before = (await read(`/v1/blocks/${ip}`)).body;
    const r = await write('POST', `/v1/blocks/${ip}/extend`, { by: '1h' }, { 'x-actor': 'bob' });
    expect(r.status).toBe(200);
    expect(Date.parse(r.body.expiresAt) - Date.parse(before.expiresAt)).toBe(3_600_000);
    expect(r.body.extensions.at(-1)).toMatchObject({ actor: 'api:write:bob', cause: 'extend' });
  });

  it('sets the expiry to "until"', async () => {
    const until = new Date(Date.now() + 5 * 3_600_000);
    until.setMilliseconds(0);
    const r = await write('POST', `/v1/blocks/${ip}/extend`, { until: until.toISOString() });
    expect(r.status).toBe(200);
    expect(Date.parse(r.body.expiresAt)).toBe(until.getTime());
  });

  it.each([
    ['both by and until', { by: '1h', until: '2030-01-01T00:00:00Z' }],
    ['neither', {}],
    ['a bad duration', { by: 'soon' }],
  ])('refuses %s with 400', async (_what, body) => {
    const r = await write('POST', `/v1/blocks/${ip}/extend`, body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid-request');
  });

  it('refuses to move the expiry earlier with 409, and answers 404 for an address not blocked', async () => {
    const earlier = await write('POST', `/v1/blocks/${ip}/extend`, { until: new Date(Date.now() + 60_000).toISOString() });
    expect(earlier.status).toBe(409);
    expect(earlier.body.error.message).toMatch(/not after the current one/);
    const missing = await write('POST', '/v1/blocks/198.51.100.78/extend', { by: '1h' });
    expect(missing.status).toBe(404);
  });
});

describe('DELETE /v1/blocks/:ip', () => {
  it('unblocks: the address leaves the firewall and the block reads cancelled by the actor', async () => {
    const ip = '203.0.113.70';
    await block(ip);
    await eventually(isMember(ip), 20_000, 'member');
    const r = await call(s.url, `/v1/blocks/${ip}?reason=false+positive`, { method: 'DELETE', token: s.secrets.write, headers: { 'x-actor': 'carol' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ip, found: true, results: [{ target: TARGET, found: true }] });
    expect(r.body.results[0].status.cancelledBy).toMatchObject({ actor: 'api:write:carol', reason: 'false positive' });
    await eventually(async () => !(await isMember(ip)()), 20_000, 'member removed');
    await eventually(async () => (await read(`/v1/blocks/${ip}`)).body.state === 'cancelled', 20_000, 'cancelled');
    await eventually(async () => (await listed(`ip=${ip}&includeEnded=true&state=cancelled`)).includes(ip), 20_000, 'listed as ended');
    expect(await listed(`ip=${ip}`)).toEqual([]);
  });

  it('is idempotent: an address that is not blocked answers 200 with found: false', async () => {
    const r = await write('DELETE', '/v1/blocks/198.51.100.79');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ip: '198.51.100.79', found: false, results: [{ target: TARGET, found: false }] });
  });
});

describe('probes, metrics, OpenAPI', () => {
  it('GET /healthz answers without auth', async () => {
    const r = await call(s.url, '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz checks Temporal and the firewall; the details need a token', async () => {
    const r = await call(s.url, '/readyz', { token: s.secrets.read });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', checks: { temporal: { ok: true }, firewalls: { [TARGET]: expect.objectContaining({ ok: true, version: expect.stringMatching(/^v7/) }) } } });
    expect((await call(s.url, '/readyz')).body).toEqual({ status: 'ready' });
  });

  it('GET /metrics counts active blocks per group from visibility and firewall calls', async () => {
    s.metrics.recordFirewallCall(TARGET, 'addGroupMember', 12, Object.assign(new Error('x'), { kind: 'timeout' }));
    const metric = (text: string, name: string) => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1]);
    const active = await eventually(async () => {
      const text = (await call(s.url, '/metrics')).body as string;
      const n = metric(text, `ads_mitigator_blocks_active\\{target="${TARGET}",group="${GROUP4}"\\}`);
      return n >= 5 ? text : undefined;
    }, 20_000, 'active blocks counted');
    expect(metric(active, `ads_mitigator_group_fill_ratio\\{target="${TARGET}",group="${GROUP4}"\\}`)).toBeCloseTo(
      metric(active, `ads_mitigator_blocks_active\\{target="${TARGET}",group="${GROUP4}"\\}`) / 600,
    );
    expect(metric(active, `ads_mitigator_firewall_call_errors_total\\{target="${TARGET}",op="addGroupMember",kind="timeout"\\}`)).toBe(1);
    expect(active).toMatch(/^ads_mitigator_http_request_duration_seconds_count\{method="GET",route="\/v1\/blocks\/:ip",status="200"\} \d+$/m);
  });

  it('GET /openapi.json describes every route the app serves', async () => {
    const r = await call(s.url, '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toMatch(/^3\./);
    const app = createApp({ config: s.config, blocks: s.blocks, temporal: s.stack.client, firewalls: new Map(), logger: pino({ level: 'silent' }), metrics: s.metrics });
    const served = routesOf(app);
    expect(served.length).toBeGreaterThanOrEqual(10);
    for (const [method, path] of served) expect(r.body.paths[path]?.[method]).toEqual(expect.objectContaining({ responses: expect.any(Object) }));
    expect(r.body.paths['/v1/blocks'].post.requestBody.content['application/json'].schema.required).toEqual(['ip']);
  });

  it('answers an unknown route with 404 in the error shape', async () => {
    const r = await call(s.url, '/v2/nothing');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('not-found');
  });
});

describe('bad input never answers 5xx', () => {
  it('survives random paths, queries and bodies on every REST route', async () => {
    const text = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('"', '\\', '%', '..', '/', '::', '0/0', 'fe80::1%eth0', '203.0.113.0/99'));
    const query = fc.dictionary(fc.constantFrom('ip', 'target', 'state', 'expiresBefore', 'includeEnded', 'pageSize', 'pageToken', 'reason', 'x'), text, { maxKeys: 4 });
    const request = fc.record({
      method: fc.constantFrom('GET', 'DELETE', 'POST'),
      route: fc.constantFrom('/v1/blocks', '/v1/blocks/{}', '/v1/blocks/{}/extend'),
      segment: fc.oneof(text.map(encodeURIComponent), fc.constantFrom('%', '%E0%A4%A', '%zz', '%00', '..%2F..', '203.0.113.0%2F')),
      query,
      body: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ ip: text, ttl: text, by: text, until: text }, { requiredKeys: [] })),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const path = r.route.replace('{}', r.segment) + '?' + new URLSearchParams(r.query).toString();
        const reply = await call(s.url, path, { method: r.method, token: s.secrets.write, body: r.method === 'POST' ? r.body : undefined });
        expect(reply.status).toBeLessThan(500);
        if (reply.status >= 400) expect(reply.body.error.code).toEqual(expect.any(String));
      }),
      { numRuns: 300 },
    );
  });
});

/** [method, OpenAPI path] of every route registered on the app (`:ip` becomes `{ip}`). */
function routesOf(app: Express): [string, string][] {
  type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };
  const walk = (stack: Layer[]): [string, string][] =>
    stack.flatMap((layer) => {
      if (layer.route) {
        const path = layer.route.path.replace(/:(\w+)/g, '{$1}');
        return Object.keys(layer.route.methods).map((m) => [m, path] as [string, string]);
      }
      return layer.handle?.stack ? walk(layer.handle.stack) : [];
    });
  return walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
}
