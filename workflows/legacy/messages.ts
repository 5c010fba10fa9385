/**
 * FIRST-RELEASE CONTRACT, FROZEN: kept so that running first-release workflows replay and can be migrated
 * (README, "Changing workflows"). New code uses ../messages.
 *
 * The public face of our workflows: inputs, states, signals, updates, queries, search attributes and
 * workflow IDs. Imported by workflow code (so: deterministic, only @temporalio/workflow|common) and by
 * the API, the worker and the tests, so that every caller speaks the same names.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

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
  addressGroup: defineSearchAttributeKey('AddressGroup', SearchAttributeType.KEYWORD),
} as const;
export const ALL_SEARCH_ATTRIBUTES = Object.values(SA);

// ---------------------------------------------------------------- IDs
/** One block workflow per (target, IP): a repeat event finds the running one instead of starting another. */
export const blockWorkflowId = (target: string, ip: string): string => `block:${target}:${ip}`;
/** One entity workflow per (target, address group): the only writer of that group's member list. */
export const groupWorkflowId = (target: string, group: string): string => `group:${target}:${group}`;
export const reconcileWorkflowId = (target: string): string => `reconcile:${target}`;
/** Name of the address object on the firewall; carries the IP so an operator can read the group. */
export const addressObjectName = (ip: string): string => `ads-${ip}`;
export const ADDRESS_NAME_PREFIX = 'ads-';
/** Built-in FortiOS address 0.0.0.0/32 that matches nothing: keeps a group non-empty (older FortiOS rejects empty groups). */
export const PLACEHOLDER_MEMBER = 'none';

// ---------------------------------------------------------------- block workflow
export type BlockState = 'pending' | 'active' | 'releasing' | 'expired' | 'cancelled' | 'evicted' | 'rejected';
export const ENDED_STATES: readonly BlockState[] = ['expired', 'cancelled', 'evicted', 'rejected'];

export interface EventRef {
  /** ADS event id, or `manual:<uuid>` for an operator's block. */
  id: string;
  method?: string;
  severity?: string;
  receivedAtMs: number;
}

export interface Escalation {
  /** Each repeat offence (a new event after the block has run for `afterMs`) multiplies the TTL by `factor`... */
  factor: number;
  /** ...up to this TTL. */
  maxTtlMs: number;
}

export interface BlockInput {
  target: string;
  ip: string; // canonical form (checked by the API and again in the workflow)
  family: AddressFamily;
  group: string;
  /** How to start the group's entity workflow if it is not running yet. */
  groupSettings: { capacity: number; batchWindowMs: number };
  ttlMs: number;
  maxTtlMs: number;
  reason: string;
  actor: string;
  event?: EventRef;
  escalation?: Escalation;
  /** Only set by continue-as-new: the state carried over to the next run. */
  carried?: BlockCarry;
}

export interface BlockCarry {
  state: BlockState;
  createdAtMs: number;
  cancelledBy?: { actor: string; reason: string; atMs: number };
  blockedAtMs?: number;
  endedAtMs?: number;
  expiresAtMs: number;
  currentTtlMs: number;
  events: EventRef[];
  eventCount: number;
  extensions: Extension[];
}

export interface Extension {
  atMs: number;
  fromMs: number;
  toMs: number;
  actor: string;
  cause: 'event' | 'extend';
}

export interface BlockStatus {
  workflowId: string;
  target: string;
  ip: string;
  family: AddressFamily;
  group: string;
  state: BlockState;
  reason: string;
  actor: string;
  addressName: string;
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
export const cancelUpdate = defineUpdate<BlockStatus, [CancelRequest]>('cancel');

export const statusQuery = defineQuery<BlockStatus>('status');

// replies from the group workflow to a block workflow (one payload shape, so one sender serves all three)
export interface GroupAnswer {
  member: string;
  /** Why, for an eviction. */
  reason?: string;
}
export const joinedSignal = defineSignal<[GroupAnswer]>('joined');
export const leftSignal = defineSignal<[GroupAnswer]>('left');
export const evictedSignal = defineSignal<[GroupAnswer]>('evicted');

// ---------------------------------------------------------------- group entity workflow
export interface GroupInput {
  target: string;
  group: string;
  family: AddressFamily;
  /** Members the firewall group may hold, the placeholder included. */
  capacity: number;
  /** Optional debounce (0 = none): how long a tick waits for more joins/leaves before its firewall write. */
  batchWindowMs: number;
  carried?: GroupCarry;
}

export interface GroupMember {
  member: string; // address object name
  blockWorkflowId: string;
  joinedAtMs: number;
}

export interface JoinRequest {
  member: string;
  blockWorkflowId: string;
}
export interface LeaveRequest {
  member: string;
  blockWorkflowId: string;
}

/** A join or leave waiting for the next tick; kept in arrival order (a join then a leave of one member must stay in that order). */
export type GroupOp = { kind: 'join'; req: JoinRequest } | { kind: 'leave'; req: LeaveRequest };

export interface GroupCarry {
  members: GroupMember[];
  pending: GroupOp[];
  stats: GroupStats;
}

export interface GroupStats {
  writes: number;
  joins: number;
  leaves: number;
  evictions: number;
  lastWriteAtMs?: number;
  lastError?: string;
}

export interface GroupStatus {
  target: string;
  group: string;
  family: AddressFamily;
  capacity: number;
  members: GroupMember[];
  pendingJoins: number;
  pendingLeaves: number;
  stats: GroupStats;
}

/** The group's answer to one block: sent by the group's answerBlocks activity, one signal each. */
export interface GroupReply {
  kind: 'joined' | 'left' | 'evicted';
  blockWorkflowId: string;
  member: string;
  reason?: string;
}

export const joinSignal = defineSignal<[JoinRequest]>('join');
export const leaveSignal = defineSignal<[LeaveRequest]>('leave');
/** From reconciliation: re-assert the member list on the firewall at the next tick. */
export const resyncSignal = defineSignal<[]>('resync');
export const groupStatusQuery = defineQuery<GroupStatus>('groupStatus');

// ---------------------------------------------------------------- reconciliation
export interface ReconcileInput {
  target: string;
  groups: { group: string; family: AddressFamily }[];
}
export interface ReconcileReport {
  target: string;
  checkedAt: string;
  activeBlocks: number;
  /** Our address objects on the firewall with no running block: deleted. */
  strayAddressesRemoved: string[];
  /** Groups whose firewall member list differed from the entity's: resync requested. */
  groupsResynced: string[];
}

/** Upgrade: a first-release block continues as new as an `ipBlock` (see legacy/block.ts). */
export const migrateSignal = defineSignal<[]>('migrate');
