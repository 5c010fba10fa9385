/**
 * The rules of one block, as plain functions over its carried state: what a repeat event or an extend does
 * to the expiry (escalation capped by the block's maximum), which answers of the enforcer a block accepts,
 * when to re-send a request and when to tell the firewall a new expiry. No Temporal API here, so the rules
 * are unit-tested directly (test/workflows/block-rules.test.ts); workflows/block.ts does the waiting.
 */
import type { StillActiveAnswer, StillActiveQuestion } from '../src/still-active/port';
import type { Asked, BlockCarry, BlockInput, EventRef, ExtendRequest, Extension, SetAnswer, StillActiveCheck } from './messages';

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
  if (!first && !isManual(event)) s.lastAdsEventAtMs = now; // an ADS event after the one that started the block: STILL_ACTIVE=intake
  const moved = moveExpiry(s, now + repeatTtl(s, input, ttlMs, first), now, 'event', `ads:${event.id}`);
  return first ? 'started' : moved ? 'extended' : 'unchanged';
}

/** The TTL a repeat offence earns: the given TTL, escalated for a repeat (capped), never beyond the block's maximum. */
function repeatTtl(s: BlockCarry, input: BlockInput, ttlMs: number, first: boolean): number {
  const ttl = Math.min(ttlMs, input.maxTtlMs);
  const esc = input.escalation;
  if (!esc || first) return ttl;
  s.currentTtlMs = Math.min(Math.max(s.currentTtlMs, ttl) * esc.factor, esc.maxTtlMs, input.maxTtlMs);
  return s.currentTtlMs;
}

const isManual = (e: EventRef): boolean => e.id.startsWith('manual:');

/**
 * STILL_ACTIVE: when this block asks whether its attacker is still active — STILL_ACTIVE_WINDOW before its
 * expiry, once per expiry — or undefined when it will not ask: the option was off at admission, the block
 * holds no ADS event (a manual block), or its maximum total time is already reached.
 */
export function stillActiveDueMs(s: BlockCarry): number | undefined {
  const sa = s.stillActive;
  if (!sa || s.state !== 'active' || isOver(s)) return undefined;
  if (s.stillActiveAskedForMs === s.expiresAtMs) return undefined;
  if (!s.events.some((e) => !isManual(e))) return undefined;
  if (s.expiresAtMs >= s.createdAtMs + sa.maxTotalMs) return undefined;
  return s.expiresAtMs - sa.windowMs;
}

/** What the block asks (the port's question), in workflow time. */
export function stillActiveQuestion(s: BlockCarry, input: BlockInput, now: number): StillActiveQuestion {
  return {
    target: input.target,
    ip: input.ip,
    family: input.family,
    atMs: now,
    windowMs: s.stillActive!.windowMs,
    sinceMs: s.stillActiveLast?.atMs ?? s.createdAtMs,
    ...(s.lastAdsEventAtMs !== undefined ? { lastEventAtMs: s.lastAdsEventAtMs } : {}),
  };
}

/**
 * Records the answer; `seen` extends like a repeat event at this moment (escalation, BLOCK_MAX_TTL per
 * extension), never past the block's start + STILL_ACTIVE_MAX_TOTAL. `not-seen` and `unknown` change
 * nothing: the block lifts on time. A block cancelled or evicted while it asked is not extended.
 */
export function applyStillActive(s: BlockCarry, input: BlockInput, askedAtMs: number, answer: StillActiveAnswer, now: number): void {
  const check: StillActiveCheck = { atMs: askedAtMs, source: answer.source, verdict: answer.verdict, detail: answer.detail };
  if (answer.verdict === 'seen' && !isOver(s) && s.stillActive) {
    const capMs = s.createdAtMs + s.stillActive.maxTotalMs;
    const toMs = Math.min(now + repeatTtl(s, input, input.ttlMs, false), capMs);
    if (moveExpiry(s, toMs, now, 'still-active', `still-active:${answer.source}`)) check.extendedToMs = toMs;
  }
  s.stillActiveLast = check;
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

/**
 * The object comment's text of a block's add: its latest ADS event, or the manual reason and who gave it. The
 * API's early add (early-adds.ts) writes the same, so an entry reads alike whichever add put it there.
 */
export function addLabel(latest: Pick<EventRef, 'id' | 'method' | 'severity'> | undefined, reason: string, actor: string): string {
  const manual = !latest || latest.id.startsWith('manual:');
  return manual ? `${reason} (${actor})` : `ADS event ${latest.id}${latest.method ? ` ${latest.method}` : ''}${latest.severity ? ` (${latest.severity})` : ''}`;
}
