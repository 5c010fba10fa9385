/**
 * Authentication failures and injected faults, end to end: the emulator produces them on a real socket
 * and the client must classify each one (kind, retryable) without leaking the token.
 */
import { FortiOSClient } from '../../src/fortios/client';
import { RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { fortiError, raw, renderings } from './helpers';

describe('authentication', () => {
  let clock = 0;
  let emu: RunningEmulator;
  const clients: FortiOSClient[] = [];
  const clientWith = (token: string) => {
    const c = new FortiOSClient({ baseUrl: emu.url, token, timeoutMs: 2000 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, now: () => clock, readOnlyTokens: ['ro-token-123'], lockoutDurationMs: 60_000 });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await emu.close();
  });
  beforeEach(() => {
    emu.reset();
    clock += 3_600_000;
  });

  it('answers a wrong token with the HTML 401 page, read as a final auth error', async () => {
    const reply = await raw(emu.url, 'GET', '/api/v2/monitor/system/status', { token: 'wrong' });
    expect(reply).toMatchObject({ status: 401, contentType: 'text/html; charset=iso-8859-1', json: undefined });
    expect(reply.text).toContain('<title>401 Unauthorized</title>');
    const err = await fortiError(clientWith('wrong-token-xyz').getGroup('ipv4', 'ads-blocked'));
    expect(err).toMatchObject({ kind: 'auth', status: 401, retryable: false, fortiError: undefined });
    expect(renderings(err)).not.toContain('wrong-token-xyz');
  });

  it('locks the source out after 3 failures (429 HTML), even for a valid token, until the duration passes', async () => {
    const bad = clientWith('bad-token');
    for (let i = 0; i < 3; i++) await expect(fortiError(bad.systemStatus())).resolves.toMatchObject({ kind: 'auth' });
    const locked = await fortiError(clientWith(emu.token).systemStatus());
    expect(locked).toMatchObject({ kind: 'rate-limited', status: 429, retryable: true });
    const page = await raw(emu.url, 'GET', '/api/v2/monitor/system/status', { token: emu.token });
    expect(page.status).toBe(429);
    expect(page.text).toContain('<title>429 Too Many Requests</title>');
    clock += 60_000;
    await expect(clientWith(emu.token).systemStatus()).resolves.toMatchObject({ version: 'v7.0.15' });
    expect(emu.state.counters.rejected).toEqual({ unauthorized: 3, 'locked-out': 2 });
  });

  it('resets the failure count on success', async () => {
    const bad = clientWith('bad-token');
    await fortiError(bad.systemStatus());
    await fortiError(bad.systemStatus());
    await clientWith(emu.token).systemStatus();
    await fortiError(bad.systemStatus());
    await expect(clientWith(emu.token).systemStatus()).resolves.toBeDefined();
  });

  it('answers a write with a read-only token with a 403 JSON envelope, reads still work', async () => {
    const ro = clientWith('ro-token-123');
    await expect(ro.getGroup('ipv4', 'ads-blocked')).resolves.toMatchObject({ members: ['none'] });
    const err = await fortiError(ro.createAddress('ipv4', { name: 'x', subnet: '192.0.2.1/32' }));
    expect(err).toMatchObject({ kind: 'forbidden', status: 403, retryable: false });
    await expect(fortiError(ro.bannedAdd(['192.0.2.1'], 60))).resolves.toMatchObject({ kind: 'forbidden' });
    expect(emu.state.ipv4.addresses.has('x')).toBe(false);
    expect(emu.state.banned.list()).toEqual([]);
    const reply = await raw(emu.url, 'POST', '/api/v2/cmdb/firewall/address', { token: 'ro-token-123', body: { name: 'x' } });
    expect(reply.json).toMatchObject({ status: 'error', http_status: 403, http_method: 'POST', path: 'firewall', name: 'address' });
  });

  it('refuses ?access_token= unless rest-api-key-url-query is enabled', async () => {
    const path = `/api/v2/monitor/system/status?access_token=${emu.token}`;
    expect((await raw(emu.url, 'GET', path)).status).toBe(401);
    const legacy = await startEmulator({ port: 0, restApiKeyUrlQuery: true });
    try {
      expect((await raw(legacy.url, 'GET', `/api/v2/monitor/system/status?access_token=${legacy.token}`)).status).toBe(200);
    } finally {
      await legacy.close();
    }
  });

  it('answers 401 to a valid token from a source outside the trusted hosts', async () => {
    const remote = await startEmulator({ port: 0, trustedHosts: ['192.0.2.0/24'] });
    const c = new FortiOSClient({ baseUrl: remote.url, token: remote.token });
    try {
      await expect(fortiError(c.systemStatus())).resolves.toMatchObject({ kind: 'auth', status: 401 });
      expect((await raw(remote.url, 'GET', '/__emulator/state')).status).toBe(403);
    } finally {
      await c.close();
      await remote.close();
    }
  });

  it('titles the 401 page "Authorization Required" on 6.x', async () => {
    const old = await startEmulator({ port: 0, version: 'v6.2.3' });
    try {
      const reply = await raw(old.url, 'GET', '/api/v2/monitor/system/status');
      expect(reply.text).toContain('<title>401 Authorization Required</title>');
    } finally {
      await old.close();
    }
  });
});

