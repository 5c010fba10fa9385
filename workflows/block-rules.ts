/**
 * The rules of one block, as plain functions over its carried state: what a repeat event or an extend does
 * to the expiry (escalation capped by the block's maximum), which answers of the enforcer a block accepts,
 * when to re-send a request and when to tell the firewall a new expiry. No Temporal API here, so the rules
 * are unit-tested directly (test/workflows/block-rules.test.ts); workflows/block.ts does the waiting.
 */
import type { Asked, BlockCarry, BlockInput, EventRef, ExtendRequest, Extension, SetAnswer } from './messages';

export const KEEP_EVENTS = 50;
export const KEEP_EXTENSIONS = 50;
export const SEARCHABLE_EVENT_IDS = 20;
/** A block continues as new after this many messages (events, extends, answers…) in one run: the server allows 2,000 Updates per run. */
export const MESSAGES_PER_RUN = 400;
/** A request the enforcer has not answered is sent again after this long, doubling up to the maximum. */
export const RESEND_FIRST_MS = 2 * 60_000;
export const RESEND_MAX_MS = 30 * 60_000;
/**
 * Backends that keep an expiry on the firewall get the block's new expiry once it moved this far past the one
 * they hold; they add more than this as margin, so the firewall never lifts a block before the block ends.
 */
export const EXPIRY_REFRESH_SLACK_MS = 5 * 60_000;

export function freshCarry(input: BlockInput, now: number): BlockCarry {
  return {
    state: 'pending',
    createdAtMs: now,
    expiresAtMs: now + Math.min(input.ttlMs, input.maxTtlMs),
    currentTtlMs: Math.min(input.ttlMs, input.maxTtlMs),
    events: input.event ? [input.event] : [],
    eventCount: input.event ? 1 : 0,
    extensions: [],
  };
}

export function isOver(s: BlockCarry): boolean {
  return s.state === 'releasing' || s.state === 'expired' || s.state === 'cancelled' || s.state === 'evicted' || s.state === 'rejected' || s.state === 'failed' || !!s.cancelledBy || !!s.evicted;
}

export function hasEvent(s: BlockCarry, id: string): boolean {
  return s.events.some((e) => e.id === id);
}

/**
 * A repeat event moves the expiry to now + TTL (escalated for repeat offenders if configured), never earlier
 * and never beyond the block's maximum. Returns whether the expiry moved.
 */
export function recordEvent(s: BlockCarry, input: BlockInput, event: EventRef, ttlMs: number, now: number): 'started' | 'extended' | 'unchanged' {
  const first = s.eventCount === 0;
  s.events = [...s.events, event].slice(-KEEP_EVENTS);
  s.eventCount++;
  let ttl = Math.min(ttlMs, input.maxTtlMs);
  const esc = input.escalation;
  if (esc && !first) {
    s.currentTtlMs = Math.min(Math.max(s.currentTtlMs, ttl) * esc.factor, esc.maxTtlMs, input.maxTtlMs);
    ttl = s.currentTtlMs;
  }
  const moved = moveExpiry(s, now + ttl, now, 'event', `ads:${event.id}`);
  return first ? 'started' : moved ? 'extended' : 'unchanged';
}

export function extendProblem(s: BlockCarry, input: BlockInput, req: ExtendRequest, now: number): string | undefined {
  if (isOver(s)) return `the block is ${s.cancelledBy ? 'cancelled' : s.evicted ? 'evicted' : s.state}: nothing to extend`;
  const target = extendTarget(s, req);
  if (target === undefined) return 'give exactly one of "by" (a positive duration) or "until" (a time)';
  if (target <= s.expiresAtMs) return `the new expiry ${iso(target)} is not after the current one ${iso(s.expiresAtMs)}: to shorten a block, unblock it`;
  if (target - now > input.maxTtlMs) return `the new expiry ${iso(target)} is further than the maximum block time (BLOCK_MAX_TTL) allows`;
  return undefined;
}

export function extend(s: BlockCarry, req: ExtendRequest, now: number): void {
  moveExpiry(s, extendTarget(s, req)!, now, 'extend', req.actor);
}

function extendTarget(s: BlockCarry, req: ExtendRequest): number | undefined {
  if (req.byMs !== undefined && req.untilMs === undefined && req.byMs > 0) return s.expiresAtMs + req.byMs;
  if (req.untilMs !== undefined && req.byMs === undefined) return req.untilMs;
  return undefined;
}

function moveExpiry(s: BlockCarry, toMs: number, now: number, cause: Extension['cause'], actor: string): boolean {
  if (toMs <= s.expiresAtMs) return false;
  const ext: Extension = { atMs: now, fromMs: s.expiresAtMs, toMs, actor, cause };
  s.extensions = [...s.extensions, ext].slice(-KEEP_EXTENSIONS);
  s.expiresAtMs = toMs;
  return true;
}

/**
 * Whether an enforcer answer concerns this block now: the right lineage (a late answer for an earlier block of
 * the same IP is ignored), and an answer to the request outstanding in this state.
 */
export function accepts(s: BlockCarry, a: SetAnswer, lineage: string): boolean {
  if (a.lineage !== undefined && a.lineage !== lineage) return false;
  if (a.op === 'evict') return s.state === 'active' || s.state === 'pending';
  if (a.op === 'add') return (s.state === 'pending' || s.state === 'active') && s.asked?.op === 'add';
  return s.state === 'releasing' && s.asked?.op === 'remove';
}

/** When an outstanding request is sent again: 2 min after the first send, doubling to 30 min. */
export function resendDelayMs(asked: Asked): number {
  return Math.min(RESEND_FIRST_MS * 2 ** Math.max(0, asked.sends - 1), RESEND_MAX_MS);
}

/** Whether the firewall must hear the block's new expiry (backends that lift entries by themselves). */
export function needsExpiryRefresh(s: BlockCarry): boolean {
  return !!s.enforcement?.refreshOnExtend && s.pushedExpiryMs !== undefined && s.expiresAtMs - s.pushedExpiryMs > EXPIRY_REFRESH_SLACK_MS;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** "in 5h 59m", "3m ago": for the Web UI's details. */
export function relative(ms: number, now: number): string {
  const d = Math.abs(ms - now);
  const parts = d >= 86_400_000 ? [Math.floor(d / 86_400_000) + 'd', Math.floor((d % 86_400_000) / 3_600_000) + 'h'] : d >= 3_600_000 ? [Math.floor(d / 3_600_000) + 'h', Math.floor((d % 3_600_000) / 60_000) + 'm'] : [Math.max(0, Math.round(d / 60_000)) + 'm'];
  return ms >= now ? `in ${parts.join(' ')}` : `${parts.join(' ')} ago`;
}
