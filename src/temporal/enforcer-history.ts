/**
 * The changes an enforcer's history shows it took: `submitChanges` Updates (accepted: the event is written when
 * the enforcer's task that took it completes) and `changes` signals of senders of before (received). One home
 * for reading them, for the bench's per-hop breakdown and the tests.
 */
import { temporal } from '@temporalio/proto';
import type { SetChange } from '../../workflows/messages';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payloads = temporal.api.common.v1.IPayloads | null | undefined;

export interface TakenChanges {
  /** Server time of the event (epoch ms). */
  at: number;
  via: 'update' | 'signal';
  changes: SetChange[];
}

export function takenChanges(events: HistoryEvent[]): TakenChanges[] {
  const out: TakenChanges[] = [];
  for (const e of events) {
    const s = e.workflowExecutionSignaledEventAttributes;
    const u = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
    const [via, input] = s?.signalName === 'changes' ? (['signal', s.input] as const) : u?.name === 'submitChanges' ? (['update', u.args] as const) : [undefined, undefined];
    if (!via) continue;
    const changes = firstPayload(input) as SetChange[] | undefined;
    if (Array.isArray(changes)) out.push({ at: Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6, via, changes });
  }
  return out;
}

function firstPayload(p: Payloads): unknown {
  const d = p?.payloads?.[0]?.data;
  if (!d) return undefined;
  try {
    return JSON.parse(Buffer.from(d).toString('utf8'));
  } catch {
    return undefined;
  }
}
