/**
 * Contract of FortiOSClient's scale primitives against the emulator over a real socket: threat feeds
 * (read, push with chunking and large snapshots, entry list and counts), banned-list batches, policy
 * listing and the "which deny policy references this name" start-up check. Enforcement is asserted with
 * the emulator's blocked() oracle.
 */
import { FortiOSClient, PUSH_CHUNK } from '../../src/fortios/client';
import { EmulatorOptions, RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { fortiError } from './helpers';

let clock = Date.parse('2030-01-01T00:00:00Z');

async function withClient(opts: EmulatorOptions, fn: (client: FortiOSClient, e: RunningEmulator) => Promise<void>): Promise<void> {
  const e = await startEmulator({ port: 0, version: 'v7.4.2', now: () => clock, feedPollMs: 0, ...opts });
  const client = new FortiOSClient({ baseUrl: e.url, token: e.token, timeoutMs: 5000 });
  try {
    await fn(client, e);
  } finally {
    await client.close();
    await e.close();
  }
}

const pushes = (e: RunningEmulator) => e.state.counters.writes['external-resource'] ?? 0;

describe('threat feeds', () => {
  it('reads a feed, or undefined when absent', async () => {
    await withClient({ feeds: [{ name: 'ads-feed' }] }, async (client) => {
      await expect(client.externalResource('ads-feed')).resolves.toEqual({
        name: 'ads-feed',
        type: 'address',
        updateMethod: 'push',
        status: 'enable',
        resource: '',
        refreshRate: 5,
        comments: '',
      });
      await expect(client.externalResource('nope')).resolves.toBeUndefined();
    });
  });

  it('pushes add, remove and snapshot; the entries are enforced', async () => {
    await withClient({ feeds: [{ name: 'f' }] }, async (client, e) => {
      await expect(client.pushFeed('f', 'add', ['192.0.2.1', '198.51.100.0/24', '2001:db8::1'])).resolves.toEqual({ requests: 1 });
      expect(e.blocked('198.51.100.99')).toMatchObject({ blocked: true, mechanisms: ['threat-feed'] });
      expect(e.blocked('2001:db8::1')?.blocked).toBe(true);
      await client.pushFeed('f', 'remove', ['198.51.100.0/24']);
      expect(e.blocked('198.51.100.99')?.blocked).toBe(false);
      await client.pushFeed('f', 'snapshot', ['203.0.113.7']);
      const listed = await client.feedEntries('f');
      expect(listed).toEqual({
        entries: [{ entry: '203.0.113.7', valid: true, overflow: false }],
        validCount: 1,
        invalidCount: 0,
        overflow: false,
        buildableCount: 1,
        overflowCount: 0,
      });
      expect(e.blocked('192.0.2.1')?.blocked).toBe(false);
    });
  });

  it('carries several commands in one request', async () => {
    await withClient({ feeds: [{ name: 'a' }, { name: 'b' }] }, async (client, e) => {
      await client.pushFeedCommands([
        { name: 'a', command: 'add', entries: ['192.0.2.1'] },
        { name: 'b', command: 'add', entries: ['192.0.2.2'] },
      ]);
      expect(pushes(e)).toBe(1);
      expect((await client.feedEntries('b')).entries.map((x) => x.entry)).toEqual(['192.0.2.2']);
    });
  });

  it('splits large lists into requests of chunkSize entries', async () => {
    await withClient({ feeds: [{ name: 'f' }] }, async (client, e) => {
      const ips = Array.from({ length: 25 }, (_, i) => `192.0.2.${i + 1}`);
      await expect(client.pushFeed('f', 'add', ips, { chunkSize: 10 })).resolves.toEqual({ requests: 3 });
      expect(pushes(e)).toBe(3);
      await expect(client.pushFeed('f', 'remove', ips.slice(0, 12), { chunkSize: 10 })).resolves.toEqual({ requests: 2 });
      expect((await client.feedCounts('f')).validCount).toBe(13);
    });
  });

  it('applies a snapshot larger than one request as a difference, never lifting an entry that stays', async () => {
    await withClient({ feeds: [{ name: 'f', entries: ['192.0.2.1', '192.0.2.2', '192.0.2.3'] }] }, async (client, e) => {
      const lifted: string[] = [];
      // Watch every push as it lands: an entry kept by the snapshot must be enforced after each request.
      const original = e.state.feeds.remove.bind(e.state.feeds);
      e.state.feeds.remove = (name, texts) => {
        original(name, texts);
        for (const ip of ['192.0.2.2', '192.0.2.3']) if (!e.blocked(ip)?.blocked) lifted.push(ip);
      };
      const wanted = ['192.0.2.2', '192.0.2.3', '198.51.100.1', '198.51.100.2', '198.51.100.3'];
      await expect(client.pushFeed('f', 'snapshot', wanted, { chunkSize: 2 })).resolves.toEqual({ requests: 1 + 2 + 1 });
      expect(lifted).toEqual([]);
      expect((await client.feedEntries('f')).entries.map((x) => x.entry).sort()).toEqual([...wanted].sort());
      // A snapshot that fits one request goes as one snapshot command.
      await expect(client.pushFeed('f', 'snapshot', ['192.0.2.9'], { chunkSize: 2 })).resolves.toEqual({ requests: 1 });
      expect((await client.feedEntries('f')).entries.map((x) => x.entry)).toEqual(['192.0.2.9']);
    });
  });

  it('refuses invalid entries and oversized requests before sending anything', async () => {
    await withClient({ feeds: [{ name: 'f' }] }, async (client, e) => {
      // The bad entry sits in the second request: still nothing is sent.
      await expect(fortiError(client.pushFeed('f', 'add', ['192.0.2.1', 'nope'], { chunkSize: 1 }))).resolves.toMatchObject({
        kind: 'validation',
        retryable: false,
      });
      await expect(fortiError(client.pushFeed('f', 'add', ['192.0.2.9-192.0.2.1']))).resolves.toMatchObject({ kind: 'validation' });
      await expect(fortiError(client.pushFeed('f', 'add', ['192.0.2.1'], { chunkSize: PUSH_CHUNK + 1 }))).resolves.toMatchObject({ kind: 'validation' });
      const many = Array.from({ length: PUSH_CHUNK + 1 }, () => '192.0.2.1');
      await expect(fortiError(client.pushFeedCommands([{ name: 'f', command: 'add', entries: many }]))).resolves.toMatchObject({ kind: 'validation' });
      expect(pushes(e)).toBe(0);
    });
  });

  it('maps device refusals to error kinds: unknown feed, pull feed, no push API before 7.2.1', async () => {
    await withClient({ feeds: [{ name: 'pull', updateMethod: 'feed', resource: 'http://127.0.0.1:1/f' }] }, async (client) => {
      await expect(fortiError(client.pushFeed('nope', 'add', ['192.0.2.1']))).resolves.toMatchObject({ kind: 'not-found', status: 404, fortiError: -3 });
      await expect(fortiError(client.pushFeed('pull', 'add', ['192.0.2.1']))).resolves.toMatchObject({ kind: 'validation', fortiError: -651, retryable: false });
      await expect(fortiError(client.feedEntries('nope'))).resolves.toMatchObject({ kind: 'not-found' });
    });
    await withClient({ version: 'v7.0.15', denyPolicy: 'none' }, async (client) => {
      await expect(fortiError(client.pushFeed('f', 'add', ['192.0.2.1']))).resolves.toMatchObject({ kind: 'not-found', status: 404 });
    });
  });

  it('reports entries cut by the limit, and counts only', async () => {
    await withClient({ version: 'v7.4.4', feedGlobalLimit: 2, feeds: [{ name: 'f' }] }, async (client, e) => {
      await client.pushFeed('f', 'add', ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
      const listed = await client.feedEntries('f');
      expect(listed.entries.map((x) => x.overflow)).toEqual([false, false, true]);
      await expect(client.feedCounts('f')).resolves.toEqual({ validCount: 3, invalidCount: 0, overflow: true, buildableCount: 2, overflowCount: 1 });
      await expect(client.feedEntries('f', { entry: '192.0.2.3' })).resolves.toMatchObject({ entries: [{ entry: '192.0.2.3', overflow: true }] });
      expect(e.blocked('192.0.2.3')?.blocked).toBe(false);
    });
  });
});

describe('banned list', () => {
  it('re-adding updates the expiry; batches are sent in chunks; clear all', async () => {
    await withClient({}, async (client, e) => {
      const t0 = Math.floor(clock / 1000);
      await client.bannedAdd(['192.0.2.1', '2001:db8::1'], 60);
      clock += 50_000;
      await client.bannedAdd(['192.0.2.1'], 600);
      clock += 20_000;
      await expect(client.bannedList()).resolves.toEqual([{ ip: '192.0.2.1', created: t0 + 50, expires: t0 + 650, source: 'Administrative' }]);
      expect(e.blocked('192.0.2.1')?.mechanisms).toEqual(['banned-ip']);
      expect(e.blocked('2001:db8::1')?.blocked).toBe(false);
      const many = Array.from({ length: PUSH_CHUNK + 5 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      await client.bannedAdd(many, 0);
      expect(e.state.counters.writes.banned).toBe(2 + 2);
      expect(e.state.banned.list()).toHaveLength(PUSH_CHUNK + 6);
      await client.bannedClearAll();
      await expect(client.bannedList()).resolves.toEqual([]);
    });
  });
});

describe('policies', () => {
  it('lists each table with IPv4 and IPv6 sources apart', async () => {
    await withClient({ denyPolicy: 'policy', feeds: [{ name: 'f' }] }, async (client) => {
      await expect(client.listPolicies('policy')).resolves.toEqual([
        {
          table: 'policy',
          policyid: 1,
          name: 'ads-mitigator-deny',
          srcaddr: ['ads-blocked', 'f'],
          dstaddr: ['all'],
          srcaddr6: ['ads-blocked6', 'f'],
          dstaddr6: ['all'],
          action: 'deny',
          status: 'enable',
        },
      ]);
      await expect(client.listPolicies('local-in-policy')).resolves.toEqual([]);
    });
  });

  it('finds the deny policies referencing a group, an IPv6 group or a feed', async () => {
    await withClient({ groups: { ipv4: ['parent'], ipv6: ['ads6'] }, feeds: [{ name: 'f' }] }, async (client) => {
      await expect(client.findDenyPolicies('parent')).resolves.toEqual([{ table: 'local-in-policy', policyid: 1, via: ['parent'] }]);
      await expect(client.findDenyPolicies('ads6')).resolves.toEqual([{ table: 'local-in-policy6', policyid: 1, via: ['ads6'] }]);
      await expect(client.findDenyPolicies('f')).resolves.toEqual([
        { table: 'local-in-policy', policyid: 1, via: ['f'] },
        { table: 'local-in-policy6', policyid: 1, via: ['f'] },
      ]);
      await expect(client.findDenyPolicies('nothing')).resolves.toEqual([]);
    });
  });

  it('follows nesting, skips disabled and accept policies, and can stay direct', async () => {
    await withClient({ groups: { ipv4: ['parent'], ipv6: [] } }, async (client, e) => {
      await client.createAddress('ipv4', { name: 'ads-a', subnet: '192.0.2.1/32' });
      const call = (method: string, p: string, body: unknown) =>
        fetch(`${e.url}/api/v2/cmdb/firewall/${p}`, { method, headers: { authorization: `Bearer ${e.token}` }, body: JSON.stringify(body) });
      await call('POST', 'addrgrp', { name: 'shard-1', member: [{ name: 'ads-a' }] });
      await client.setGroupMembers('ipv4', 'parent', ['none', 'shard-1']);
      await expect(client.findDenyPolicies('shard-1')).resolves.toEqual([{ table: 'local-in-policy', policyid: 1, via: ['parent', 'shard-1'] }]);
      await expect(client.findDenyPolicies('shard-1', { throughGroups: false })).resolves.toEqual([]);
      await call('POST', 'local-in-policy', { intf: 'any', srcaddr: [{ name: 'shard-1' }], dstaddr: [{ name: 'all' }], action: 'accept' });
      await call('PUT', 'local-in-policy/1', { status: 'disable' });
      await expect(client.findDenyPolicies('shard-1')).resolves.toEqual([]);
    });
  });

  it('lists groups of a family', async () => {
    await withClient({ groups: { ipv4: ['g1', 'g2'], ipv6: ['g6'] } }, async (client) => {
      await expect(client.listGroups('ipv4')).resolves.toEqual([
        { name: 'g1', family: 'ipv4', members: ['none'] },
        { name: 'g2', family: 'ipv4', members: ['none'] },
      ]);
      await expect(client.listGroups('ipv6')).resolves.toEqual([{ name: 'g6', family: 'ipv6', members: ['none'] }]);
    });
  });
});
