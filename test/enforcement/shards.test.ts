/**
 * Address-group shards (FORTIGATE_GROUP=blk-1,blk-2,blk-3 with a small FORTIGATE_GROUP_CAPACITY): shard 1
 * fills to capacity before shard 2 gets a member; when every shard is full the entry expiring first is
 * rotated out (an old member, or the newcomer itself); a group never holds more than its capacity; a
 * platform limit below the configured capacity is learned without rotating anyone out while there is room.
 */
import { AddressGroupBackend, addressObjectName } from '../../src/enforcement/address-group';
import { ownerComment } from '../../src/enforcement/port';
import { FortiOSClient } from '../../src/fortios/client';
import { RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { BlockStatus } from '../../workflows/messages';
import { watchGroupSize } from '../reliability/convergence';
import { activeStatus, blockInput, eventually, Stack, startBlock, startStack, TARGET } from '../support/stack';
import { cancelAll, DAY, HOUR } from './scenarios';

const SHARDS = ['blk-1', 'blk-2', 'blk-3'];
const SHARDS6 = ['blk6-1', 'blk6-2'];
const CAPACITY = 3;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    server: 'dev',
    emulator: { groups: { ipv4: SHARDS, ipv6: SHARDS6 } },
    target: { enforcement: 'address-group', groups: { ipv4: SHARDS, ipv6: SHARDS6 }, capacity: CAPACITY },
  });
});
afterAll(async () => {
  await stack?.stop();
});

async function shards(): Promise<string[][]> {
  return Promise.all(SHARDS.map(async (g) => (await stack.firewall.getGroup('ipv4', g))!.members));
}
const names = (ips: string[]) => ips.map(addressObjectName).sort();
const handle = (ip: string) => stack.client.workflow.getHandle(`block:${TARGET}:${ip}`);

/** A bare backend on its own emulator (no Temporal), to count what a commit costs. */
async function withBackend(
  groups: { ipv4: string[]; ipv6: string[] },
  capacity: number,
  fn: (backend: AddressGroupBackend, fw: FortiOSClient, emulator: RunningEmulator) => Promise<void>,
): Promise<void> {
  const emulator = await startEmulator({ port: 0, groups });
  const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token });
  try {
    await fn(new AddressGroupBackend(fw, { groups, capacity }), fw, emulator);
  } finally {
    await fw.close();
    await emulator.close();
  }
}

async function blockAll(ips: string[], ttl: (ip: string) => number = () => DAY): Promise<void> {
  await Promise.all(ips.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: ttl(ip) }))));
}

test('shards fill in order; when all are full the entry expiring first is rotated out; never over capacity', async () => {
  const watches = SHARDS.map((g) => watchGroupSize(stack.emulator, g));
  const waves = [0, 1, 2].map((w) => [1, 2, 3].map((i) => `198.51.100.${w * 10 + i}`));
  const early = waves[1][1]; // expires first of all: one hour
  try {
    // Wave by wave: shard k is full before shard k+1 gets a member.
    for (const [w, wave] of waves.entries()) {
      await blockAll(wave, (ip) => (ip === early ? HOUR : DAY));
      const want = waves.slice(0, w + 1).map((x) => names(x));
      await eventually(async () => {
        const s = await shards();
        return want.every((members, k) => JSON.stringify([...s[k]].sort()) === JSON.stringify(members)) && s.slice(w + 1).every((m) => m.join() === 'none');
      }, 60_000, `wave ${w + 1} in shard ${w + 1} only`);
    }
    await Promise.all(waves.flat().map((ip) => activeStatus(handle(ip), 30_000)));
    expect(waves.flat().every((ip) => stack.emulator.blocked(ip)!.blocked)).toBe(true);

    // All full: a newcomer with a long TTL rotates out the entry expiring first (in shard 2), and takes its place.
    const late = '198.51.100.41';
    await blockAll([late], () => 2 * DAY);
    const evicted: BlockStatus = await handle(early).result();
    expect(evicted.state).toBe('evicted');
    expect(evicted.evictedReason).toMatch(/full/);
    await activeStatus(handle(late), 30_000);
    const after = (await shards()).map((m) => [...m].sort());
    expect(after).toEqual([names(waves[0]), names([waves[1][0], waves[1][2], late]), names(waves[2])]);
    expect(stack.emulator.blocked(early)!.blocked).toBe(false);
    await eventually(async () => !(await stack.firewall.getAddress('ipv4', addressObjectName(early))), 20_000, 'evicted object deleted');

    // A newcomer expiring before everyone else is the one rotated out: the members stay.
    const brief = '198.51.100.42';
    await blockAll([brief], () => HOUR / 2);
    expect((await handle(brief).result()).state).toBe('evicted');
    expect((await shards()).map((m) => [...m].sort())).toEqual(after);

    expect(watches.map((w) => w.max())).toEqual([CAPACITY, CAPACITY, CAPACITY]);
    const live = [...waves.flat().filter((ip) => ip !== early), late];
    await cancelAll(stack, live);
    await eventually(async () => (await shards()).every((m) => m.join() === 'none'), 30_000, 'shards empty');
  } finally {
    for (const w of watches) w.stop();
  }
});

