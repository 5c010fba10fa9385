/**
 * Notifications from workflow code, delivered durably (retried by Temporal without limit, backoff capped)
 * and never in the way of a block: the caller does not wait for delivery.
 *
 *  - `notify(event)`: fire-and-forget activity, for a workflow that keeps running (the activity outlives
 *    nothing: if the workflow ends first, the attempt in flight is abandoned).
 *  - `Notifier`: the same, plus `beforeEnd()`, which a workflow awaits right before it returns or continues
 *    as new: every notification not yet delivered is handed to its own `notifyWorkflow` (an abandoned child),
 *    so it survives the end of its sender. It waits for those starts only (one round trip), never for
 *    delivery.
 *  - `notifyWorkflow(event)`: one notification as its own workflow (the API's "rejected" and the worker's
 *    "firewall-failing" start it; the Notifier hands off to it).
 *
 * Delivery is at least once: a receiver drops an `id` it has seen.
 */
import { ActivityFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type { NotifyActivities } from '../activities/notify';
import type { NotifyEvent, NotifyInput, NotifyKind } from '../src/notify/events';

/**
 * Unlimited attempts (no maximumAttempts: a sink that is down for hours still gets every notification once it
 * is back); the backoff is capped at 30 s so that a sink that comes back is served within half a minute.
 */
export const NOTIFY_RETRY: wf.RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' };

const sinks = wf.proxyActivities<NotifyActivities>({
  // Each sink call is bounded by its own timeout (10 s); two sinks in a row fit.
  startToCloseTimeout: '30s',
  retry: NOTIFY_RETRY,
});

export const notifyWorkflowId = (eventId: string): string => `notify:${eventId}`;

function complete(input: NotifyInput): NotifyEvent {
  const info = wf.workflowInfo();
  return { ...input, id: input.id ?? `${info.workflowId}:${wf.uuid4()}`, at: input.at ?? new Date(Date.now()).toISOString(), workflowId: input.workflowId ?? info.workflowId };
}

/**
 * A delivery that ended without success (cancelled with its workflow, or failed for good) is no error of
 * the caller's; anything else (a bug: bad options) is rethrown, so that it fails the workflow task loudly
 * instead of silently dropping notifications.
 */
function settled(err: unknown): false {
  if (err instanceof ActivityFailure || wf.isCancellation(err)) return false;
  throw err;
}

/**
 * Fire-and-forget: schedules the delivery and returns at once. The returned promise does not reject on a
 * failed or cancelled delivery (it resolves false), so ignoring it is safe.
 * `enabled`: the kinds configured (NOTIFY_EVENTS with a sink); a kind not in it schedules nothing.
 */
export function notify(input: NotifyInput, enabled?: readonly NotifyKind[]): Promise<boolean> {
  if (enabled && !enabled.includes(input.kind)) return Promise.resolve(false);
  return sinks.notify(complete(input)).then(() => true, settled);
}

/** Tracks a workflow's notifications so that `beforeEnd()` can hand the undelivered ones over. */
export class Notifier {
  private readonly pending = new Map<string, NotifyEvent>();

  constructor(private readonly enabled?: readonly NotifyKind[]) {}

  notify(input: NotifyInput): void {
    if (this.enabled && !this.enabled.includes(input.kind)) return;
    const event = complete(input);
    this.pending.set(event.id, event);
    // A delivery cancelled with the workflow was handed over by beforeEnd().
    void sinks.notify(event).then(() => this.pending.delete(event.id), settled);
  }

  /** Notifications scheduled and not yet delivered. */
  get undelivered(): number {
    return this.pending.size;
  }

  /**
   * Await right before returning or continuing as new: each undelivered notification goes to its own
   * `notifyWorkflow`, which outlives this one. Its activity here may still deliver too (same id).
   */
  async beforeEnd(): Promise<void> {
    const handOver = [...this.pending.values()];
    this.pending.clear();
    for (const event of handOver) {
      try {
        await wf.startChild(notifyWorkflow, {
          workflowId: notifyWorkflowId(event.id),
          args: [event],
          parentClosePolicy: 'ABANDON',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        });
      } catch (err) {
        // Already handed over (or delivered by a run that was reset): nothing to do.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  }
}

/** One notification, delivered durably. */
export async function notifyWorkflow(event: NotifyEvent): Promise<void> {
  await sinks.notify(event);
}
