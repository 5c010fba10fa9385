/**
 * How big an enforcer tick is, and whether to wait for a bigger one: a plain module (no Temporal calls), so
 * the rule is unit-tested alone (test/workflows/batch-policy.test.ts) and the enforcer stays thin.
 *
 * A trickle must go out at once (every millisecond before the write is traffic let in); a flood of thousands
 * should go out in few, large commits (a feed push or a banned-list add takes thousands of IPs in one call;
 * the shards of a group cost one read and one write per tick). The two are told apart by the arrival rate
 * the enforcer itself saw over the last seconds (workflow time: deterministic on replay), or by a backlog at
 * the tick (more waiting than a trickle piles up during one commit). During a flood the
 * tick waits — at most `maxWaitMs` — for `batch` changes: seconds of delay inside a burst that takes minutes,
 * for a fraction of the firewall calls. The numbers are each backend's (the port's `batching`), reported back
 * with every commit, so a worker restart retunes running enforcers.
 */

export interface Batching {
  /** Most changes one commit takes (a group's commit creates one address object per new entry). */
  maxPerTick: number;
  /**
   * Wait for a bigger tick when at least `arrivals` changes came in the last `windowMs`, or when `queued`
   * already wait at the tick (a backlog: changes come faster than ticks go, whatever the box's speed).
   */
  burst?: { arrivals: number; windowMs: number; queued: number; batch: number; maxWaitMs: number };
}

/** When a commit result carries no tuning yet (a first tick, histories of before). */
export const DEFAULT_BATCHING: Batching = { maxPerTick: 1000 };

/** Changes that arrived, by workflow time; only the last window is kept (bounded by the signals in it). */
export class ArrivalLog {
  private readonly marks: { atMs: number; n: number }[] = [];

  constructor(private readonly keepMs = 10_000) {}

  add(atMs: number, n: number): void {
    if (n <= 0) return;
    this.marks.push({ atMs, n });
    this.prune(atMs);
  }

  /** Changes that arrived in (now - windowMs, now]. */
  countSince(nowMs: number, windowMs: number): number {
    this.prune(nowMs);
    let n = 0;
    for (let i = this.marks.length - 1; i >= 0 && this.marks[i].atMs > nowMs - windowMs; i--) n += this.marks[i].n;
    return n;
  }

  private prune(nowMs: number): void {
    let drop = 0;
    while (drop < this.marks.length && this.marks[drop].atMs <= nowMs - this.keepMs) drop++;
    if (drop) this.marks.splice(0, drop);
  }
}

/** What a tick waits for in a flood: the burst batch, never more than one tick takes. */
export function floodBatchSize(b: Batching): number {
  return Math.min(b.burst?.batch ?? b.maxPerTick, b.maxPerTick);
}

/**
 * How long the next tick should wait for more changes: 0 = commit now. Only in a flood, only while the
 * queue is short of a full burst batch.
 */
export function burstWaitMs(b: Batching, log: ArrivalLog, nowMs: number, queued: number): number {
  if (!b.burst || queued >= floodBatchSize(b)) return 0;
  const flood = queued >= b.burst.queued || log.countSince(nowMs, b.burst.windowMs) >= b.burst.arrivals;
  return flood ? b.burst.maxWaitMs : 0;
}
