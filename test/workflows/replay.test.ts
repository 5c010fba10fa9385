/**
 * Determinism guard: histories recorded from earlier versions of the workflows (test/fixtures/histories, protobuf)
 * must replay on the current code. A change that would break running blocks fails here — then it needs
 * `patched()` (see README, "Changing workflows").
 *
 * `RECORD_HISTORIES=1 npx jest test/workflows/replay` first records fresh histories of typical runs
 * (block expired / cancelled / extended / evicted, the group entity, reconciliation) into the fixtures.
 */
import { readdirSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { cancelUpdate, EnforcerStats, enforcerStatusQuery, enforcerWorkflowId, extendUpdate, WORKFLOW_TYPES } from '../../workflows/messages';
import { migrateSignal } from '../../workflows/legacy/messages';
import { addressObjectName } from '../../src/enforcement/address-group';
import { activeStatus, blockInput, eventually, GROUP4, startBlock, startStack, TARGET } from '../support/stack';
import { sendToEnforcer } from '../../activities/messaging';
import { BlockService } from '../../src/blocks/service';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import { BURST_CLAIM_MS, CHECK_BATCH_MS, CLAIM_MS } from '../../workflows/early-adds';
import { RELEASE_MARGIN_MS } from '../../workflows/release-log';
import { AheadWriter } from '../../src/blocks/ahead-writer';

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');
// Binary protobuf: the SDK's JSON helpers trip over two protobufjs copies in 1.24's dependency tree.
const History = temporal.api.history.v1.History;

/**
 * Records the current generation's typical runs (ipblock_*, enforcer_*). The first release's fixtures
 * (block_*, group_*) stay as they were recorded: they prove that running first-release workflows replay.
 * `migrated_*` is a first-release block that received the upgrade's migrate signal.
 */
async function record(): Promise<void> {
  const stack = await startStack({ server: 'time-skipping', target: { capacity: 2 } });
  try {
    const expired = await startBlock(stack, blockInput('203.0.113.111', { ttlMs: 3_600_000 }));
    await expired.result();
    const cancelled = await startBlock(stack, blockInput('203.0.113.112', { ttlMs: 3_600_000 }));
    await activeStatus(cancelled);
    await cancelled.executeUpdate(extendUpdate, { args: [{ byMs: 60_000, actor: 'rec' }] });
    await cancelled.executeUpdate(cancelUpdate, { args: [{ reason: 'rec', actor: 'rec' }] });
    await cancelled.result();
    const a = await startBlock(stack, blockInput('203.0.113.113', { ttlMs: 7_200_000 }));
    await startBlock(stack, blockInput('203.0.113.114', { ttlMs: 7_300_000 }));
    await eventually(async () => (await stack.firewall.getGroup('ipv4', GROUP4))?.members.length === 2);
    await startBlock(stack, blockInput('203.0.113.115', { ttlMs: 7_400_000 }));
    await a.result(); // evicted by the third (expires first)
    // A first-release block, migrated by the upgrade while it waits for its group's answer.
    const legacy = await stack.client.workflow.start('blockWorkflow', {
      workflowId: 'block:fw1:203.0.113.116',
      taskQueue: stack.taskQueue,
      args: [{ ...blockInput('203.0.113.116'), group: GROUP4, groupSettings: { capacity: 600, batchWindowMs: 0 } }],
    });
    await legacy.signal(migrateSignal);
    await eventually(async () => (await stack.firewall.getGroup('ipv4', GROUP4))?.members.includes(addressObjectName('203.0.113.116')));
    mkdirSync(DIR, { recursive: true });
    const save = async (id: string, name: string, runId?: string) => {
      const history = await stack.client.workflow.getHandle(id, runId).fetchHistory();
      writeFileSync(path.join(DIR, `${name}.pb`), History.encode(history).finish());
    };
    for (const ip of ['203.0.113.111', '203.0.113.112', '203.0.113.113']) await save(`block:${TARGET}:${ip}`, `ipblock_${ip}`);
    await save(enforcerWorkflowId(TARGET, GROUP4), `enforcer_${GROUP4}`);
    await save(legacy.workflowId, 'migrated_block_203.0.113.116', legacy.firstExecutionRunId);
  } finally {
    await stack.stop();
  }
}

/**
 * An enforcer in a flood of 300 blocks, recorded once `reached` holds of its stats (and every add is in):
 * `RECORD_HISTORIES=flood` — it waited for a bigger tick (the `burst-batching` patch, batch-policy.ts), recorded
 * alone, leaving the earlier generation's enforcer fixture as it was; `RECORD_HISTORIES=flood-idle` — a pause in
 * arrivals ended a wait (the `flood-idle-commit` patch, enforcer.ts).
 */
async function recordFlood(file: string, net: string, what: string, reached: (stats: EnforcerStats) => boolean): Promise<void> {
  const stack = await startStack({ server: 'dev', target: { enforcement: 'threat-feed', feed: 'ads-feed' }, emulator: { version: 'v7.4.5', feeds: [{ name: 'ads-feed' }] } });
  try {
    const ips = Array.from({ length: 300 }, (_, i) => `${net}.${Math.floor(i / 250)}.${(i % 250) + 1}`);
    await Promise.all(ips.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: 3_600_000 }))));
    const enforcer = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, 'ads-feed'));
    await eventually(async () => {
      const { stats } = await enforcer.query(enforcerStatusQuery);
      return reached(stats) && stats.adds >= ips.length;
    }, 120_000, what);
    writeFileSync(path.join(DIR, file), History.encode(await enforcer.fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

/**
 * An enforcer with a second uncertain write while a re-check was pending (the `recheck-after-last-uncertain`
 * patch): `RECORD_HISTORIES=recheck`, run on the code of before the patch, records how such a run went then.
 */
async function recordRecheck(): Promise<void> {
  const stack = await startStack({ server: 'dev', firewallTimeoutMs: 1000 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const uncertainWrite = async (latencyMs: number, change: () => Promise<unknown>) => {
    stack.emulator.setFaults({ latencyMs: { PUT: latencyMs } });
    await change();
    await sleep(2300);
    stack.emulator.setFaults({ latencyMs: { PUT: 0 } });
  };
  try {
    const [a, b, c] = ['64.4.0.1', '64.4.0.2', '64.4.0.3'];
    const enforcer = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
    const held = (ip: string) => async () => !!(await stack.firewall.getGroup('ipv4', GROUP4))?.members.includes(addressObjectName(ip));
    await startBlock(stack, blockInput(a, { ttlMs: 3_600_000 }));
    await eventually(held(a));
    await uncertainWrite(5000, () => startBlock(stack, blockInput(b, { ttlMs: 3_600_000 })));
    await eventually(held(b));
    await sleep(8000);
    await uncertainWrite(5000, () => startBlock(stack, blockInput(c, { ttlMs: 3_600_000 })));
    await eventually(held(c));
    // Both re-checks (or the one moved past the second write) have run.
    await eventually(async () => stack.emulator.delayed() === 0, 30_000);
    await sleep(16_000);
    writeFileSync(path.join(DIR, `enforcer_recheck_${GROUP4}.pb`), History.encode(await enforcer.fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

/**
 * An enforcer that took early adds (the `early-adds` patch, workflows/early-adds.ts): one claimed by its block,
 * one withdrawn when nobody claimed it, one checked and kept for a block already active.
 * `RECORD_HISTORIES=early` records it alone.
 */
async function recordEarly(): Promise<void> {
  const feed = 'ads-feed';
  const stack = await startStack({ server: 'time-skipping', target: { enforcement: 'threat-feed', feed }, emulator: { version: 'v7.4.5', feeds: [{ name: feed }] } });
  try {
    const send = (ip: string) =>
      sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, feed, [{ op: 'add', ip, family: 'ipv4', early: true, expiresAtMs: Date.now() + 3_600_000, label: 'rec' }]);
    const held = (ip: string) => async () => (await stack.backend.list(feed)).some((e) => e.ip === ip);
    const api = new BlockService(stack.client, {
      targets: [stack.target],
      block: { ttlMs: 3_600_000, maxTtlMs: 30 * 86_400_000, batchWindowMs: 0, earlyAdd: true },
      ipPolicy: DEFAULT_IP_POLICY,
      temporal: { namespace: 'default', taskQueue: stack.taskQueue, uiPort: 0, port: 0 },
    });
    await api.block({ ip: '64.5.0.1', reason: 'rec', actor: 'rec', event: { id: 'rec-1' } });
    await activeStatus(stack.client.workflow.getHandle(`block:${TARGET}:64.5.0.1`));
    await activeStatus(await startBlock(stack, blockInput('64.5.0.3', { ttlMs: 3_600_000 })));
    await send('64.5.0.2');
    await send('64.5.0.3');
    await eventually(held('64.5.0.2'));
    await stack.env.sleep(CLAIM_MS + CHECK_BATCH_MS + 5_000);
    await eventually(async () => !(await held('64.5.0.2')()));
    writeFileSync(path.join(DIR, `enforcer_early_${feed}.pb`), History.encode(await stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, feed)).fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

/**
 * An enforcer with early adds the API wrote itself (`ahead`: src/blocks/ahead-writer.ts), one claimed by its
 * block and one withdrawn, and a reconciliation re-add it vouched for (workflows/release-log.ts), across a
 * removal. `RECORD_HISTORIES=ahead` records it alone, as `enforcer_<name>_ads-feed` (`ahead`: recorded before
 * the `early-check-batching` patch; `ahead_batched`: after it).
 */
async function recordAhead(name: string): Promise<void> {
  const feed = 'ads-feed';
  const stack = await startStack({ server: 'time-skipping', target: { enforcement: 'threat-feed', feed }, emulator: { version: 'v7.4.5', feeds: [{ name: feed }] } });
  try {
    const held = (ip: string) => async () => (await stack.backend.list(feed)).some((e) => e.ip === ip);
    const api = new BlockService(
      stack.client,
      {
        targets: [stack.target],
        block: { ttlMs: 3_600_000, maxTtlMs: 30 * 86_400_000, batchWindowMs: 0, earlyAdd: true },
        ipPolicy: DEFAULT_IP_POLICY,
        temporal: { namespace: 'default', taskQueue: stack.taskQueue, uiPort: 0, port: 0 },
      },
      new AheadWriter(new Map([[TARGET, stack.backend]])),
    );
    await api.block({ ip: '64.6.0.1', reason: 'rec', actor: 'rec', event: { id: 'rec-1' } });
    const claimed = stack.client.workflow.getHandle(`block:${TARGET}:64.6.0.1`);
    await activeStatus(claimed);
    await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, feed, [{ op: 'add', ip: '64.6.0.2', family: 'ipv4', early: true, ahead: true, label: 'rec' }]);
    await stack.backend.addAhead!(feed, [{ ip: '64.6.0.2', family: 'ipv4' }]);
    await claimed.executeUpdate(cancelUpdate, { args: [{ reason: 'rec', actor: 'rec' }] });
    await eventually(async () => (await claimed.describe()).status.name === 'COMPLETED');
    await stack.env.sleep(RELEASE_MARGIN_MS + 60_000);
    await eventually(async () => !(await held('64.6.0.2')()));
    await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, feed, [
      { op: 'add', ip: '64.6.0.3', family: 'ipv4', listedAtMs: await stack.env.currentTimeMs(), label: 'rec' },
    ]);
    await eventually(held('64.6.0.3'));
    writeFileSync(path.join(DIR, `enforcer_${name}_${feed}.pb`), History.encode(await stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, feed)).fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

/**
 * An enforcer with a burst's early add (`claimMs`: BURST_CLAIM_MS, src/blocks/ahead-writer.ts) that no block claims,
 * and a calm one sent after it: the check timer wakes in steps, the calm one is withdrawn on time, the burst's one
 * after its own claim time. `RECORD_HISTORIES=burst-ahead` records it alone.
 */
async function recordBurstAhead(): Promise<void> {
  const feed = 'ads-feed';
  const stack = await startStack({ server: 'time-skipping', target: { enforcement: 'threat-feed', feed }, emulator: { version: 'v7.4.5', feeds: [{ name: feed }] } });
  try {
    const held = (ip: string) => async () => (await stack.backend.list(feed)).some((e) => e.ip === ip);
    const ahead = async (ip: string, claimMs?: number) => {
      await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, feed, [{ op: 'add', ip, family: 'ipv4', early: true, ahead: true, label: 'rec', ...(claimMs ? { claimMs } : {}) }]);
      await stack.backend.addAhead!(feed, [{ ip, family: 'ipv4' }]);
    };
    await ahead('64.10.0.1', BURST_CLAIM_MS);
    await ahead('64.10.0.2');
    await stack.env.sleep(2 * (CLAIM_MS + CHECK_BATCH_MS) + 5_000);
    await eventually(async () => !(await held('64.10.0.2')()));
    expect(await held('64.10.0.1')()).toBe(true);
    await stack.env.sleep(BURST_CLAIM_MS);
    await eventually(async () => !(await held('64.10.0.1')()));
    writeFileSync(path.join(DIR, `enforcer_burst_ahead_${feed}.pb`), History.encode(await stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, feed)).fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

/**
 * An address group's enforcer taking a burst's early adds (`claimMs`, not `ahead`: src/blocks/ahead-writer.ts) in a
 * flood, then the blocks' own adds of the same IPs: `RECORD_HISTORIES=burst-early` records it alone.
 */
async function recordBurstEarly(): Promise<void> {
  const stack = await startStack({ server: 'dev' });
  try {
    const ips = Array.from({ length: 300 }, (_, i) => `64.11.${Math.floor(i / 250)}.${(i % 250) + 1}`);
    const messaging = { temporal: stack.client, taskQueue: stack.taskQueue };
    const expiresAtMs = Date.now() + 3_600_000;
    await Promise.all(ips.map((ip) => sendToEnforcer(messaging, TARGET, GROUP4, [{ op: 'add', ip, family: 'ipv4', early: true, claimMs: BURST_CLAIM_MS, expiresAtMs, label: 'rec' }])));
    await eventually(() => ips.every((ip) => stack.emulator.blocked(ip)!.blocked), 120_000, 'the early adds written');
    const handles = await Promise.all(ips.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: 3_600_000 }))));
    for (const h of handles) await activeStatus(h);
    const enforcer = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
    const { stats } = await enforcer.query(enforcerStatusQuery);
    expect(stats.floodWaits ?? 0).toBeGreaterThan(0);
    writeFileSync(path.join(DIR, `enforcer_burst_early_${GROUP4}.pb`), History.encode(await enforcer.fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

/**
 * An enforcer run that continued as new on its history budget once quiet (`run-budget-when-quiet`, workflows/enforcer.ts),
 * its first run from start to CONTINUED_AS_NEW: `RECORD_HISTORIES=budget` records it alone.
 */
async function recordBudget(): Promise<void> {
  const stack = await startStack({ server: 'dev' });
  try {
    const handle = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
    await activeStatus(await startBlock(stack, blockInput('64.7.0.1', { ttlMs: 3_600_000 })));
    const first = (await handle.describe()).runId;
    for (let n = 0; (await handle.describe()).historyLength < 1_100; n++) {
      await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, GROUP4, [{ op: 'remove', ip: `198.18.${n >> 8}.${n & 255}`, family: 'ipv4' }]);
    }
    await eventually(async () => (await handle.describe()).runId !== first, 30_000, 'continued as new once quiet');
    writeFileSync(path.join(DIR, `enforcer_budget_${GROUP4}.pb`), History.encode(await stack.client.workflow.getHandle(handle.workflowId, first).fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

/**
 * Changes as submitChanges Updates (workflows/messages.ts): a block answered within its first task and its cancel's
 * task (no setAnswer signal), and an enforcer run that took Updates (one with an `ahead` early add and a repair)
 * under a stream that never paused and continued as new at twice its budget (`run-budget-hard`):
 * `RECORD_HISTORIES=updates` records them alone.
 */
async function recordUpdates(): Promise<void> {
  const stack = await startStack({ server: 'dev' });
  try {
    const block = await startBlock(stack, blockInput('64.8.0.1', { ttlMs: 3_600_000 }));
    await activeStatus(block);
    await block.executeUpdate(cancelUpdate, { args: [{ reason: 'rec', actor: 'rec' }] });
    await block.result();
    // An API's early add it writes itself, taken with a repair.
    await sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, GROUP4, [
      { op: 'add', ip: '64.8.0.2', family: 'ipv4', early: true, ahead: true, label: 'rec' },
      { op: 'remove', ip: '64.8.0.3', family: 'ipv4' },
    ]);
    const handle = stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
    const first = (await handle.describe()).runId;
    const inFlight: Promise<unknown>[] = [];
    for (let n = 0; (n % 25 !== 0 || (await handle.describe()).runId === first) && n < 3_000; n++) {
      inFlight.push(sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, GROUP4, [{ op: 'remove', ip: `198.18.${n >> 8}.${n & 255}`, family: 'ipv4' }]));
      await new Promise((r) => setTimeout(r, 40));
    }
    await Promise.all(inFlight);
    writeFileSync(path.join(DIR, 'ipblock_inline_64.8.0.1.pb'), History.encode(await block.fetchHistory()).finish());
    writeFileSync(path.join(DIR, `enforcer_stream_${GROUP4}.pb`), History.encode(await stack.client.workflow.getHandle(handle.workflowId, first).fetchHistory()).finish());
  } finally {
    await stack.stop();
  }
}

test('recorded histories replay on the current workflow code', async () => {
  if (process.env.RECORD_HISTORIES === 'budget') await recordBudget();
  if (process.env.RECORD_HISTORIES === 'updates') await recordUpdates();
  if (process.env.RECORD_HISTORIES === '1') await record();
  if (process.env.RECORD_HISTORIES === 'flood') await recordFlood('enforcer_flood_ads-feed.pb', '64.3', 'a flood wait', (s) => (s.floodWaits ?? 0) > 0);
  if (process.env.RECORD_HISTORIES === 'flood-idle') await recordFlood('enforcer_flood_idle_ads-feed.pb', '64.9', 'a flood wait cut short', (s) => (s.floodWaitsCutShort ?? 0) > 0);
  if (process.env.RECORD_HISTORIES === 'recheck') await recordRecheck();
  if (process.env.RECORD_HISTORIES === 'early') await recordEarly();
  if (process.env.RECORD_HISTORIES === 'ahead') await recordAhead('ahead_batched');
  if (process.env.RECORD_HISTORIES === 'burst-ahead') await recordBurstAhead();
  if (process.env.RECORD_HISTORIES === 'burst-early') await recordBurstEarly();
  const files = readdirSync(DIR).filter((f) => f.endsWith('.pb'));
  expect(files.length).toBeGreaterThanOrEqual(20);
  expect(WORKFLOW_TYPES.legacyBlock).toBe('blockWorkflow'); // the first release's names must stay registered
  for (const file of files) {
    const history = History.decode(readFileSync(path.join(DIR, file)));
    const workflowId = file.replace(/\.pb$/, '');
    await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.WORKFLOW_BUNDLE_PATH! }, replayName: workflowId }, history, workflowId);
  }
});
