/**
 * Emulator behaviour beyond what the client uses: raw CMDB semantics, the UNCERTAIN switches, admin
 * routes, persistence and the CLI's environment mapping.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { optionsFromEnv } from '../../src/fortios/emulator/main';
import { EmulatorOptions, RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { RawReply, raw } from './helpers';

const ADDR = '/api/v2/cmdb/firewall/address';
const GRP = '/api/v2/cmdb/firewall/addrgrp';
const POLICY = '/api/v2/cmdb/firewall/local-in-policy';

let emu: RunningEmulator;
let call: (method: string, path: string, body?: unknown) => Promise<RawReply>;

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
  call = (method, p, body) => raw(emu.url, method, p, { token: emu.token, body });
});
afterAll(() => emu.close());
beforeEach(() => emu.reset());

/** Runs `fn` against a separate emulator with the given options. */
async function withEmulator(opts: EmulatorOptions, fn: (c: typeof call, e: RunningEmulator) => Promise<void>): Promise<void> {
  const e = await startEmulator({ port: 0, ...opts });
  try {
    await fn((method, p, body) => raw(e.url, method, p, { token: e.token, body }), e);
  } finally {
    await e.close();
  }
}

const subnetOf = async (c: typeof call, name: string) => (await c('GET', `${ADDR}/${encodeURIComponent(name)}`)).json.results[0].subnet;

describe('addresses', () => {
  it.each([
    ['ip mask', '10.0.0.5 255.255.255.0', '10.0.0.5 255.255.255.0'],
    ['ip/len', '10.0.0.5/24', '10.0.0.5 255.255.255.0'],
    ['ip/dotted mask', '192.0.2.0/255.255.255.0', '192.0.2.0 255.255.255.0'],
    ['bare ip', '192.0.2.7', '192.0.2.7 255.255.255.255'],
  ])('stores the %s spelling as "ip mask"', async (_what, given, stored) => {
    expect((await call('POST', ADDR, { name: 'a', subnet: given })).status).toBe(200);
    expect(await subnetOf(call, 'a')).toBe(stored);
  });

  it.each([
    ['an invalid address', '192.0.2.256/32', -8],
    ['a non-contiguous mask', '192.0.2.0 255.0.255.0', -9],
    ['a prefix over 32', '192.0.2.0/33', -9],
  ])('refuses %s', async (_what, subnet, code) => {
    const reply = await call('POST', ADDR, { name: 'a', subnet });
    expect(reply).toMatchObject({ status: 500, json: { error: code } });
  });

  it('defaults an omitted subnet to 0.0.0.0/0, as FortiOS does', async () => {
    await call('POST', ADDR, { name: 'any' });
    expect(await subnetOf(call, 'any')).toBe('0.0.0.0 0.0.0.0');
  });

  it('clears host bits only with zeroHostBits', async () => {
    await withEmulator({ zeroHostBits: true }, async (c) => {
      await c('POST', ADDR, { name: 'n', subnet: '10.0.0.5/24' });
      expect(await subnetOf(c, 'n')).toBe('10.0.0.0 255.255.255.0');
    });
  });

  it('refuses other address types', async () => {
    expect((await call('POST', ADDR, { name: 'f', type: 'fqdn', fqdn: 'example.com' })).json.error).toBe(-651);
  });

  it('merges a partial PUT and renames with references following', async () => {
    await call('POST', ADDR, { name: 'old', subnet: '192.0.2.1/32', comment: 'keep' });
    await call('PUT', `${GRP}/ads-blocked`, { member: [{ name: 'none' }, { name: 'old' }] });
    expect((await call('PUT', `${ADDR}/old`, { name: 'new', subnet: '192.0.2.2/32' })).status).toBe(200);
    expect((await call('GET', `${ADDR}/old`)).status).toBe(404);
    expect((await call('GET', `${ADDR}/new`)).json.results[0]).toMatchObject({ subnet: '192.0.2.2 255.255.255.255', comment: 'keep' });
    expect(emu.state.ipv4.groups.get('ads-blocked')?.members).toEqual(new Set(['none', 'new']));
    expect((await call('DELETE', `${ADDR}/new`)).json.cli_error).toContain('used by other 1 entries');
  });

  it('renaming a group updates the policy referring to it', async () => {
    await call('PUT', `${GRP}/ads-blocked`, { name: 'renamed' });
    expect(emu.state.ipv4.policies.get(1)?.srcaddr).toEqual(['renamed']);
    expect((await call('DELETE', `${GRP}/renamed`)).json.error).toBe(-23);
  });

  it('answers PUT/DELETE of a missing address with 404', async () => {
    expect((await call('PUT', `${ADDR}/ghost`, { comment: 'x' })).status).toBe(404);
    expect((await call('DELETE', `${ADDR}/ghost`)).status).toBe(404);
  });

  it('decodes exactly one level of percent-encoding', async () => {
    await call('POST', ADDR, { name: 'a%2Fb', subnet: '192.0.2.1/32' });
    await call('POST', ADDR, { name: 'a/b', subnet: '192.0.2.2/32' });
    expect((await call('GET', `${ADDR}/a%252Fb`)).json.results[0].name).toBe('a%2Fb');
    expect((await call('GET', `${ADDR}/a%2Fb`)).json.results[0].name).toBe('a/b');
    expect((await call('GET', `${ADDR}/%E0%A4%A`)).status).toBe(400);
  });

  it('keeps addresses and groups in one namespace per family only', async () => {
    expect((await call('POST', GRP, { name: 'all', member: [{ name: 'none' }] })).json.error).toBe(-163);
    expect((await call('POST', ADDR, { name: 'ads-blocked6', subnet: '192.0.2.1/32' })).status).toBe(200);
    expect((await call('PUT', `${GRP}/ads-blocked`, { member: [{ name: 'none' }, { name: 'x6' }] })).json.error).toBe(-3);
  });

  it('accepts the legacy {"json": {...}} body wrapper and refuses unparsable JSON', async () => {
    expect((await call('POST', ADDR, { json: { name: 'wrapped', subnet: '192.0.2.1/32' } })).status).toBe(200);
    expect(emu.state.ipv4.addresses.has('wrapped')).toBe(true);
    const bad = await raw(emu.url, 'POST', ADDR, { token: emu.token, bodyText: '{"name":' });
    expect(bad).toMatchObject({ status: 400, json: { status: 'error', http_status: 400 } });
  });
});

