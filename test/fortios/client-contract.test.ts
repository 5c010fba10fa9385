/**
 * Contract of FortiOSClient against the emulator over a real socket: every operation, its idempotent
 * answers and its error paths.
 */
import { FortiOSClient } from '../../src/fortios/client';
import { RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { fortiError, renderings } from './helpers';

let emu: RunningEmulator;
let client: FortiOSClient;
let clock = Date.parse('2030-01-01T00:00:00Z');

beforeAll(async () => {
  emu = await startEmulator({ port: 0, now: () => clock });
  client = new FortiOSClient({ baseUrl: emu.url, token: emu.token, timeoutMs: 2000 });
});
afterAll(async () => {
  await client.close();
  await emu.close();
});
beforeEach(() => emu.reset());

const address = (name: string) => emu.state.ipv4.addresses.get(name);
const members = (group: string, family: 'ipv4' | 'ipv6' = 'ipv4') => [...(emu.state.family(family).groups.get(group)?.members ?? [])];

describe('system status', () => {
  it('reports the device identity', async () => {
    await expect(client.systemStatus()).resolves.toEqual({
      version: 'v7.0.15',
      build: 632,
      serial: 'FGVMEVEMULATOR01',
      hostname: 'FGVM-EMULATOR',
      model: 'FGVM64',
    });
  });
});

describe('addresses', () => {
  it('creates an IPv4 address in "ip mask" form and reads it back as CIDR', async () => {
    await client.createAddress('ipv4', { name: 'blk-203.0.113.7', subnet: '203.0.113.7/32', comment: 'ads' });
    expect(address('blk-203.0.113.7')).toMatchObject({ subnet: '203.0.113.7 255.255.255.255', comment: 'ads' });
    await expect(client.getAddress('ipv4', 'blk-203.0.113.7')).resolves.toEqual({
      name: 'blk-203.0.113.7',
      family: 'ipv4',
      subnet: '203.0.113.7/32',
      comment: 'ads',
    });
  });

  it('creates an IPv6 prefix address and reads it back normalised', async () => {
    await client.createAddress('ipv6', { name: 'blk6', subnet: '2001:0db8:0000::0001/128' });
    expect(emu.state.ipv6.addresses.get('blk6')?.subnet).toBe('2001:db8::1/128');
    await expect(client.getAddress('ipv6', 'blk6')).resolves.toEqual({
      name: 'blk6',
      family: 'ipv6',
      subnet: '2001:db8::1/128',
      comment: '',
    });
  });

  it('returns undefined for a missing address', async () => {
    await expect(client.getAddress('ipv4', 'nope')).resolves.toBeUndefined();
  });

  it('surfaces a duplicate create as a final "duplicate" error (500/-5)', async () => {
    await client.createAddress('ipv4', { name: 'dup', subnet: '192.0.2.1/32' });
    const err = await fortiError(client.createAddress('ipv4', { name: 'dup', subnet: '192.0.2.1/32' }));
    expect(err).toMatchObject({ kind: 'duplicate', status: 500, fortiError: -5, retryable: false, method: 'POST' });
    expect(err.path).toBe('/api/v2/cmdb/firewall/address');
  });

  it('ensureAddress creates once, then reports the same network as existing', async () => {
    await expect(client.ensureAddress('ipv4', { name: 'e1', subnet: '198.51.100.9/32' })).resolves.toBe('created');
    await expect(client.ensureAddress('ipv4', { name: 'e1', subnet: '198.51.100.9' })).resolves.toBe('exists');
    // The second call costs a refused create and a read.
    expect(emu.state.counters).toMatchObject({ writes: { address: 2 }, reads: { address: 1 } });
    expect(address('e1')?.subnet).toBe('198.51.100.9 255.255.255.255');
  });

  it('ensureAddress refuses an existing name with another subnet as a final conflict', async () => {
    await client.createAddress('ipv4', { name: 'e2', subnet: '198.51.100.9/32' });
    const err = await fortiError(client.ensureAddress('ipv4', { name: 'e2', subnet: '198.51.100.10/32' }));
    expect(err).toMatchObject({ kind: 'conflict', retryable: false });
    expect(err.message).toContain('198.51.100.9/32');
    expect(address('e2')?.subnet).toBe('198.51.100.9 255.255.255.255');
  });

  it('ensureAddress treats a name taken by a group as a conflict (-163)', async () => {
    const err = await fortiError(client.ensureAddress('ipv4', { name: 'ads-blocked', subnet: '192.0.2.1/32' }));
    expect(err).toMatchObject({ kind: 'conflict', fortiError: -163, retryable: false });
  });

  it('lists subnet addresses, narrowed to a name prefix', async () => {
    for (const name of ['ads-1', 'ads-2', 'x-ads-3']) await client.createAddress('ipv4', { name, subnet: '192.0.2.1/32' });
    const all = await client.listAddresses('ipv4');
    expect(all.map((a) => a.name).sort()).toEqual(['ads-1', 'ads-2', 'all', 'none', 'x-ads-3']);
    expect(all.find((a) => a.name === 'all')?.subnet).toBe('0.0.0.0/0');
    const ours = await client.listAddresses('ipv4', { namePrefix: 'ads-' });
    expect(ours.map((a) => a.name)).toEqual(['ads-1', 'ads-2']);
  });

  it('deletes an address, then reports it absent', async () => {
    await client.createAddress('ipv4', { name: 'd1', subnet: '192.0.2.1/32' });
    await expect(client.deleteAddress('ipv4', 'd1')).resolves.toBe('deleted');
    expect(address('d1')).toBeUndefined();
    await expect(client.deleteAddress('ipv4', 'd1')).resolves.toBe('absent');
  });

  it('refuses to delete an address still in a group (500/-23, final)', async () => {
    await client.createAddress('ipv4', { name: 'used', subnet: '192.0.2.1/32' });
    await client.addGroupMember('ipv4', 'ads-blocked', 'used');
    const err = await fortiError(client.deleteAddress('ipv4', 'used'));
    expect(err).toMatchObject({ kind: 'in-use', status: 500, fortiError: -23, retryable: false });
    expect(err.cliError).toBe('The entry is used by other 1 entries\nCommand fail. Return code -23\n');
    expect(address('used')).toBeDefined();
  });

  it.each([
    ['a double quote', 'bad"name', -173],
    ['a single quote', "bad'name", -173],
    ['angle brackets', 'bad<name>', -173],
    ['80 characters', 'x'.repeat(80), -72],
  ])('refuses a name with %s as a final validation error', async (_what, name, code) => {
    const err = await fortiError(client.createAddress('ipv4', { name, subnet: '192.0.2.1/32' }));
    expect(err).toMatchObject({ kind: 'validation', status: 500, fortiError: code, retryable: false });
  });

  it('accepts a 79-character name', async () => {
    await client.createAddress('ipv4', { name: 'x'.repeat(79), subnet: '192.0.2.1/32' });
    expect(address('x'.repeat(79))).toBeDefined();
  });

  it('refuses an invalid subnet before sending anything', async () => {
    const err = await fortiError(client.createAddress('ipv4', { name: 'bad', subnet: '192.0.2.300/32' }));
    expect(err).toMatchObject({ kind: 'validation', retryable: false, status: undefined });
    expect(emu.state.counters.writes.address).toBeUndefined();
  });

  it('round-trips names with "/", spaces and reserved characters through the path', async () => {
    const name = 'Event ID 12/a?b#c%d&e+f(g)*!';
    await client.createAddress('ipv4', { name, subnet: '10.0.0.0/8' });
    expect(address(name)).toBeDefined();
    await expect(client.getAddress('ipv4', name)).resolves.toMatchObject({ name, subnet: '10.0.0.0/8' });
    await expect(client.deleteAddress('ipv4', name)).resolves.toBe('deleted');
    expect(address(name)).toBeUndefined();
  });
});

describe('groups', () => {
  beforeEach(async () => {
    for (const n of ['a', 'b', 'c']) await client.createAddress('ipv4', { name: n, subnet: '192.0.2.1/32' });
  });

  it('reads the seeded group holding the placeholder', async () => {
    await expect(client.getGroup('ipv4', 'ads-blocked')).resolves.toEqual({ name: 'ads-blocked', family: 'ipv4', members: ['none'] });
    await expect(client.getGroup('ipv6', 'ads-blocked6')).resolves.toEqual({ name: 'ads-blocked6', family: 'ipv6', members: ['none'] });
    await expect(client.getGroup('ipv4', 'missing')).resolves.toBeUndefined();
  });

  it('replaces the whole member list with PUT', async () => {
    await client.setGroupMembers('ipv4', 'ads-blocked', ['a', 'b']);
    await client.setGroupMembers('ipv4', 'ads-blocked', ['c', 'a']);
    expect((await client.getGroup('ipv4', 'ads-blocked'))?.members).toEqual(['c', 'a']);
  });

  it('refuses an unknown member (500/-3) and keeps the old list', async () => {
    const err = await fortiError(client.setGroupMembers('ipv4', 'ads-blocked', ['a', 'ghost']));
    expect(err).toMatchObject({ kind: 'not-found', status: 500, fortiError: -3, retryable: false });
    expect(members('ads-blocked')).toEqual(['none']);
  });

  it('refuses an empty list before 7.2 (500/-56)', async () => {
    const err = await fortiError(client.setGroupMembers('ipv4', 'ads-blocked', []));
    expect(err).toMatchObject({ kind: 'validation', fortiError: -56, retryable: false });
  });

  it('adds a member through the child table, idempotently', async () => {
    await expect(client.addGroupMember('ipv4', 'ads-blocked', 'a')).resolves.toBe('added');
    await expect(client.addGroupMember('ipv4', 'ads-blocked', 'a')).resolves.toBe('present');
    expect(members('ads-blocked')).toEqual(['none', 'a']);
  });

  it('removes a member through the child table, idempotently', async () => {
    await client.addGroupMember('ipv4', 'ads-blocked', 'a');
    await expect(client.removeGroupMember('ipv4', 'ads-blocked', 'a')).resolves.toBe('removed');
    await expect(client.removeGroupMember('ipv4', 'ads-blocked', 'a')).resolves.toBe('absent');
    expect(members('ads-blocked')).toEqual(['none']);
  });

  it('refuses to remove the last member before 7.2 (-56)', async () => {
    const err = await fortiError(client.removeGroupMember('ipv4', 'ads-blocked', 'none'));
    expect(err).toMatchObject({ kind: 'validation', fortiError: -56 });
    expect(members('ads-blocked')).toEqual(['none']);
  });

  it('reports a missing group or address when adding a member', async () => {
    await expect(fortiError(client.addGroupMember('ipv4', 'missing', 'a'))).resolves.toMatchObject({ kind: 'not-found', status: 404 });
    await expect(fortiError(client.addGroupMember('ipv4', 'ads-blocked', 'ghost'))).resolves.toMatchObject({
      kind: 'not-found',
      status: 500,
      fortiError: -3,
    });
  });

  it('handles member names needing encoding in the child-table path', async () => {
    await client.createAddress('ipv4', { name: 'Event ID 7/x', subnet: '192.0.2.7/32' });
    await expect(client.addGroupMember('ipv4', 'ads-blocked', 'Event ID 7/x')).resolves.toBe('added');
    await expect(client.removeGroupMember('ipv4', 'ads-blocked', 'Event ID 7/x')).resolves.toBe('removed');
  });

  it('reads several groups in one call (name filter OR-ed), absent ones left out', async () => {
    const shards = await startEmulator({ port: 0, groups: { ipv4: ['ads-blocked', 'ads-blocked-2', 'Ads-Blocked-3'], ipv6: ['ads-blocked6'] } });
    const c = new FortiOSClient({ baseUrl: shards.url, token: shards.token, timeoutMs: 2000 });
    try {
      await c.createAddress('ipv4', { name: 'a', subnet: '192.0.2.1/32' });
      await c.setGroupMembers('ipv4', 'ads-blocked-2', ['a']);
      const before = shards.state.counters.reads.addrgrp ?? 0;
      const got = await c.getGroups('ipv4', ['ads-blocked', 'ads-blocked-2', 'Ads-Blocked-3', 'missing']);
      expect(Object.fromEntries([...got].map(([k, g]) => [k, g.members]))).toEqual({ 'ads-blocked': ['none'], 'ads-blocked-2': ['a'], 'Ads-Blocked-3': ['none'] });
      expect((shards.state.counters.reads.addrgrp ?? 0) - before).toBe(1);
      expect([...(await c.getGroups('ipv4', ['missing']))]).toEqual([]);
    } finally {
      await c.close();
      await shards.close();
    }
  });

  it('manages IPv6 groups through addrgrp6', async () => {
    await client.createAddress('ipv6', { name: 'v6', subnet: '2001:db8::/64' });
    await client.addGroupMember('ipv6', 'ads-blocked6', 'v6');
    expect(members('ads-blocked6', 'ipv6')).toEqual(['none', 'v6']);
    expect(members('ads-blocked')).toEqual(['none']);
  });
});

describe('group limits and empty groups', () => {
  it('refuses a list over the member limit (500/-4) on PUT and on append', async () => {
    const small = await startEmulator({ port: 0, groupMemberLimit: 3 });
    const c = new FortiOSClient({ baseUrl: small.url, token: small.token });
    try {
      for (const n of ['a', 'b', 'c']) await c.createAddress('ipv4', { name: n, subnet: '192.0.2.1/32' });
      const put = await fortiError(c.setGroupMembers('ipv4', 'ads-blocked', ['none', 'a', 'b', 'c']));
      expect(put).toMatchObject({ kind: 'limit', fortiError: -4, retryable: false });
      await c.setGroupMembers('ipv4', 'ads-blocked', ['none', 'a', 'b']);
      const append = await fortiError(c.addGroupMember('ipv4', 'ads-blocked', 'c'));
      expect(append).toMatchObject({ kind: 'limit', fortiError: -4 });
    } finally {
      await c.close();
      await small.close();
    }
  });

  it('accepts empty groups when allowEmptyGroup (7.2+ behaviour)', async () => {
    const modern = await startEmulator({ port: 0, allowEmptyGroup: true });
    const c = new FortiOSClient({ baseUrl: modern.url, token: modern.token });
    try {
      await c.setGroupMembers('ipv4', 'ads-blocked', []);
      await expect(c.getGroup('ipv4', 'ads-blocked')).resolves.toMatchObject({ members: [] });
    } finally {
      await c.close();
      await modern.close();
    }
  });
});

describe('banned IPs', () => {
  it('adds with and without expiry, lists, expires on the clock and clears', async () => {
    const created = Math.floor(clock / 1000);
    await client.bannedAdd(['203.0.113.7', '2001:db8::1'], 60);
    await client.bannedAdd(['198.51.100.1'], 0);
    await expect(client.bannedList()).resolves.toEqual([
      { ip: '203.0.113.7', created, expires: created + 60, source: 'Administrative' },
      { ip: '2001:db8::1', created, expires: created + 60, source: 'Administrative' },
      { ip: '198.51.100.1', created, source: 'Administrative' },
    ]);
    clock += 61_000;
    expect((await client.bannedList()).map((b) => b.ip)).toEqual(['198.51.100.1']);
    await client.bannedClear(['198.51.100.1']);
    await expect(client.bannedList()).resolves.toEqual([]);
  });

  it('refuses invalid IPs and expiries before sending', async () => {
    await expect(fortiError(client.bannedAdd(['not-an-ip'], 60))).resolves.toMatchObject({ kind: 'validation' });
    await expect(fortiError(client.bannedAdd(['192.0.2.1'], -1))).resolves.toMatchObject({ kind: 'validation' });
    expect(emu.state.counters.writes.banned).toBeUndefined();
  });
});

describe('local-in policies', () => {
  it('lists the seeded deny policies referencing the groups', async () => {
    await expect(client.localInPolicies()).resolves.toEqual([
      { policyid: 1, srcaddr: ['ads-blocked'], dstaddr: ['all'], action: 'deny', status: 'enable', intf: 'any' },
    ]);
    await expect(client.localInPolicies('ipv6')).resolves.toMatchObject([{ srcaddr: ['ads-blocked6'], action: 'deny' }]);
  });
});

describe('VDOM', () => {
  it('reaches only the VDOM the device has (403 otherwise)', async () => {
    const other = new FortiOSClient({ baseUrl: emu.url, token: emu.token, vdom: 'customer1' });
    try {
      const err = await fortiError(other.getGroup('ipv4', 'ads-blocked'));
      expect(err).toMatchObject({ kind: 'forbidden', status: 403, retryable: false });
    } finally {
      await other.close();
    }
  });
});

describe('secrecy of the token', () => {
  it('appears in no error rendering and not in the client object', async () => {
    const errors = [
      await fortiError(client.createAddress('ipv4', { name: 'bad"', subnet: '192.0.2.1/32' })),
      await fortiError(client.deleteAddress('ipv4', 'none')),
    ];
    for (const err of errors) expect(renderings(err)).not.toContain(emu.token);
    expect(renderings(client)).not.toContain(emu.token);
  });
});