describe('injected faults', () => {
  let clock = Date.parse('2030-01-01T00:00:00Z');
  let emu: RunningEmulator;
  let client: FortiOSClient;

  beforeAll(async () => {
    emu = await startEmulator({ port: 0, now: () => clock });
    client = new FortiOSClient({ baseUrl: emu.url, token: emu.token, timeoutMs: 300 });
  });
  afterAll(async () => {
    await client.close();
    await emu.close();
  });
  beforeEach(() => emu.reset());

  it.each([
    ['error500Rate', { kind: 'server', status: 500 }],
    ['unavailableRate', { kind: 'unavailable', status: 503 }],
    ['rateLimitedRate', { kind: 'rate-limited', status: 429 }],
    ['resetRate', { kind: 'network', status: undefined }],
    ['hangRate', { kind: 'timeout', status: undefined }],
  ] as const)('%s=1 gives a retryable %o', async (knob, expected) => {
    emu.setFaults({ [knob]: 1 });
    const started = Date.now();
    const err = await fortiError(client.getGroup('ipv4', 'ads-blocked'));
    expect(err).toMatchObject({ ...expected, retryable: true });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(renderings(err)).not.toContain(emu.token);
    emu.setFaults({ [knob]: 0 });
    await expect(client.getGroup('ipv4', 'ads-blocked')).resolves.toBeDefined();
  });

  it('fails every request during an outage, as 503 or as resets, until the clock passes it', async () => {
    emu.setFaults({ outageUntil: clock + 10_000 });
    await expect(fortiError(client.systemStatus())).resolves.toMatchObject({ kind: 'unavailable', retryable: true });
    emu.setFaults({ outageMode: 'reset' });
    await expect(fortiError(client.systemStatus())).resolves.toMatchObject({ kind: 'network', retryable: true });
    clock += 10_000;
    await expect(client.systemStatus()).resolves.toBeDefined();
    expect(emu.state.counters.injected).toEqual({ unavailable: 1, reset: 1 });
  });

  it('with failAfterCommit applies the write and loses the reply; a retry of ensureAddress converges', async () => {
    emu.setFaults({ error500Rate: 1, failAfterCommit: true });
    const err = await fortiError(client.ensureAddress('ipv4', { name: 'lost', subnet: '192.0.2.9/32' }));
    expect(err).toMatchObject({ kind: 'server', retryable: true });
    expect(emu.state.ipv4.addresses.get('lost')?.subnet).toBe('192.0.2.9 255.255.255.255');
    emu.setFaults({ error500Rate: 0 });
    await expect(client.ensureAddress('ipv4', { name: 'lost', subnet: '192.0.2.9/32' })).resolves.toBe('exists');
  });

  it('delays answers by the configured latency per method', async () => {
    emu.setFaults({ latencyMs: { GET: 150 } });
    let started = Date.now();
    await client.systemStatus();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    emu.setFaults({ latencyMs: { POST: 0 } });
    started = Date.now();
    await client.systemStatus();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('refuses invalid fault settings', () => {
    expect(() => emu.setFaults({ error500Rate: 2 })).toThrow();
  });
});