describe('table paths', () => {
  it('refuses a DELETE on the table path by default (405)', async () => {
    await call('POST', ADDR, { name: 'keep', subnet: '192.0.2.1/32' });
    expect((await call('DELETE', `${ADDR}/`)).status).toBe(405);
    expect((await call('DELETE', ADDR)).status).toBe(405);
    expect(emu.state.ipv4.addresses.has('keep')).toBe(true);
  });

  it('purges only unreferenced entries with tableDelete "purge"', async () => {
    await withEmulator({ tableDelete: 'purge' }, async (c, e) => {
      await c('POST', ADDR, { name: 'loose', subnet: '192.0.2.1/32' });
      expect((await c('DELETE', ADDR)).status).toBe(200);
      expect([...e.state.ipv4.addresses.keys()]).toEqual(['all', 'none']);
    });
  });

  it('filters and formats lists', async () => {
    for (const name of ['ads-1', 'ads-2', 'other']) await call('POST', ADDR, { name, subnet: '192.0.2.1/32' });
    const names = async (query: string) =>
      (await call('GET', `${ADDR}?${query}`)).json.results.map((r: { name: string }) => r.name);
    expect(await names('filter=name==ADS-1')).toEqual(['ads-1']);
    expect(await names('filter=name=@ads&filter=name!=ads-2')).toEqual(['ads-1']);
    expect(await names('filter=name==ads-2,name==other')).toEqual(['ads-2', 'other']);
    expect(await names('filter=name!@a')).toEqual(['none', 'other']);
    const formatted = await call('GET', `${ADDR}?filter=name==ads-1&format=name|subnet`);
    expect(formatted.json.results).toEqual([{ q_origin_key: 'ads-1', name: 'ads-1', subnet: '192.0.2.1 255.255.255.255' }]);
    expect(formatted.json).toMatchObject({ size: 5, matched_count: 1 });
    expect((await call('GET', `${ADDR}?filter=name~x`)).status).toBe(400);
  });

  it('answers unknown tables with a 404 envelope and actions with 400', async () => {
    const unknown = await call('GET', '/api/v2/cmdb/firewall/vip');
    expect(unknown).toMatchObject({ status: 404, json: { path: 'firewall', name: 'vip', http_status: 404 } });
    expect((await call('POST', `${ADDR}?action=clone&nkey=x`, {})).status).toBe(400);
    expect((await call('GET', '/api/v2/other')).status).toBe(404);
  });
});

