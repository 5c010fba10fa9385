/**
 * The enforcer of an address group under load, on a real dev server and the emulator: no lost updates, batching, capacity
 * with rotation of the oldest, and convergence through firewall faults.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { BlockStatus, cancelSignal, cancelUpdate, enforcerStatusQuery, enforcerWorkflowId, ExtendRequest, extendUpdate, statusQuery } from '../../workflows/messages';
import { addressObjectName } from '../../src/enforcement/address-group';
import { sendToEnforcer } from '../../activities/messaging';
import { takenChanges } from '../../src/temporal/enforcer-history';
import { defaultPayloadConverter } from '@temporalio/common';
import { BYTES_PER_RUN, EVENTS_PER_RUN, MAX_CARRIED } from '../../workflows/enforcer';
import type { EnforcerInput } from '../../workflows/messages';
import { blockInput, eventually, eventuallyEach, GROUP4, Stack, startBlock, startStack, TARGET } from '../support/stack';

let stack: Stack;
const DAY = 86_400_000;

beforeAll(async () => {
  stack = await startStack({ server: 'dev', emulator: { groupMemberLimit: 600 }, firewallTimeoutMs: 1000 });
});
afterAll(async () => {
  await stack?.stop();
});
afterEach(async () => {
  stack.emulator.setFaults({ latencyMs: {}, error500Rate: 0, hangRate: 0, resetRate: 0, unavailableRate: 0, outageUntil: 0 });
});

/** Distinct public-looking addresses. They only ever exist as names on the emulator: nothing is sent to them. */
function ips(n: number, firstOctet: number): string[] {
  return Array.from({ length: n }, (_, i) => `${firstOctet}.${Math.floor(i / 250)}.${(i % 250) + 1}.7`);
}

async function groupMembers(): Promise<string[]> {
  return (await stack.firewall.getGroup('ipv4', GROUP4))?.members ?? [];
}
function writes(kind: string): number {
  return stack.emulator.state.counters.writes[kind] ?? 0;
}
async function cancelAll(list: string[]): Promise<void> {
  await Promise.all(
    list.map((ip) =>
      stack.client.workflow
        .getHandle(`block:${TARGET}:${ip}`)
        .signal(cancelSignal, { reason: 'test cleanup', actor: 'test' })
        .catch(() => undefined),
    ),
  );
  await eventually(async () => (await groupMembers()).join() === 'none', 120_000, 'group empty again');
}

/** The enforcer's history (its current run): messages with changes it took, and tasks the server force-closed. */
async function enforcerHistory(): Promise<{ signals: number; forceClosed: number }> {
  const events = (await stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4)).fetchHistory().catch(() => ({ events: [] }))).events ?? [];
  return {
    signals: takenChanges(events).length,
    forceClosed: events.filter((e) => e.workflowTaskFailedEventAttributes?.cause === temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND).length,
  };
}

test('200 concurrent joins: exact final member list, far fewer group writes than joins, far fewer signals than requests', async () => {
  const list = ips(200, 61);
  const writesBefore = writes('addrgrp');
  const before = await enforcerHistory();
  await Promise.all(list.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: DAY }))));
  await eventually(async () => (await groupMembers()).length === 200 && (await groupMembers()), 90_000, '200 members');
  const onFirewall = new Set(await groupMembers());
  expect(onFirewall).toEqual(new Set(list.map(addressObjectName)));
  const groupWrites = writes('addrgrp') - writesBefore;
  expect(groupWrites).toBeGreaterThan(0);
  expect(groupWrites).toBeLessThanOrEqual(30); // 200 joins batched into a handful of PUTs (14-23 seen)
  console.log(`200 joins -> ${groupWrites} group writes (ratio ${(groupWrites / 200).toFixed(3)})`);
  // The blocks' requests reach the enforcer through this worker's outbox (activities/messaging.ts): those sent
  // while a signal is in flight share the next one, so the enforcer's history and its buffered events grow by
  // signal, not by request, and none of its tasks is force-closed for too many buffered events.
  const after = await enforcerHistory();
  console.log(`200 joins -> ${after.signals - before.signals} messages with changes`);
  expect(after.signals - before.signals).toBeGreaterThan(0);
  expect(after.signals - before.signals).toBeLessThanOrEqual(100);
  expect(after.forceClosed).toBe(0);
  // Every block learns that it is enforced (the group's reply signal): all 200 read `active`.
  await eventuallyEach(list, async (ip) => (await stack.client.workflow.getHandle(`block:${TARGET}:${ip}`).query(statusQuery)).state === 'active', 60_000, 'all active');
  await cancelAll(list);
});

