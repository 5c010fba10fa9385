/**
 * reconcileTarget (run by a Temporal Schedule every RECONCILE_INTERVAL): for each enforcement set of the
 * target, one activity compares the firewall with the running blocks and repairs both ways (see
 * activities/reconcile.ts). It never writes the firewall itself — the enforcer stays the only writer — and
 * it always finishes: each set's pass has bounded tries and time, a failing set is reported and the others
 * still run, and the schedule gives each run a timeout.
 */
import * as wf from '@temporalio/workflow';
import { repairing } from './activity-options';
import { ReconcileInput, ReconcileReport } from './messages';

export async function reconcileTarget(input: ReconcileInput): Promise<ReconcileReport> {
  const report: ReconcileReport = { target: input.target, checkedAt: new Date(Date.now()).toISOString(), activeBlocks: 0, sets: [] };
  for (const set of await repairing.enforcementSets({ target: input.target })) {
    try {
      const { activeBlocks, ...r } = await repairing.reconcileSet({ target: input.target, set });
      report.activeBlocks += activeBlocks;
      report.sets.push(r);
    } catch (err) {
      report.sets.push({ set, enforced: 0, reasserted: [], orphansRemoved: [], nudged: [], error: err instanceof Error ? (err.cause as Error | undefined)?.message ?? err.message : String(err) });
    }
  }
  wf.log.info('reconciled', { ...report });
  return report;
}