describe('groups', () => {
  beforeEach(async () => {
    for (const name of ['a', 'b']) await call('POST', ADDR, { name, subnet: '192.0.2.1/32' });
  });

  it('refuses duplicate members by default and dedupes when asked', async () => {
    const body = { member: [{ name: 'a' }, { name: 'a' }] };
    expect((await call('PUT', `${GRP}/ads-blocked`, body)).json.error).toBe(-5);
    await withEmulator({ duplicateMembers: 'dedupe' }, async (c, e) => {
      await c('POST', ADDR, { name: 'a', subnet: '192.0.2.1/32' });
      expect((await c('PUT', `${GRP}/ads-blocked`, body)).status).toBe(200);
      expect([...e.state.ipv4.groups.get('ads-blocked')!.members]).toEqual(['a']);
    });
  });

  it('creates groups, nests them and refuses cycles', async () => {
    expect((await call('POST', GRP, { name: 'inner', member: [{ name: 'a' }] })).status).toBe(200);
    expect((await call('POST', GRP, { name: 'outer', member: [{ name: 'inner' }] })).status).toBe(200);
    expect((await call('PUT', `${GRP}/inner`, { member: [{ name: 'outer' }] })).json.error).toBe(-651);
    expect((await call('POST', GRP, { name: 'empty' })).json.error).toBe(-56);
    expect((await call('DELETE', `${GRP}/inner`)).json.error).toBe(-23);
  });

  it('serves the member child table', async () => {
    await call('POST', `${GRP}/ads-blocked/member`, { name: 'a' });
    const list = await call('GET', `${GRP}/ads-blocked/member`);
    expect(list.json.results).toEqual([{ name: 'none', q_origin_key: 'none' }, { name: 'a', q_origin_key: 'a' }]);
    expect((await call('GET', `${GRP}/ads-blocked/member/a`)).json).toMatchObject({ mkey: 'a', results: [{ name: 'a' }] });
    expect((await call('GET', `${GRP}/ads-blocked/member/b`)).status).toBe(404);
    expect((await call('PUT', `${GRP}/ads-blocked/member/a`, { name: 'a' })).status).toBe(405);
    expect((await call('DELETE', `${GRP}/ads-blocked/member`)).status).toBe(405);
    expect((await call('GET', `${ADDR}/a/member`)).status).toBe(404);
  });

  it('accepts empty groups from 7.2 on', async () => {
    await withEmulator({ version: 'v7.2.5' }, async (c) => {
      expect((await c('DELETE', `${GRP}/ads-blocked/member/none`)).status).toBe(200);
      expect((await c('GET', `${GRP}/ads-blocked`)).json.results[0].member).toEqual([]);
    });
  });
});

