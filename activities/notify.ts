/**
 * The `notify` activity: sends one notification to every configured sink. It throws a retryable failure
 * when a sink fails, so Temporal retries it (workflows/notify.ts: unlimited, capped backoff) until every
 * sink has it; sinks that already have it are remembered in the activity's heartbeat details and are not
 * sent it again on the next attempt.
 *
 * Register beside the other activities: `{ ...createActivities(…), ...createNotifyActivities({ notify: config.notify }) }`.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { NOTIFY_DISABLED, NotifyConfig, NotifyEvent } from '../src/notify/events';
import { sendSyslog, sendWebhook } from '../src/notify/senders';

export interface NotifyDeps {
  /** Default: notifications off (every call succeeds at once, sending nothing). */
  notify?: NotifyConfig;
  fetch?: typeof fetch;
}

interface Progress {
  delivered: string[];
}

export function createNotifyActivities(deps: NotifyDeps) {
  const config = deps.notify ?? NOTIFY_DISABLED;
  return {
    /** Delivers `event` to each sink that should get its kind. Answers the sinks it went to on this attempt. */
    async notify(event: NotifyEvent): Promise<{ sent: string[] }> {
      if (!config.kinds.includes(event.kind)) return { sent: [] };
      const ctx = Context.current();
      const done = new Set((ctx.info.heartbeatDetails as Progress | undefined)?.delivered ?? []);
      const sinks: [string, () => Promise<void>][] = [];
      if (config.webhook) sinks.push(['webhook', () => sendWebhook(config.webhook!, event, deps.fetch)]);
      if (config.syslog) sinks.push(['syslog', () => sendSyslog(config.syslog!, event)]);
      const sent: string[] = [];
      const failures: string[] = [];
      for (const [name, send] of sinks) {
        if (done.has(name)) continue;
        try {
          await send();
          done.add(name);
          sent.push(name);
          ctx.heartbeat({ delivered: [...done] } satisfies Progress);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      if (failures.length) {
        throw ApplicationFailure.retryable(`notification ${event.kind} ${event.id} not delivered: ${failures.join('; ')}`, 'NotifyFailed', { delivered: [...done] });
      }
      return { sent };
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
