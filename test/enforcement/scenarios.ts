/**
 * The scenarios every enforcement backend must pass, written once and run per backend (one test file each):
 * a block's life on the time-skipping server (block, repeat event, extend, unblock, expiry: hours pass in
 * milliseconds) and a firewall outage on the dev server (real concurrency). Enforcement is asserted twice:
 * with the emulator's oracle (`blocked(ip)`: does an enabled deny mechanism match the IP now?) and with the
 * backend's own view of its set. Backend-specific scenarios (reconciliation, check()) live in the files.
 */
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { TargetConfig } from '../../src/config';
import type { EmulatorOptions, Mechanism } from '../../src/fortios/emulator/server';
import type { reconcileTarget } from '../../workflows/reconcile';
import { BlockStatus, cancelSignal, cancelUpdate, eventSignal, extendUpdate, ReconcileReport, SetReport, statusQuery, WORKFLOW_TYPES } from '../../workflows/messages';
import { activeStatus, blockInput, eventually, resultAfter, skipTo, Stack, startBlock, startStack, TARGET } from '../support/stack';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface BackendUnderTest {
  /** The mechanism the emulator's oracle names for an entry of this backend; undefined: nothing reaches the firewall (dry run). */
  mechanism?: Mechanism;
  target: Partial<TargetConfig>;
  emulator: EmulatorOptions;
  /** The backend's own view: does its set hold the IP now? */
  holds(stack: Stack, ip: string): Promise<boolean>;
  /** The expiry the firewall keeps for the IP (native expiry, our comment), for backends that keep one. */
  firewallExpiryMs?(stack: Stack, ip: string): Promise<number | undefined>;
}

/** Both views agree that the IP is enforced (the oracle says nothing for a dry run: it must stay unblocked). */
export async function expectEnforced(stack: Stack, b: BackendUnderTest, ip: string, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => (await b.holds(stack, ip)) && oracleAgrees(stack, b, ip, true), timeoutMs, `${ip} enforced`);
}

export async function expectLifted(stack: Stack, b: BackendUnderTest, ip: string, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => !(await b.holds(stack, ip)) && oracleAgrees(stack, b, ip, false), timeoutMs, `${ip} lifted`);
}

function oracleAgrees(stack: Stack, b: BackendUnderTest, ip: string, enforced: boolean): boolean {
  const answer = stack.emulator.blocked(ip)!;
  if (!b.mechanism) return !answer.blocked;
  return enforced ? answer.blocked && answer.mechanisms.includes(b.mechanism) : !answer.mechanisms.includes(b.mechanism);
}

const handleOf = (stack: Stack, ip: string) => stack.client.workflow.getHandle(`block:${TARGET}:${ip}`);
const status = (h: WorkflowHandle) => h.query(statusQuery);
const event = (id: string) => ({ id, method: 'SSHDICT', severity: 'high', receivedAtMs: Date.now() });

/**
 * block → repeat event (extends) → extend → unblock, then expiry (IPv4, and IPv6 with `ipv6`), on the
 * time-skipping server. Registers its own describe with its own stack.
 */
export function lifecycleScenarios(b: BackendUnderTest, ips: { v4: string[]; v6?: string }): void {
  describe('lifecycle (time-skipping server)', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ server: 'time-skipping', emulator: b.emulator, target: b.target });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    test('block, repeat event (extends), extend, unblock', async () => {
      const ip = ips.v4[0];
      const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR, event: event('1001') }));
      await expectEnforced(stack, b, ip);
      const active = await activeStatus(handle);
      if (b.firewallExpiryMs) expect(await b.firewallExpiryMs(stack, ip)).toBeGreaterThanOrEqual(Date.parse(active.expiresAt));

      // A repeat event with a longer TTL moves the expiry; a backend that keeps the expiry hears the new one.
      await handle.signal(eventSignal, { event: event('1002'), ttlMs: 3 * HOUR });
      const repeated = await eventually(async () => {
        const s = await status(handle);
        return s.eventCount === 2 && s;
      }, 20_000, 'repeat event recorded');
      expect(Date.parse(repeated.expiresAt)).toBeGreaterThan(Date.parse(active.expiresAt) + HOUR);
      expect(repeated.extensions.map((x) => x.cause)).toEqual(['event']);
      if (b.firewallExpiryMs) {
        await eventually(async () => ((await b.firewallExpiryMs!(stack, ip)) ?? 0) >= Date.parse(repeated.expiresAt), 20_000, 'firewall expiry refreshed after the event');
      }
      await expectEnforced(stack, b, ip);

      // An operator's extend.
      const extended = await handle.executeUpdate(extendUpdate, { args: [{ byMs: 5 * HOUR, actor: 'op' }] });
      expect(Date.parse(extended.expiresAt)).toBe(Date.parse(repeated.expiresAt) + 5 * HOUR);
      if (b.firewallExpiryMs) {
        await eventually(async () => ((await b.firewallExpiryMs!(stack, ip)) ?? 0) >= Date.parse(extended.expiresAt), 20_000, 'firewall expiry refreshed after the extend');
      }
      await expectEnforced(stack, b, ip);

      // Unblock.
      await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'false positive', actor: 'op' }] });
      const result = await resultAfter(stack, handle);
      expect(result.state).toBe('cancelled');
      await expectLifted(stack, b, ip);
    });

    test(`expiry lifts the block after its TTL${ips.v6 ? ' (IPv4 and IPv6)' : ''}`, async () => {
      const list = [ips.v4[1], ...(ips.v6 ? [ips.v6] : [])];
      const handles = await Promise.all(list.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: 2 * HOUR, event: event(`exp-${ip}`) }))));
      for (const ip of list) await expectEnforced(stack, b, ip);
      const expiry = Math.max(...(await Promise.all(handles.map((h) => activeStatus(h)))).map((s) => Date.parse(s.expiresAt)));
      await skipTo(stack, expiry); // the 2 hours skipped; the releases then run in real time
      const results = await Promise.all(handles.map((h) => resultAfter(stack, h)));
      expect(results.map((r) => r.state)).toEqual(list.map(() => 'expired'));
      for (const r of results) expect(Date.parse(r.endedAt!)).toBeGreaterThanOrEqual(Date.parse(r.expiresAt));
      for (const ip of list) await expectLifted(stack, b, ip);
    });
  });
}

