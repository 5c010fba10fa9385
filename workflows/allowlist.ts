/**
 * The runtime allowlist: networks an operator says must not be blocked for a while (after a false positive),
 * without a restart. One entity workflow per namespace/task queue (id `allowlist`) holds the entries; each
 * expiry is a durable timer, so an entry ends on time across restarts. Entries are added and removed by
 * validated Updates (refused ones leave no history), read by a query, and carried over continue-as-new.
 * Applied by the webhook, the syslog intake and the worker's last check before a block (src/allowlist/).
 */
import * as wf from '@temporalio/workflow';
import { parseBlock } from '../src/policy/ip-policy';

export const ALLOWLIST_WORKFLOW_ID = 'allowlist';
/** Entries held at once: the list is read on every event's path and carried through continue-as-new. */
export const MAX_ALLOWLIST_ENTRIES = 1000;
/** Longest an entry may be given (a permanent one: leave out both `forMs` and `untilMs`). */
export const MAX_ALLOW_MS = 366 * 86_400_000;
/** Widest entries: wider ones would switch blocking off for a good part of the Internet. */
export const WIDEST_ALLOW_PREFIX = { ipv4: 8, ipv6: 16 } as const;
const MAX_REASON = 500;
/** Continue-as-new after this many accepted Updates even if the server does not suggest it yet. */
const UPDATES_PER_RUN = 2000;

export interface AllowEntry {
  /** Canonical: a host without suffix (203.0.113.7), a block as net/len (203.0.113.0/24). */
  cidr: string;
  reason: string;
  actor: string;
  addedAt: string;
  /** Absent: until removed. */
  expiresAt?: string;
}

export interface AddAllowRequest {
  cidr: string;
  reason: string;
  actor: string;
  /** From now (workflow time); at most one of forMs / untilMs. */
  forMs?: number;
  untilMs?: number;
}

export interface AddAllowResult {
  entry: AllowEntry;
  /** An entry for the same network was there and is replaced (reason, actor, expiry). */
  replaced: boolean;
}

export interface RemoveAllowRequest {
  cidr: string;
  actor: string;
}

export interface AllowlistInput {
  /** Set by continue-as-new. */
  entries?: AllowEntry[];
  /** Defaults MAX_ALLOWLIST_ENTRIES and 2,000 Updates per run; carried over continue-as-new (tests lower them). */
  limits?: { maxEntries?: number; updatesPerRun?: number };
}

export const addAllowUpdate = wf.defineUpdate<AddAllowResult, [AddAllowRequest]>('addAllow');
/** Answers the removed entry, or null when there was none (idempotent). */
export const removeAllowUpdate = wf.defineUpdate<AllowEntry | null, [RemoveAllowRequest]>('removeAllow');
/** The entries in force (expired ones never appear, even between their timer and its workflow task). */
export const allowlistQuery = wf.defineQuery<AllowEntry[]>('allowlist');

/**
 * Why a request cannot be applied, or undefined. Shared by the workflow's validator and the API (which
 * answers 400 before Temporal is asked), so both say the same thing.
 */
export function addAllowProblem(req: AddAllowRequest, nowMs: number): string | undefined {
  const block = parseBlock(req.cidr);
  if (!block.ok) return `cidr: ${block.reason}`;
  if (block.prefix < WIDEST_ALLOW_PREFIX[block.family]) {
    return `cidr: ${block.cidr} is wider than /${WIDEST_ALLOW_PREFIX[block.family]}, the widest ${block.family} allowlist entry`;
  }
  if (typeof req.reason !== 'string' || req.reason.trim() === '' || req.reason.length > MAX_REASON) return `reason: give why, 1 to ${MAX_REASON} characters`;
  if (req.forMs !== undefined && req.untilMs !== undefined) return 'give at most one of "for" and "until"';
  const until = expiryOf(req, nowMs);
  if (until !== undefined) {
    if (!Number.isFinite(until) || until <= nowMs) return `until: ${isoOrText(until)} is not in the future`;
    if (until - nowMs > MAX_ALLOW_MS) return 'an entry lasts at most 366d (leave out "for" and "until" for one that stays until removed)';
  }
  return undefined;
}

function expiryOf(req: AddAllowRequest, nowMs: number): number | undefined {
  if (req.forMs !== undefined) return nowMs + req.forMs;
  return req.untilMs;
}

export async function allowlistWorkflow(input: AllowlistInput = {}): Promise<void> {
  const entries = new Map<string, AllowEntry>((input.entries ?? []).map((e) => [e.cidr, e]));
  const maxEntries = input.limits?.maxEntries ?? MAX_ALLOWLIST_ENTRIES;
  const updatesPerRun = input.limits?.updatesPerRun ?? UPDATES_PER_RUN;
  let changed = false;
  let accepted = 0;

  const live = (now: number) => [...entries.values()].filter((e) => !e.expiresAt || Date.parse(e.expiresAt) > now);

  wf.setHandler(allowlistQuery, () => live(Date.now()));
  wf.setHandler(
    addAllowUpdate,
    (req) => {
      const now = Date.now();
      const cidr = canonical(req.cidr);
      const until = expiryOf(req, now);
      const entry: AllowEntry = { cidr, reason: req.reason.trim(), actor: req.actor, addedAt: iso(now), ...(until !== undefined ? { expiresAt: iso(until) } : {}) };
      const replaced = entries.has(cidr);
      entries.set(cidr, entry);
      changed = true;
      accepted++;
      return { entry, replaced };
    },
    {
      validator: (req) => {
        const problem = addAllowProblem(req, Date.now());
        if (problem) throw new Error(problem);
        if (!entries.has(canonical(req.cidr)) && live(Date.now()).length >= maxEntries) {
          throw new Error(`the allowlist holds ${maxEntries} entries, the most it takes: remove some first`);
        }
      },
    },
  );
  wf.setHandler(
    removeAllowUpdate,
    (req) => {
      const cidr = canonical(req.cidr);
      const entry = entries.get(cidr);
      if (!entry) return null;
      entries.delete(cidr);
      changed = true;
      accepted++;
      return entry;
    },
    {
      validator: (req) => {
        const block = parseBlock(req.cidr);
        if (!block.ok) throw new Error(`cidr: ${block.reason}`);
      },
    },
  );

  for (;;) {
    const now = Date.now();
    for (const [cidr, e] of entries) if (e.expiresAt && Date.parse(e.expiresAt) <= now) entries.delete(cidr);
    const next = Math.min(...[...entries.values()].map((e) => (e.expiresAt ? Date.parse(e.expiresAt) : Infinity)));
    changed = false;
    // The durable timer of the earliest expiry; any add or remove re-plans it.
    if (Number.isFinite(next)) await wf.condition(() => changed, Math.max(1, next - now));
    else await wf.condition(() => changed);
    if (wf.workflowInfo().continueAsNewSuggested || accepted >= updatesPerRun) {
      await wf.condition(wf.allHandlersFinished);
      await wf.continueAsNew<typeof allowlistWorkflow>({ entries: live(Date.now()), limits: input.limits });
    }
  }
}

/** Canonical key; callers validated the text first. */
function canonical(cidr: string): string {
  const block = parseBlock(cidr);
  return block.ok ? block.display : cidr;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrText(ms: number): string {
  return Number.isFinite(ms) ? iso(ms) : String(ms);
}
