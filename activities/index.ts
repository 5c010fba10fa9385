/**
 * Activities: every side effect of the workflows, built by createActivities(deps) so that the worker, the
 * benchmarks and the tests inject their own backends and Temporal client. Each one is idempotent (set-based
 * or create-if-absent), because Temporal retries them: that is how a firewall that is down, slow or failing
 * still converges. One file per concern: enforcement (admission, commits), messaging (blocks ⇄ enforcers),
 * reconciliation, and the retired first-release names.
 */
import { createEnforcementActivities, EnforcementDeps } from './enforcement';
import { createLegacyActivities } from './legacy';
import { createMessagingActivities } from './messaging';
import { createReconcileActivities } from './reconcile';

export interface ActivityDeps extends EnforcementDeps {
  taskQueue: string;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createLegacyActivities(),
    ...createEnforcementActivities(deps),
    ...createMessagingActivities(deps),
    ...createReconcileActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
