/**
 * FIRST-RELEASE BLOCK WORKFLOW, FROZEN but for one addition: a `migrate` signal (sent by the upgrade at
 * start-up, src/temporal/upgrade.ts) makes it continue as new as an `ipBlock`, carrying its state. Without
 * that signal in a history, no new command is issued, so every first-release history still replays.
 *
 * Block workflow: one per (firewall target, IP). Validates, creates the address object, joins the group
 * (through the group's entity workflow), sleeps for the TTL on a durable timer, then leaves the group and
 * deletes the address object — in that order, or FortiOS refuses the delete (-23).
 *
 * Repeat events, extend and cancel arrive as signals or Updates to this same run, so there is never a
 * second workflow for one IP. Cancelling the workflow itself (Web UI, CLI) still lifts the block: the
 * clean-up runs in a non-cancellable scope.
 */
import * as wf from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { checkIp, RESERVED_ONLY_POLICY } from '../../src/policy/ip-policy';
import { firewallLocal, messaging } from './activity-options';
import type { ipBlock } from '../block';
import type { BlockCarry as NextCarry, BlockInput as NextInput } from '../messages';
import {
  addressObjectName,
  BlockCarry,
  BlockInput,
  BlockStatus,
  CancelRequest,
  cancelSignal,
  cancelUpdate,
  DUPLICATE_EVENT,
  ENDED_STATES,
  EventOutcome,
  EventRef,
  evictedSignal,
  ExtendRequest,
  extendSignal,
  extendUpdate,
  Extension,
  eventSignal,
  joinedSignal,
  leftSignal,
  migrateSignal,
  recordEventUpdate,
  RecordEventResult,
  SA,
  statusQuery,
} from './messages';

const KEEP_EVENTS = 50;
const KEEP_EXTENSIONS = 50;
const SEARCHABLE_EVENT_IDS = 20;
/** How long to wait for the group's answer before asking again (the group may have been restarted). */
const GROUP_REPLY_TIMEOUT = '5 minutes';

export async function blockWorkflow(input: BlockInput): Promise<BlockStatus> {
  const b = new Block(input);
  return b.run();
}

class Block {
  private readonly id = wf.workflowInfo().workflowId;
  private readonly member: string;
  private s: BlockCarry;
  private joined = false;
  private left = false;
  private evicted?: string;
  private cancel?: CancelRequest & { atMs: number };
  private lastError?: string;
  /** Set when the expiry moved, to restart the durable timer. */
  private wake = false;
  /** Set by the upgrade's `migrate` signal: continue as new as an ipBlock at the next await. */
  private migrating = false;

  constructor(private readonly input: BlockInput) {
    this.member = addressObjectName(input.ip);
    const now = Date.now();
    this.s = input.carried ?? {
      state: 'pending',
      createdAtMs: now,
      expiresAtMs: now + input.ttlMs,
      currentTtlMs: input.ttlMs,
      events: input.event ? [input.event] : [],
      eventCount: input.event ? 1 : 0,
      extensions: [],
    };
    this.joined = this.s.state === 'active';
    if (this.s.cancelledBy) this.cancel = { ...this.s.cancelledBy };
    this.registerHandlers();
  }

  async run(): Promise<BlockStatus> {
    try {
      if (!this.input.carried) await this.apply();
      await this.holdUntilExpiry();
      await this.release();
      return this.status();
    } catch (err) {
      if (wf.isCancellation(err)) {
        // Cancelled from outside (Web UI, CLI): the block must still be lifted, whatever else is cancelled.
        this.cancel ??= { reason: 'workflow cancelled', actor: 'temporal', atMs: Date.now() };
        await wf.CancellationScope.nonCancellable(() => this.release());
      }
      throw err;
    }
  }

