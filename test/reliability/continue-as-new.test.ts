/**
 * Long-lived workflows continue as new and carry their state: on a dev server whose continue-as-new
 * suggestion comes after 40 history events, a block that takes 60 repeat events and an enforcer that
 * takes dozens of joins both move to new runs without losing events, expiry or membership — and the block
 * still ends on time, leaving the firewall clean.
 */
import { WorkflowExecutionDescription } from '@temporalio/client';
import { enforcerStatusQuery, enforcerWorkflowId, eventSignal, statusQuery } from '../../workflows/messages';
import { addressObjectName } from '../../src/enforcement/address-group';
import { activeStatus, blockInput, eventually, Stack, startStack, TARGET } from '../support/stack';
import { cancelBlocks, Ctx, expectActive, expectEnded, expectFirewallConverges, handle, ips, names, since, sleep, startBlock, view } from './convergence';

const GROUP = 'rel-can';
const TTL = 20_000;
const DAY = 86_400_000;

let stack: Stack;
let ctx: Ctx;

beforeAll(async () => {
  stack = await startStack({
    server: 'dev',
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 },
    emulator: { groups: { ipv4: [GROUP], ipv6: ['ads-blocked6'] } },
    target: { groups: { ipv4: [GROUP], ipv6: ['ads-blocked6'] } },
    batchWindowMs: 300,
  });
  ctx = { client: stack.client, taskQueue: stack.taskQueue, firewall: stack.firewall };
});
afterAll(async () => {
  await stack?.stop();
});

/** All runs of a workflow id, oldest first, from visibility. */
async function runs(workflowId: string): Promise<{ runId: string; status: string }[]> {
  const out: { runId: string; status: string; start: number }[] = [];
  for await (const w of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    out.push({ runId: w.runId, status: w.status.name, start: w.startTime.getTime() });
  }
  return out.sort((a, b) => a.start - b.start);
}

test('a block with 60 repeat events and a group with dozens of joins continue as new, carrying their state', async () => {
  const t0 = Date.now();
  const ip = '88.0.0.7';
  const others = ips(30, 89);
  // The repeat-offender block expires after its TTL; the others live until they are unblocked at the end
  // (so that no assertion races their expiry on a slow machine).
  const input = (addr: string, ttlMs = DAY) => blockInput(addr, { ttlMs });

  const first = await startBlock(ctx, input(ip, TTL));
  const firstRunId = first.firstExecutionRunId;
  await eventually(async () => (await view(stack.firewall, GROUP)).members.includes(addressObjectName(ip)), 30_000, 'member');
  const before = await activeStatus(first);

  // Joins in three waves, so that the group entity ticks several times (and its history grows past 40 events).
  for (let w = 0; w < 3; w++) {
    const wave = others.slice(w * 10, w * 10 + 10);
    await Promise.all(wave.map((o) => startBlock(ctx, input(o))));
    await eventually(async () => {
      const m = new Set((await view(stack.firewall, GROUP)).members);
      return wave.every((o) => m.has(addressObjectName(o)));
    }, 30_000, `join wave ${w + 1}`);
  }

  // 60 repeat events, each moving the expiry to now + TTL.
  let lastSentAt = 0;
  for (let i = 0; i < 60; i++) {
    lastSentAt = Date.now();
    await handle(ctx, ip).signal(eventSignal, { event: { id: `ev-${i}`, method: 'SRCHOST', severity: 'high', receivedAtMs: lastSentAt }, ttlMs: TTL });
    if (i % 10 === 9) await sleep(100); // let some land in separate workflow tasks
  }

  // The block moved to a new run; the first run reports ContinuedAsNew.
  const current: WorkflowExecutionDescription = await eventually(async () => {
    const d = await handle(ctx, ip).describe();
    return d.runId !== firstRunId && d;
  }, 30_000, 'block continued as new');
  expect((await stack.client.workflow.getHandle(first.workflowId, firstRunId).describe()).status.name).toBe('CONTINUED_AS_NEW');
  expect(current.status.name).toBe('RUNNING');
  const blockRuns = await runs(first.workflowId);
  expect(blockRuns.length).toBeGreaterThanOrEqual(2);
  expect(blockRuns.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW')).toBe(true);

  // State carried over: all 60 events counted (the last 50 kept), the expiry of the last event, creation time, membership.
  const after = await eventually(async () => {
    const s = await handle(ctx, ip).query(statusQuery);
    return s.eventCount === 60 && s;
  }, 20_000, 'all 60 events recorded');
  expect(after.state).toBe('active');
  expect(after.events).toHaveLength(50);
  expect(after.events[49].id).toBe('ev-59');
  expect(after.events[0].id).toBe('ev-10');
  expect(after.createdAt).toBe(before.createdAt);
  expect(after.blockedAt).toBe(before.blockedAt);
  const expiresAt = Date.parse(after.expiresAt);
  expect(expiresAt).toBeGreaterThanOrEqual(lastSentAt + TTL - 5_000); // moved by the late events (workflow time ≈ real time)
  expect(expiresAt).toBeLessThanOrEqual(Date.now() + TTL);
  expect(after.extensions.length).toBeGreaterThan(0);

  // The enforcer continued as new too and kept its stats; the firewall holds exactly the 31 blocks.
  const groupId = enforcerWorkflowId(TARGET, GROUP);
  const groupRuns = await eventually(async () => {
    const r = await runs(groupId);
    return r.length >= 2 && r;
  }, 20_000, 'group continued as new');
  expect(groupRuns[0].status).toBe('CONTINUED_AS_NEW');
  const g = await stack.client.workflow.getHandle(groupId).query(enforcerStatusQuery);
  expect(g.stats.adds).toBeGreaterThanOrEqual(31);
  await expectFirewallConverges(stack.firewall, GROUP, [ip, ...others], 10_000);
  await expectActive(ctx, [ip, ...others]);
  console.log(`continue-as-new: block ${blockRuns.length} runs, group ${groupRuns.length} runs`);

  // Unblocks go through the continued group; the block expires at its carried expiry, not before.
  await cancelBlocks(ctx, others);
  await expectEnded(ctx, others, 'cancelled', 60_000);
  await expectFirewallConverges(stack.firewall, GROUP, [ip], 10_000);
  const [final] = await expectEnded(ctx, [ip], 'expired', 60_000);
  expect(Date.parse(final.endedAt!)).toBeGreaterThanOrEqual(expiresAt);
  expect(final.eventCount).toBe(60);
  await expectFirewallConverges(stack.firewall, GROUP, [], 30_000);
  console.log(`continue-as-new scenario: ${since(t0)}`);
}, 150_000);
