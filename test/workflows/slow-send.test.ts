/**
 * An answer that arrives while the block's own request is still being sent. Under load a local activity can
 * outlast most of the workflow task timeout; the SDK then heartbeats the task and delivers new signals (the
 * enforcer's answer) while the activity still runs. Here the block's askEnforcer sends its request, then
 * holds for 9 s (the task is heartbeated at 8 s of 10): the answer to its remove lands meanwhile. The block
 * must take it and end — before the fix its next step read an outstanding request that was gone, and its
 * workflow task failed on every retry (seen under load in a parallel suite run).
 */
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createServiceWorker, ServiceWorker } from '../../src/worker/worker';
import { createActivities } from '../../activities';
import { DryRunBackend } from '../../src/enforcement/dry-run';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import { temporalCliPath } from '../../src/temporal/binaries';
import { ALL_SEARCH_ATTRIBUTES, BlockStatus, cancelUpdate, changesSignal, enforcerTaskQueue, enforcerWorkflowId, SetChange, WORKFLOW_TYPES } from '../../workflows/messages';
import { activeStatus, blockInput, TARGET } from '../support/stack';
import type { ipBlock } from '../../workflows/block';

test('a block answered while its remove is still being sent ends cancelled (its task does not fail)', async () => {
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: temporalCliPath() }, searchAttributes: ALL_SEARCH_ATTRIBUTES } });
  const taskQueue = `slow-send-${randomUUID()}`;
  try {
    const real = createActivities({ backends: new Map([[TARGET, new DryRunBackend()]]), ipPolicy: DEFAULT_IP_POLICY, temporal: env.client, taskQueue, batchWindowMs: 0 });
    const activities = {
      ...real,
      async askEnforcer(input: { target: string; set: string; change: SetChange }) {
        if (input.change.op !== 'remove') return real.askEnforcer(input);
        // The remove goes as a sender of before sent it (a signal: its answer comes as a signal too, as it does
        // today for a change the enforcer did not settle within the Update's wait), and the activity lingers.
        await env.client.workflow.signalWithStart(WORKFLOW_TYPES.enforcer, {
          workflowId: enforcerWorkflowId(input.target, input.set),
          taskQueue: enforcerTaskQueue(taskQueue),
          args: [{ target: input.target, set: input.set }],
          signal: changesSignal,
          signalArgs: [[input.change]],
        });
        await new Promise((r) => setTimeout(r, 9000)); // answered meanwhile
        return undefined;
      },
    };
    const worker = await createServiceWorker({
      connection: env.nativeConnection,
      taskQueue,
      activities,
      ...(process.env.WORKFLOW_BUNDLE_PATH ? { workflowBundle: { codePath: process.env.WORKFLOW_BUNDLE_PATH } } : { workflowsPath: require.resolve('../../workflows') }),
    });
    await runUntil(worker, async () => {
      const handle = await env.client.workflow.start<typeof ipBlock>(WORKFLOW_TYPES.block, { workflowId: `block:${TARGET}:203.0.113.250`, taskQueue, args: [blockInput('203.0.113.250')] });
      await activeStatus(handle);
      await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'test', actor: 'test' }] });
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        handle.result() as Promise<BlockStatus>,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the block did not end within 60 s')), 60_000))),
      ]).finally(() => clearTimeout(timer));
      expect(result.state).toBe('cancelled');
    });
  } finally {
    await env.teardown();
  }
}, 120_000);

async function runUntil(worker: ServiceWorker, fn: () => Promise<void>): Promise<void> {
  const running = worker.run();
  try {
    await fn();
  } finally {
    worker.shutdown();
    await running;
  }
}
