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
import { groupWorkflowId, cancelUpdate, extendUpdate } from '../../workflows/messages';
import { blockInput, eventually, GROUP4, startBlock, startStack, TARGET } from '../support/stack';

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');
// Binary protobuf: the SDK's JSON helpers trip over two protobufjs copies in 1.24's dependency tree.
const History = temporal.api.history.v1.History;

async function record(): Promise<void> {
  const stack = await startStack({ server: 'time-skipping' });
  try {
    const small = { groupSettings: { capacity: 2, batchWindowMs: 500 } };
    const expired = await startBlock(stack, blockInput('203.0.113.101', { ttlMs: 3_600_000, ...small }));
    await expired.result();
    const cancelled = await startBlock(stack, blockInput('203.0.113.102', { ttlMs: 3_600_000, ...small }));
    await eventually(async () => (await stack.firewall.getGroup('ipv4', GROUP4))?.members.includes('ads-203.0.113.102'));
    await cancelled.executeUpdate(extendUpdate, { args: [{ byMs: 60_000, actor: 'rec' }] });
    await cancelled.executeUpdate(cancelUpdate, { args: [{ reason: 'rec', actor: 'rec' }] });
    await cancelled.result();
    const a = await startBlock(stack, blockInput('203.0.113.103', { ttlMs: 7_200_000, ...small }));
    await startBlock(stack, blockInput('203.0.113.104', { ttlMs: 7_200_000, ...small }));
    await eventually(async () => (await stack.firewall.getGroup('ipv4', GROUP4))?.members.length === 2);
    await startBlock(stack, blockInput('203.0.113.105', { ttlMs: 7_200_000, ...small }));
    await a.result(); // evicted by the third
    mkdirSync(DIR, { recursive: true });
    for (const id of ['block:fw1:203.0.113.101', 'block:fw1:203.0.113.102', 'block:fw1:203.0.113.103', groupWorkflowId(TARGET, GROUP4)]) {
      const history = await stack.client.workflow.getHandle(id).fetchHistory();
      writeFileSync(path.join(DIR, `${id.replace(/[:]/g, '_')}.pb`), History.encode(history).finish());
    }
  } finally {
    await stack.stop();
  }
}

test('recorded histories replay on the current workflow code', async () => {
  if (process.env.RECORD_HISTORIES === '1') await record();
  const files = readdirSync(DIR).filter((f) => f.endsWith('.pb'));
  expect(files.length).toBeGreaterThanOrEqual(4);
  for (const file of files) {
    const history = History.decode(readFileSync(path.join(DIR, file)));
    const workflowId = file.replace(/\.pb$/, '');
    await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.WORKFLOW_BUNDLE_PATH! }, replayName: workflowId }, history, workflowId);
  }
});
