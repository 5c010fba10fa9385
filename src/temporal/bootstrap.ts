/**
 * Things the cluster must have before blocks flow, run on every start (idempotent): our search attributes
 * (when we did not start the server ourselves), one reconciliation Schedule per firewall target, the upgrade
 * of first-release workflows, and a resync of every enforcement set — so that a changed capacity or batch
 * window reaches the running enforcers at once.
 */
import { Client, Connection, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { Config } from '../config';
import type { reconcileTarget } from '../../workflows/reconcile';
import { ReconcileInput, reconcileWorkflowId, WORKFLOW_TYPES } from '../../workflows/messages';
import { setsOf } from '../enforcement';
import { sendToEnforcer } from '../../activities/messaging';
import { registerSearchAttributes } from './search-attributes';
import { upgradeFirstRelease, UpgradeReport } from './upgrade';

/** A reconciliation run never outlives this: the schedule's next tick starts afresh (overlaps are skipped). */
const RECONCILE_RUN_TIMEOUT_MS = 15 * 60_000;

export async function bootstrapTemporal(client: Client, config: Config, opts: { registerAttributes: boolean; reconcileEvery: Duration }): Promise<UpgradeReport> {
  if (opts.registerAttributes) await registerSearchAttributes(client.connection as Connection, config.temporal.namespace);
  for (const t of config.targets) {
    const input: ReconcileInput = { target: t.name };
    const options = {
      scheduleId: reconcileWorkflowId(t.name),
      spec: { intervals: [{ every: opts.reconcileEvery }] },
      action: {
        type: 'startWorkflow' as const,
        workflowType: WORKFLOW_TYPES.reconcile,
        args: [input] as Parameters<typeof reconcileTarget>,
        taskQueue: config.temporal.taskQueue,
        workflowId: reconcileWorkflowId(t.name),
        workflowRunTimeout: RECONCILE_RUN_TIMEOUT_MS,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 10 * 60_000 },
    };
    try {
      await client.schedule.create(options);
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      // Keep an existing schedule in step with the configuration (interval, workflow type, task queue).
      await client.schedule.getHandle(options.scheduleId).update((prev) => ({ ...prev, spec: options.spec, action: options.action }));
    }
  }
  const upgrade = await upgradeFirstRelease(client);
  const messaging = { temporal: client, taskQueue: config.temporal.taskQueue };
  for (const t of config.targets) for (const set of setsOf(t)) await sendToEnforcer(messaging, t.name, set, 'resync');
  return upgrade;
}