test('IPv6 shards: a platform limit below the configured capacity is learned, with no rotation while there is room', async () => {
  // The backend alone against an emulator whose addrgrp6 holds 3 members while 5 are configured: one commit
  // of 7 must fill blk6-1 to the real limit, put the rest in blk6-2 and evict nobody.
  const emulator = await startEmulator({ port: 0, groups: { ipv4: ['blk-1'], ipv6: SHARDS6 }, group6MemberLimit: 3 });
  const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token });
  try {
    const backend = new AddressGroupBackend(fw, { groups: { ipv4: ['blk-1'], ipv6: SHARDS6 }, capacity: 5 });
    const ips = Array.from({ length: 6 }, (_, i) => `2001:db8:6::${i + 1}`);
    const r = await backend.commit(SHARDS6[0], { adds: ips.map((ip) => ({ ip, family: 'ipv6' as const, expiresAtMs: Date.now() + DAY })), removes: [], resync: false });
    expect(r.evicted).toEqual([]);
    expect(ips.map((ip) => r.outcomes[ip]?.status)).toEqual(ips.map(() => 'ok'));
    expect(r.problems.join('\n')).toMatch(/refused .* holding at most 3/);
    const g1 = (await fw.getGroup('ipv6', SHARDS6[0]))!.members;
    const g2 = (await fw.getGroup('ipv6', SHARDS6[1]))!.members;
    expect(g1).toHaveLength(3);
    expect([...g1, ...g2].sort()).toEqual(names(ips));
    for (const ip of ips) expect(emulator.blocked(ip)).toMatchObject({ blocked: true, mechanisms: ['address-group'] });

    // Full by the learned limit (3 + 3): the next one rotates out the entry expiring first.
    const next = await backend.commit(SHARDS6[0], { adds: [{ ip: '2001:db8:6::99', family: 'ipv6', expiresAtMs: Date.now() + 2 * DAY }], removes: [], resync: false });
    expect(next.evicted).toHaveLength(1);
    expect(next.outcomes['2001:db8:6::99']).toEqual({ status: 'ok' });
  } finally {
    await fw.close();
    await emulator.close();
  }
});

test('a re-check of entries whose objects exist costs one object list, one group read and no object call; a member missing is re-added', async () => {
  await withBackend({ ipv4: SHARDS, ipv6: SHARDS6 }, CAPACITY, async (backend, fw, emulator) => {
    const calls = () => emulator.state.requests();
    const ips = Array.from({ length: 5 }, (_, i) => `198.51.100.${120 + i}`);
    const until = Date.now() + DAY;
    const entry = (ip: string, recheck: boolean) => ({ ip, family: 'ipv4' as const, expiresAtMs: until, recheck });
    await backend.commit(SHARDS[0], { adds: ips.map((ip) => entry(ip, false)), removes: [], resync: false });
    // An operator takes one member out by hand (its object stays).
    const s1 = (await fw.getGroup('ipv4', SHARDS[0]))!.members;
    await fw.setGroupMembers('ipv4', SHARDS[0], s1.filter((m) => m !== addressObjectName(ips[0])));

    const before = { all: calls(), objects: (emulator.state.counters.writes.address ?? 0) + (emulator.state.counters.reads.address ?? 0) };
    const r = await backend.commit(SHARDS[0], { adds: ips.map((ip) => entry(ip, true)), removes: [], resync: false });
    expect(ips.map((ip) => r.outcomes[ip]?.status)).toEqual(ips.map(() => 'ok'));
    // All five objects checked in one list (the missing member's too: its object stayed); one group read and
    // one group write put the missing member back.
    expect((emulator.state.counters.writes.address ?? 0) + (emulator.state.counters.reads.address ?? 0) - before.objects).toBe(1);
    expect(calls() - before.all).toBe(1 + 1 + 1);
    for (const ip of ips) expect(emulator.blocked(ip)).toMatchObject({ blocked: true, mechanisms: ['address-group'] });
  });
});

