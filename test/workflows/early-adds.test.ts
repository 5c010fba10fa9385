/**
 * Early adds (workflows/early-adds.ts): the API hands a new block's add to the enforcer beside the block's
 * start, so the firewall write does not wait for the block's first task. The block stays the truth: an early
 * entry that no block holds once the claim time is over is withdrawn; one a block holds stays. The rules as a
 * plain class first, then on the time-skipping server (the claim time passes in milliseconds) with the real
 * API service, worker and emulator, on a threat feed; then an address group, which takes early adds only when the
 * API writes them itself (an object and a child-table append: src/enforcement/address-group.ts).
 */
import type { temporal } from '@temporalio/proto';
import { sendToEnforcer } from '../../activities/messaging';
import { BlockService } from '../../src/blocks/service';
import { KnownBlocks } from '../../src/blocks/known-blocks';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import { BURST_CLAIM_MS, CHECK_BATCH_MS, CLAIM_MS, EARLY_BURST_MAX, EARLY_PENDING_MAX, EARLY_QUEUE_MAX, EarlyAdds, MAX_CLAIM_MS } from '../../workflows/early-adds';
import { AheadWriter } from '../../src/blocks/ahead-writer';
import type { EnforcementBackend } from '../../src/enforcement';
import { takenChanges } from '../../src/temporal/enforcer-history';
import { blockWorkflowId, cancelUpdate, enforcerStatusQuery, enforcerWorkflowId, SetChange, statusQuery } from '../../workflows/messages';
import { activeStatus, blockInput, eventually, GROUP4, resultAfter, Stack, startBlock, startStack, TARGET, testTarget } from '../support/stack';
import { addressObjectName } from '../../src/enforcement/address-group';

const HOUR = 3_600_000;
const owner = (ip: string) => ({ workflowId: `block:fw1:${ip}`, lineage: `run-${ip}` });
const early = (ip: string): SetChange => ({ op: 'add', ip, family: 'ipv4', early: true });

/** The early adds of `ip` an enforcer took (its submitChanges Updates). */
async function earlyChangesOf(stack: Stack, enforcerId: string, ip: string): Promise<SetChange[]> {
  const { events } = await stack.client.workflow.getHandle(enforcerId).fetchHistory();
  return takenChanges(events ?? []).flatMap((t) => t.changes.filter((c) => c.ip === ip && c.early));
}

/** A backend whose addAhead (the API's own writes) is counted: calls, and entries once written. */
function countingAhead<B extends EnforcementBackend>(backend: B): { backend: B; writes: number; written: number } {
  const counted = { backend: Object.create(backend) as B, writes: 0, written: 0 };
  counted.backend.addAhead = async (set, entries) => {
    counted.writes++;
    await backend.addAhead!(set, entries);
    counted.written += entries.length;
  };
  return counted;
}

/** A burst through the API: its lines announced at once (a webhook request of many lines), then each blocked. */
async function burstThrough(api: BlockService, ips: string[], idPrefix: string): Promise<void> {
  const done = api.announce(ips.length);
  try {
    await Promise.all(ips.map((ip, i) => api.block({ ip, reason: 'test', actor: 'test', event: { id: `${idPrefix}-${i}` } })));
  } finally {
    done();
  }
}

/** Lets the claim time pass on the server's clock (the enforcer's withdrawal timer fires). */
const claimTimeOver = (stack: Stack) => stack.env.sleep(CLAIM_MS + CHECK_BATCH_MS + 5_000);