/**
 * The firewall is down while blocks start and others are unblocked: once it is back, everything converges
 * (the new blocks enforced, the unblocked ones lifted, the others untouched): nothing lost.
 */
export async function outageScenario(stack: Stack, b: BackendUnderTest, before: string[], during: string[], outageMs = 5000): Promise<void> {
  const handles = await Promise.all(before.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: DAY }))));
  for (const ip of before) await expectEnforced(stack, b, ip, 60_000);
  await Promise.all(handles.map((h) => activeStatus(h, 30_000)));

  const failedBefore = stack.firewallCalls.filter((c) => c.error).length;
  stack.emulator.setFaults({ outageUntil: Date.now() + outageMs });
  const unblocked = before.slice(0, Math.ceil(before.length / 2));
  const kept = before.slice(unblocked.length);
  const started = await Promise.all(during.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: DAY }))));
  await Promise.all(unblocked.map((ip) => handleOf(stack, ip).signal(cancelSignal, { reason: 'unblocked during the outage', actor: 'op' })));
  if (b.mechanism) {
    // The outage bites: the enforcer's commits fail while it lasts (a dry run never calls the firewall).
    await eventually(() => stack.firewallCalls.filter((c) => c.error).length > failedBefore, 20_000, 'failed firewall calls during the outage');
  }

  for (const ip of during) await expectEnforced(stack, b, ip, 90_000);
  await Promise.all(started.map((h) => activeStatus(h, 60_000)));
  const ended: BlockStatus[] = await Promise.all(unblocked.map((ip) => handleOf(stack, ip).result()));
  expect(ended.map((r) => r.state)).toEqual(unblocked.map(() => 'cancelled'));
  for (const ip of unblocked) await expectLifted(stack, b, ip);
  for (const ip of kept) await expectEnforced(stack, b, ip);

  // Clean up: everything lifted.
  await cancelAll(stack, [...kept, ...during]);
  for (const ip of [...kept, ...during]) await expectLifted(stack, b, ip);
}

export async function cancelAll(stack: Stack, ips: string[]): Promise<BlockStatus[]> {
  await Promise.all(ips.map((ip) => handleOf(stack, ip).signal(cancelSignal, { reason: 'test done', actor: 'test' }).catch(() => undefined)));
  return Promise.all(ips.map((ip) => handleOf(stack, ip).result()));
}

/** Starts blocks and waits until the backend holds them and visibility shows them active (what reconciliation reads). */
export async function activeBlocks(stack: Stack, b: BackendUnderTest, ips: string[], ttlMs = DAY): Promise<void> {
  await Promise.all(ips.map((ip) => startBlock(stack, blockInput(ip, { ttlMs }))));
  for (const ip of ips) await expectEnforced(stack, b, ip, 60_000);
  await Promise.all(ips.map((ip) => activeStatus(handleOf(stack, ip), 30_000)));
  const query = `WorkflowType = "${WORKFLOW_TYPES.block}" AND ExecutionStatus = "Running" AND BlockState = "active" AND BlockedIp IN (${ips.map((ip) => JSON.stringify(ip)).join(', ')})`;
  await eventually(async () => (await stack.client.workflow.count(query)).count === ips.length, 20_000, 'blocks visible as active');
}

/** Runs one reconciliation pass of the test target and returns the report of one of its sets. */
export async function reconcile(stack: Stack, set: string): Promise<SetReport> {
  const report: ReconcileReport = await stack.client.workflow.execute<typeof reconcileTarget>(WORKFLOW_TYPES.reconcile, {
    workflowId: `reconcile-test-${randomUUID()}`,
    taskQueue: stack.taskQueue,
    args: [{ target: TARGET }],
  });
  const r = report.sets.find((x) => x.set === set)!;
  expect(r).toBeDefined();
  expect(r.error).toBeUndefined();
  return r;
}
