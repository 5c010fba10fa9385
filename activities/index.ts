/**
 * Activities: every side effect of the workflows, built by createActivities(deps) so that the worker, the
 * benchmarks and the tests inject their own backends and Temporal client. Each one is idempotent (set-based
 * or create-if-absent), because Temporal retries them: that is how a firewall that is down, slow or failing
 * still converges. One file per concern: enforcement (admission, commits), messaging (blocks ⇄ enforcers),
 * reconciliation, still-active (is a block's attacker still at it?), and the retired first-release names.
 */
import { createEnforcementActivities, EnforcementDeps } from './enforcement';
import { createLegacyActivities } from './legacy';
import { createMessagingActivities } from './messaging';
import { createReconcileActivities } from './reconcile';
import { createStillActiveActivities, StillActiveDeps, withStillActiveSettings } from './still-active';

export interface ActivityDeps extends EnforcementDeps, StillActiveDeps {
  taskQueue: string;
}

export function createActivities(deps: ActivityDeps) {
  const enforcement = createEnforcementActivities(deps);
  return {
    ...createLegacyActivities(),
    ...enforcement,
    // STILL_ACTIVE: admissions carry its settings when it is on (see still-active.ts).
    admitBlock: withStillActiveSettings(enforcement.admitBlock, deps),
    ...createMessagingActivities(deps),
    ...createReconcileActivities(deps),
    ...createStillActiveActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
