/**
 * How the workflows call their activities: which run inside the workflow task (local: short, idempotent,
 * on the hot path) and which as regular tasks, and how each retries. One place, so the retry story can be
 * read at once: nothing retries a permanent error forever while holding others up.
 */
import { proxyActivities, proxyLocalActivities, type RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../activities';

/** Delivery of a message or an in-process check: retried without limit, a frontend hiccup delays, never drops. */
const UNTIL_DONE: RetryPolicy = { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' };

/**
 * A block's admission (full safety policy with the worker's configuration, the enforcement set) and its
 * requests to the enforcer (an Update-with-Start whose result carries the answer once the change is committed):
 * local activities, so the block's first workflow task does both without another round trip through the server.
 */
export const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30s',
  localRetryThreshold: '10s',
  retry: { ...UNTIL_DONE, nonRetryableErrorTypes: ['UnknownTarget'] },
});

/**
 * One tick of an enforcer: a local activity (no activity-task round trips on the hot path). A few quick
 * tries only: when the firewall stays down the enforcer itself backs off between ticks, so that it keeps
 * taking messages and can continue as new during an outage of hours.
 */
export const setWriter = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10s',
  retry: { initialInterval: '300ms', backoffCoefficient: 2, maximumInterval: '3s', maximumAttempts: 3 },
});

/**
 * The enforcer's answers to a tick (up to a thousand signals) as a regular activity: a local one would hold
 * the enforcer's workflow task open while they go out, and with it every change that arrives meanwhile.
 */
export const answering = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30s',
  retry: UNTIL_DONE,
});

/** Reconciliation and recovery passes: bounded tries, bounded time; the next schedule tick tries again. */
export const repairing = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '60s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 3 },
});