test('a big tick that runs again (a re-executed local activity) costs two reads and no object call; a new expiry still reaches the comments', async () => {
  const [G, G6] = ['big-1', 'big6-1'];
  await withBackend({ ipv4: [G], ipv6: [G6] }, 600, async (backend, fw, emulator) => {
    const objectWrites = () => emulator.state.counters.writes.address ?? 0;
    const ips = Array.from({ length: 60 }, (_, i) => `198.51.100.${i + 1}`);
    const until = Date.now() + DAY;
    const tick = (expiry: (i: number) => number) => ({ adds: ips.map((ip, i) => ({ ip, family: 'ipv4' as const, expiresAtMs: expiry(i) })), removes: [], resync: false });
    await backend.commit(G, tick(() => until));
    expect(objectWrites()).toBe(60);

    const before = { all: emulator.state.requests(), objects: objectWrites() };
    const again = await backend.commit(G, tick(() => until));
    expect(ips.every((ip) => again.outcomes[ip]?.status === 'ok')).toBe(true);
    // Our objects (all there, comments current), the shards before the write; no write.
    expect(objectWrites() - before.objects).toBe(0);
    expect(emulator.state.requests() - before.all).toBe(2);

    // Five of them extended: their comments carry the new expiry (the rotation order), nothing else is written.
    const later = until + HOUR;
    await backend.commit(G, tick((i) => (i < 5 ? later : until)));
    expect(objectWrites() - before.objects).toBe(5);
    expect((await fw.getAddress('ipv4', addressObjectName(ips[0])))?.comment).toBe(ownerComment({ ip: ips[0], family: 'ipv4', expiresAtMs: later }));
    expect((await fw.getGroup('ipv4', G))?.members).toHaveLength(60);
  });
});

test('a big tick whose first run created the objects but lost its group write costs no object call the second time', async () => {
  const [G, G6] = ['lost-1', 'lost6-1'];
  await withBackend({ ipv4: [G], ipv6: [G6] }, 600, async (backend, fw, emulator) => {
    const objectWrites = () => emulator.state.counters.writes.address ?? 0;
    const ips = Array.from({ length: 60 }, (_, i) => `198.51.102.${i + 1}`);
    const until = Date.now() + DAY;
    const adds = ips.map((ip) => ({ ip, family: 'ipv4' as const, expiresAtMs: until }));
    // What the first run left: every object, no member (the run died before its group write).
    for (const e of adds) await fw.ensureAddress('ipv4', { name: addressObjectName(e.ip), subnet: `${e.ip}/32`, comment: ownerComment(e) });
    const before = { all: emulator.state.requests(), objects: objectWrites() };
    const r = await backend.commit(G, { adds, removes: [], resync: false });
    expect(ips.every((ip) => r.outcomes[ip]?.status === 'ok')).toBe(true);
    expect(objectWrites() - before.objects).toBe(0);
    expect(emulator.state.requests() - before.all).toBe(3); // our objects, the shards, the group write
    expect((await fw.getGroup('ipv4', G))?.members).toHaveLength(60);
  });
});

test('a held member whose object is another network is not taken for enforced: the conflict is reported', async () => {
  const [G, G6] = ['conflict-1', 'conflict6-1'];
  await withBackend({ ipv4: [G], ipv6: [G6] }, 600, async (backend, fw) => {
    const ip = '198.51.100.200';
    // Someone's object named like ours, for another network, already in the group.
    await fw.createAddress('ipv4', { name: addressObjectName(ip), subnet: '198.51.100.0/24', comment: 'not a block' });
    await fw.setGroupMembers('ipv4', G, [addressObjectName(ip)]);
    const until = Date.now() + DAY;
    for (const recheck of [true, false]) {
      const adds = [ip, ...Array.from({ length: 59 }, (_, i) => `198.51.101.${i + 1}`)].map((a) => ({ ip: a, family: 'ipv4' as const, expiresAtMs: until, recheck }));
      const r = await backend.commit(G, { adds, removes: [], resync: false });
      expect(r.outcomes[ip]).toMatchObject({ status: 'failed', reason: expect.stringMatching(/subnet 198\.51\.100\.0\/24/) });
    }
  });
});

