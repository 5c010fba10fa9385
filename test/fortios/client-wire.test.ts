/**
 * What FortiOSClient puts on the wire and how it reads unusual replies, checked against a plain
 * capturing HTTP server (exact URLs, headers and bodies), plus TLS against the emulator.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FortiOSClient } from '../../src/fortios/client';
import { startEmulator } from '../../src/fortios/emulator/server';
import { CannedReply, CapturedRequest, fortiError, renderings, startCaptureServer } from './helpers';

const TOKEN = 'wire-test-token-0123456789abcdef';
const OK_WRITE: CannedReply = { status: 200, body: JSON.stringify({ http_method: 'POST', status: 'success', http_status: 200 }) };
const OK_LIST: CannedReply = { status: 200, body: JSON.stringify({ http_method: 'GET', results: [], status: 'success' }) };

async function withServer(
  respond: (req: CapturedRequest) => CannedReply,
  run: (client: FortiOSClient, requests: CapturedRequest[]) => Promise<void>,
  vdom?: string,
): Promise<void> {
  const server = await startCaptureServer(respond);
  const client = new FortiOSClient({ baseUrl: server.url, token: TOKEN, vdom, timeoutMs: 2000 });
  try {
    await run(client, server.requests);
  } finally {
    await client.close();
    await server.close();
  }
}

describe('requests on the wire', () => {
  it('sends the token only as a Bearer header and the vdom on every call', async () => {
    await withServer(
      () => OK_LIST,
      async (client, requests) => {
        await client.listAddresses('ipv4');
        await client.localInPolicies();
        expect(requests.map((r) => r.url)).toEqual([
          '/api/v2/cmdb/firewall/address?vdom=root',
          '/api/v2/cmdb/firewall/local-in-policy?vdom=root',
        ]);
        for (const r of requests) {
          expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
          expect(r.url).not.toContain(TOKEN);
        }
      },
    );
  });

  it('uses the configured vdom', async () => {
    await withServer(
      () => OK_LIST,
      async (client, requests) => {
        await client.listAddresses('ipv6');
        expect(requests[0]?.url).toBe('/api/v2/cmdb/firewall/address6?vdom=vd1');
      },
      'vd1',
    );
  });

  it('percent-encodes mkeys with no safe characters', async () => {
    await withServer(
      () => OK_WRITE,
      async (client, requests) => {
        await client.deleteAddress('ipv4', "Event ID 12/a?b#c%d&e+f(g)*!'~");
        await client.removeGroupMember('ipv6', 'grp 6', '2001:db8::/64');
        expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
          "DELETE /api/v2/cmdb/firewall/address/Event%20ID%2012%2Fa%3Fb%23c%25d%26e%2Bf%28g%29%2A%21%27~?vdom=root",
          'DELETE /api/v2/cmdb/firewall/addrgrp6/grp%206/member/2001%3Adb8%3A%3A%2F64?vdom=root',
        ]);
      },
    );
  });

  it('sends IPv4 subnets as "ip mask" and IPv6 ones as ip6 prefixes, always with the subnet', async () => {
    await withServer(
      () => OK_WRITE,
      async (client, requests) => {
        await client.createAddress('ipv4', { name: 'a', subnet: '203.0.113.7/32', comment: 'c' });
        await client.createAddress('ipv4', { name: 'n', subnet: '10.1.0.0/16' });
        await client.createAddress('ipv6', { name: 'b', subnet: '2001:DB8::1' });
        expect(requests.map((r) => JSON.parse(r.body))).toEqual([
          { name: 'a', type: 'ipmask', subnet: '203.0.113.7 255.255.255.255', comment: 'c' },
          { name: 'n', type: 'ipmask', subnet: '10.1.0.0 255.255.0.0' },
          { name: 'b', type: 'ipprefix', ip6: '2001:db8::1/128' },
        ]);
        expect(requests.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
      },
    );
  });

  it('writes groups as member tables: PUT replaces, child POST appends', async () => {
    await withServer(
      () => OK_WRITE,
      async (client, requests) => {
        await client.setGroupMembers('ipv4', 'ads-blocked', ['none', 'x']);
        await client.addGroupMember('ipv4', 'ads-blocked', 'y');
        expect(requests.map((r) => [r.method, r.url, JSON.parse(r.body)])).toEqual([
          ['PUT', '/api/v2/cmdb/firewall/addrgrp/ads-blocked?vdom=root', { member: [{ name: 'none' }, { name: 'x' }] }],
          ['POST', '/api/v2/cmdb/firewall/addrgrp/ads-blocked/member?vdom=root', { name: 'y' }],
        ]);
      },
    );
  });

  it('filters address lists on the device by name and finishes the prefix match locally', async () => {
    const rows = [
      { name: 'ads-1', type: 'ipmask', subnet: '192.0.2.1 255.255.255.255' },
      { name: 'x-ads-2', type: 'ipmask', subnet: '192.0.2.2 255.255.255.255' },
      { name: 'ads-fqdn', type: 'fqdn', fqdn: 'example.com' },
    ];
    await withServer(
      () => ({ status: 200, body: JSON.stringify({ results: rows, status: 'success' }) }),
      async (client, requests) => {
        const list = await client.listAddresses('ipv4', { namePrefix: 'ads-' });
        expect(list.map((a) => a.name)).toEqual(['ads-1']);
        const query = new URLSearchParams(requests[0]!.url.split('?')[1]);
        expect(query.getAll('filter')).toEqual(['name=@ads-']);
        expect(query.get('vdom')).toBe('root');
      },
    );
  });

  it('bans with add_users and falls back to user/banned/select on older builds', async () => {
    const respond = (r: CapturedRequest): CannedReply =>
      r.url.startsWith('/api/v2/monitor/user/banned?')
        ? { status: 404, body: JSON.stringify({ status: 'error' }) }
        : { status: 200, body: JSON.stringify({ results: [{ ip_address: '192.0.2.1', created: 5 }], status: 'success' }) };
    await withServer(respond, async (client, requests) => {
      await client.bannedAdd(['192.0.2.1'], 300);
      await expect(client.bannedList()).resolves.toEqual([{ ip: '192.0.2.1', created: 5 }]);
      await client.bannedList();
      expect(requests.map((r) => `${r.method} ${r.url.split('?')[0]}`)).toEqual([
        'POST /api/v2/monitor/user/banned/add_users',
        'GET /api/v2/monitor/user/banned',
        'GET /api/v2/monitor/user/banned/select',
        'GET /api/v2/monitor/user/banned/select',
      ]);
      expect(JSON.parse(requests[0]!.body)).toEqual({ ip_addresses: ['192.0.2.1'], expiry: 300 });
    });
  });

  it.each([[''], ['.'], ['..']])('never sends a request for the object name %j', async (name) => {
    await withServer(
      () => OK_WRITE,
      async (client, requests) => {
        await expect(fortiError(client.deleteAddress('ipv4', name))).resolves.toMatchObject({ kind: 'validation', retryable: false });
        await expect(fortiError(client.removeGroupMember('ipv4', 'g', name))).resolves.toMatchObject({ kind: 'validation' });
        await expect(fortiError(client.addGroupMember('ipv4', name, 'm'))).resolves.toMatchObject({ kind: 'validation' });
        expect(requests).toHaveLength(0);
      },
    );
  });

  it('refuses a baseUrl with a path or credentials', () => {
    expect(() => new FortiOSClient({ baseUrl: 'https://192.0.2.1/api', token: 't' })).toThrow(/without path/);
    expect(() => new FortiOSClient({ baseUrl: 'https://u:p@192.0.2.1', token: 't' })).toThrow(/credentials/);
  });
});

describe('reading replies', () => {
  const failWith = (reply: CannedReply) => async () => {
    let err: unknown;
    await withServer(
      () => reply,
      async (client) => {
        err = await fortiError(client.getGroup('ipv4', 'g'));
      },
    );
    return err;
  };

  it.each<[string, CannedReply, object]>([
    ['an HTML 401', { status: 401, body: '<html><title>401 Unauthorized</title></html>', contentType: 'text/html' }, { kind: 'auth', retryable: false }],
    ['an HTML 429', { status: 429, body: '<html><title>429 Too Many Requests</title></html>', contentType: 'text/html' }, { kind: 'rate-limited', retryable: true }],
    ['a 403 envelope', { status: 403, body: '{"status":"error","http_status":403}' }, { kind: 'forbidden', retryable: false }],
    ['an empty 500', { status: 500, body: '' }, { kind: 'server', retryable: true }],
    ['a 502 HTML page', { status: 502, body: '<html>Bad Gateway</html>' }, { kind: 'server', retryable: true }],
    ['a 503', { status: 503, body: '' }, { kind: 'unavailable', retryable: true }],
    ['garbage with 200', { status: 200, body: '<html>login</html>' }, { kind: 'bad-response', retryable: true }],
    ['a JSON array with 200', { status: 200, body: '[]' }, { kind: 'bad-response', retryable: true }],
    ['an error envelope with 200', { status: 200, body: '{"status":"error"}' }, { kind: 'bad-response', retryable: true }],
    ['a 424 duplicate', { status: 424, body: '{"status":"error","error":-5}' }, { kind: 'duplicate', fortiError: -5, retryable: false }],
    ['a 400 invalid value', { status: 400, body: '{"status":"error","error":-651}' }, { kind: 'validation', retryable: false }],
    ['a 405', { status: 405, body: '{"status":"error","http_status":405}' }, { kind: 'validation', retryable: false }],
  ])('classifies %s', async (_what, reply, expected) => {
    const err = await failWith(reply)();
    expect(err).toMatchObject({ ...expected, status: reply.status, method: 'GET', path: '/api/v2/cmdb/firewall/addrgrp/g' });
    expect(renderings(err)).not.toContain(TOKEN);
  });

  it('treats a 424 duplicate member append as already present', async () => {
    await withServer(
      () => ({ status: 424, body: '{"status":"error","error":-5}' }),
      async (client) => {
        await expect(client.addGroupMember('ipv4', 'g', 'm')).resolves.toBe('present');
      },
    );
  });

  it('explains a 401 without leaking the token', async () => {
    const err = await failWith({ status: 401, body: '<html/>', contentType: 'text/html' })();
    expect(String(err)).toMatch(/HTTP 401 \(wrong token, or this source IP is not in the API user's trusted hosts\)/);
  });
});

describe('connection failures', () => {
  it('reports a refused connection as a retryable network error', async () => {
    const server = await startCaptureServer(() => OK_WRITE);
    const url = server.url;
    await server.close();
    const client = new FortiOSClient({ baseUrl: url, token: TOKEN, timeoutMs: 1000 });
    try {
      const err = await fortiError(client.systemStatus());
      expect(err).toMatchObject({ kind: 'network', retryable: true, path: '/api/v2/monitor/system/status' });
      expect(err.message).toContain('ECONNREFUSED');
    } finally {
      await client.close();
    }
  });
});

describe('TLS', () => {
  let dir: string;
  let tls: { cert: string; key: string };

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fortios-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    tls = { cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'), key: readFileSync(path.join(dir, 'key.pem'), 'utf8') };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trusts a private CA file, refuses an unknown certificate for good, and can skip verification', async () => {
    const emu = await startEmulator({ port: 0, tls });
    const trusting = new FortiOSClient({ baseUrl: emu.url, token: emu.token, caFile: path.join(dir, 'cert.pem') });
    const strict = new FortiOSClient({ baseUrl: emu.url, token: emu.token });
    const insecure = new FortiOSClient({ baseUrl: emu.url, token: emu.token, insecure: true });
    try {
      expect(emu.url).toMatch(/^https:/);
      await expect(trusting.systemStatus()).resolves.toMatchObject({ version: 'v7.0.15' });
      await expect(fortiError(strict.systemStatus())).resolves.toMatchObject({ kind: 'network', retryable: false });
      await expect(insecure.systemStatus()).resolves.toMatchObject({ version: 'v7.0.15' });
    } finally {
      await Promise.all([trusting.close(), strict.close(), insecure.close()]);
      await emu.close();
    }
  });
});