describe('EarlyAdds (plain rules)', () => {
  test('an applied early add is withdrawn when its claim time is over, as a checked repair removal', () => {
    const e = new EarlyAdds();
    e.committed([early('192.0.2.1')], [], 1_000);
    expect(e.nextDueMs()).toBe(1_000 + CLAIM_MS + CHECK_BATCH_MS); // the checks due meanwhile come along
    expect(e.due(1_000 + CLAIM_MS - 1)).toEqual([]);
    expect(e.due(1_000 + CLAIM_MS)).toEqual([{ op: 'remove', ip: '192.0.2.1', family: 'ipv4' }]);
    expect(e.size).toBe(0);
  });

  test("the block's own add, a removal or an eviction leaves nothing to withdraw; a repair's add changes nothing", () => {
    const e = new EarlyAdds();
    e.committed(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'].map(early), [], 0);
    e.committed(
      [
        { op: 'add', ip: '192.0.2.1', family: 'ipv4', owner: owner('192.0.2.1') },
        { op: 'remove', ip: '192.0.2.2', family: 'ipv4' },
        { op: 'add', ip: '192.0.2.4', family: 'ipv4' }, // reconciliation's re-add: it may have been skipped
      ],
      ['192.0.2.3'],
      10,
    );
    expect(e.due(CLAIM_MS).map((c) => c.ip)).toEqual(['192.0.2.4']);
  });

  test('dropped in a flood, behind a backlog, or with too many withdrawals pending; carried across continue-as-new', () => {
    const e = new EarlyAdds();
    expect(e.accept(0, false)).toBe(true);
    expect(e.accept(0, true)).toBe(false);
    expect(e.accept(EARLY_QUEUE_MAX, false)).toBe(false);
    e.committed(Array.from({ length: EARLY_PENDING_MAX }, (_, i) => early(`10.0.${i >> 8}.${i & 255}`)), [], 0);
    expect(e.accept(0, false)).toBe(false);
    const next = new EarlyAdds(e.carry());
    expect(next.size).toBe(EARLY_PENDING_MAX);
    expect(next.nextDueMs()).toBe(CLAIM_MS + CHECK_BATCH_MS);
  });

  test("an entry the API writes itself (ahead) is checked unless its block's own add came after it and no removal since", () => {
    const e = new EarlyAdds();
    const ahead = (ip: string): SetChange => ({ ...early(ip), ahead: true });
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) e.ahead(ahead(ip), 0);
    expect(e.accept(0, true)).toBe(false); // a flood drops enforcer-written early adds, never the check of a written one
    e.committed([{ op: 'add', ip: '192.0.2.1', family: 'ipv4', owner: owner('192.0.2.1') }], [], 10); // claimed
    e.committed([{ op: 'add', ip: '192.0.2.2', family: 'ipv4', owner: owner('192.0.2.2') }], [], 10);
    // The block of .2 ended: the API's write may still land after its removal, so it is checked again.
    e.committed([{ op: 'remove', ip: '192.0.2.2', family: 'ipv4', owner: owner('192.0.2.2') }], [], 20);
    expect(e.size).toBe(3);
    expect(e.nextDueMs()).toBe(CLAIM_MS + CHECK_BATCH_MS); // .1 is claimed: it never wakes the enforcer
    expect(e.due(CLAIM_MS).map((c) => c.ip)).toEqual(['192.0.2.2', '192.0.2.3']);
    expect(e.size).toBe(0);
    // Claimed entries go as new ones come, once due: they never pile up.
    e.ahead(ahead('192.0.2.5'), 0);
    e.committed([{ op: 'add', ip: '192.0.2.5', family: 'ipv4', owner: owner('192.0.2.5') }], [], 10);
    expect(e.nextDueMs()).toBeUndefined();
    e.ahead(ahead('192.0.2.6'), CLAIM_MS);
    expect(e.size).toBe(1);
    const carried = new EarlyAdds([{ ip: '192.0.2.4', family: 'ipv4', dueAtMs: 5, ahead: true, claimed: true }]);
    expect(carried.due(5)).toEqual([]);
  });

  test("a burst's entry (claimMs) waits its own claim time; calm ones after it are checked on time; the claim time is bounded", () => {
    const e = new EarlyAdds();
    const ahead = (ip: string, claimMs?: number): SetChange => ({ ...early(ip), ahead: true, ...(claimMs ? { claimMs } : {}) });
    e.ahead(ahead('192.0.2.1', BURST_CLAIM_MS), 0);
    e.ahead(ahead('192.0.2.2'), 1_000);
    e.ahead(ahead('192.0.2.3', 10 * MAX_CLAIM_MS), 2_000); // bounded by MAX_CLAIM_MS
    e.ahead(ahead('192.0.2.4', 1), 3_000); // never shorter than CLAIM_MS
    expect(e.nextDueMs()).toBe(1_000 + CLAIM_MS + CHECK_BATCH_MS);
    expect(e.due(3_000 + CLAIM_MS).map((c) => c.ip)).toEqual(['192.0.2.2', '192.0.2.4']);
    expect(e.nextDueMs()).toBe(BURST_CLAIM_MS + CHECK_BATCH_MS);
    // Its block's own add came: nothing to check, and it goes once due.
    e.committed([{ op: 'add', ip: '192.0.2.1', family: 'ipv4', owner: owner('192.0.2.1') }], [], 40_000);
    expect(e.nextDueMs()).toBe(2_000 + MAX_CLAIM_MS + CHECK_BATCH_MS);
    expect(e.due(BURST_CLAIM_MS)).toEqual([]);
    expect(e.size).toBe(1);
    expect(e.due(2_000 + MAX_CLAIM_MS).map((c) => c.ip)).toEqual(['192.0.2.3']);
    // A burst's entry whose block is lifted: its lingering write may land after the removal, so it is checked
    // within CLAIM_MS of the removal, not at the end of the burst's claim time.
    e.ahead(ahead('192.0.2.10', BURST_CLAIM_MS), 0);
    e.committed([{ op: 'add', ip: '192.0.2.10', family: 'ipv4', owner: owner('192.0.2.10') }], [], 1_000);
    e.committed([{ op: 'remove', ip: '192.0.2.10', family: 'ipv4', owner: owner('192.0.2.10') }], [], 5_000);
    expect(e.nextDueMs()).toBe(5_000 + CLAIM_MS + CHECK_BATCH_MS);
    expect(e.due(5_000 + CLAIM_MS).map((c) => c.ip)).toEqual(['192.0.2.10']);
  });

  test("a burst's early add for the enforcer to write (claimMs) is kept in a flood and behind a backlog, within EARLY_BURST_MAX, and waits its claim time", () => {
    const e = new EarlyAdds();
    expect(e.accept(0, true)).toBe(false);
    expect(e.acceptBurst(EARLY_QUEUE_MAX + 1)).toBe(true);
    expect(e.acceptBurst(EARLY_BURST_MAX)).toBe(false);
    e.committed([{ ...early('192.0.2.7'), claimMs: BURST_CLAIM_MS }, early('192.0.2.8')], [], 0);
    expect(e.due(CLAIM_MS).map((c) => c.ip)).toEqual(['192.0.2.8']);
    expect(e.acceptBurst(EARLY_BURST_MAX - 1)).toBe(false); // the pending one counts
    // Its block's own add claims it: nothing left to check.
    e.committed([{ op: 'add', ip: '192.0.2.7', family: 'ipv4', owner: owner('192.0.2.7') }], [], 1_000);
    expect(e.size).toBe(0);
    e.committed([{ ...early('192.0.2.9'), claimMs: BURST_CLAIM_MS }], [], 0);
    expect(e.due(BURST_CLAIM_MS).map((c) => c.ip)).toEqual(['192.0.2.9']);
  });

  test('KnownBlocks: known until the expiry, the least recently seen goes first', () => {
    const k = new KnownBlocks(2);
    k.remember('a', 100);
    k.remember('b', 100);
    expect(k.has('a', 50)).toBe(true);
    expect(k.has('a', 100)).toBe(false); // expired: forgotten
    k.remember('a', 200);
    k.remember('c', 200); // over the bound: b (seen longest ago) goes
    expect([k.has('a', 0), k.has('b', 0), k.has('c', 0)]).toEqual([true, false, true]);
  });
});

