/**
 * The public face of our workflows: inputs, states, signals, updates, queries, search attributes and
 * workflow IDs. Imported by workflow code (so: deterministic, only @temporalio/workflow|common) and by
 * the API, the worker and the tests, so that every caller speaks the same names.
 *
 * The source of truth is the set of block workflows. An enforcement set's entity (`enforcer`) is only the
 * single writer that batches their changes onto the firewall: it remembers nothing a block or the firewall
 * does not also hold, so it can be terminated or reset at any time. Block-facing names (`recordEvent`,
 * `extend`, `cancel`, `status`) are the same as in the first release, so the API speaks to both generations.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { NotifyKind } from '../src/notify/events';
import type { Batching } from './batch-policy';

export type AddressFamily = 'ipv4' | 'ipv6';

// ---------------------------------------------------------------- search attributes (visibility is the database)
export const SA = {
  blockedIp: defineSearchAttributeKey('BlockedIp', SearchAttributeType.KEYWORD),
  firewallTarget: defineSearchAttributeKey('FirewallTarget', SearchAttributeType.KEYWORD),
  blockState: defineSearchAttributeKey('BlockState', SearchAttributeType.KEYWORD),
  blockExpiresAt: defineSearchAttributeKey('BlockExpiresAt', SearchAttributeType.DATETIME),
  adsEventId: defineSearchAttributeKey('AdsEventId', SearchAttributeType.KEYWORD_LIST),
  adsSeverity: defineSearchAttributeKey('AdsSeverity', SearchAttributeType.KEYWORD),
  adsMethod: defineSearchAttributeKey('AdsMethod', SearchAttributeType.KEYWORD),
  /** The enforcement set that holds the block (for the address-group backend: its first group's name). */
  addressGroup: defineSearchAttributeKey('AddressGroup', SearchAttributeType.KEYWORD),
} as const;
export const ALL_SEARCH_ATTRIBUTES = Object.values(SA);

// ---------------------------------------------------------------- workflow types and IDs
export const WORKFLOW_TYPES = {
  block: 'ipBlock',
  enforcer: 'enforcer',
  reconcile: 'reconcileTarget',
  /** First-release types: still replayed and migrated (README, "Changing workflows"). */
  legacyBlock: 'blockWorkflow',
  legacyGroup: 'groupWorkflow',
} as const;
/** Visibility clause that matches block workflows of both generations. */
export const BLOCK_TYPES_CLAUSE = `WorkflowType IN ("${WORKFLOW_TYPES.block}", "${WORKFLOW_TYPES.legacyBlock}")`;

/** One block workflow per (target, IP): a repeat event finds the running one instead of starting another. */
export const blockWorkflowId = (target: string, ip: string): string => `block:${target}:${ip}`;
/** One entity workflow per (target, enforcement set): the only writer of that set on the firewall. */
export const enforcerWorkflowId = (target: string, set: string): string => `enforce:${target}:${set}`;
export const reconcileWorkflowId = (target: string): string => `reconcile:${target}`;
/**
 * The task queue of the enforcers, beside the blocks' queue: a worker of its own polls it (src/worker/worker.ts),
 * with its own workflow slots. A block's first task waits (in its local activity) for its enforcer to commit the
 * add: were both on one queue, a burst's blocks could hold every slot and leave none for the enforcer.
 * Derived, not configured, so that workflow code (an enforcer's continue-as-new) finds it too.
 */
export const enforcerTaskQueue = (taskQueue: string): string => (taskQueue.endsWith(ENFORCER_QUEUE_SUFFIX) ? taskQueue : `${taskQueue}${ENFORCER_QUEUE_SUFFIX}`);
const ENFORCER_QUEUE_SUFFIX = '-enforcers';

// ---------------------------------------------------------------- block workflow
export type BlockState = 'pending' | 'active' | 'releasing' | 'expired' | 'cancelled' | 'evicted' | 'rejected' | 'failed';
export const ENDED_STATES: readonly BlockState[] = ['expired', 'cancelled', 'evicted', 'rejected', 'failed'];

