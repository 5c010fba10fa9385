/**
 * Reconciliation (run by a Temporal Schedule): compares the firewall with the running block workflows and
 * repairs drift both ways, reporting what it changed. It never writes a group itself — the group entity
 * stays the only writer: a `resync` makes its next tick re-assert the member list (re-adding a member
 * removed by hand, dropping our members that no block owns).
 */
import * as wf from '@temporalio/workflow';
import { firewall, temporal } from './activity-options';
import { addressObjectName, groupWorkflowId, ReconcileInput, ReconcileReport, resyncSignal } from './messages';

export async function reconcileWorkflow(input: ReconcileInput): Promise<ReconcileReport> {
  const running = await temporal.listRunningBlocks({ target: input.target });
  const report: ReconcileReport = {
    target: input.target,
    checkedAt: new Date(Date.now()).toISOString(),
    activeBlocks: running.length,
    strayAddressesRemoved: [],
    groupsResynced: [],
  };
  for (const { group, family } of input.groups) {
    const onFirewall = await firewall.readGroupMembers({ target: input.target, family, group });
    const expected = new Set(running.filter((b) => b.group === group).map((b) => addressObjectName(b.ip)));
    if (differs(onFirewall, expected)) {
      await wf
        .getExternalWorkflowHandle(groupWorkflowId(input.target, group))
        .signal(resyncSignal)
        .then(() => report.groupsResynced.push(group))
        .catch(() => undefined); // no entity yet: nothing of ours can be in that group
    }
    const strays = await temporal.findStrayAddresses({ target: input.target, family });
    for (const name of strays) {
      await firewall.deleteAddress({ target: input.target, family, name });
      report.strayAddressesRemoved.push(name);
    }
  }
  wf.log.info('reconciled', { ...report });
  return report;
}

/** Does the firewall group hold something other than the members its running blocks expect? */
function differs(onFirewall: string[], expected: Set<string>): boolean {
  return onFirewall.length !== expected.size || onFirewall.some((m) => !expected.has(m));
}
