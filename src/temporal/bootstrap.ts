/**
 * Things the cluster must have before blocks flow: our search attributes (when we did not start the
 * server ourselves) and one reconciliation Schedule per firewall target. Idempotent: runs on every start.
 */
import { Client, Connection, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { Config } from '../config';
import type { reconcileWorkflow } from '../../workflows/reconcile';
import { ReconcileInput, reconcileWorkflowId } from '../../workflows/messages';
import { registerSearchAttributes } from './search-attributes';

export async function bootstrapTemporal(client: Client, config: Config, opts: { registerAttributes: boolean; reconcileEvery: Duration }): Promise<void> {
  if (opts.registerAttributes) await registerSearchAttributes(client.connection as Connection, config.temporal.namespace);
  for (const t of config.targets) {
    const input: ReconcileInput = {
      target: t.name,
      groups: [
        { group: t.groups.ipv4, family: 'ipv4' },
        { group: t.groups.ipv6, family: 'ipv6' },
      ],
    };
    const options = {
      scheduleId: reconcileWorkflowId(t.name),
      spec: { intervals: [{ every: opts.reconcileEvery }] },
      action: {
        type: 'startWorkflow' as const,
        workflowType: 'reconcileWorkflow',
        args: [input] as Parameters<typeof reconcileWorkflow>,
        taskQueue: config.temporal.taskQueue,
        workflowId: reconcileWorkflowId(t.name),
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 10 * 60_000 },
    };
    try {
      await client.schedule.create(options);
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      // Keep an existing schedule in step with the configuration (interval, groups, task queue).
      await client.schedule.getHandle(options.scheduleId).update((prev) => ({ ...prev, spec: options.spec, action: options.action }));
    }
  }
}
