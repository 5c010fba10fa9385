/**
 * What operators do (issue "The firewall never depends on one workflow's memory"): Terminate and Reset in
 * the Web UI, hand edits of the group in the FortiGate GUI, members of their own in our group, blocks that
 * receive events for weeks. A real dev server, the emulator over a socket, the in-process worker. Each
 * scenario runs on its own target (same emulator) with its own group, and ends with the promise checked:
 * every block that reports `active` is enforced on the firewall, and every unblock completes.
 */
import { createBackends, createWorker } from '../../src/worker/worker';
import { addressObjectName, PLACEHOLDER_MEMBER } from '../../src/enforcement/address-group';
import { OWNER_MARKER } from '../../src/enforcement/port';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import {
  BlockStatus,
  cancelUpdate,
  enforcerStatusQuery,
  enforcerWorkflowId,
  recordEventUpdate,
  ReconcileReport,
  reconcileWorkflowId,
  resyncSignal,
  setAnswerSignal,
  statusQuery,
  WORKFLOW_TYPES,
} from '../../workflows/messages';
import type { reconcileTarget } from '../../workflows/reconcile';
import { blockInput, eventually, Stack, startStack, TARGET, testTarget } from '../support/stack';
import { cancelBlocks, Ctx, expectActive, expectEnded, handle, ips, since, startBlock, view } from './convergence';

const DAY = 86_400_000;
const G = {
  terminate: 'op-terminate',
  orphan: 'op-orphan',
  handEdit: 'op-hand-edit',
  full: 'op-full',
  owned: 'op-owned',
  limit: 'op-limit',
  capacity: 'op-capacity',
  longRun: 'op-long-run',
};
const SMALL = 10;
/** The platform's member limit in this suite: below op-limit's configured capacity (600), so that write fails with -4. */
const PLATFORM_LIMIT = 12;
const targets = () =>
  Object.values(G).map((g) => testTarget(stack.emulator.url, stack.emulator.token, { name: g, groups: { ipv4: [g], ipv6: ['ads-blocked6'] }, capacity: [G.full, G.capacity].includes(g) ? SMALL : 600 }));

let stack: Stack;
const ctxOf = (group: string): Ctx => ({ client: stack.client, taskQueue: stack.taskQueue, firewall: stack.firewall, target: group });

beforeAll(async () => {
  stack = await startStack({
    server: 'dev',
    firewallTimeoutMs: 3000,
    emulator: { groups: { ipv4: [...Object.values(G), 'ops-group'], ipv6: ['ads-blocked6'] }, groupMemberLimit: PLATFORM_LIMIT },
    extraTargets: Object.values(G).map((g) => ({ name: g, groups: { ipv4: [g], ipv6: ['ads-blocked6'] }, capacity: [G.full, G.capacity].includes(g) ? SMALL : 600 })),
  });
});
afterAll(async () => {
  await stack?.stop();
});

function begin(group: string, list: string[], over: Parameters<typeof blockInput>[1] = {}) {
  return Promise.all(list.map((ip) => startBlock(ctxOf(group), blockInput(ip, { target: group, ttlMs: DAY, ...over }))));
}

/** The promise, checked from outside: every block that reports `active` (query, strongly consistent) is on the firewall. */
async function expectActiveEnforced(group: string, list: string[]): Promise<void> {
  const members = new Set((await view(stack.firewall, group)).members);
  for (const ip of list) {
    const h = handle(ctxOf(group), ip);
    if ((await h.describe()).status.name !== 'RUNNING') continue;
    const st = await h.query(statusQuery).catch(() => undefined);
    if (st?.state === 'active') expect({ ip, enforced: members.has(addressObjectName(ip)) }).toEqual({ ip, enforced: true });
  }
}

function reconcile(group: string): Promise<ReconcileReport> {
  return stack.client.workflow.execute<typeof reconcileTarget>(WORKFLOW_TYPES.reconcile, {
    workflowId: `${reconcileWorkflowId(group)}-${Date.now()}`,
    taskQueue: stack.taskQueue,
    args: [{ target: group }],
  });
}

async function unblockAll(group: string, list: string[]): Promise<void> {
  await cancelBlocks(ctxOf(group), list);
  // 180 s: a change or answer lost on a loaded box is re-sent by the block after 2 min (RESEND_FIRST_MS).
  await expectEnded(ctxOf(group), list, 'cancelled', 180_000);
}