  // ------------------------------------------------------------------ lifecycle steps
  private async apply(): Promise<void> {
    // The configurable policy (allowlist…) is applied by the ensureAddress activity with the worker's configuration.
    const verdict = checkIp(this.input.ip, RESERVED_ONLY_POLICY);
    if (!verdict.ok || verdict.ip !== this.input.ip) {
      return this.reject(verdict.ok ? `"${this.input.ip}" is not in canonical form (${verdict.ip})` : verdict.reason);
    }
    this.publish();
    try {
      await firewallLocal.ensureAddress({
        target: this.input.target,
        family: this.input.family,
        name: this.member,
        ip: this.input.ip,
        cidr: verdict.cidr,
        comment: this.comment(),
      });
    } catch (err) {
      // Only non-retryable failures get here (policy or the firewall refusing the object itself).
      return this.reject(rootMessage(err));
    }
    await this.askGroup('join', () => this.joined || !!this.evicted || !!this.cancel);
    if (this.joined && !this.evicted) {
      this.s.state = 'active';
      this.s.blockedAtMs = Date.now();
    }
  }

  private async holdUntilExpiry(): Promise<void> {
    while (this.s.state === 'active' && !this.cancel && !this.evicted) {
      const remaining = this.s.expiresAtMs - Date.now();
      if (remaining <= 0) break;
      this.wake = false;
      this.publish();
      await wf.condition(() => this.wake || !!this.cancel || !!this.evicted || this.migrating, remaining);
      if (this.migrating) await this.migrate(false);
      if (wf.workflowInfo().continueAsNewSuggested) await this.continueAsNew();
    }
  }

  private async release(): Promise<void> {
    if (ENDED_STATES.includes(this.s.state)) return;
    this.s.state = 'releasing';
    this.publish();
    if (!this.evicted) await this.askGroup('leave', () => this.left);
    await firewallLocal.deleteAddress({ target: this.input.target, family: this.input.family, name: this.member });
    this.s.state = this.evicted ? 'evicted' : this.cancel ? 'cancelled' : 'expired';
    this.s.endedAtMs = Date.now();
    this.publish();
  }

  private async reject(reason: string): Promise<never> {
    this.s.state = 'rejected';
    this.lastError = reason;
    this.s.endedAtMs = Date.now();
    this.publish();
    throw wf.ApplicationFailure.nonRetryable(`block of ${this.input.ip} rejected: ${reason}`, 'PolicyRejected');
  }

  /** Asks the group entity and waits for its answer, asking again if it does not come (idempotent on its side). */
  private async askGroup(kind: 'join' | 'leave', answered: () => boolean): Promise<void> {
    const { target, group, family, groupSettings } = this.input;
    const ask = { group: { target, group, family, ...groupSettings }, kind, request: { member: this.member, blockWorkflowId: this.id } };
    while (!answered()) {
      await messaging.askGroup(ask);
      await wf.condition(() => answered() || this.migrating, GROUP_REPLY_TIMEOUT);
      if (this.migrating) await this.migrate(kind === 'leave');
    }
  }

  /** The upgrade: continue as an ipBlock with this block's state (it re-asserts its entry through the enforcer). */
  private async migrate(releasing: boolean): Promise<void> {
    if (!wf.patched('migrate-to-ipblock')) return;
    await wf.condition(wf.allHandlersFinished);
    const s = this.s;
    const state = releasing || this.cancel ? 'releasing' : this.evicted ? 'evicted' : s.state === 'active' ? 'active' : 'pending';
    const carried: NextCarry = {
      state,
      createdAtMs: s.createdAtMs,
      blockedAtMs: s.blockedAtMs,
      expiresAtMs: s.expiresAtMs,
      currentTtlMs: s.currentTtlMs,
      events: s.events,
      eventCount: s.eventCount,
      extensions: s.extensions,
      cancelledBy: this.cancel ? { ...this.cancel } : undefined,
      evicted: this.evicted,
      reassert: true,
    };
    const next: NextInput = {
      target: this.input.target,
      ip: this.input.ip,
      family: this.input.family,
      ttlMs: this.input.ttlMs,
      maxTtlMs: this.input.maxTtlMs,
      reason: this.input.reason,
      actor: this.input.actor,
      escalation: this.input.escalation,
      carried,
    };
    return wf.makeContinueAsNewFunc<typeof ipBlock>({ workflowType: 'ipBlock' })(next);
  }

