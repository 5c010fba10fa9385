/**
 * Activities: every side effect of the workflows, built by createActivities(deps) so that the worker, the
 * benchmarks and the tests inject their own backends and Temporal client. Each one is idempotent (set-based
 * or create-if-absent), because Temporal retries them: that is how a firewall that is down, slow or failing
 * still converges. One file per concern: enforcement (admission, commits), messaging (blocks ⇄ enforcers),
 * reconciliation, still-active (is a block's attacker still at it?), and the retired first-release names.
 */
import { createEnforcementActivities, EnforcementDeps } from './enforcement';
import { createLegacyActivities } from './legacy';
import { answerOf, createMessagingActivities, sendToEnforcer } from './messaging';
import type { SetAnswer, SetChange } from '../workflows/messages';
import { createReconcileActivities } from './reconcile';
import { createStillActiveActivities, StillActiveDeps, withStillActiveSettings } from './still-active';

export interface ActivityDeps extends EnforcementDeps, StillActiveDeps {
  taskQueue: string;
}

export function createActivities(deps: ActivityDeps) {
  const enforcement = createEnforcementActivities(deps);
  // STILL_ACTIVE: admissions carry its settings when it is on (see still-active.ts).
  const admitBlock = withStillActiveSettings(enforcement.admitBlock, deps);
  return {
    ...createLegacyActivities(),
    ...enforcement,
    admitBlock,
    /**
     * A new block's first step in one local activity: the admission, then — only when admitted — its add to
     * the set the admission names. One activation less on the way to the firewall than admitBlock followed
     * by askEnforcer (each local activity is a round trip between the workflow and the activity side).
     * With the enforcer's answer when it committed the add within its short wait: the block is then active at
     * the end of its first workflow task.
     */
    async admitAndAsk(input: { target: string; ip: string; family: 'ipv4' | 'ipv6'; add: Pick<SetChange, 'owner' | 'expiresAtMs' | 'label'> }): Promise<Awaited<ReturnType<typeof admitBlock>> & { answer?: SetAnswer }> {
      const admission = await admitBlock(input);
      if (!admission.ok) return admission;
      const answer = answerOf(await sendToEnforcer(deps, input.target, admission.enforcement.set, [{ ...input.add, op: 'add', ip: input.ip, family: input.family }]));
      return answer ? { ...admission, answer } : admission;
    },
    ...createMessagingActivities(deps),
    ...createReconcileActivities(deps),
    ...createStillActiveActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