const FEED = 'ads-feed';

describe('early adds on the time-skipping server (API service, worker, emulator)', () => {
  let stack: Stack;
  const enforcerId = enforcerWorkflowId(TARGET, FEED);
  const member = async (ip: string) => (await stack.backend.list(FEED)).some((e) => e.ip === ip);
  const serviceConfig = (allowPrivate = false, target = stack.target) => ({
    targets: [target],
    block: { ttlMs: HOUR, maxTtlMs: 30 * 24 * HOUR, batchWindowMs: 0, earlyAdd: true },
    ipPolicy: { ...DEFAULT_IP_POLICY, allowPrivate },
    temporal: { namespace: 'default', taskQueue: stack.taskQueue, uiPort: 0, port: 0 },
  });
  const service = (allowPrivate = false, target = stack.target) => new BlockService(stack.client, serviceConfig(allowPrivate, target));
  const earlyChanges = (ip: string) => earlyChangesOf(stack, enforcerId, ip);
  const earlySignals = async (ip: string) => (await earlyChanges(ip)).length;
  const claimTimePasses = () => claimTimeOver(stack);

  beforeAll(async () => {
    stack = await startStack({ server: 'time-skipping', target: { enforcement: 'threat-feed', feed: FEED }, emulator: { version: 'v7.4.5', feeds: [{ name: FEED }] } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test("a new block's add reaches the enforcer beside its start; a repeat event sends none; the block's entry stays", async () => {
    const ip = '198.51.100.201';
    const api = service();
    const [first] = await api.block({ ip, reason: 'test', actor: 'test', event: { id: 'e-201' } });
    expect(['pending', 'active']).toContain(first!.state);
    const handle = stack.client.workflow.getHandle(blockWorkflowId(TARGET, ip));
    await activeStatus(handle);
    expect(await member(ip)).toBe(true);
    await api.block({ ip, reason: 'test', actor: 'test', event: { id: 'e-202' } });
    expect(await earlySignals(ip)).toBe(1);
    await claimTimePasses();
    await eventually(async () => (await handle.query(statusQuery)).eventCount === 2);
    expect(await member(ip)).toBe(true);
    expect((await handle.query(statusQuery)).state).toBe('active');
  });

  test('an early add that no block claims is withdrawn once the claim time is over', async () => {
    const ip = '198.51.100.202';
    await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, FEED, [{ ...early(ip), expiresAtMs: Date.now() + HOUR, label: 'test' }]);
    await eventually(() => member(ip), 20_000, 'the early entry applied');
    await claimTimePasses();
    await eventually(async () => !(await member(ip)), 20_000, 'the unclaimed early entry withdrawn');
  });

  test("an early add for an IP whose block is already active (another replica's repeat) is checked and kept", async () => {
    const ip = '198.51.100.203';
    const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR }));
    await activeStatus(handle);
    await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, FEED, [{ ...early(ip), expiresAtMs: Date.now() + HOUR, label: 'test' }]);
    await eventually(async () => (await earlySignals(ip)) === 1);
    await claimTimePasses();
    // The withdrawal ran (a checked removal: the block holds the IP, so it stays).
    await eventually(async () => (await stack.client.workflow.getHandle(enforcerId).fetchHistory()).events!.some((e) => (e.markerRecordedEventAttributes?.details?.result?.payloads?.[0]?.data ? Buffer.from(e.markerRecordedEventAttributes.details.result.payloads[0].data).toString().includes('kept: a block holds it again') : false)), 20_000, 'the checked withdrawal');
    expect(await member(ip)).toBe(true);
    expect((await handle.query(statusQuery)).state).toBe('active');
  });

  test("the worker refuses the block (its policy is stricter than the API's): the early entry goes once the claim time is over", async () => {
    const ip = '10.20.30.40'; // private: this API allows it, the worker (default policy) does not
    const [r] = await service(true).block({ ip, reason: 'test', actor: 'test', event: { id: 'e-204' } }).catch(() => [undefined]);
    const handle = stack.client.workflow.getHandle(blockWorkflowId(TARGET, ip));
    expect((await resultAfter(stack, handle)).state).toBe('rejected');
    expect(r === undefined || r.state !== 'active').toBe(true);
    expect(await earlySignals(ip)).toBe(1);
    await claimTimePasses();
    await eventually(async () => !(await member(ip)), 20_000, 'the early entry of a refused block withdrawn');
  });

  test('written by the API itself (a pushed feed): enforced before the enforcer ticks; the block claims it and it stays', async () => {
    const ip = '198.51.100.206';
    const ahead = new AheadWriter(new Map([[TARGET, stack.backend]]));
    const api = new BlockService(stack.client, serviceConfig(), ahead);
    await api.block({ ip, reason: 'test', actor: 'test', event: { id: 'e-206' } });
    const handle = stack.client.workflow.getHandle(blockWorkflowId(TARGET, ip));
    await activeStatus(handle);
    expect(await member(ip)).toBe(true);
    const signals = await earlyChanges(ip);
    expect(signals).toHaveLength(1);
    expect(signals[0]!.ahead).toBe(true);
    await claimTimePasses();
    await eventually(async () => (await stack.client.workflow.getHandle(enforcerId).query(enforcerStatusQuery)).queued === 0);
    expect(await member(ip)).toBe(true);
    expect((await handle.query(statusQuery)).state).toBe('active');
  });

  test('in a burst (a webhook request of many lines) the API still writes ahead, a batch per write, with the burst claim time; the blocks claim the entries', async () => {
    const ips = Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}`);
    const counted = countingAhead(stack.backend);
    await burstThrough(new BlockService(stack.client, serviceConfig(), new AheadWriter(new Map([[TARGET, counted.backend]]))), ips, 'burst');
    // The blocks may be quicker than the linger here (no burst is waiting for the server): the API's writes are
    // counted as they end.
    await eventually(() => counted.written === ips.length, 60_000, "the API's writes");
    // 40 adds within a linger or two (the starts take a while): a write per linger, not per add.
    expect(counted.writes).toBeLessThanOrEqual(3);
    await eventually(() => ips.every((ip) => stack.emulator.blocked(ip)!.blocked), 60_000, 'the burst on the feed');
    const taken = await earlyChanges(ips[0]!);
    expect(taken).toHaveLength(1);
    expect(taken[0]).toMatchObject({ ahead: true, claimMs: BURST_CLAIM_MS });
    for (const ip of ips) await activeStatus(stack.client.workflow.getHandle(blockWorkflowId(TARGET, ip)));
    await Promise.all(ips.map((ip) => stack.client.workflow.getHandle(blockWorkflowId(TARGET, ip)).executeUpdate(cancelUpdate, { args: [{ reason: 'test over', actor: 'test' }] })));
    await eventually(() => ips.every((ip) => !stack.emulator.blocked(ip)!.blocked), 60_000, 'the burst lifted');
  });

  test("the API's write lands after the block ended (a slow request): the entry's check removes it once the claim time is over", async () => {
    const ip = '198.51.100.207';
    const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR }));
    await activeStatus(handle);
    // A new event's early add, announced (the enforcer schedules its check) …
    await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, FEED, [{ ...early(ip), ahead: true, expiresAtMs: Date.now() + HOUR, label: 'test' }]);
    await eventually(async () => (await earlyChanges(ip)).length === 1);
    // … the block is lifted meanwhile (not `result()`: it lets the time-skipping server jump ahead by years) …
    await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'false positive', actor: 'op' }] });
    await eventually(async () => (await handle.describe()).status.name === 'COMPLETED', 20_000, 'the block ended');
    expect(await member(ip)).toBe(false);
    // … and the API's write lands only now.
    await stack.backend.addAhead!(FEED, [{ ip, family: 'ipv4' }]);
    expect(await member(ip)).toBe(true);
    await claimTimePasses();
    await eventually(async () => !(await member(ip)), 20_000, 'the late entry removed by its check');
  });

  test('an address group takes none through its enforcer (an API without its own writer): its block goes the usual way', async () => {
    const ip = '198.51.100.205';
    const group = testTarget(stack.emulator.url, stack.emulator.token, { name: 'fw-group' });
    await service(false, group).block({ ip, reason: 'test', actor: 'test', event: { id: 'e-205' } }).catch(() => undefined);
    const { events } = await stack.client.workflow.getHandle(enforcerWorkflowId('fw-group', group.groups.ipv4[0]!)).fetchHistory().catch(() => ({ events: [] }));
    expect(takenChanges(events ?? [])).toHaveLength(0);
  });
});

describe('early adds on an address group, written by the API (time-skipping server)', () => {
  let stack: Stack;
  const enforcerId = enforcerWorkflowId(TARGET, GROUP4);
  const member = async (ip: string) => ((await stack.firewall.getGroup('ipv4', GROUP4))?.members ?? []).includes(addressObjectName(ip));
  const api = (backend = stack.backend) =>
    new BlockService(
      stack.client,
      {
        targets: [stack.target],
        block: { ttlMs: HOUR, maxTtlMs: 30 * 24 * HOUR, batchWindowMs: 0, earlyAdd: true },
        ipPolicy: DEFAULT_IP_POLICY,
        temporal: { namespace: 'default', taskQueue: stack.taskQueue, uiPort: 0, port: 0 },
      },
      new AheadWriter(new Map([[TARGET, backend]])),
    );
  const aheadSignals = async (ip: string) => (await earlyChangesOf(stack, enforcerId, ip)).filter((c) => c.ahead).length;
  const claimTimePasses = () => claimTimeOver(stack);

  beforeAll(async () => {
    stack = await startStack({ server: 'time-skipping' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test("a new block's member is appended by the API; the block claims it; it stays once the claim time is over", async () => {
    const ip = '198.51.100.211';
    await api().block({ ip, reason: 'test', actor: 'test', event: { id: 'e-211' } });
    const handle = stack.client.workflow.getHandle(blockWorkflowId(TARGET, ip));
    await activeStatus(handle);
    expect(await member(ip)).toBe(true);
    expect(await aheadSignals(ip)).toBe(1);
    await claimTimePasses();
    await eventually(async () => (await stack.client.workflow.getHandle(enforcerId).query(enforcerStatusQuery)).queued === 0);
    expect(await member(ip)).toBe(true);
    expect((await handle.query(statusQuery)).state).toBe('active');
  });

  test('in a burst the API appends nothing: its early adds go to the enforcer (with the burst claim time), which writes them; the blocks claim them', async () => {
    const ips = Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 101}`);
    const counted = countingAhead(stack.backend);
    await burstThrough(api(counted.backend), ips, 'gburst');
    const handles = ips.map((ip) => stack.client.workflow.getHandle(blockWorkflowId(TARGET, ip)));
    for (const h of handles) await activeStatus(h);
    for (const ip of ips) expect(await member(ip)).toBe(true);
    expect(counted.writes).toBe(0);
    const taken = await earlyChangesOf(stack, enforcerId, ips[0]!);
    expect(taken).toHaveLength(1);
    expect(taken[0]).toMatchObject({ early: true, claimMs: BURST_CLAIM_MS });
    expect(taken[0]!.ahead).toBeUndefined();
    await Promise.all(handles.map((h) => h.executeUpdate(cancelUpdate, { args: [{ reason: 'test over', actor: 'test' }] })));
    await eventually(async () => {
      const members = (await stack.firewall.getGroup('ipv4', GROUP4))?.members ?? [];
      return ips.every((ip) => !members.includes(addressObjectName(ip)));
    }, 60_000, 'the burst lifted');
  });

  test("the API's append lands after the block ended: the entry's check removes the member and its object", async () => {
    const ip = '198.51.100.212';
    const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR }));
    await activeStatus(handle);
    await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, GROUP4, [{ ...early(ip), ahead: true, expiresAtMs: Date.now() + HOUR, label: 'test' }]);
    await eventually(async () => (await aheadSignals(ip)) === 1);
    await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'false positive', actor: 'op' }] });
    await eventually(async () => (await handle.describe()).status.name === 'COMPLETED', 20_000, 'the block ended');
    expect(await member(ip)).toBe(false);
    await stack.backend.addAhead!(GROUP4, [{ ip, family: 'ipv4', expiresAtMs: Date.now() + HOUR }]);
    expect(await member(ip)).toBe(true);
    await claimTimePasses();
    await eventually(async () => !(await member(ip)), 20_000, 'the late member removed by its check');
    await eventually(async () => (await stack.firewall.getAddress('ipv4', addressObjectName(ip))) === undefined, 20_000, 'its object deleted');
  });
});
