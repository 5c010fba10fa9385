/**
 * Early adds: the API hands a new attacker's add to the set's enforcer beside the block's Update-with-Start,
 * so the firewall write no longer waits for the block to start, be picked up and run its first task (about
 * 80 ms of a trickle's ~260 ms event → enforced on the 2-core box). The block stays the truth: it still
 * sends its own add and turns active only on the enforcer's answer to that. An early add is a repair sent
 * ahead of time — nobody waits for it, and the enforcer owes the firewall a check on it:
 *
 *   - it is applied at once (the block may not exist yet: there is nothing to check against);
 *   - when the block's own add follows while it is still queued, the two are one change (ChangeQueue);
 *   - once applied, it is withdrawn after CLAIM_MS unless a block's own add was applied meanwhile: the
 *     withdrawal is an ordinary repair removal, checked against the blocks at commit time, so the entry of a
 *     running block (a repeat event for an active block, a block still on its way) is kept, and the entry of
 *     an IP whose block was refused by the worker's admission, or never started, goes;
 *   - in a flood, or with changes already piling up, early adds are dropped: they would only double the
 *     enforcer's messages where ticks are big anyway, and dropping one is always safe (the block's own add
 *     is what the promise rests on).
 *
 * Where the backend takes adds beside its writer (a pushed feed: EnforcementBackend.addAhead), the API writes the
 * entry itself (`ahead`, src/blocks/ahead-writer.ts), once this enforcer holds the message: that takes the
 * enforcer's queue and tick off the way to the firewall too. The enforcer writes nothing for it and only schedules
 * its check, always (the write happens whatever it decides). Because that write may land after anything the
 * enforcer commits meanwhile — the block's own add, even its removal — the check stays scheduled until due: a
 * block's own add marks it claimed (nothing to check), a removal after that unmarks it (check again).
 *
 * If the enforcer is terminated before a withdrawal is due, reconciliation finds the entry as an orphan (no
 * running block holds it) and removes it through the enforcer. Plain class, no Temporal calls: unit-tested
 * in test/workflows/early-adds.test.ts.
 */
import type { PendingWithdrawal, SetChange } from './messages';

/** How long an applied early add waits for its block's own add before it is checked (and withdrawn). */
export const CLAIM_MS = 30_000;
/**
 * The claim time of an early add the API writes in a burst (`SetChange.claimMs`): a burst's blocks run their first
 * task late (5,000 new blocks: 37 s p50, 55 s p95 from start to pick-up on the 2-core box), and an entry checked
 * before its block claims it costs a check that waits on the block's open task (activities/enforcement.ts).
 */
export const BURST_CLAIM_MS = 300_000;
/** The longest claim time the enforcer takes from a message. */
export const MAX_CLAIM_MS = 600_000;
/**
 * A burst's early adds: at most this many queued and withdrawals pending at an enforcer, together (beyond, they are
 * dropped), and sent per set by one API process within BURST_CLAIM_MS (src/blocks/ahead-writer.ts). Each is a check
 * continue-as-new carries (~90 bytes: 0.7 MB at most; a payload may be 2 MB).
 */
export const EARLY_BURST_MAX = 8_000;

/** An early add's claim time: CLAIM_MS, or the burst's it carries (bounded). */
function claimTime(c: SetChange): number {
  return Math.min(Math.max(c.claimMs ?? CLAIM_MS, CLAIM_MS), MAX_CLAIM_MS);
}
/** Early adds are dropped once this many changes wait (and not sent by an API process with more block requests in flight, nor for a while after: src/blocks/burst-gate.ts). */
export const EARLY_QUEUE_MAX = 32;
/** At most this many withdrawals pending (and carried by continue-as-new); beyond, early adds are dropped. */
export const EARLY_PENDING_MAX = 2000;
/**
 * The checks due within this much of the first one go out together: one timer and one tick for many, not one
 * per entry (at 20 new blocks/s, one a second instead of twenty: measured, a wake-up per entry slowed the
 * enforcer's other work down by half).
 */
export const CHECK_BATCH_MS = 5_000;


export class EarlyAdds {
  /**
   * In arrival order: a re-applied entry moves to the end. That is due order while every entry waits CLAIM_MS;
   * a burst's (`claimMs`) wait longer, so the scans below look at every entry, not up to the first one not due.
   */
  private readonly pending = new Map<string, PendingWithdrawal>();
  /** When ahead() last swept the due claimed entries out. */
  private sweptAtMs?: number;

