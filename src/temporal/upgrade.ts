/**
 * The upgrade from the first release, run at every start (idempotent, cheap when there is nothing to do):
 * every running first-release block gets a `migrate` signal and continues as new as an `ipBlock` carrying
 * its state (workflows/legacy/block.ts); every first-release group entity is terminated — it remembered its
 * member list and would drop members it did not create; the enforcers and the blocks now hold the truth.
 */
import type { Client } from '@temporalio/client';
import { inPool } from '../pool';
import { WORKFLOW_TYPES } from '../../workflows/messages';
import { migrateSignal } from '../../workflows/legacy/messages';

export interface UpgradeReport {
  blocksMigrated: number;
  groupsRetired: number;
}

export async function upgradeFirstRelease(client: Client): Promise<UpgradeReport> {
  const report: UpgradeReport = { blocksMigrated: 0, groupsRetired: 0 };
  const running = async (type: string) => {
    const ids: string[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowType = "${type}" AND ExecutionStatus = "Running"` })) ids.push(w.workflowId);
    return ids;
  };
  await inPool(await running(WORKFLOW_TYPES.legacyBlock), 16, async (id) => {
    await client.workflow.getHandle(id).signal(migrateSignal).then(() => report.blocksMigrated++, () => undefined);
  });
  await inPool(await running(WORKFLOW_TYPES.legacyGroup), 4, async (id) => {
    await client.workflow.getHandle(id).terminate('retired by the upgrade: the enforcer is the single writer now').then(() => report.groupsRetired++, () => undefined);
  });
  return report;
}
