/**
 * Emulator semantics of the enforcement primitives made for scale: threat feeds (CMDB table, push API,
 * entry list, limits, pull downloads), firewall policies, the banned list's expiry, IPv6 group limits and
 * the /__emulator/blocked oracle. Raw HTTP, so that envelopes and error numbers are what is checked.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmulatorOptions, RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { RawReply, raw } from './helpers';

const FEEDS = '/api/v2/cmdb/system/external-resource';
const PUSH = '/api/v2/monitor/system/external-resource/dynamic';
const LIST = '/api/v2/monitor/system/external-resource/entry-list';
const ADDR = '/api/v2/cmdb/firewall/address';
const ADDR6 = '/api/v2/cmdb/firewall/address6';
const GRP = '/api/v2/cmdb/firewall/addrgrp';
const GRP6 = '/api/v2/cmdb/firewall/addrgrp6';
const LOCAL_IN = '/api/v2/cmdb/firewall/local-in-policy';
const POLICY = '/api/v2/cmdb/firewall/policy';
const BANNED = '/api/v2/monitor/user/banned';

type Call = (method: string, path: string, body?: unknown) => Promise<RawReply>;

let clock = Date.parse('2030-01-01T00:00:00Z');
const now = () => clock;

/** Runs `fn` against an emulator with the given options (push feeds need 7.2.1+: default v7.2.5). */
async function withEmulator(opts: EmulatorOptions, fn: (call: Call, e: RunningEmulator) => Promise<void>): Promise<void> {
  const e = await startEmulator({ port: 0, version: 'v7.2.5', now, feedPollMs: 0, ...opts });
  try {
    await fn((method, p, body) => raw(e.url, method, p, { token: e.token, body }), e);
  } finally {
    await e.close();
  }
}

const push = (call: Call, name: string, command: string, entries: string[]) => call('POST', PUSH, { commands: [{ name, command, entries }] });
const listed = async (call: Call, name: string) => (await call('GET', `${LIST}?mkey=${name}`)).json.results;
const texts = async (call: Call, name: string) => (await listed(call, name)).entries.map((e: { entry: string }) => e.entry);