  /**
   * @param batched checks wait for CHECK_BATCH_MS and claimed entries never wake the enforcer (the enforcer's
   *   `early-check-batching` patch); false: a wake-up per entry, as histories of before recorded it.
   */
  constructor(
    carried: PendingWithdrawal[] = [],
    private readonly batched = true,
  ) {
    for (const p of carried) this.pending.set(p.ip, p);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Whether to queue an early add now (false: drop it; the block's own add follows). */
  accept(queued: number, flood: boolean): boolean {
    return !flood && queued < EARLY_QUEUE_MAX && this.pending.size < EARLY_PENDING_MAX;
  }

  /**
   * Whether to queue a burst's early add (`claimMs`: the API sends one only in a burst, once its block has started,
   * to a set written in bulk by the enforcer's flood ticks): kept in a flood and behind a backlog — that is when it
   * is sent — while what is queued and pending stays within EARLY_BURST_MAX (what continue-as-new carries).
   */
  acceptBurst(queued: number): boolean {
    return queued + this.pending.size < EARLY_BURST_MAX;
  }

  /**
   * An early add the API writes itself (`ahead`), announced before its write: its check is scheduled now, and
   * always (the write happens whatever the enforcer decides, so it is never dropped).
   */
  ahead(c: SetChange, nowMs: number): void {
    // Claimed entries never wake the enforcer (nextDueMs): the due ones go here, as new ones come — one sweep per
    // moment of workflow time (a message carries up to 500 changes, and thousands may be pending in a burst).
    if (this.batched && this.sweptAtMs !== nowMs) {
      this.sweptAtMs = nowMs;
      for (const [ip, p] of this.pending) if (p.dueAtMs <= nowMs && p.claimed) this.pending.delete(ip);
    }
    this.pending.delete(c.ip);
    this.pending.set(c.ip, { ip: c.ip, family: c.family, dueAtMs: nowMs + claimTime(c), ahead: true });
  }

  /**
   * After a commit, with the changes it settled (outcome ok): an early add → its withdrawal is scheduled; a
   * block's own add, a removal (done, or kept because a block holds the IP again), an entry rotated out →
   * nothing left to withdraw for that IP. A repair's add changes nothing here (it may have been skipped).
   * An entry the API writes (`ahead`) may land after any of these, so it stays until due: a block's own add
   * marks it claimed (nothing to check then), a later removal unmarks it (the late write would undo it) and makes
   * it due within CLAIM_MS at the latest: a burst's claim time is for its block to come, not for an unblock to
   * wait on (a burst's write lingers; one that lands after the block's removal is checked as soon as a calm one).
   */
  committed(settled: SetChange[], evicted: string[], nowMs: number): void {
    for (const c of settled) {
      const p = this.pending.get(c.ip);
      if (p?.ahead) {
        if (c.op === 'add' && c.owner) p.claimed = true;
        else if (c.op === 'remove') this.unclaim(p, nowMs);
        else if (c.early) delete p.claimed;
        continue;
      }
      if (c.op === 'remove' || c.owner || (c.op === 'add' && c.early)) this.pending.delete(c.ip);
      if (c.op === 'add' && c.early) this.pending.set(c.ip, { ip: c.ip, family: c.family, dueAtMs: nowMs + claimTime(c) });
    }
    for (const ip of evicted) {
      const p = this.pending.get(ip);
      if (p?.ahead) this.unclaim(p, nowMs);
      else this.pending.delete(ip);
    }
  }

  /** An `ahead` entry whose IP left the set: checked again, within CLAIM_MS (entries of a calm claim time are due by then already). */
  private unclaim(p: PendingWithdrawal, nowMs: number): void {
    delete p.claimed;
    p.dueAtMs = Math.min(p.dueAtMs, nowMs + CLAIM_MS);
  }

  /** The withdrawals due by `nowMs`, as repair removals (checked against the blocks at commit time). */
  due(nowMs: number): SetChange[] {
    const out: SetChange[] = [];
    for (const [ip, p] of this.pending) {
      if (p.dueAtMs > nowMs) continue;
      if (!p.claimed) out.push({ op: 'remove', ip, family: p.family });
      this.pending.delete(ip);
    }
    return out;
  }

  /**
   * When to look next: the first entry with something to check, plus CHECK_BATCH_MS (those due meanwhile come
   * along); undefined when none has. A claimed entry is never waited for.
   */
  nextDueMs(): number | undefined {
    if (!this.batched) return this.pending.values().next().value?.dueAtMs;
    let first: number | undefined;
    for (const p of this.pending.values()) if (!p.claimed && (first === undefined || p.dueAtMs < first)) first = p.dueAtMs;
    return first === undefined ? undefined : first + CHECK_BATCH_MS;
  }

  carry(): PendingWithdrawal[] {
    return [...this.pending.values()];
  }
}