describe('local-in policies', () => {
  it('validates references and frees groups when the policy goes', async () => {
    expect((await call('POST', POLICY, { srcaddr: [{ name: 'ghost' }], dstaddr: [{ name: 'all' }] })).json.error).toBe(-3);
    expect((await call('POST', POLICY, { srcaddr: [], dstaddr: [{ name: 'all' }] })).json.error).toBe(-56);
    const created = await call('POST', POLICY, { intf: 'port1', srcaddr: [{ name: 'all' }], dstaddr: [{ name: 'all' }], action: 'accept' });
    expect(created.json).toMatchObject({ mkey: 2, status: 'success' });
    const used = await call('DELETE', `${GRP}/ads-blocked`);
    expect(used.json).toMatchObject({ error: -23, cli_error: 'The entry is used by other 1 entries\nCommand fail. Return code -23\n' });
    expect((await call('DELETE', `${POLICY}/1`)).status).toBe(200);
    expect((await call('DELETE', `${GRP}/ads-blocked`)).status).toBe(200);
    expect((await call('GET', `${POLICY}/x`)).status).toBe(404);
  });

  it('shows intf as a string before 7.4.2 and as a table from 7.4.2', async () => {
    expect((await call('GET', `${POLICY}/1`)).json.results[0].intf).toBe('any');
    await withEmulator({ version: 'v7.4.2' }, async (c) => {
      expect((await c('GET', `${POLICY}/1`)).json.results[0].intf).toEqual([{ name: 'any', q_origin_key: 'any' }]);
    });
  });
});

describe('banned list', () => {
  it('refuses invalid IPs with 500/-8 and clears everything with clear_all', async () => {
    const bad = await call('POST', '/api/v2/monitor/user/banned/add_users', { ip_addresses: ['nope'] });
    expect(bad).toMatchObject({ status: 500, json: { status: 'error', error: -8, action: 'add_users' } });
    expect(bad.json).not.toHaveProperty('http_status');
    await call('POST', '/api/v2/monitor/user/banned/add_users', { ip_addresses: ['192.0.2.1'] });
    expect((await call('POST', '/api/v2/monitor/user/banned/clear_all')).json).toMatchObject({ status: 'success', action: 'clear_all' });
    expect(emu.state.banned.list()).toEqual([]);
    expect((await call('GET', '/api/v2/monitor/user/nothing')).status).toBe(404);
  });
});

describe('admin routes', () => {
  it('exposes tables, counters, faults and version; merges faults; resets to the seed', async () => {
    await call('POST', ADDR, { name: 'x', subnet: '192.0.2.1/32' });
    await call('GET', `${GRP}/ads-blocked`);
    const patched = await raw(emu.url, 'POST', '/__emulator/faults', { body: { latencyMs: { PUT: 5 }, jitterMs: 1 } });
    expect(patched.json).toMatchObject({ latencyMs: { PUT: 5 }, jitterMs: 1 });
    await raw(emu.url, 'POST', '/__emulator/faults', { body: { latencyMs: { GET: 0 } } });
    const state = (await raw(emu.url, 'GET', '/__emulator/state')).json;
    expect(state).toMatchObject({
      version: 'v7.0.15',
      vdom: 'root',
      counters: { writes: { address: 1 }, reads: { addrgrp: 1 } },
      faults: { latencyMs: { PUT: 5, GET: 0 }, jitterMs: 1 },
    });
    expect(state.revision).toMatch(/^[0-9a-f]{32}$/);
    expect(state.tables.address.map((a: { name: string }) => a.name)).toEqual(['all', 'none', 'x']);
    expect(state.tables.addrgrp).toEqual([expect.objectContaining({ name: 'ads-blocked', members: ['none'] })]);
    expect(state.tables['local-in-policy']).toEqual([expect.objectContaining({ srcaddr: ['ads-blocked'], action: 'deny' })]);
    expect((await raw(emu.url, 'POST', '/__emulator/reset')).status).toBe(200);
    const after = (await raw(emu.url, 'GET', '/__emulator/state')).json;
    expect(after.tables.address.map((a: { name: string }) => a.name)).toEqual(['all', 'none']);
    expect(after.faults.latencyMs).toEqual({});
    expect(after.counters).toEqual({ reads: {}, writes: {}, rejected: {}, injected: {} });
  });

  it('refuses invalid fault settings and unknown routes', async () => {
    const bad = await raw(emu.url, 'POST', '/__emulator/faults', { body: { hangRate: 1.5 } });
    expect(bad.status).toBe(400);
    expect((await raw(emu.url, 'POST', '/__emulator/faults', { body: { nonsense: 1 } })).status).toBe(400);
    expect((await raw(emu.url, 'GET', '/__emulator/faults')).json.hangRate).toBe(0);
    expect((await raw(emu.url, 'GET', '/__emulator/nothing')).status).toBe(404);
  });

  it('seeds the configured groups and one deny policy per family', async () => {
    await withEmulator({ groups: { ipv4: ['g1', 'g2'], ipv6: [] } }, async (_c, e) => {
      expect([...e.state.ipv4.groups.keys()]).toEqual(['g1', 'g2']);
      expect(e.state.ipv4.policies.get(1)?.srcaddr).toEqual(['g1', 'g2']);
      expect(e.state.ipv6.groups.size).toBe(0);
      expect(e.state.ipv6.policies.size).toBe(0);
    });
  });
});