test('a run of the enforcer past its history budget continues as new at the first quiet moment, not under a stream', async () => {
  // Any task that misses the worker's cache replays the whole run; at 58,000 blocks a 3,350-event run took longer
  // than the 10 s task timeout on the loaded worker, every retry again (workflows/enforcer.ts, EVENTS_PER_RUN).
  const handle = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
  await startBlock(stack, blockInput('62.0.0.1', { ttlMs: DAY })); // the enforcer runs
  await eventually(async () => (await groupMembers()).includes(addressObjectName('62.0.0.1')), 30_000, 'the enforcer runs');
  const first = (await handle.describe()).runId;
  const messaging = { temporal: stack.client, taskQueue: stack.taskQueue };
  // A stream of single-change messages (20/s: below a flood), each a remove of an IP that is not there, until the
  // run is past the budget (not twice: that ends a run under a stream); it must not continue as new meanwhile.
  let sent = 0;
  let length = 0;
  const inFlight: Promise<unknown>[] = [];
  for (; sent < 2_500 && length < EVENTS_PER_RUN + 100; sent++) {
    inFlight.push(sendToEnforcer(messaging, TARGET, GROUP4, [{ op: 'remove', ip: `198.18.${sent >> 8}.${sent & 255}`, family: 'ipv4' }]));
    await new Promise((r) => setTimeout(r, 50));
    if (sent % 10 === 9) {
      const d = await handle.describe();
      if (d.runId !== first) break;
      length = d.historyLength;
    }
  }
  await Promise.all(inFlight);
  // Then nothing: the run continues as new about QUIET_MS later. Signals alone (2,000 a run) would let it grow on.
  await eventually(async () => (await handle.describe()).runId !== first, 30_000, 'the run continued as new');
  const events = (await stack.client.workflow.getHandle(handle.workflowId, first).fetchHistory()).events ?? [];
  console.log(`enforcer run: ${events.length} events after ${sent} messages`);
  expect(length).toBeGreaterThanOrEqual(EVENTS_PER_RUN + 100); // it went on while the stream lasted
  expect(events.at(-1)?.eventType).toBe(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW);
  expect(events.length).toBeLessThanOrEqual(length + 200);
  await cancelAll(['62.0.0.1']);
});

test('a stream that never pauses: the run continues as new under it at twice its budget, and every message lands', async () => {
  // Changes arrive as Updates: a continue-as-new aborts those in flight (the client retries them on the new run)
  // instead of being refused, as it was for every signal that came in during its task (temporalio/temporal#1289):
  // under a steady stream of signals no retry finished, and the run grew on toward the server's limits.
  const handle = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
  await startBlock(stack, blockInput('62.0.0.2', { ttlMs: DAY }));
  await eventually(async () => (await groupMembers()).includes(addressObjectName('62.0.0.2')), 30_000, 'the enforcer runs');
  const first = (await handle.describe()).runId;
  const messaging = { temporal: stack.client, taskQueue: stack.taskQueue };
  // 25 messages a second, never waiting for one another: no quiet second, ever.
  let sent = 0;
  let failed = 0;
  let movedAt: number | undefined;
  const inFlight: Promise<unknown>[] = [];
  for (; sent < 3_000 && movedAt === undefined; sent++) {
    inFlight.push(sendToEnforcer(messaging, TARGET, GROUP4, [{ op: 'remove', ip: `198.19.${sent >> 8}.${sent & 255}`, family: 'ipv4' }]).catch(() => void failed++));
    await new Promise((r) => setTimeout(r, 40));
    if (sent % 25 === 24 && (await handle.describe()).runId !== first) movedAt = sent;
  }
  await Promise.all(inFlight);
  const events = (await stack.client.workflow.getHandle(handle.workflowId, first).fetchHistory()).events ?? [];
  console.log(`steady stream: continued as new after ${movedAt} messages, ${events.length} events; ${failed} failed`);
  expect(movedAt).toBeDefined(); // it continued as new while the stream went on
  expect(events.at(-1)?.eventType).toBe(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW);
  expect(events.length).toBeLessThanOrEqual(2 * EVENTS_PER_RUN + 200);
  expect(failed).toBe(0);
  await cancelAll(['62.0.0.2']);
});

