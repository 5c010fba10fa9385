import { proxyActivities, proxyLocalActivities, type RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../../activities';

/**
 * Firewall calls retry without limit (backoff capped at one minute): a firewall that is down, slow or
 * failing must delay a block or an unblock, never lose it. Only answers that no retry can change
 * (policy rejection, the firewall refusing the object itself) fail at once.
 */
const FIREWALL_RETRY: RetryPolicy = {
  initialInterval: '500ms',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  nonRetryableErrorTypes: ['PolicyRejected', 'FirewallRejected', 'UnknownTarget'],
};

/** Firewall calls off the hot path (reconciliation): regular activities, heartbeating. */
export const firewall = proxyActivities<Activities>({
  startToCloseTimeout: '45s',
  heartbeatTimeout: '15s',
  retry: FIREWALL_RETRY,
});

/**
 * The short, idempotent firewall calls every block makes (create or delete its address, the group's
 * member-list write) run as local activities: the worker runs them inside the workflow task and records
 * the result as a marker, which saves an activity task's round trips through the server and four history
 * events per call — the server's SQLite writes are what bounds a burst. A worker that dies mid-call loses
 * its workflow task, and the next worker runs the call again (hence idempotent). Past the threshold,
 * retries back off on a durable timer instead of holding the workflow task open.
 */
export const firewallLocal = proxyLocalActivities<Activities>({
  startToCloseTimeout: '45s',
  localRetryThreshold: '10s',
  retry: FIREWALL_RETRY,
});

/** Temporal-side helpers for reconciliation (visibility, describes): quick, heartbeating. */
export const temporal = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * A block's join or leave (askGroup) as a local activity, retried without limit: a Temporal frontend that
 * is briefly unreachable must delay a join or a leave, never drop it.
 */
export const messaging = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30s',
  localRetryThreshold: '10s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * The group's answers to a tick (up to a thousand signals) as a regular activity: a local one would hold
 * the group's workflow task open while they go out, and with it every join that arrives meanwhile.
 */
export const answering = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});