describe('persistence', () => {
  it('saves writes to the state file and loads them at the next start', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fortios-state-'));
    const stateFile = path.join(dir, 'sub', 'fortios-emulator.json');
    try {
      let revision = '';
      await withEmulator({ stateFile }, async (c, e) => {
        await c('POST', ADDR, { name: 'kept', subnet: '192.0.2.1/32' });
        await c('POST', `${GRP}/ads-blocked/member`, { name: 'kept' });
        await c('POST', '/api/v2/monitor/user/banned/add_users', { ip_addresses: ['192.0.2.9'] });
        revision = e.state.revision;
      });
      expect(JSON.parse(readFileSync(stateFile, 'utf8')).tables.address.map((a: { name: string }) => a.name)).toContain('kept');
      await withEmulator({ stateFile }, async (c, e) => {
        expect(e.state.revision).toBe(revision);
        expect((await c('GET', `${GRP}/ads-blocked`)).json.results[0].member.map((m: { name: string }) => m.name)).toEqual(['none', 'kept']);
        expect((await c('DELETE', `${ADDR}/kept`)).json.error).toBe(-23);
        expect(e.state.banned.list().map((b) => b.ip)).toEqual(['192.0.2.9']);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CLI environment', () => {
  it('maps the documented variables with their defaults', () => {
    expect(optionsFromEnv({})).toEqual({
      host: '127.0.0.1',
      port: 8443,
      token: undefined,
      groupMemberLimit: 600,
      version: undefined,
      groups: { ipv4: ['ads-blocked'], ipv6: ['ads-blocked6'] },
      stateFile: path.join('data', 'fortios-emulator.json'),
    });
    expect(
      optionsFromEnv({
        FORTIOS_EMULATOR_PORT: '9443',
        FORTIOS_EMULATOR_HOST: '0.0.0.0',
        FORTIOS_EMULATOR_TOKEN: 'tok',
        FORTIOS_EMULATOR_GROUP_LIMIT: '50',
        FORTIOS_EMULATOR_VERSION: 'v7.2.5',
        FORTIGATE_GROUP: 'g4',
        FORTIGATE_GROUP6: 'g6',
        DATA_DIR: '/tmp/d',
        FORTIOS_EMULATOR_FAULTS: '{"error500Rate":0.1}',
      }),
    ).toEqual({
      host: '0.0.0.0',
      port: 9443,
      token: 'tok',
      groupMemberLimit: 50,
      version: 'v7.2.5',
      groups: { ipv4: ['g4'], ipv6: ['g6'] },
      stateFile: '/tmp/d/fortios-emulator.json',
      faults: { error500Rate: 0.1 },
    });
  });

  it('refuses invalid values', () => {
    expect(() => optionsFromEnv({ FORTIOS_EMULATOR_PORT: 'http' })).toThrow(/FORTIOS_EMULATOR_PORT/);
    expect(() => optionsFromEnv({ FORTIOS_EMULATOR_TLS_CERT: '/x.pem' })).toThrow(/together/);
    expect(() => optionsFromEnv({ FORTIOS_EMULATOR_FAULTS: '{"hangRate":3}' })).toThrow();
  });
});