test('terminating the enforcer with blocks active drops nothing; the next change starts a fresh one that converges', async () => {
  const ctx = ctxOf(G.terminate);
  const first = ips(5, 101);
  await begin(G.terminate, first);
  await expectActive(ctx, first);
  const enforcerId = enforcerWorkflowId(G.terminate, G.terminate);
  // Work queued when it dies: the blocks of this wave wait for answers the dead run never sends.
  const second = ips(3, 102);
  stack.emulator.setFaults({ latencyMs: { PUT: 1500 } });
  await begin(G.terminate, second);
  await stack.client.workflow.getHandle(enforcerId).terminate('operator pressed Terminate');
  stack.emulator.setFaults({ latencyMs: { PUT: 0 } });
  const t0 = Date.now();
  // A new block starts a fresh enforcer: its first write must keep every member it did not create.
  const third = ips(2, 103);
  await begin(G.terminate, third);
  await expectActive(ctx, [...first, ...second, ...third], 60_000);
  console.log(`enforcer terminated: converged in ${since(t0)}`);
  const members = new Set((await view(stack.firewall, G.terminate)).members);
  for (const ip of [...first, ...second, ...third]) expect(members.has(addressObjectName(ip))).toBe(true);
  await expectActiveEnforced(G.terminate, [...first, ...second, ...third]);
  // Terminated again while idle: unblocks still complete.
  await stack.client.workflow.getHandle(enforcerId).terminate('again');
  await unblockAll(G.terminate, [...first, ...second, ...third]);
  expect((await view(stack.firewall, G.terminate)).members).toEqual([PLACEHOLDER_MEMBER]);
}, 180_000);

test('a terminated block leaves no orphan after the next reconciliation (its member and object are removed)', async () => {
  const ctx = ctxOf(G.orphan);
  const list = ips(3, 104);
  await begin(G.orphan, list);
  await expectActive(ctx, list);
  await handle(ctx, list[0]).terminate('operator pressed Terminate');
  // Reconciliation finds candidates in visibility (eventually consistent: a run ended a moment ago is still
  // listed, and then the next reconciliation removes it).
  await eventually(async () => {
    for await (const w of stack.client.workflow.list({ query: `WorkflowId = '${handle(ctx, list[0]).workflowId}' AND ExecutionStatus = 'Running'` })) return !w;
    return true;
  }, 20_000, 'visibility shows the block ended');
  const t0 = Date.now();
  const report = await reconcile(G.orphan);
  expect(report.sets[0].orphansRemoved).toEqual([list[0]]);
  await eventually(async () => {
    const v = await view(stack.firewall, G.orphan);
    return !v.members.includes(addressObjectName(list[0])) && !v.addresses.includes(addressObjectName(list[0]));
  }, 30_000, 'orphan removed');
  console.log(`terminated block: orphan removed ${since(t0)} after reconciliation started`);
  await expectActiveEnforced(G.orphan, list);
  await unblockAll(G.orphan, list.slice(1));
}, 240_000);

test('a member and its address deleted by hand: later joins and unblocks are not wedged; reconciliation restores it', async () => {
  const ctx = ctxOf(G.handEdit);
  const list = ips(4, 105);
  await begin(G.handEdit, list);
  await expectActive(ctx, list);
  const gone = addressObjectName(list[1]);
  expect(await stack.firewall.removeGroupMember('ipv4', G.handEdit, gone)).toBe('removed');
  expect(await stack.firewall.deleteAddress('ipv4', gone)).toBe('deleted');
  // New joins and an unblock right after the hand edit: none of them may be held up by the missing object.
  const more = ips(2, 106);
  await begin(G.handEdit, more);
  await cancelBlocks(ctx, [list[3]]);
  await expectActive(ctx, more, 30_000);
  await expectEnded(ctx, [list[3]], 'cancelled', 30_000);
  // Reconciliation: the active block whose member vanished re-asserts it (object recreated).
  const t0 = Date.now();
  const report = await reconcile(G.handEdit);
  expect(report.sets[0].reasserted).toEqual([list[1]]);
  await eventually(async () => (await view(stack.firewall, G.handEdit)).members.includes(gone), 30_000, 'member restored');
  console.log(`hand-deleted member: restored ${since(t0)} after reconciliation started`);
  expect(await stack.firewall.getAddress('ipv4', gone)).toMatchObject({ subnet: `${list[1]}/32` });
  await expectActiveEnforced(G.handEdit, [...list, ...more]);
  await unblockAll(G.handEdit, [list[0], list[1], list[2], ...more]);
}, 150_000);