describe("early adds written by the API (addAhead): an object and one child-table append, never a rewrite", () => {
  const [A, B, A6] = ['ahead-1', 'ahead-2', 'ahead6-1'];
  const until = Date.now() + DAY;
  const add = (ip: string) => ({ ip, family: 'ipv4' as const, expiresAtMs: until });

  test("into the first shard with room; an operator's member and a concurrent change of the group stay; the block's own add writes no member again", async () => {
    // Capacity 6, the placeholder included: early adds leave one slot (1/20, rounded up) to the enforcer, so
    // they stop at 5 members a shard.
    await withBackend({ ipv4: [A, B], ipv6: [A6] }, 6, async (backend, fw, emulator) => {
      await fw.createAddress('ipv4', { name: 'operator-host', subnet: '192.0.2.250/32', comment: 'an operator’s' });
      await fw.setGroupMembers('ipv4', A, ['none', 'operator-host']);
      const first = ['198.51.103.1', '198.51.103.2'];
      await backend.addAhead!(A, first.map(add));
      expect((await fw.getGroup('ipv4', A))!.members.sort()).toEqual(['none', 'operator-host', ...names(first)].sort());
      // Someone else changes the group meanwhile (it is not re-read within 5 s): an append keeps what is there.
      await fw.createAddress('ipv4', { name: 'operator-host-2', subnet: '192.0.2.251/32', comment: 'an operator’s' });
      await fw.addGroupMember('ipv4', A, 'operator-host-2');
      const next = ['198.51.103.3', '198.51.103.4', '198.51.103.5'];
      await backend.addAhead!(A, next.map(add));
      const a = (await fw.getGroup('ipv4', A))!.members;
      const b = (await fw.getGroup('ipv4', B))!.members;
      expect(a).toEqual(expect.arrayContaining(['operator-host', 'operator-host-2', ...names(first)]));
      // By this process's count shard A had one slot left below its early-add limit; the rest went to B.
      expect([...a, ...b].filter((m) => m.startsWith('ads-')).sort()).toEqual(names([...first, ...next]));
      expect(b.filter((m) => m.startsWith('ads-')).length).toBeGreaterThanOrEqual(2);
      for (const ip of [...first, ...next]) {
        expect(emulator.blocked(ip)).toMatchObject({ blocked: true, mechanisms: ['address-group'] });
        expect((await fw.getAddress('ipv4', addressObjectName(ip)))?.comment).toBe(ownerComment(add(ip)));
      }
      // The blocks' own adds through the enforcer find them placed: only the placeholders go (one deletion per
      // shard), no member is written again, nobody is rotated out.
      const r = await backend.commit(A, { adds: [...first, ...next].map(add), removes: [], resync: false });
      expect(Object.values(r.outcomes).every((o) => o.status === 'ok')).toBe(true);
      expect(r.writes).toBe(2);
      expect(r.evicted).toEqual([]);
      const after = [...(await fw.getGroup('ipv4', A))!.members, ...(await fw.getGroup('ipv4', B))!.members];
      expect(after.filter((m) => m.startsWith('ads-')).sort()).toEqual(names([...first, ...next]));
      expect(after).not.toContain('none');
    });
  });

  test("the enforcer's small tick keeps a member appended between its read and its write (the API's early add racing it)", async () => {
    const emulator = await startEmulator({ port: 0, groups: { ipv4: [A], ipv6: [A6] } });
    const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token });
    try {
      const racing = '198.51.106.9';
      let race = true;
      const backend = new AddressGroupBackend(fw, { groups: { ipv4: [A], ipv6: [A6] }, capacity: 600 }, async (op, fn) => {
        const r = await fn();
        if (op === 'getGroups' && race) {
          race = false;
          await new AddressGroupBackend(fw, { groups: { ipv4: [A], ipv6: [A6] }, capacity: 600 }).addAhead!(A, [add(racing)]);
        }
        return r;
      });
      await backend.commit(A, { adds: [add('198.51.106.1')], removes: [], resync: false });
      expect((await fw.getGroup('ipv4', A))!.members.sort()).toEqual(names(['198.51.106.1', racing]));
      expect(emulator.blocked(racing)!.blocked).toBe(true);
    } finally {
      await fw.close();
      await emulator.close();
    }
  });

  test('no room by its counts (every shard within the headroom): nothing is written, nobody rotated out', async () => {
    await withBackend({ ipv4: [A], ipv6: [A6] }, 3, async (backend, fw, emulator) => {
      // Capacity 3: early adds stop at 2 members (the placeholder and one block).
      await backend.addAhead!(A, [add('198.51.104.1')]);
      const writes = emulator.state.requests('writes');
      await backend.addAhead!(A, [add('198.51.104.2'), add('198.51.104.3')]);
      expect(emulator.state.requests('writes')).toBe(writes);
      expect((await fw.getGroup('ipv4', A))!.members.sort()).toEqual(['none', addressObjectName('198.51.104.1')].sort());
    });
  });

  test("a shard the platform refuses more members (its limit, below the configured capacity): the write fails, and the next early add goes to the next shard", async () => {
    const emulator = await startEmulator({ port: 0, groups: { ipv4: [A, B], ipv6: [A6] }, groupMemberLimit: 2 });
    const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token });
    try {
      const backend = new AddressGroupBackend(fw, { groups: { ipv4: [A, B], ipv6: [A6] }, capacity: 600 });
      await backend.addAhead!(A, [add('198.51.105.1')]);
      await expect(backend.addAhead!(A, [add('198.51.105.2')])).rejects.toThrow();
      await backend.addAhead!(A, [add('198.51.105.3')]);
      expect((await fw.getGroup('ipv4', B))!.members).toContain(addressObjectName('198.51.105.3'));
    } finally {
      await fw.close();
      await emulator.close();
    }
  });
});
