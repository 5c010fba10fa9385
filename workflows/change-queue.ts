/**
 * The enforcer's queue: the latest change per IP, in arrival order, with everyone who waits for an answer.
 * Coalescing makes repeats and re-sends cost nothing on the firewall (an add then a remove of one IP in one
 * tick is a single remove), and keeps the queue — and what continue-as-new carries — bounded by the number of
 * distinct IPs, not by the number of messages. Plain class: unit-tested in test/workflows/change-queue.test.ts.
 */
import { blockWorkflowId, QueuedChange, SetAnswer, SetChange } from './messages';

export class ChangeQueue {
  private readonly items = new Map<string, QueuedChange>();

  constructor(carried: QueuedChange[] = []) {
    for (const q of carried) this.items.set(q.change.ip, { change: q.change, waiters: [...q.waiters] });
  }

  get size(): number {
    return this.items.size;
  }

  push(c: SetChange): void {
    const q = this.items.get(c.ip);
    const waiter = c.owner ? { ...c.owner, op: c.op } : undefined;
    if (!q) {
      this.items.set(c.ip, { change: c, waiters: waiter ? [waiter] : [] });
      return;
    }
    // A repair (no owner: reconciliation, a re-check) never overrides what a block asked for: the block is the
    // truth, and its waiter would otherwise be told `ok` for a change that did not happen.
    if (!c.owner && q.change.owner) return;
    q.change = c;
    if (waiter && !q.waiters.some((w) => w.lineage === waiter.lineage && w.op === waiter.op)) q.waiters.push(waiter);
  }

  get(ip: string): QueuedChange | undefined {
    return this.items.get(ip);
  }

  ips(): string[] {
    return [...this.items.keys()];
  }

  /** The oldest `n` entries, removed from the queue. */
  take(n: number): QueuedChange[] {
    const out: QueuedChange[] = [];
    for (const [ip, q] of this.items) {
      if (out.length >= n) break;
      out.push(q);
      this.items.delete(ip);
    }
    return out;
  }

  /** Puts entries back (a tick that could not apply them). A newer change that arrived meanwhile wins. */
  putBack(entries: QueuedChange[]): void {
    for (const q of entries) {
      const newer = this.items.get(q.change.ip);
      if (!newer) {
        this.items.set(q.change.ip, q);
        continue;
      }
      if (!newer.change.owner && q.change.owner) newer.change = q.change; // a repair never overrides a block's change
      for (const w of q.waiters) if (!newer.waiters.some((x) => x.lineage === w.lineage && x.op === w.op)) newer.waiters.push(w);
    }
  }

  /** What continue-as-new carries: at most `limit` entries (the rest are recovered from the blocks). */
  carry(limit: number): { queue: QueuedChange[]; truncated: boolean } {
    const queue = [...this.items.values()].slice(0, limit);
    return { queue, truncated: this.items.size > limit };
  }
}

/**
 * The answers for a tick's entries: each waiter hears how its IP ended up. A waiter whose own change was
 * superseded by a later one for the same IP (an add, then the block's remove) is told `ok`: its request no
 * longer matters, and the block's state machine ignores answers it is not waiting for.
 */
export function answersFor(entry: QueuedChange, outcome: { ok: boolean; reason?: string }): (SetAnswer & { workflowId: string })[] {
  return entry.waiters.map((w) => ({
    workflowId: w.workflowId,
    op: w.op,
    ip: entry.change.ip,
    lineage: w.lineage,
    ok: w.op === entry.change.op ? outcome.ok : true,
    reason: w.op === entry.change.op ? outcome.reason : undefined,
  }));
}

/** What a commit reports, as far as the answers go. */
export interface TickOutcomes {
  outcomes: Record<string, { status: 'ok' | 'failed' | 'retry'; reason?: string }>;
  evicted: { ip: string; reason: string }[];
}

/**
 * A tick's answers from its commit: every waiter of a settled entry, every block rotated out; entries to try
 * again get none (they go back to the queue). The enforcer and its commit (when it answers within the tick)
 * derive them the same way, here.
 */
export function tickAnswers<T extends QueuedChange>(target: string, batch: T[], result: TickOutcomes): { answers: (SetAnswer & { workflowId: string })[]; retry: T[] } {
  const answers: (SetAnswer & { workflowId: string })[] = [];
  const retry: T[] = [];
  for (const entry of batch) {
    const o = result.outcomes[entry.change.ip] ?? { status: 'retry', reason: 'no outcome' };
    if (o.status === 'retry') retry.push(entry);
    else answers.push(...answersFor(entry, { ok: o.status === 'ok', reason: o.reason }));
  }
  for (const e of result.evicted) answers.push({ workflowId: blockWorkflowId(target, e.ip), op: 'evict', ip: e.ip, ok: true, reason: e.reason });
  return { answers, retry };
}