test("an operator's member in a full group counts against the capacity: joins rotate ours, never wedge, never touch theirs", async () => {
  const ctx = ctxOf(G.full);
  await stack.firewall.createAddress('ipv4', { name: 'ops-jumphost', subnet: '192.0.2.200/32', comment: 'kept by the operator' });
  expect(await stack.firewall.addGroupMember('ipv4', G.full, 'ops-jumphost')).toBe('added');
  // Waves, so that "expires first" is exact: each wave's TTL ends later than the previous one's.
  const waves = [ips(6, 107), ips(6, 108)];
  for (const [i, wave] of waves.entries()) {
    await begin(G.full, wave, { ttlMs: DAY + i * 60_000 });
    await eventually(async () => {
      const m = new Set((await view(stack.firewall, G.full)).members);
      return wave.every((ip) => m.has(addressObjectName(ip)));
    }, 60_000, `wave ${i + 1} enforced`);
  }
  const members = (await view(stack.firewall, G.full)).members;
  expect(members.length).toBe(SMALL); // 9 of ours + the operator's
  expect(members).toContain('ops-jumphost');
  // Three of the first wave (within a wave, starts race each other) were rotated out; the operator's member never.
  const m = new Set(members);
  const evictedIps = waves[0].filter((ip) => !m.has(addressObjectName(ip)));
  expect(evictedIps).toHaveLength(3);
  const evicted = await expectEnded(ctx, evictedIps, 'evicted', 30_000);
  expect(evicted.every((s: BlockStatus) => /full/.test(s.evictedReason ?? ''))).toBe(true);
  await expectActiveEnforced(G.full, waves.flat());
  await unblockAll(G.full, [...waves[0].filter((ip) => !evictedIps.includes(ip)), ...waves[1]]);
  expect((await view(stack.firewall, G.full)).members).toEqual(['ops-jumphost']);
}, 150_000);

test("an ads-named object of an operator's, used by their own group: never deleted, and the unblock of that IP completes", async () => {
  const ctx = ctxOf(G.owned);
  const ip = '198.51.100.77';
  const name = addressObjectName(ip);
  await stack.firewall.createAddress('ipv4', { name, subnet: `${ip}/32`, comment: "operator's own object" });
  // An operator group of their own that uses the object (FortiOS then refuses to delete it: -23).
  await stack.firewall.addGroupMember('ipv4', 'ops-group', name);
  await begin(G.owned, [ip]);
  await expectActive(ctx, [ip]);
  expect((await view(stack.firewall, G.owned)).members).toContain(name);
  // The object is theirs (no marker): we use it but never take it over.
  expect((await stack.firewall.getAddress('ipv4', name))?.comment).not.toContain(OWNER_MARKER);
  const report = await reconcile(G.owned);
  expect(report.sets[0].orphansRemoved).toEqual([]);
  await unblockAll(G.owned, [ip]);
  expect((await view(stack.firewall, G.owned)).members).toEqual([PLACEHOLDER_MEMBER]);
  expect(await stack.firewall.getAddress('ipv4', name)).toBeDefined(); // still theirs, still in their group
  expect((await stack.firewall.getGroup('ipv4', 'ops-group'))?.members).toContain(name);
  await stack.firewall.removeGroupMember('ipv4', 'ops-group', name);
  await stack.firewall.deleteAddress('ipv4', name);
}, 90_000);

test('a block receiving 2,100 distinct events stays far from the per-run limits, then unblocks; a stale answer to a newer block is ignored', async () => {
  const ctx = ctxOf(G.longRun);
  const ip = '203.0.113.210';
  const [h] = await begin(G.longRun, [ip]);
  await expectActive(ctx, [ip]);
  const lineage = h.firstExecutionRunId;
  // As the API sends them: at most a few Updates in flight per block (the server allows 10), each retried
  // when it raced a continue-as-new.
  const send = async (id: string) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await h.executeUpdate(recordEventUpdate, { args: [{ event: { id, method: 'SCANS', severity: 'high', receivedAtMs: Date.now() }, ttlMs: DAY }] });
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  };
  for (let i = 0; i < 2100; i += 6) await Promise.all(Array.from({ length: Math.min(6, 2100 - i) }, (_, k) => send(`long-${i + k}`)));
  const st = await h.query(statusQuery);
  expect(st.eventCount).toBe(2100);
  const runs: string[] = [];
  for await (const w of stack.client.workflow.list({ query: `WorkflowId = '${h.workflowId}'` })) runs.push(w.runId);
  expect(runs.length).toBeGreaterThanOrEqual(6); // continue-as-new every 400 messages
  const cancelled = await h.executeUpdate(cancelUpdate, { args: [{ reason: 'done', actor: 'test' }] });
  expect(['releasing', 'cancelled']).toContain(cancelled.state);
  await expectEnded(ctx, [ip], 'cancelled', 60_000);

  // A newer block of the same IP; a late `removed` answer addressed to the old lineage must not end it.
  const [newer] = await begin(G.longRun, [ip]);
  await expectActive(ctx, [ip]);
  await newer.signal(setAnswerSignal, { op: 'remove', ip, lineage, ok: true });
  await newer.signal(setAnswerSignal, { op: 'evict', ip, lineage, ok: true, reason: 'stale' });
  await new Promise((r) => setTimeout(r, 1000));
  expect((await newer.query(statusQuery)).state).toBe('active');
  await expectActiveEnforced(G.longRun, [ip]);
  await unblockAll(G.longRun, [ip]);
}, 240_000);

