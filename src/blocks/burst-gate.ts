/**
 * Whether this API process is in a burst, for the early adds (workflows/early-adds.ts; in a burst only those the
 * API writes in bulk go, lingering for a batch: src/blocks/ahead-writer.ts): a burst is more than
 * EARLY_QUEUE_MAX block requests in flight, and it lasts until BURST_HOLD_MS after the last moment there were.
 * Why the hold: in a burst the requests in flight dip below the mark for a moment whenever a wave of answers goes
 * out, and every early add sent in such a dip is a firewall write of its own (measured: 39 of the feed's 76 calls
 * in a 5,000-IP burst). A trickle — 20 new attackers a second keeps about six in flight — never reaches the mark.
 * A webhook request that carries many lines announces them all before they run (BlockService.announce), so the
 * first request of a burst already is one: no early adds for its first lines either.
 * Plain class, no clock of its own: unit-tested in test/blocks/burst-gate.test.ts.
 */
import { EARLY_QUEUE_MAX } from '../../workflows/early-adds';

/** How long after the last moment above the mark early adds stay off. */
export const BURST_HOLD_MS = 10_000;

export class BurstGate {
  private inFlight = 0;
  private holdUntilMs = 0;

  constructor(
    private readonly max = EARLY_QUEUE_MAX,
    private readonly holdMs = BURST_HOLD_MS,
  ) {}

  /** Block requests start (or are announced: a webhook request's lines, before they run). */
  enter(nowMs: number, n = 1): void {
    this.inFlight += n;
    if (this.inFlight > this.max) this.holdUntilMs = nowMs + this.holdMs;
  }

  /** Block requests are answered. */
  leave(nowMs: number, n = 1): void {
    if (this.inFlight > this.max) this.holdUntilMs = nowMs + this.holdMs;
    this.inFlight -= n;
  }

  /** No burst now, nor within the hold: an early add is worth its own write. */
  calm(nowMs: number): boolean {
    return this.inFlight <= this.max && nowMs >= this.holdUntilMs;
  }
}