describe('system/external-resource (CMDB)', () => {
  it('creates, reads, updates and deletes a push feed; never shows the password', async () => {
    await withEmulator({}, async (call, e) => {
      const created = await call('POST', FEEDS, { name: 'ads-feed', type: 'address', 'update-method': 'push', password: 's3cret' });
      expect(created.json).toMatchObject({ status: 'success', http_status: 200, mkey: 'ads-feed', path: 'system', name: 'external-resource' });
      const got = (await call('GET', `${FEEDS}/ads-feed`)).json.results[0];
      expect(got).toMatchObject({ name: 'ads-feed', q_origin_key: 'ads-feed', type: 'address', 'update-method': 'push', 'refresh-rate': 5, status: 'enable' });
      expect(got.password).toMatch(/^ENC /);
      expect(JSON.stringify(got)).not.toContain('s3cret');
      expect((await raw(e.url, 'GET', '/__emulator/state')).text).not.toContain('s3cret');
      expect((await call('PUT', `${FEEDS}/ads-feed`, { comments: 'x', 'refresh-rate': 60 })).status).toBe(200);
      expect((await call('GET', `${FEEDS}/ads-feed`)).json.results[0]).toMatchObject({ comments: 'x', 'refresh-rate': 60 });
      expect((await call('DELETE', `${FEEDS}/ads-feed`)).status).toBe(200);
      expect((await call('GET', `${FEEDS}/ads-feed`)).json).toMatchObject({ status: 'error', http_status: 404, error: -3 });
    });
  });

  it.each([
    ['a name over 35 characters', { name: 'x'.repeat(36), type: 'address', 'update-method': 'push' }, -72],
    ['a pull feed without resource', { name: 'f', type: 'address' }, -56],
    ['a resource that is no http(s) URI', { name: 'f', type: 'address', resource: 'ftp://x/y' }, -651],
    ['a refresh rate over 43200 minutes', { name: 'f', type: 'address', 'update-method': 'push', 'refresh-rate': 43_201 }, -651],
    ['an unknown type', { name: 'f', type: 'ipv4', 'update-method': 'push' }, -651],
    ['a name taken by an address', { name: 'all', type: 'address', 'update-method': 'push' }, -5],
  ])('refuses %s', async (_what, body, code) => {
    await withEmulator({}, async (call, e) => {
      expect((await call('POST', FEEDS, body)).json).toMatchObject({ status: 'error', http_status: 500, error: code });
      expect(e.state.feeds.resources.size).toBe(0);
    });
  });

  it('knows update-method only from 7.2.1 on, and no push route before', async () => {
    await withEmulator({ version: 'v7.2.0' }, async (call) => {
      expect((await call('POST', FEEDS, { name: 'f', type: 'address', 'update-method': 'push' })).json.error).toBe(-651);
      expect((await call('POST', FEEDS, { name: 'f', type: 'address', resource: 'http://127.0.0.1:1/x' })).status).toBe(200);
      expect((await call('GET', `${FEEDS}/f`)).json.results[0]).not.toHaveProperty('update-method');
      expect((await push(call, 'f', 'add', ['192.0.2.1'])).status).toBe(404);
    });
  });

  it('refuses to delete a feed a policy uses (-23), and refuses a feed in a local-in policy before 7.2.4', async () => {
    await withEmulator({ feeds: [{ name: 'ads-feed' }] }, async (call) => {
      expect((await call('DELETE', `${FEEDS}/ads-feed`)).json).toMatchObject({ error: -23, cli_error: expect.stringContaining('used by other 2 entries') });
    });
    const body = { srcaddr: [{ name: 'f' }], dstaddr: [{ name: 'all' }], intf: 'any' };
    await withEmulator({ version: 'v7.2.3', denyPolicy: 'none' }, async (call) => {
      await call('POST', FEEDS, { name: 'f', type: 'address', 'update-method': 'push' });
      expect((await call('POST', LOCAL_IN, body)).json).toMatchObject({ error: -3, cli_error: expect.stringContaining('datasource') });
      // Firewall policies accept feeds on every version.
      const fw = { srcintf: [{ name: 'any' }], dstintf: [{ name: 'any' }], srcaddr: [{ name: 'f' }], dstaddr: [{ name: 'all' }] };
      expect((await call('POST', POLICY, fw)).json).toMatchObject({ status: 'success', mkey: 1 });
    });
    await withEmulator({ version: 'v7.2.4', denyPolicy: 'none' }, async (call) => {
      await call('POST', FEEDS, { name: 'f', type: 'address', 'update-method': 'push' });
      expect((await call('POST', LOCAL_IN, body)).status).toBe(200);
    });
  });
});