test('a platform member limit lower than configured (-4): learned, the entries expiring first rotated out, nothing wedged', async () => {
  const ctx = ctxOf(G.limit);
  const waves = [ips(5, 110), ips(5, 111), ips(5, 112)];
  for (const [i, wave] of waves.entries()) {
    await begin(G.limit, wave, { ttlMs: DAY + i * 60_000 });
    await eventually(async () => {
      const m = new Set((await view(stack.firewall, G.limit)).members);
      return wave.every((ip) => m.has(addressObjectName(ip)));
    }, 60_000, `wave ${i + 1} enforced`);
  }
  // The platform refused the write that would have held 15; the limit it showed is kept from then on. How many
  // of wave 1 had to go depends on how the joins fell into ticks: only wave-1 blocks, those expiring first.
  const members = new Set((await view(stack.firewall, G.limit)).members);
  expect(members.size).toBeLessThanOrEqual(PLATFORM_LIMIT);
  const evicted = waves[0].filter((ip) => !members.has(addressObjectName(ip)));
  expect(evicted.length).toBeGreaterThanOrEqual(3);
  await expectEnded(ctx, evicted, 'evicted', 30_000);
  const live = waves.flat().filter((ip) => !evicted.includes(ip));
  await expectActive(ctx, live);
  await expectActiveEnforced(G.limit, waves.flat());
  await unblockAll(G.limit, live);
}, 150_000);

test('an eviction that arrives as the block continues as new is carried into the next run', async () => {
  const ctx = ctxOf(G.longRun);
  const ip = '203.0.113.211';
  const [h] = await begin(G.longRun, [ip]);
  await expectActive(ctx, [ip]);
  // The enforcer's answer came back with the block's own add (no message) or as a setAnswer signal (message 1);
  // events make 399 messages; the eviction is the 400th, which makes the block continue as new
  // (MESSAGES_PER_RUN) right after taking it.
  const answers = ((await h.fetchHistory()).events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'setAnswer').length;
  const events = 399 - answers;
  for (let i = 0; i < events; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, events - i) }, (_, k) => h.signal('event', { event: { id: `e-${i + k}`, receivedAtMs: Date.now() }, ttlMs: DAY })));
  }
  await h.signal(setAnswerSignal, { op: 'evict', ip, ok: true, reason: 'rotated out (test)' });
  const [ended] = await expectEnded(ctx, [ip], 'evicted', 60_000);
  expect(ended.evictedReason).toBe('rotated out (test)');
  const runs: string[] = [];
  for await (const w of stack.client.workflow.list({ query: `WorkflowId = '${h.workflowId}'` })) runs.push(w.runId);
  expect(runs.length).toBeGreaterThanOrEqual(2);
}, 120_000);

test('capacity lowered across a worker restart takes effect for the running enforcer: the excess is rotated out', async () => {
  const ctx = ctxOf(G.capacity);
  const list = ips(SMALL - 1, 109);
  for (const [i, ip] of list.entries()) await begin(G.capacity, [ip], { ttlMs: DAY + i * 60_000 });
  await expectActive(ctx, list);
  // A second worker process-equivalent with the lowered capacity replaces the first one.
  await stack.worker.shutdown();
  const lowered = targets().map((t) => (t.name === G.capacity ? { ...t, capacity: 5 } : t));
  const worker = await createWorker({
    connection: stack.env.nativeConnection,
    client: stack.client,
    namespace: 'default',
    taskQueue: stack.taskQueue,
    backends: createBackends(lowered, new Map(lowered.map((t) => [t.name, stack.firewall]))),
    ipPolicy: DEFAULT_IP_POLICY,
    workflowBundlePath: process.env.WORKFLOW_BUNDLE_PATH,
  });
  const running = worker.run();
  try {
    const t0 = Date.now();
    // What bootstrap does at every start: a resync of every enforcement set.
    await stack.client.workflow.getHandle(enforcerWorkflowId(G.capacity, G.capacity)).signal(resyncSignal);
    await eventually(async () => (await view(stack.firewall, G.capacity)).members.length === 5, 60_000, 'group down to 5');
    console.log(`capacity lowered: converged ${since(t0)} after the restart`);
    await expectEnded(ctx, list.slice(0, 4), 'evicted', 60_000); // the four expiring first
    await expectActiveEnforced(G.capacity, list);
    await cancelBlocks(ctx, list.slice(4));
    await expectEnded(ctx, list.slice(4), 'cancelled', 60_000);
  } finally {
    worker.shutdown();
    await running;
  }
}, 150_000);