  private async continueAsNew(): Promise<never> {
    await wf.condition(wf.allHandlersFinished);
    return wf.continueAsNew<typeof blockWorkflow>({
      ...this.input,
      event: undefined,
      carried: { ...this.s, cancelledBy: this.cancel },
    });
  }

  // ------------------------------------------------------------------ messages
  private registerHandlers(): void {
    wf.setHandler(eventSignal, ({ event, ttlMs }) => void this.recordEvent(event, ttlMs));
    wf.setHandler(recordEventUpdate, ({ event, ttlMs }) => this.eventResult(this.recordEvent(event, ttlMs)), {
      validator: ({ event }) => {
        if (this.isOver() || !this.hasEvent(event.id)) return;
        throw wf.ApplicationFailure.create({ type: DUPLICATE_EVENT, message: `event ${event.id} is already recorded`, nonRetryable: true, details: [this.eventResult('duplicate')] });
      },
    });
    wf.setHandler(extendSignal, (req) => {
      if (!this.extendProblem(req)) this.extend(req);
    });
    wf.setHandler(extendUpdate, (req) => (this.extend(req), this.status()), {
      validator: (req) => {
        const problem = this.extendProblem(req);
        if (problem) throw new Error(problem);
      },
    });
    wf.setHandler(cancelSignal, (req) => this.requestCancel(req));
    wf.setHandler(cancelUpdate, (req) => (this.requestCancel(req), this.status()));
    wf.setHandler(joinedSignal, () => void (this.joined = true));
    wf.setHandler(leftSignal, () => void (this.left = true));
    wf.setHandler(evictedSignal, ({ reason }) => void (this.evicted ??= reason ?? 'evicted by the group'));
    wf.setHandler(statusQuery, () => this.status());
    wf.setHandler(migrateSignal, () => void (this.migrating = true));
  }

  private isOver(): boolean {
    return this.s.state === 'releasing' || ENDED_STATES.includes(this.s.state) || !!this.cancel || !!this.evicted;
  }

  /** A repeat event moves the expiry to now + TTL (escalated for repeat offenders if configured), never earlier. */
  private recordEvent(event: EventRef, ttlMs: number): EventOutcome {
    if (this.isOver()) return 'unchanged';
    if (this.hasEvent(event.id)) return 'duplicate';
    const first = this.s.eventCount === 0 && !this.input.carried;
    this.s.events = [...this.s.events, event].slice(-KEEP_EVENTS);
    this.s.eventCount++;
    let ttl = Math.min(ttlMs, this.input.maxTtlMs);
    const esc = this.input.escalation;
    if (esc && !first) {
      this.s.currentTtlMs = Math.min(Math.max(this.s.currentTtlMs, ttl) * esc.factor, esc.maxTtlMs);
      ttl = this.s.currentTtlMs;
    }
    const moved = this.moveExpiry(Date.now() + ttl, 'event', `ads:${event.id}`);
    this.publish();
    return first ? 'started' : moved ? 'extended' : 'unchanged';
  }

  private hasEvent(id: string): boolean {
    return this.s.events.some((e) => e.id === id);
  }

  private eventResult(outcome: EventOutcome): RecordEventResult {
    return { outcome, expiresAt: iso(this.s.expiresAtMs), state: this.s.state };
  }

  private extendProblem(req: ExtendRequest): string | undefined {
    if (this.isOver()) return `the block is ${this.cancel ? 'cancelled' : this.s.state}: nothing to extend`;
    const target = this.extendTarget(req);
    if (target === undefined) return 'give exactly one of "by" (a positive duration) or "until" (a time)';
    if (target <= this.s.expiresAtMs) return `the new expiry ${iso(target)} is not after the current one ${iso(this.s.expiresAtMs)}: to shorten a block, unblock it`;
    if (target - Date.now() > this.input.maxTtlMs) return `the new expiry ${iso(target)} is further than the maximum block time allows`;
    return undefined;
  }