describe('push API', () => {
  it('adds, removes and snapshots entries; keeps them as given; dedupes by value', async () => {
    await withEmulator({ feeds: [{ name: 'f' }] }, async (call) => {
      const added = await push(call, 'f', 'add', ['192.0.2.1', '198.51.100.0/24', '203.0.113.1-203.0.113.9', '2001:0db8::1']);
      expect(added.json).toMatchObject({ http_method: 'POST', path: 'system', name: 'external-resource', action: 'dynamic', status: 'success' });
      expect(added.json).not.toHaveProperty('http_status');
      await push(call, 'f', 'add', ['2001:db8::1', '192.0.2.1']);
      expect(await texts(call, 'f')).toEqual(['192.0.2.1', '198.51.100.0/24', '203.0.113.1-203.0.113.9', '2001:0db8::1']);
      await push(call, 'f', 'remove', ['2001:db8:0::1', '198.51.100.0/24']);
      expect(await texts(call, 'f')).toEqual(['192.0.2.1', '203.0.113.1-203.0.113.9']);
      await push(call, 'f', 'snapshot', ['203.0.113.1-203.0.113.9', '192.0.2.200']);
      expect(await texts(call, 'f')).toEqual(['203.0.113.1-203.0.113.9', '192.0.2.200']);
    });
  });

  it('applies several commands of one request in order', async () => {
    await withEmulator({ feeds: [{ name: 'a' }, { name: 'b' }] }, async (call) => {
      const reply = await call('POST', PUSH, {
        commands: [
          { name: 'a', command: 'snapshot', entries: ['192.0.2.1', '192.0.2.2'] },
          { name: 'a', command: 'remove', entries: ['192.0.2.1'] },
          { name: 'b', command: 'add', entries: ['192.0.2.3'] },
        ],
      });
      expect(reply.status).toBe(200);
      expect(await texts(call, 'a')).toEqual(['192.0.2.2']);
      expect(await texts(call, 'b')).toEqual(['192.0.2.3']);
    });
  });

  it.each([
    ['an invalid address', [{ name: 'f', command: 'add', entries: ['192.0.2.1', '192.0.2.300'] }], 500, -8],
    ['a range ending below its start', [{ name: 'f', command: 'add', entries: ['192.0.2.9-192.0.2.1'] }], 500, -8],
    ['an unknown command', [{ name: 'f', command: 'replace', entries: [] }], 500, -651],
    ['a missing entries list', [{ name: 'f', command: 'add' }], 500, -651],
    ['an unknown feed', [{ name: 'f', command: 'add', entries: ['192.0.2.1'] }, { name: 'nope', command: 'add', entries: [] }], 404, -3],
    ['a pull feed', [{ name: 'pull', command: 'add', entries: ['192.0.2.1'] }], 500, -651],
  ])('refuses the whole request for %s and changes nothing', async (_what, commands, status, code) => {
    await withEmulator({ feeds: [{ name: 'f', entries: ['198.51.100.1'] }, { name: 'pull', updateMethod: 'feed', resource: 'http://127.0.0.1:1/x' }] }, async (call, e) => {
      const revision = (await raw(e.url, 'GET', '/__emulator/state')).json.revision;
      expect(await call('POST', PUSH, { commands })).toMatchObject({ status, json: { status: 'error', error: code } });
      expect(await texts(call, 'f')).toEqual(['198.51.100.1']);
      expect((await raw(e.url, 'GET', '/__emulator/state')).json.revision).toBe(revision);
    });
  });
});

