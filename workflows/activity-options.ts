import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

/**
 * Firewall calls retry without limit (backoff capped at one minute): a firewall that is down, slow or
 * failing must delay a block or an unblock, never lose it. Only answers that no retry can change
 * (policy rejection, the firewall refusing the object itself) fail at once.
 */
export const firewall = proxyActivities<Activities>({
  startToCloseTimeout: '45s',
  heartbeatTimeout: '15s',
  retry: {
    initialInterval: '500ms',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    nonRetryableErrorTypes: ['PolicyRejected', 'FirewallRejected', 'UnknownTarget'],
  },
});

/** Temporal-side helpers (visibility, starting the group entity): quick, retried a few times. */
export const temporal = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});