test('a queue longer than continue-as-new carries is drained first, not cut: no run starts with a truncated queue', async () => {
  // Cut, the rest was recovered by nudging every waiting block, and answers waited for the nudge: at 50,000 blocks
  // on PostgreSQL a run nudged 35,000 blocks for minutes, passed its budget on their resends and was cut again, every
  // ~4 minutes, with no block answered (workflows/enforcer.ts, DRAIN_BEFORE_CARRY).
  const handle = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
  await startBlock(stack, blockInput('62.0.0.3', { ttlMs: DAY }));
  await eventually(async () => (await groupMembers()).includes(addressObjectName('62.0.0.3')), 30_000, 'the enforcer runs');
  const since = Date.now();
  const first = (await handle.describe()).runId;
  const moved = async () => (await handle.describe()).runId !== first;
  const messaging = { temporal: stack.client, taskQueue: stack.taskQueue };
  // The firewall is down: nothing commits, and the queue holds more than a run carries while its history passes its
  // byte budget (~1.7 MB of changes), then nothing more comes (quiet).
  stack.emulator.setFaults({ outageUntil: Date.now() + 600_000 });
  const n = 20_000;
  expect(n).toBeGreaterThan(MAX_CARRIED);
  const changes = Array.from({ length: n }, (_, i) => ({ op: 'remove' as const, ip: `198.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, family: 'ipv4' as const, label: 'test: a queue to drain' }));
  for (let i = 0; i < n; i += 500) await sendToEnforcer(messaging, TARGET, GROUP4, changes.slice(i, i + 500));
  const failuresAt = async () => (await handle.query(enforcerStatusQuery)).stats.failures;
  // A run of before continued as new there, with its queue cut to MAX_CARRIED; this one goes on failing its ticks.
  await eventually(async () => (await moved()) || Number((await handle.describe()).raw.workflowExecutionInfo?.historySizeBytes ?? 0) > BYTES_PER_RUN + 300_000, 60_000, 'past the byte budget');
  const f0 = await failuresAt().catch(() => 0);
  await eventually(async () => (await moved()) || (await failuresAt().catch(() => 0)) >= f0 + 2, 180_000, 'two more failed ticks');
  stack.emulator.setFaults({ outageUntil: 0 });
  await eventually(async () => (await handle.query(enforcerStatusQuery)).queued === 0, 120_000, 'the queue drained');
  const runs: string[] = [];
  for await (const w of stack.client.workflow.list({ query: `WorkflowId = "${handle.workflowId}"` })) if (w.startTime.getTime() >= since - 1000) runs.push(w.runId);
  const cut: string[] = [];
  for (const runId of runs) {
    const started = (await stack.client.workflow.getHandle(handle.workflowId, runId).fetchHistory()).events?.[0];
    const payload = started?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const input = payload ? defaultPayloadConverter.fromPayload<EnforcerInput>(payload as never) : undefined;
    if (input?.carried?.truncated) cut.push(`${runId} (${input.carried.queue.length} carried)`);
  }
  console.log(`queue of ${n} under an outage: ${runs.length} run(s) since, cut: ${cut.join(', ') || 'none'}`);
  expect(cut).toEqual([]);
  await cancelAll(['62.0.0.3']);
}, 300_000);

test('700 distinct IPs against a 600-member group: never over capacity, the 100 oldest evicted and cleaned up', async () => {
  const list = ips(700, 62);
  let maxSeen = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      // A read that times out on a loaded box is no sample, not a failure.
      maxSeen = Math.max(maxSeen, await groupMembers().then((m) => m.length, () => 0));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    // Waves of 100, each in the group before the next starts, so that "oldest" is exact: the first wave.
    // (Within a wave, joins race each other.)
    for (let i = 0; i < list.length; i += 100) {
      const wave = list.slice(i, i + 100);
      await Promise.all(wave.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: DAY }))));
      if (i + 100 < list.length) {
        await eventually(async () => {
          const m = new Set(await groupMembers());
          return wave.every((ip) => m.has(addressObjectName(ip)));
        }, 60_000, `wave ${i / 100 + 1} in the group`);
      }
    }
    const evicted = await eventually(async () => {
      const results = await Promise.all(
        list.map((ip) => stack.client.workflow.getHandle(`block:${TARGET}:${ip}`).describe().then((d) => (d.status.name === 'COMPLETED' ? ip : undefined))),
      );
      const done = results.filter((x): x is string => !!x);
      return done.length === 100 && done;
    }, 180_000, '100 evictions');
    await eventually(async () => (await groupMembers()).length === 600, 60_000, 'group full');
    sampling = false;
    await sampler;
    expect(maxSeen).toBeLessThanOrEqual(600);
    const onFirewall = new Set(await groupMembers());
    for (const ip of evicted) {
      expect(onFirewall.has(addressObjectName(ip))).toBe(false);
      const r: BlockStatus = await stack.client.workflow.getHandle(`block:${TARGET}:${ip}`).result();
      expect(r.state).toBe('evicted');
      expect(await stack.firewall.getAddress('ipv4', addressObjectName(ip))).toBeUndefined();
    }
    // The evicted ones are the oldest: exactly the first wave.
    expect([...evicted].sort()).toEqual(list.slice(0, 100).sort());
    const g = await stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4)).query(enforcerStatusQuery);
    expect(g.stats.evictions).toBeGreaterThanOrEqual(100);
  } finally {
    sampling = false;
    await sampler;
    await cancelAll(list);
  }
}, 300_000);

test('a firewall answering 500s, resets and hangs for a while: blocks and unblocks still converge', async () => {
  const list = ips(30, 63);
  stack.emulator.setFaults({ error500Rate: 0.4, resetRate: 0.1, hangRate: 0.1 });
  await Promise.all(list.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: DAY }))));
  await new Promise((r) => setTimeout(r, 4000)); // let the faults bite
  stack.emulator.setFaults({ error500Rate: 0, resetRate: 0, hangRate: 0, outageUntil: Date.now() + 3000 });
  await eventually(async () => (await groupMembers()).length === 30, 120_000, 'all 30 enforced');
  expect(new Set(await groupMembers())).toEqual(new Set(list.map(addressObjectName)));

  stack.emulator.setFaults({ error500Rate: 0.4, resetRate: 0.1 });
  await Promise.all(list.map((ip) => stack.client.workflow.getHandle(`block:${TARGET}:${ip}`).signal(cancelSignal, { reason: 'test', actor: 'test' })));
  await new Promise((r) => setTimeout(r, 3000));
  stack.emulator.setFaults({ error500Rate: 0, resetRate: 0 });
  const results: BlockStatus[] = await Promise.all(list.map((ip) => stack.client.workflow.getHandle(`block:${TARGET}:${ip}`).result()));
  expect(results.map((r) => r.state)).toEqual(list.map(() => 'cancelled'));
  expect(await groupMembers()).toEqual(['none']);
  for (const ip of list) expect(await stack.firewall.getAddress('ipv4', addressObjectName(ip))).toBeUndefined();
}, 240_000);

test('invalid extends are refused by the Update validator and leave the block as it was', async () => {
  const ip = '203.0.113.60';
  const handle = await startBlock(stack, blockInput(ip, { ttlMs: DAY }));
  await eventually(async () => (await groupMembers()).includes(addressObjectName(ip)), 30_000, 'member');
  const before = await handle.query(statusQuery);
  const refusal = (req: ExtendRequest) =>
    handle.executeUpdate(extendUpdate, { args: [req] }).then(() => 'accepted', (e: WorkflowUpdateFailedError) => String(e.cause?.message));
  expect(await refusal({ untilMs: Date.parse(before.expiresAt), actor: 'op' })).toMatch(/not after the current one/);
  expect(await refusal({ byMs: 365 * DAY, actor: 'op' })).toMatch(/maximum block time/);
  expect(await refusal({ actor: 'op' })).toMatch(/exactly one/);
  expect(await refusal({ byMs: 60_000, untilMs: Date.parse(before.expiresAt) + 1, actor: 'op' })).toMatch(/exactly one/);
  const after = await handle.query(statusQuery);
  expect(after.expiresAt).toBe(before.expiresAt);
  expect(after.extensions).toEqual([]);
  await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'done', actor: 'test' }] });
  // Releasing (refused by the validator), or already ended: the remove is often answered within the cancel's task.
  const late = await handle.executeUpdate(extendUpdate, { args: [{ byMs: 60_000, actor: 'op' }] }).then(
    () => 'accepted',
    (e: Error) => (e instanceof WorkflowUpdateFailedError ? String(e.cause?.message) : e instanceof WorkflowNotFoundError ? 'ended' : e.message),
  );
  expect(late).toMatch(/^(cancelled: nothing to extend.*|ended)$/);
  expect((await handle.result()).state).toBe('cancelled');
});