export interface EventRef {
  /** ADS event id, or `manual:<uuid>` for an operator's block. */
  id: string;
  method?: string;
  severity?: string;
  receivedAtMs: number;
}

export interface Escalation {
  /** Each repeat offence multiplies the TTL by `factor`... */
  factor: number;
  /** ...up to this TTL (never beyond the block's maxTtlMs either). */
  maxTtlMs: number;
}

/** Where a block is enforced: resolved by the worker from its configuration (the workflow never names a backend). */
export interface EnforcementRef {
  set: string;
  /** The set keeps each entry's expiry (native expiry, a comment): the block re-sends it when it moved far. */
  refreshOnExtend: boolean;
}

export interface BlockInput {
  target: string;
  ip: string; // canonical form (checked by the API and again in the workflow)
  family: AddressFamily;
  ttlMs: number;
  maxTtlMs: number;
  reason: string;
  actor: string;
  event?: EventRef;
  escalation?: Escalation;
  /** Notification kinds wanted (NOTIFY_EVENTS with a sink); none: no notification is scheduled. */
  notify?: NotifyKind[];
  /** Only set by continue-as-new (and by the migration of a first-release block). */
  carried?: BlockCarry;
}

/** An outstanding request to the enforcer. */
export interface Asked {
  op: 'add' | 'remove';
  atMs: number;
  /** How often it was sent (re-sent on a timer and when nudged). */
  sends: number;
}

export interface BlockCarry {
  state: BlockState;
  createdAtMs: number;
  blockedAtMs?: number;
  endedAtMs?: number;
  expiresAtMs: number;
  currentTtlMs: number;
  events: EventRef[];
  eventCount: number;
  extensions: Extension[];
  cancelledBy?: { actor: string; reason: string; atMs: number };
  evicted?: string;
  lastError?: string;
  enforcement?: EnforcementRef;
  asked?: Asked;
  /** The expiry the firewall was last given (backends with firewallExpiry). */
  pushedExpiryMs?: number;
  /** The set must be told this block's membership again (nudged by reconciliation or a fresh enforcer). */
  reassert?: boolean;
  /** STILL_ACTIVE: set at admission when the worker has it on (absent = off: the block asks nothing). */
  stillActive?: StillActiveSettings;
  /** Workflow time of the last repeat ADS event (not the block's first event, not a manual block) it recorded, from any intake. */
  lastAdsEventAtMs?: number;
  /** The expiry the block last asked about (one question per expiry). */
  stillActiveAskedForMs?: number;
  stillActiveLast?: StillActiveCheck;
}

/**
 * Blocks that outlive a once-firing event (ADS runs our script when an event starts, not on its updates):
 * STILL_ACTIVE_WINDOW before expiry the block asks whether its attacker is still active and, if so, extends
 * by the repeat-event rules (escalation), never past its start + maxTotalMs.
 */
export interface StillActiveSettings {
  source: 'intake' | 'flowmon';
  windowMs: number;
  maxTotalMs: number;
}

/** The last still-active question of a block and its answer. */
export interface StillActiveCheck {
  atMs: number;
  source: 'intake' | 'flowmon';
  verdict: 'seen' | 'not-seen' | 'unknown';
  detail: string;
  /** Set when the answer extended the block. */
  extendedToMs?: number;
}

export interface Extension {
  atMs: number;
  fromMs: number;
  toMs: number;
  actor: string;
  /** 'still-active': an answer of STILL_ACTIVE (actor `still-active:<source>`). */
  cause: 'event' | 'extend' | 'still-active';
}

export interface BlockStatus {
  workflowId: string;
  target: string;
  ip: string;
  family: AddressFamily;
  /** The enforcement set (kept under its first-release name). */
  group: string;
  state: BlockState;
  reason: string;
  actor: string;
  createdAt: string;
  blockedAt?: string;
  expiresAt: string;
  endedAt?: string;
  events: EventRef[];
  eventCount: number;
  extensions: Extension[];
  cancelledBy?: { actor: string; reason: string; at: string };
  evictedReason?: string;
  lastError?: string;
  /** With STILL_ACTIVE on: its settings and the last question asked. */
  stillActive?: StillActiveSettings & { last?: StillActiveCheck };
}

