/**
 * The enforcer's memory of its recent removals, so that reconciliation's re-adds need no per-entry check.
 *
 * A re-add (an active block's entry found missing: removed by hand, a wiped feed) must never land after the
 * block's own removal, or an ended block's IP stays blocked. Until now every re-add was confirmed at commit
 * time with a strongly consistent describe of its block: at 30,000 blocks on PostgreSQL that was most of a
 * repair's server work (7.7 ms of server CPU per entry, against 2.0 ms at 10,000: the describes missed the
 * server's capped cache). The enforcer can prove most re-adds itself: it is the set's only writer, so every
 * block that ends removes its IP through it. A re-add carries when its block was listed; the enforcer knows
 * which IPs it removed since then (with a margin for visibility's lag), and vouches for every other one:
 *
 *   - an IP removed since the listing (less the margin) is checked at commit time, as before;
 *   - an IP not removed since, while the log is complete back to then, is written without a check: its
 *     block was running at the listing and has not ended through this set since;
 *   - when the log does not reach back that far (a fresh run, a long-ago listing, a log cut to its bound),
 *     every re-add is checked, as before.
 *
 * What it cannot see: a block that ends without a removal (an operator's Terminate in the window between
 * the listing and the commit). Its entry is an orphan, as after any Terminate, and the next reconciliation
 * removes it (its orphan removals are still checked one by one). After a Reset, the replayed log lacks the
 * removals of the abandoned part of the history; the reset re-applies the blocks' signals (its default), so
 * those removals are committed, and recorded, once more. Plain class, no Temporal calls:
 * unit-tested in test/workflows/release-log.test.ts.
 */
import type { CarriedReleases, SetChange } from './messages';

/** Visibility's lag and the clocks' skew between the listing (worker) and the enforcer (server time), with room to spare. */
export const RELEASE_MARGIN_MS = 5 * 60_000;
/** Removals remembered; beyond, the oldest go and the log is complete only from their time on. */
export const RELEASE_LOG_MAX = 20_000;
/** Removals continue-as-new carries (the newest); the next run's log is complete from the oldest carried. */
export const RELEASE_LOG_CARRIED = 2_000;

export class ReleaseLog {
  /** IP → when its latest removal was committed, in commit order (a re-removed IP moves to the end). */
  private readonly at = new Map<string, number>();
  /** Every removal committed at or after this time is in `at`. */
  private sinceMs: number;

  constructor(startMs: number, carried?: CarriedReleases) {
    this.sinceMs = carried?.sinceMs ?? startMs;
    carried?.ips.forEach((ip, i) => this.at.set(ip, carried.atMs[i]!));
  }

  get size(): number {
    return this.at.size;
  }

  /** The log holds every removal committed at or after this time. */
  get completeSinceMs(): number {
    return this.sinceMs;
  }

  /** A removal of `ip` was committed at `nowMs` (done, or kept because a block holds it again: either way, look again). */
  record(ip: string, nowMs: number): void {
    this.at.delete(ip);
    this.at.set(ip, nowMs);
    while (this.at.size > RELEASE_LOG_MAX) this.forgetOldest();
  }

  /**
   * The change as the enforcer hands it to its commit: a reconciliation re-add that the log vouches for is
   * marked so (no check at commit time); everything else is returned as it is.
   */
  vouch(change: SetChange): SetChange {
    // Only the enforcer vouches: a mark that came with a signal is dropped.
    const { vouched: _ignored, ...c } = change;
    if (c.op !== 'add' || c.owner || c.early || c.listedAtMs === undefined) return c;
    const fromMs = c.listedAtMs - RELEASE_MARGIN_MS;
    if (fromMs < this.sinceMs) return c;
    const removedAt = this.at.get(c.ip);
    return removedAt === undefined || removedAt < fromMs ? { ...c, vouched: true } : c;
  }

  /** The newest removals, for the next run; its log is complete from the oldest of them. */
  carry(limit = RELEASE_LOG_CARRIED): CarriedReleases {
    const entries = [...this.at];
    const kept = entries.slice(Math.max(0, entries.length - limit));
    const dropped = entries.length - kept.length;
    const sinceMs = dropped > 0 ? Math.max(this.sinceMs, entries[dropped - 1]![1] + 1) : this.sinceMs;
    return { sinceMs, ips: kept.map(([ip]) => ip), atMs: kept.map(([, t]) => t) };
  }

  private forgetOldest(): void {
    const [ip, t] = this.at.entries().next().value as [string, number];
    this.at.delete(ip);
    this.sinceMs = Math.max(this.sinceMs, t + 1);
  }
}