  private extendTarget(req: ExtendRequest): number | undefined {
    if (req.byMs !== undefined && req.untilMs === undefined && req.byMs > 0) return this.s.expiresAtMs + req.byMs;
    if (req.untilMs !== undefined && req.byMs === undefined) return req.untilMs;
    return undefined;
  }

  private extend(req: ExtendRequest): void {
    this.moveExpiry(this.extendTarget(req)!, 'extend', req.actor);
    this.publish();
  }

  private moveExpiry(toMs: number, cause: Extension['cause'], actor: string): boolean {
    if (toMs <= this.s.expiresAtMs) return false;
    const ext: Extension = { atMs: Date.now(), fromMs: this.s.expiresAtMs, toMs, actor, cause };
    this.s.extensions = [...this.s.extensions, ext].slice(-KEEP_EXTENSIONS);
    this.s.expiresAtMs = toMs;
    this.wake = true;
    return true;
  }

  private requestCancel(req: CancelRequest): void {
    if (this.isOver()) return; // idempotent: the first cancel wins
    this.cancel = { ...req, atMs: Date.now() };
  }

  // ------------------------------------------------------------------ visibility
  private status(): BlockStatus {
    const s = this.s;
    return {
      workflowId: this.id,
      target: this.input.target,
      ip: this.input.ip,
      family: this.input.family,
      group: this.input.group,
      state: s.state,
      reason: this.input.reason,
      actor: this.input.actor,
      addressName: this.member,
      createdAt: iso(s.createdAtMs),
      blockedAt: s.blockedAtMs ? iso(s.blockedAtMs) : undefined,
      expiresAt: iso(s.expiresAtMs),
      endedAt: s.endedAtMs ? iso(s.endedAtMs) : undefined,
      events: s.events,
      eventCount: s.eventCount,
      extensions: s.extensions,
      cancelledBy: this.cancel ? { actor: this.cancel.actor, reason: this.cancel.reason, at: iso(this.cancel.atMs) } : undefined,
      evictedReason: this.evicted,
      lastError: this.lastError,
    };
  }

  private published = '';
  /** Mirrors the state into search attributes (only when it changed: each upsert is a history event). */
  private publish(): void {
    const last = this.s.events[this.s.events.length - 1];
    const attrs: SearchAttributeUpdatePair[] = [
      { key: SA.blockedIp, value: this.input.ip },
      { key: SA.firewallTarget, value: this.input.target },
      { key: SA.addressGroup, value: this.input.group },
      { key: SA.blockState, value: this.s.state },
      { key: SA.blockExpiresAt, value: new Date(this.s.expiresAtMs) },
      { key: SA.adsEventId, value: this.s.events.slice(-SEARCHABLE_EVENT_IDS).map((e) => e.id) },
      ...(last?.severity ? [{ key: SA.adsSeverity, value: last.severity }] : []),
      ...(last?.method ? [{ key: SA.adsMethod, value: last.method }] : []),
    ];
    const fingerprint = JSON.stringify(attrs.map((a) => a.value));
    if (fingerprint === this.published) return;
    this.published = fingerprint;
    wf.upsertSearchAttributes(attrs);
  }

  private comment(): string {
    const e = this.s.events[this.s.events.length - 1];
    const what = e ? `ADS event ${e.id}${e.method ? ` ${e.method}` : ''}${e.severity ? ` (${e.severity})` : ''}` : this.input.reason;
    return `ads-mitigator: ${what}; until ${iso(this.s.expiresAtMs)}`;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The message of the innermost cause (an ActivityFailure wraps the ApplicationFailure that says why). */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e === 'object' && e.cause) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