/** A (repeat) ADS event for this IP: recorded, and the expiry moves to event time + TTL (never shorter). */
export const eventSignal = defineSignal<[{ event: EventRef; ttlMs: number }]>('event');
export type EventOutcome = 'started' | 'extended' | 'duplicate' | 'unchanged';
export interface RecordEventResult {
  outcome: EventOutcome;
  expiresAt: string;
  state: BlockState;
}
/** Same as eventSignal but answers what happened (used with update-with-start by the webhook). */
export const recordEventUpdate = defineUpdate<RecordEventResult, [{ event: EventRef; ttlMs: number }]>('recordEvent');
/**
 * Failure type with which recordEvent's validator refuses an event id the block already holds: a refused
 * Update leaves no trace in the history, so a re-delivered event costs nothing. Its first detail is the
 * RecordEventResult (outcome 'duplicate') the caller would otherwise have got.
 */
export const DUPLICATE_EVENT = 'DuplicateEvent';

export interface ExtendRequest {
  byMs?: number;
  untilMs?: number;
  actor: string;
}
export const extendSignal = defineSignal<[ExtendRequest]>('extend');
export const extendUpdate = defineUpdate<BlockStatus, [ExtendRequest]>('extend');

export interface CancelRequest {
  reason: string;
  actor: string;
}
export const cancelSignal = defineSignal<[CancelRequest]>('cancel');
/** Answers the block's status with the cancel applied (state `releasing` until the set confirms). */
export const cancelUpdate = defineUpdate<BlockStatus, [CancelRequest]>('cancel');

export const statusQuery = defineQuery<BlockStatus>('status');

/** The enforcer's answer to one change, or its news that an entry was rotated out. */
export interface SetAnswer {
  op: 'add' | 'remove' | 'evict';
  ip: string;
  /**
   * The block lineage the answer is for (the first run id of its continue-as-new chain). A block ignores
   * answers for another lineage: a late answer never reaches a newer block of the same IP. Evictions carry
   * none (the enforcer keeps no memory of who added an entry): they concern whoever holds the IP now.
   */
  lineage?: string;
  ok: boolean;
  reason?: string;
}
export const setAnswerSignal = defineSignal<[SetAnswer]>('setAnswer');
/** Nudge (reconciliation, a fresh enforcer): re-send your outstanding request, or re-assert your entry. */
export const reassertSignal = defineSignal<[]>('reassert');

// ---------------------------------------------------------------- enforcer (single writer per enforcement set)
export interface SetChange {
  op: 'add' | 'remove';
  ip: string;
  family: AddressFamily;
  /** Who asked: answers go there. Absent for reconciliation's repairs (nobody waits for them). */
  owner?: { workflowId: string; lineage: string };
  /** add: when the block ends (backends that keep an expiry or write it into a comment). */
  expiresAtMs?: number;
  /** add: a short human description (object comments). */
  label?: string;
  /**
   * add, no owner: sent by the API beside the block's start, before the block exists (workflows/early-adds.ts):
   * applied without a check, withdrawn later unless a block's own add followed.
   */
  early?: true;
  /**
   * With `early`: the API writes the entry itself, beside the set's writer, once the enforcer has this message
   * (a feed push is a command that leaves everything else as it is): the enforcer writes nothing for it and
   * only schedules its check (workflows/early-adds.ts).
   */
  ahead?: true;
  /**
   * With `ahead`: how long its block may take to claim it before it is checked, ms (CLAIM_MS unless set; the API
   * sets BURST_CLAIM_MS in a burst, when blocks run their first task late: workflows/early-adds.ts).
   */
  claimMs?: number;
  /**
   * add, no owner (reconciliation's re-add): when its block was listed as active. The enforcer vouches for the
   * re-add when it removed nothing of that IP since (workflows/release-log.ts); otherwise it is checked.
   */
  listedAtMs?: number;
  /** Set by the enforcer only, for its commit: a re-add the release log vouches for, written without a check. */
  vouched?: true;
}

