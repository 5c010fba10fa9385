/**
 * Still active = seen again by our own intakes. Needs no ADS credentials: every ADS event that reaches a
 * block (webhook, syslog) is recorded in it; the workflow time the last repeat one arrived is `lastEventAtMs`.
 *
 * "Seen" means: the block recorded an ADS event for the IP after the start of its current period — after
 * the event that started the block, or after its previous still-active check. (Not "within the last
 * window": every recorded event already moves the expiry to at least its arrival + TTL, so an event inside
 * the last window before the question could only exist when the TTL is shorter than twice the window,
 * and then the starting event itself would always count.) Manual blocks record no ADS event.
 */
import type { StillActiveAnswer, StillActivePort, StillActiveQuestion } from './port';

export function intakeVerdict(q: Pick<StillActiveQuestion, 'sinceMs' | 'lastEventAtMs'>): StillActiveAnswer {
  const seen = q.lastEventAtMs !== undefined && q.lastEventAtMs > q.sinceMs;
  return {
    verdict: seen ? 'seen' : 'not-seen',
    source: 'intake',
    detail: seen ? `ADS event received at ${new Date(q.lastEventAtMs!).toISOString()}` : `no ADS event since ${new Date(q.sinceMs).toISOString()}`,
  };
}

export class IntakeStillActive implements StillActivePort {
  readonly source = 'intake' as const;
  async ask(q: StillActiveQuestion): Promise<StillActiveAnswer> {
    return intakeVerdict(q);
  }
  async close(): Promise<void> {}
}
