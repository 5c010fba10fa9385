/**
 * The enforcement port: what every backend (address group, threat feed, banned-IP list, dry run) answers,
 * in the spirit of cs-firewall-bouncer's Add/Delete/Commit and fail2ban's action verbs. Set-based and
 * batch-friendly: one `commit` takes a tick's adds and removes for one set and reports per entry, so one
 * entry the firewall refuses fails alone. Nothing outside src/enforcement knows which backend is in use:
 * workflows speak IPs and set names, activities call this interface.
 */
import type { AddressFamily } from '../fortios/subnet';
import type { Batching } from '../../workflows/batch-policy';

export type EnforcementKind = 'address-group' | 'threat-feed' | 'banned-ip' | 'dry-run';
export const ENFORCEMENT_KINDS: readonly EnforcementKind[] = ['address-group', 'threat-feed', 'banned-ip', 'dry-run'];

/** One IP (or CIDR) to hold or release. */
export interface Entry {
  ip: string;
  family: AddressFamily;
  /** When the block ends (native expiry, comments, eviction order). */
  expiresAtMs?: number;
  /** A short human description (comments). */
  label?: string;
  /**
   * Only re-asserted (a repair, the enforcer's re-check after an uncertain write): when the set holds the
   * entry already, nothing about it needs writing. A block's own add is never marked so (it may carry a new
   * expiry to write).
   */
  recheck?: boolean;
}

/** What became of one entry: done, refused for good (with the firewall's reason), or to be tried again. */
export type Outcome = { status: 'ok'; reason?: string } | { status: 'failed'; reason: string } | { status: 'retry'; reason: string };

export interface CommitResult {
  /** Per IP of the batch. */
  outcomes: Record<string, Outcome>;
  /** Entries rotated out to make room (capacity): their blocks are told. */
  evicted: { ip: string; reason: string }[];
  /** Firewall writes this commit made. */
  writes: number;
  /** Things an operator should know (a member not ours that vanished, a lowered platform limit…). */
  problems: string[];
}

/** An entry of ours on the firewall, ownership proved (a marker we write, or our own history). */
export interface OwnedEntry {
  ip: string;
  family: AddressFamily;
  /** False for a leftover that holds nothing (an address object of ours in no group). */
  enforced: boolean;
  /**
   * How we know it is ours: a marker we wrote on the object, a set dedicated to us (a feed), or nothing on the
   * firewall (the banned list has no owner field): then only our own history proves it (a block of ours for
   * that IP existed), which reconciliation checks before removing anything.
   */
  proof: 'marker' | 'dedicated' | 'history';
}

export interface SetInfo {
  name: string;
  families: AddressFamily[];
  /** Entries the set can hold. */
  capacity: number;
}

/** A start-up finding: what is wrong and exactly what to configure. */
export interface Finding {
  ok: boolean;
  what: string;
  fix?: string;
}

export interface EnforcementBackend {
  readonly kind: EnforcementKind;
  /** The set keeps each entry's expiry: blocks re-send theirs when it moved far (block-rules.ts). */
  readonly refreshOnExtend: boolean;
  /** How many changes one commit takes, and how big a tick should grow in a flood (workflows/batch-policy.ts). */
  readonly batching: Batching;
  sets(): SetInfo[];
  setFor(family: AddressFamily): string;
  /** Applies adds and removes to one set: one commit, per-entry outcomes. Throws only when the set as a whole is unavailable. */
  commit(set: string, batch: { adds: Entry[]; removes: Entry[]; resync: boolean }): Promise<CommitResult>;
  /**
   * Optional: adds written beside the set's writer, for the API's early adds (workflows/early-adds.ts). Only a
   * backend whose add is a command that leaves an entry the set holds, and everything else, as it is (a pushed
   * feed's add command, a group's child-table append) implements it: no read-modify-write, so it never undoes
   * what the enforcer or an operator wrote (the enforcer's writes may undo it: the block's own add follows).
   * It may write fewer than asked (no room). Throws on failure; the caller loses only a head start.
   */
  addAhead?(set: string, entries: Entry[]): Promise<void>;
  /**
   * How a new block's early add goes in a burst (src/blocks/ahead-writer.ts), when the blocks' first tasks wait for
   * the server: `ahead` — addAhead writes any number of entries in one call (a feed's add command, the banned
   * list's add_users), so the API writes them itself, a batch per write; `enforcer` — the API hands them to the
   * set's enforcer, whose flood ticks write them in bulk and whose later ticks find the blocks' own adds in place
   * (a group: objects in parallel and one write per shard, then one object list read per tick). Unset: none.
   */
  readonly earlyInBurst?: 'ahead' | 'enforcer';
  /** What of ours the set holds on the firewall now (reconciliation). */
  list(set: string): Promise<OwnedEntry[]>;
  /** Start-up check: the objects this backend needs exist and a deny policy uses them. */
  check(): Promise<Finding[]>;
}

/**
 * What makes a flood for every backend: 90 changes in 3 s (30/s, half again the 20/s a busy ADS sends in a
 * long attack), or 40 waiting at a tick (a 20/s trickle piles up 4–8 during one commit); then a tick waits up
 * to `maxWaitMs` (2 s unless the backend says otherwise) for its batch, while changes keep coming (enforcer.ts,
 * FLOOD_IDLE_MS). Each backend names its batch size.
 */
export function floodBatching(maxPerTick: number, batch: number, maxWaitMs = 2000): Batching {
  return { maxPerTick, burst: { arrivals: 90, windowMs: 3000, queued: 40, batch, maxWaitMs } };
}

/** Marker at the start of every comment we write: proves an object is ours (never the name prefix alone). */
export const OWNER_MARKER = 'ads-mitigator:';

export function ownerComment(e: Entry): string {
  const until = e.expiresAtMs ? `; until ${new Date(e.expiresAtMs).toISOString()}` : '';
  return `${OWNER_MARKER} ${e.label ?? 'blocked'}`.slice(0, 255 - until.length) + until;
}

/** How far an object's comment may be off the block's expiry and still count as current (rotation order only). */
export const COMMENT_EXPIRY_SLACK_MS = 60_000;

/**
 * Whether a comment says what ownerComment(e) would, up to COMMENT_EXPIRY_SLACK_MS in the expiry: the API's early
 * add and the block's own add compute the same expiry a moment apart, which is not worth a write.
 */
export function commentCurrent(comment: string | undefined, e: Entry): boolean {
  if (comment === ownerComment(e)) return true;
  const have = comment === undefined ? undefined : commentExpiry(comment);
  return have !== undefined && e.expiresAtMs !== undefined && Math.abs(have - e.expiresAtMs) <= COMMENT_EXPIRY_SLACK_MS && comment === ownerComment({ ...e, expiresAtMs: have });
}

/** The expiry written by ownerComment, if any. */
export function commentExpiry(comment: string): number | undefined {
  const m = /; until (\d{4}-\d\d-\d\dT[\d:.]+Z)$/.exec(comment);
  return m ? Date.parse(m[1]) : undefined;
}

export function isOurs(comment: string | undefined): boolean {
  return !!comment && comment.startsWith(OWNER_MARKER);
}