export interface EnforcerStats {
  ticks: number;
  writes: number;
  adds: number;
  removes: number;
  evictions: number;
  failures: number;
  /** Ticks that waited for a bigger batch during a flood (batch-policy.ts). */
  floodWaits?: number;
  /** Of those, waits that a pause in arrivals ended before the batch filled or the wait ran out (enforcer.ts). */
  floodWaitsCutShort?: number;
  lastApplyAtMs?: number;
  lastError?: string;
}

/** Who waits for the answer about one IP. */
export interface Waiter {
  workflowId: string;
  lineage: string;
  op: 'add' | 'remove';
}
/** The latest change for one IP (what the firewall must reflect) and everyone waiting for its answer. */
export interface QueuedChange {
  change: SetChange;
  waiters: Waiter[];
}

/** The release log continue-as-new carries (workflows/release-log.ts): complete from `sinceMs`; parallel arrays. */
export interface CarriedReleases {
  sinceMs: number;
  ips: string[];
  atMs: number[];
}

/** An applied early add waiting for its block's own add; checked (and withdrawn unless a block holds it) when due. */
export interface PendingWithdrawal {
  ip: string;
  family: AddressFamily;
  dueAtMs: number;
  /** Written by the API (`SetChange.ahead`): its write may land after anything the enforcer commits meanwhile. */
  ahead?: true;
  /** An `ahead` entry whose block's own add was committed since (and no removal after it): nothing to check when due. */
  claimed?: true;
}

export interface EnforcerInput {
  target: string;
  set: string;
  /** `batching`: the backend's tick sizes last reported (batch-policy.ts), so a fresh run's first ticks are sized right. */
  carried?: { queue: QueuedChange[]; stats: EnforcerStats; truncated?: boolean; batching?: Batching; earlyWithdrawals?: PendingWithdrawal[]; releases?: CarriedReleases };
}

export interface EnforcerStatus {
  target: string;
  set: string;
  queued: number;
  stats: EnforcerStats;
  retryingSinceMs?: number;
  /**
   * A fresh run's nudge of the waiting blocks is still out. Its signals may reach blocks answered meanwhile, which
   * then send their add once more (coalesced): their histories settle once it is over.
   */
  nudging?: boolean;
}

/**
 * Changes for one set, in arrival order (a block sends one; reconciliation sends batches). Senders of before
 * `submitChanges` (a worker or API of an older release during an upgrade); still taken.
 */
export const changesSignal = defineSignal<[SetChange[]]>('changes');
/**
 * Changes for one set, as an Update (Update-with-Start from each process's outbox). It completes once every change
 * in it that has an owner is answered, or after a short wait (what is unanswered then is answered by setAnswer
 * signals, as before); a change without an owner (the API's early add, a repair) waits for nothing.
 * Why an Update: the server refuses a continue-as-new when a signal arrived during its task, and under a steady
 * stream no retry ever finishes (temporalio/temporal#1289); an Update admitted meanwhile is instead aborted with a
 * retryable error, and the client retries it on the new run. And its result carries the answers: a block's first
 * task ends with its add committed, with no answer signal and no second task.
 */
export const submitChangesUpdate = defineUpdate<SubmitChangesResult, [SetChange[]]>('submitChanges');
export interface SubmitChangesResult {
  /** The answers to the changes it carried that were settled in time (each names its block). */
  answers: (SetAnswer & { workflowId: string })[];
}
/** Re-check the whole set at the next tick (capacity, shards, placeholder): from reconciliation and at start-up. */
export const resyncSignal = defineSignal<[]>('resync');
export const enforcerStatusQuery = defineQuery<EnforcerStatus>('enforcerStatus');

// ---------------------------------------------------------------- reconciliation
export interface ReconcileInput {
  target: string;
}
export interface SetReport {
  set: string;
  /** Entries of ours on the firewall. */
  enforced: number;
  /** Active blocks whose entry was missing: told to re-assert it. */
  reasserted: string[];
  /** Entries (and objects) of ours that no running block owns: removed through the enforcer. */
  orphansRemoved: string[];
  /** Blocks whose request had waited too long: nudged to send it again. */
  nudged: string[];
  error?: string;
}
export interface ReconcileReport {
  target: string;
  checkedAt: string;
  activeBlocks: number;
  sets: SetReport[];
}