describe('entry limits', () => {
  it('before 7.4.4 cuts a feed after its first feedEntryLimit entries: listed, counted, not enforced', async () => {
    await withEmulator({ feedEntryLimit: 3, feeds: [{ name: 'a' }, { name: 'b' }] }, async (call, e) => {
      await push(call, 'a', 'add', ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5']);
      await push(call, 'b', 'add', ['198.51.100.1', '198.51.100.2']);
      const a = await listed(call, 'a');
      expect(a).toMatchObject({ valid_count: 5, invalid_count: 0, buildable_count: 3, overflow_count: 2, overflow: true });
      expect(a.entries.slice(2)).toEqual([{ entry: '192.0.2.3', valid: true }, { entry: '192.0.2.4', valid: true, overflow: true }, { entry: '192.0.2.5', valid: true, overflow: true }]);
      expect(await listed(call, 'b')).toMatchObject({ overflow: false, buildable_count: 2 });
      expect(e.blocked('192.0.2.3')?.blocked).toBe(true);
      expect(e.blocked('192.0.2.4')).toMatchObject({ blocked: false, mechanisms: [] });
      await push(call, 'a', 'remove', ['192.0.2.1']);
      expect(e.blocked('192.0.2.4')?.blocked).toBe(true);
    });
  });

  it('from 7.4.4 cuts the most recently added IP entries over the global limit, across feeds', async () => {
    await withEmulator({ version: 'v7.4.4', feedGlobalLimit: 4, feeds: [{ name: 'a' }, { name: 'b' }] }, async (call, e) => {
      await push(call, 'b', 'add', ['198.51.100.1', '198.51.100.2']);
      await push(call, 'a', 'add', ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
      expect(await listed(call, 'b')).toMatchObject({ overflow: false, buildable_count: 2 });
      expect(await listed(call, 'a')).toMatchObject({ overflow: true, buildable_count: 2, overflow_count: 1 });
      expect(e.blocked('192.0.2.3')?.blocked).toBe(false);
      // A disabled feed does not count: its entries are not loaded.
      await call('PUT', '/api/v2/cmdb/system/external-resource/b', { status: 'disable' });
      expect(e.blocked('192.0.2.3')?.blocked).toBe(true);
      expect(e.blocked('198.51.100.1')?.blocked).toBe(false);
    });
  });

  it('keeps the place of entries a snapshot retains', async () => {
    await withEmulator({ feedEntryLimit: 2, feeds: [{ name: 'a' }] }, async (call) => {
      await push(call, 'a', 'add', ['192.0.2.1', '192.0.2.2']);
      await push(call, 'a', 'snapshot', ['192.0.2.9', '192.0.2.2', '192.0.2.1']);
      const a = await listed(call, 'a');
      expect(a.entries).toEqual([{ entry: '192.0.2.1', valid: true }, { entry: '192.0.2.2', valid: true }, { entry: '192.0.2.9', valid: true, overflow: true }]);
    });
  });
});

describe('entry-list parameters', () => {
  it('answers counts_only, status_only, include_notes and entry; 404 for an unknown feed, 400 without mkey', async () => {
    await withEmulator({ feedEntryLimit: 1, feeds: [{ name: 'f', entries: ['192.0.2.0/24', '198.51.100.7'] }] }, async (call) => {
      expect((await call('GET', `${LIST}?mkey=f&counts_only=true`)).json.results).toEqual({
        invalid_count: 0,
        valid_count: 2,
        buildable_count: 1,
        overflow_count: 1,
        overflow: true,
      });
      const status = (await call('GET', `${LIST}?mkey=f&status_only=1`)).json;
      expect(status).toMatchObject({ action: 'entry-list', results: { resource_file_status: 'pushed', status: 'success', valid_count: 2 } });
      expect(status.results).not.toHaveProperty('entries');
      const notes = (await call('GET', `${LIST}?mkey=f&include_notes=true`)).json.results.entries;
      expect(notes).toEqual([{ entry: '192.0.2.0/24', valid: true, notes: '' }, { entry: '198.51.100.7', valid: true, overflow: true, notes: 'overflow' }]);
      expect((await call('GET', `${LIST}?mkey=f&entry=192.0.2.77`)).json.results.entries).toEqual([{ entry: '192.0.2.0/24', valid: true }]);
      expect((await call('GET', `${LIST}?mkey=f&entry=203.0.113.1`)).json.results.entries).toEqual([]);
      expect((await call('GET', `${LIST}?mkey=nope`)).json).toMatchObject({ status: 'error', error: -3 });
      expect((await call('GET', `${LIST}?mkey=nope`)).status).toBe(404);
      expect((await call('GET', LIST)).status).toBe(400);
    });
  });
});

/** A loopback HTTP server serving `body()` behind basic auth user:pass; `status` overrides the answer. */
async function startFeedServer() {
  const state = { body: '', status: 200, requests: 0, lastAuth: '' };
  const server = http.createServer((req, res) => {
    state.requests++;
    state.lastAuth = req.headers.authorization ?? '';
    if (state.lastAuth !== `Basic ${Buffer.from('user:pass').toString('base64')}`) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(state.status, { 'content-type': 'text/plain' }).end(state.status === 200 ? state.body : 'error');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/feed.txt`;
  return { state, url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('pull feeds', () => {
  it('downloads with basic auth, parses one entry per line and keeps the last good copy on failure', async () => {
    const srv = await startFeedServer();
    try {
      srv.state.body = '# comment\n192.0.2.1\r\n\n198.51.100.0/24\nnot-an-ip\n2001:db8::/64\n';
      const seed = { name: 'pull', updateMethod: 'feed' as const, resource: srv.url, username: 'user', password: 'pass' };
      await withEmulator({ feeds: [seed] }, async (call, e) => {
        expect(await e.refreshFeeds()).toEqual([{ name: 'pull', ok: true, httpStatus: 200, valid: 3, invalid: 1 }]);
        const first = await listed(call, 'pull');
        expect(first).toMatchObject({ valid_count: 3, invalid_count: 1, resource_file_status: 'downloaded', http_status_code: 200, status: 'success' });
        expect(first.last_content_update_time).toBe(Math.floor(clock / 1000));
        expect(first.entries).toContainEqual({ entry: 'not-an-ip', valid: false });
        expect(e.blocked('198.51.100.9')?.mechanisms).toEqual(['threat-feed']);

        srv.state.status = 500;
        const failed = await raw(e.url, 'POST', '/__emulator/external-resource/refresh', { body: { name: 'pull' } });
        expect(failed.json.refreshed).toEqual([{ name: 'pull', ok: false, httpStatus: 500, valid: 3, invalid: 1, error: 'HTTP 500' }]);
        expect(await listed(call, 'pull')).toMatchObject({ valid_count: 3, resource_file_status: 'failed', http_status_code: 500, status: 'error' });
        expect(e.blocked('198.51.100.9')?.blocked).toBe(true);

        srv.state.status = 200;
        srv.state.body = '203.0.113.5\n';
        await call('PUT', `${FEEDS}/pull`, { password: 'wrong' });
        expect((await e.refreshFeeds('pull'))[0]).toMatchObject({ ok: false, httpStatus: 401 });
        expect(await texts(call, 'pull')).toEqual(['192.0.2.1', '198.51.100.0/24', '2001:db8::/64', 'not-an-ip']);

        await call('PUT', `${FEEDS}/pull`, { password: 'pass' });
        expect((await e.refreshFeeds('pull'))[0]).toMatchObject({ ok: true, valid: 1, invalid: 0 });
        expect(await texts(call, 'pull')).toEqual(['203.0.113.5']);
        expect(e.blocked('198.51.100.9')?.blocked).toBe(false);
        expect((await raw(e.url, 'POST', '/__emulator/external-resource/refresh', { body: { name: 'nope' } })).status).toBe(404);
      });
    } finally {
      await srv.close();
    }
  });

  it('downloads by itself every refresh-rate minutes of the emulator clock', async () => {
    const srv = await startFeedServer();
    try {
      srv.state.body = '192.0.2.1\n';
      const seed = { name: 'pull', updateMethod: 'feed' as const, resource: srv.url, username: 'user', password: 'pass', refreshRate: 10 };
      await withEmulator({ feeds: [seed], feedPollMs: 10 }, async (_call, e) => {
        await waitFor(() => e.blocked('192.0.2.1')?.blocked === true);
        srv.state.body = '192.0.2.2\n';
        clock += 9 * 60_000;
        const before = srv.state.requests;
        await new Promise((r) => setTimeout(r, 50)); // several ticks: none due yet
        expect(srv.state.requests).toBe(before);
        clock += 60_000;
        await waitFor(() => e.blocked('192.0.2.2')?.blocked === true);
      });
    } finally {
      await srv.close();
    }
  });
});

describe('the blocked oracle', () => {
  it('names the mechanisms: nested groups, IPv6 groups, feeds, banned entries; ignores disabled policies', async () => {
    await withEmulator({ groups: { ipv4: ['parent'], ipv6: ['ads6'] }, feeds: [{ name: 'f', entries: ['203.0.113.0/24'] }] }, async (call, e) => {
      await call('POST', ADDR, { name: 'ads-a', subnet: '198.51.100.7/32' });
      await call('POST', GRP, { name: 'shard-1', member: [{ name: 'ads-a' }] });
      await call('PUT', `${GRP}/parent`, { member: [{ name: 'none' }, { name: 'shard-1' }] });
      await call('POST', ADDR6, { name: 'ads-v6', ip6: '2001:db8::7/128' });
      await call('POST', `${GRP6}/ads6/member`, { name: 'ads-v6' });
      await call('POST', `${BANNED}/add_users`, { ip_addresses: ['192.0.2.50'], expiry: 60 });

      expect(e.blocked('198.51.100.7')).toEqual({
        ip: '198.51.100.7',
        family: 'ipv4',
        blocked: true,
        mechanisms: ['address-group'],
        policies: [{ table: 'local-in-policy', policyid: 1, via: [{ kind: 'address', path: ['parent', 'shard-1', 'ads-a'], subnet: '198.51.100.7 255.255.255.255' }] }],
      });
      expect(e.blocked('2001:db8:0::7')).toMatchObject({ blocked: true, mechanisms: ['address-group'], policies: [{ table: 'local-in-policy6' }] });
      expect(e.blocked('203.0.113.200')).toMatchObject({ mechanisms: ['threat-feed'], policies: [{ via: [{ kind: 'feed', feed: 'f', entry: '203.0.113.0/24' }] }] });
      expect(e.blocked('192.0.2.50')).toMatchObject({ blocked: true, mechanisms: ['banned-ip'], policies: [], banned: { expires: Math.floor(clock / 1000) + 60 } });
      expect(e.blocked('192.0.2.51')).toMatchObject({ blocked: false, mechanisms: [] });

      const http = await raw(e.url, 'GET', '/__emulator/blocked?ip=198.51.100.7&policy=local-in-policy/1');
      expect(http.json).toMatchObject({ blocked: true });
      expect((await raw(e.url, 'GET', '/__emulator/blocked?ip=198.51.100.7&policy=policy/1')).json).toMatchObject({ blocked: false });
      expect((await raw(e.url, 'GET', '/__emulator/blocked?ip=nope')).status).toBe(400);
      expect((await raw(e.url, 'GET', '/__emulator/blocked?ip=192.0.2.1&policy=x')).status).toBe(400);

      await call('PUT', `${LOCAL_IN}/1`, { status: 'disable' });
      expect(e.blocked('198.51.100.7')?.blocked).toBe(false);
    });
  });

  it('follows the firewall policy seeded with denyPolicy "policy" (feeds usable before 7.2.4)', async () => {
    await withEmulator({ version: 'v7.0.15', denyPolicy: 'policy', feeds: [{ name: 'f', updateMethod: 'feed', resource: 'http://127.0.0.1:1/x' }] }, async (call, e) => {
      const p = (await call('GET', `${POLICY}/1`)).json.results[0];
      expect(p).toMatchObject({ action: 'deny', srcaddr: [{ name: 'ads-blocked' }, { name: 'f' }], srcaddr6: [{ name: 'ads-blocked6' }, { name: 'f' }] });
      expect(e.state.ipv4.policies.size).toBe(0);
      await call('POST', ADDR, { name: 'ads-b', subnet: '198.51.100.8/32' });
      await call('POST', `${GRP}/ads-blocked/member`, { name: 'ads-b' });
      expect(e.blocked('198.51.100.8')).toMatchObject({ blocked: true, policies: [{ table: 'policy', policyid: 1 }] });
      // References from firewall policies follow renames and block deletes.
      await call('PUT', `${GRP}/ads-blocked`, { name: 'renamed' });
      expect((await call('GET', `${POLICY}/1`)).json.results[0].srcaddr[0].name).toBe('renamed');
      expect((await call('DELETE', `${GRP}/renamed`)).json.error).toBe(-23);
    });
  });

  it('refuses to seed feeds into a local-in policy before 7.2.4, and push feeds before 7.2.1', async () => {
    await expect(startEmulator({ port: 0, version: 'v7.0.15', feeds: [{ name: 'f', updateMethod: 'feed', resource: 'http://x/' }] })).rejects.toThrow(/7\.2\.4/);
    await expect(startEmulator({ port: 0, version: 'v7.0.15', denyPolicy: 'policy', feeds: [{ name: 'f' }] })).rejects.toThrow(/7\.2\.1/);
  });
});

describe('firewall/policy', () => {
  it('validates interfaces, addresses per family and references', async () => {
    await withEmulator({ denyPolicy: 'none' }, async (call) => {
      const base = { srcintf: [{ name: 'port1' }], dstintf: [{ name: 'any' }] };
      expect((await call('POST', POLICY, { ...base, srcaddr: [{ name: 'all' }] })).json.error).toBe(-56);
      expect((await call('POST', POLICY, { ...base, srcaddr: [{ name: 'ghost' }], dstaddr: [{ name: 'all' }] })).json.error).toBe(-3);
      expect((await call('POST', POLICY, { dstintf: [{ name: 'any' }], srcaddr: [{ name: 'all' }], dstaddr: [{ name: 'all' }] })).json.error).toBe(-56);
      const ok = await call('POST', POLICY, { ...base, name: 'deny6', srcaddr6: [{ name: 'ads-blocked6' }], dstaddr6: [{ name: 'all' }] });
      expect(ok.json).toMatchObject({ status: 'success', mkey: 1 });
      expect((await call('GET', POLICY)).json.results[0]).toMatchObject({ policyid: 1, name: 'deny6', action: 'deny', srcaddr: [], srcaddr6: [{ name: 'ads-blocked6', q_origin_key: 'ads-blocked6' }] });
      expect((await call('DELETE', `${GRP6}/ads-blocked6`)).json.error).toBe(-23);
      expect((await call('DELETE', `${POLICY}/1`)).status).toBe(200);
    });
  });
});

describe('banned list', () => {
  it('drops entries at expiry on the emulator clock, re-adding sets a new expiry, IPv6 in any spelling', async () => {
    await withEmulator({}, async (call, e) => {
      const t0 = Math.floor(clock / 1000);
      await call('POST', `${BANNED}/add_users`, { ip_addresses: ['192.0.2.1', '2001:db8::1'], expiry: 60 });
      clock += 30_000;
      await call('POST', `${BANNED}/add_users`, { ip_addresses: ['192.0.2.1'], expiry: 60 });
      const check = await call('GET', `${BANNED}/check?ip_address=2001:0db8:0:0::1`);
      expect(check.json).toMatchObject({ action: 'check', results: { is_banned: true, expires: t0 + 60, ipv6: 1 } });
      clock += 31_000;
      expect(e.blocked('2001:db8::1')?.blocked).toBe(false);
      expect((await call('GET', `${BANNED}/check?ip_address=2001:db8::1`)).json.results.is_banned).toBe(false);
      const list = (await call('GET', BANNED)).json.results;
      expect(list).toEqual([{ ip_address: '192.0.2.1', created: t0 + 30, expires: t0 + 90, source: 'Administrative', ipv6: 0 }]);
      await call('POST', `${BANNED}/add_users`, { ip_addresses: ['192.0.2.1'], expiry: 0 });
      clock += 3600_000;
      expect((await call('GET', BANNED)).json.results).toEqual([expect.not.objectContaining({ expires: expect.anything() })]);
      await call('POST', `${BANNED}/add_users`, { ip_addresses: ['2001:db8::2'] });
      await call('POST', `${BANNED}/clear_users`, { ip_addresses: ['2001:0DB8:0000:0000:0000:0000:0000:0002'] });
      expect(e.state.banned.list().map((b) => b.ip)).toEqual(['192.0.2.1']);
      expect((await call('GET', `${BANNED}/check?ip_address=bad`)).json.error).toBe(-8);
    });
  });
});

describe('IPv6 groups', () => {
  it('enforce their own member limit and keep the placeholder rules', async () => {
    await withEmulator({ version: 'v7.0.15', groupMemberLimit: 600, group6MemberLimit: 2 }, async (call) => {
      for (const n of ['a', 'b']) await call('POST', ADDR6, { name: n, ip6: '2001:db8::1/128' });
      await call('POST', `${GRP6}/ads-blocked6/member`, { name: 'a' });
      expect((await call('POST', `${GRP6}/ads-blocked6/member`, { name: 'b' })).json.error).toBe(-4);
      expect((await call('PUT', `${GRP6}/ads-blocked6`, { member: [{ name: 'a' }, { name: 'b' }, { name: 'none' }] })).json.error).toBe(-4);
      expect((await call('PUT', `${GRP6}/ads-blocked6`, { member: [] })).json.error).toBe(-56);
      expect((await call('PUT', `${GRP6}/ads-blocked6`, { member: [{ name: 'a' }, { name: 'b' }] })).status).toBe(200);
    });
  });
});

describe('persistence', () => {
  it('keeps feeds, their entries and pull status, and firewall policies across a restart', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fortios-feeds-'));
    const stateFile = path.join(dir, 'state.json');
    try {
      await withEmulator({ stateFile, denyPolicy: 'policy', feeds: [{ name: 'f' }] }, async (call) => {
        await push(call, 'f', 'add', ['192.0.2.1', '192.0.2.2']);
      });
      await withEmulator({ stateFile, denyPolicy: 'policy', feedEntryLimit: 1 }, async (call, e) => {
        expect(await texts(call, 'f')).toEqual(['192.0.2.1', '192.0.2.2']);
        expect(e.blocked('192.0.2.1')).toMatchObject({ blocked: true, policies: [{ table: 'policy' }] });
        expect(e.blocked('192.0.2.2')?.blocked).toBe(false);
        expect((await call('DELETE', `${FEEDS}/f`)).json.error).toBe(-23);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
