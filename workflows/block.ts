/**
 * ipBlock: one workflow per (firewall target, IP) — the source of truth for that IP. It is admitted (full
 * safety policy, enforcement set from the worker's configuration), asks its set's enforcer to add the IP,
 * holds for the TTL on a durable timer (repeat events, extend, cancel arrive as Updates or signals to this
 * same run), then asks the enforcer to remove it. What the firewall should hold is always derivable from
 * the running blocks: the enforcer and reconciliation may be terminated or reset at any time and converge
 * back from them (see reconcile.ts).
 *
 * The block is a small state machine (pending → active → releasing → ended) that can continue as new in
 * any state, carrying everything (outstanding request, pending eviction, cancel, extensions): a block that
 * receives events for 30 days stays far from the server's per-run limits. Cancelling the workflow itself
 * (Web UI, CLI) still lifts the block: the clean-up runs in a non-cancellable scope. The rules live in
 * block-rules.ts as plain functions.
 */
import * as wf from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { checkIp, RESERVED_ONLY_POLICY } from '../src/policy/ip-policy';
import { local } from './activity-options';
import { Notifier } from './notify';
import type { NotifyKind } from '../src/notify/events';
import {
  accepts,
  addLabel,
  applyStillActive,
  extend,
  extendProblem,
  freshCarry,
  hasEvent,
  isOver,
  iso,
  MESSAGES_PER_RUN,
  needsExpiryRefresh,
  recordEvent,
  relative,
  resendDelayMs,
  SEARCHABLE_EVENT_IDS,
  stillActiveDueMs,
  stillActiveQuestion,
} from './block-rules';
import {
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
  eventSignal,
  ExtendRequest,
  extendSignal,
  extendUpdate,
  reassertSignal,
  recordEventUpdate,
  RecordEventResult,
  SA,
  SetAnswer,
  setAnswerSignal,
  statusQuery,
} from './messages';

export async function ipBlock(input: BlockInput): Promise<BlockStatus> {
  return new Block(input).run();
}

class Block {
  private readonly info = wf.workflowInfo();
  /** Answers of the enforcer name this lineage: the same across continue-as-new, new for a new block of the IP. */
  private readonly lineage = this.info.firstExecutionRunId;
  private readonly s: BlockCarry;
  /** Set by every message, so the main loop re-evaluates (and checks the per-run message budget). */
  private wake = false;
  private messages = 0;
  /** Block, extend and end notifications (off unless NOTIFY_* configured a sink: then nothing is scheduled). */
  private readonly notifier: Notifier;

  constructor(private readonly input: BlockInput) {
    this.s = input.carried ? { ...input.carried } : freshCarry(input, Date.now());
    this.notifier = new Notifier(input.notify ?? []);
    this.registerHandlers();
  }

  async run(): Promise<BlockStatus> {
    try {
      if (!this.input.carried || !this.s.enforcement) await this.admit();
      while (!ENDED_STATES.includes(this.s.state)) {
        this.publish();
        if (this.s.state === 'pending') await this.pending();
        else if (this.s.state === 'active') await this.active();
        else await this.releasing();
        if (this.messages >= MESSAGES_PER_RUN || wf.workflowInfo().continueAsNewSuggested) {
          if (!ENDED_STATES.includes(this.s.state)) await this.continueAsNew();
        }
      }
      this.publish();
      await this.notifier.beforeEnd();
      return this.status();
    } catch (err) {
      if (wf.isCancellation(err)) {
        // Cancelled from outside (Web UI, CLI): the block must still be lifted, whatever else is cancelled.
        await wf.CancellationScope.nonCancellable(async () => {
          this.requestCancel({ reason: 'workflow cancelled', actor: 'temporal' });
          while (!ENDED_STATES.includes(this.s.state)) {
            this.publish();
            await this.releasing();
          }
          this.publish();
          await this.notifier.beforeEnd();
        });
      }
      throw err;
    }
  }

  // ------------------------------------------------------------------ lifecycle steps
  /** Syntax here (deterministic), the full policy and the enforcement set in the worker (its configuration). */
  private async admit(): Promise<void> {
    const { ip, target, family } = this.input;
    const verdict = checkIp(ip, RESERVED_ONLY_POLICY);
    if (!verdict.ok || verdict.ip !== ip) {
      return this.end('rejected', verdict.ok ? `"${ip}" is not in canonical form (${verdict.ip})` : verdict.reason);
    }
    // A new block: one local activity admits it and hands its add to the enforcer (histories of before: two,
    // the add sent from pending()). Not for a block cancelled before its first step (it never asks for the
    // add), nor for one carried over from the first release (it may be releasing).
    const fresh = !this.input.carried && this.s.state === 'pending' && !this.s.cancelledBy;
    const together = fresh && wf.patched('admit-and-ask');
    const add = together ? this.addChange() : undefined;
    if (add) {
      // Asked before the activity returns: the enforcer may answer while it still runs (a slow task is
      // heartbeated, and the answer is delivered to it). What the add carried is what was pushed: a repeat
      // event recorded meanwhile that moved the expiry far is sent on (active()).
      this.s.asked = { op: 'add', atMs: Date.now(), sends: 1 };
      this.s.reassert = false;
      this.s.pushedExpiryMs = add.expiresAtMs;
    }
    const admission = add ? await local.admitAndAsk({ target, ip, family, add }) : await local.admitBlock({ target, ip, family });
    if (!admission.ok) return this.end('rejected', admission.reason);
    this.s.enforcement = admission.enforcement;
    if (admission.stillActive) this.s.stillActive = admission.stillActive;
    // The enforcer's answer, when it came back with the add (histories of before never carry one).
    const answer = (admission as { answer?: SetAnswer }).answer;
    if (answer) this.onAnswer(answer);
  }

  private async pending(): Promise<void> {
    if (this.s.cancelledBy) return this.toReleasing();
    if (this.s.evicted) return this.end('evicted');
    if (this.s.asked?.op !== 'add' || this.s.reassert) await this.send('add');
    await this.waitOrResend();
  }

  private async active(): Promise<void> {
    if (this.s.evicted) return this.end('evicted');
    if (this.s.cancelledBy) return this.toReleasing();
    const remaining = this.s.expiresAtMs - Date.now();
    if (remaining <= 0) return this.toReleasing();
    if (this.s.reassert || needsExpiryRefresh(this.s)) await this.send('add');
    // STILL_ACTIVE (absent unless admitted with it on: then nothing below differs from before).
    const askAt = stillActiveDueMs(this.s);
    if (askAt !== undefined && askAt <= Date.now()) return this.askStillActive();
    const wakeIn = askAt === undefined ? remaining : Math.min(remaining, askAt - Date.now());
    if (this.s.asked) return this.waitOrResend(wakeIn);
    this.wake = false;
    await wf.condition(() => this.wake, wakeIn);
  }

  /** Is the attacker still active? One local activity (it never fails: `unknown` changes nothing). */
  private async askStillActive(): Promise<void> {
    const askedAt = Date.now();
    this.s.stillActiveAskedForMs = this.s.expiresAtMs;
    const answer = await local.askStillActive(stillActiveQuestion(this.s, this.input, askedAt));
    applyStillActive(this.s, this.input, askedAt, answer, Date.now());
  }

  private async releasing(): Promise<void> {
    if (this.s.asked?.op !== 'remove' || this.s.reassert) await this.send('remove');
    await this.waitOrResend();
  }

  private toReleasing(): void {
    this.s.state = 'releasing';
    this.s.asked = undefined;
  }

  /** Waits for a message; when the outstanding request stays unanswered, sends it again (idempotent). */
  private async waitOrResend(capMs?: number): Promise<void> {
    const asked = this.s.asked;
    // Answered while it was being sent (the enforcer answered during our own slow task): nothing to wait for.
    if (!asked) return;
    const resendIn = asked.atMs + resendDelayMs(asked) - Date.now();
    this.wake = false;
    const woken = await wf.condition(() => this.wake, Math.max(1, capMs === undefined ? resendIn : Math.min(resendIn, capMs)));
    if (!woken && this.s.asked === asked && asked.atMs + resendDelayMs(asked) <= Date.now()) this.s.reassert = true;
  }

  /**
   * Tells the enforcer; the answer comes back with it when the enforcer settled the change within its short wait,
   * otherwise it arrives as a setAnswer signal (lineage-checked either way).
   */
  private async send(op: 'add' | 'remove'): Promise<void> {
    const { target, ip, family } = this.input;
    const sends = this.s.asked?.op === op ? this.s.asked.sends + 1 : 1;
    this.s.asked = { op, atMs: Date.now(), sends };
    this.s.reassert = false;
    if (op === 'add') this.s.pushedExpiryMs = this.s.expiresAtMs;
    const change = op === 'add' ? this.addChange() : { owner: this.owner(), expiresAtMs: undefined, label: undefined };
    const answer = await local.askEnforcer({ target, set: this.s.enforcement!.set, change: { op, ip, family, ...change } });
    if (answer) this.onAnswer(answer);
  }

  private owner(): { workflowId: string; lineage: string } {
    return { workflowId: this.info.workflowId, lineage: this.lineage };
  }

  /** What an add carries besides the IP: who asks, until when, and the object comment's text. */
  private addChange(): { owner: { workflowId: string; lineage: string }; expiresAtMs: number; label: string } {
    return { owner: this.owner(), expiresAtMs: this.s.expiresAtMs, label: this.label() };
  }

  private onAnswer(a: SetAnswer): void {
    if (!accepts(this.s, a, this.lineage)) return;
    if (a.op === 'evict') {
      this.s.evicted = a.reason ?? 'rotated out of a full set';
      return;
    }
    this.s.asked = undefined;
    if (!a.ok) {
      // The firewall refused this entry for good (the enforcer isolated it): visible, with its reason.
      this.end('failed', a.reason ?? 'refused by the firewall');
      return;
    }
    if (a.op === 'add') {
      if (this.s.state === 'pending') {
        this.s.state = 'active';
        this.s.blockedAtMs = Date.now();
        this.tell('block');
      }
    } else {
      this.end(this.s.evicted ? 'evicted' : this.s.cancelledBy ? 'cancelled' : 'expired');
    }
  }

  private end(state: BlockCarry['state'], error?: string): void {
    this.s.state = state;
    this.s.asked = undefined;
    this.s.endedAtMs = Date.now();
    if (error) this.s.lastError = error;
    const kind = ({ cancelled: 'unblock', expired: 'expiry', evicted: 'eviction' } as Partial<Record<BlockCarry['state'], NotifyKind>>)[state];
    if (kind) this.tell(kind);
  }

  private tell(kind: NotifyKind, actor?: string): void {
    const s = this.s;
    const why = kind === 'eviction' ? s.evicted : kind === 'unblock' ? s.cancelledBy?.reason : this.input.reason;
    this.notifier.notify({
      kind,
      ip: this.input.ip,
      target: this.input.target,
      state: s.state,
      expiresAt: iso(s.expiresAtMs),
      reason: why,
      actor: actor ?? (kind === 'unblock' ? s.cancelledBy?.actor : this.input.actor),
      workflowId: this.info.workflowId,
      summary: `${kind}: ${this.input.ip} on ${this.input.target}${kind === 'block' || kind === 'extend' ? ` until ${iso(s.expiresAtMs)}` : ''}${why ? ` — ${why}` : ''}`,
    });
  }

  private async continueAsNew(): Promise<never> {
    await this.notifier.beforeEnd();
    await wf.condition(wf.allHandlersFinished);
    return wf.continueAsNew<typeof ipBlock>({ ...this.input, event: undefined, carried: { ...this.s } });
  }

  // ------------------------------------------------------------------ messages
  private registerHandlers(): void {
    const counted =
      <A extends unknown[], R>(fn: (...a: A) => R) =>
      (...a: A): R => {
        this.messages++;
        this.wake = true;
        return fn(...a);
      };
    wf.setHandler(eventSignal, counted(({ event, ttlMs }) => void this.onEvent(event, ttlMs)));
    wf.setHandler(recordEventUpdate, counted(({ event, ttlMs }) => this.eventResult(this.onEvent(event, ttlMs))), {
      validator: ({ event }) => {
        if (isOver(this.s) || !hasEvent(this.s, event.id)) return;
        throw wf.ApplicationFailure.create({ type: DUPLICATE_EVENT, message: `event ${event.id} is already recorded`, nonRetryable: true, details: [this.eventResult('duplicate')] });
      },
    });
    wf.setHandler(extendSignal, counted((req) => void (extendProblem(this.s, this.input, req, Date.now()) ? undefined : extend(this.s, req, Date.now()))));
    wf.setHandler(extendUpdate, counted((req: ExtendRequest) => (extend(this.s, req, Date.now()), this.tell('extend', req.actor), this.status())), {
      validator: (req) => {
        const problem = extendProblem(this.s, this.input, req, Date.now());
        if (problem) throw new Error(problem);
      },
    });
    wf.setHandler(cancelSignal, counted((req) => this.requestCancel(req)));
    wf.setHandler(cancelUpdate, counted((req: CancelRequest) => (this.requestCancel(req), this.status())));
    wf.setHandler(setAnswerSignal, counted((a) => this.onAnswer(a)));
    wf.setHandler(reassertSignal, counted(() => void (ENDED_STATES.includes(this.s.state) ? undefined : (this.s.reassert = true))));
    wf.setHandler(statusQuery, () => this.status());
  }

  private onEvent(event: EventRef, ttlMs: number): EventOutcome {
    if (isOver(this.s)) return 'unchanged';
    if (hasEvent(this.s, event.id)) return 'duplicate';
    return recordEvent(this.s, this.input, event, ttlMs, Date.now());
  }

  private eventResult(outcome: EventOutcome): RecordEventResult {
    return { outcome, expiresAt: iso(this.s.expiresAtMs), state: this.s.state };
  }

  /** Idempotent: the first cancel wins. Answers already show `releasing`. */
  private requestCancel(req: CancelRequest): void {
    if (isOver(this.s)) return;
    this.s.cancelledBy = { ...req, atMs: Date.now() };
    if (this.s.state === 'active' || this.s.state === 'pending') this.toReleasing();
  }

  // ------------------------------------------------------------------ visibility
  private status(): BlockStatus {
    const s = this.s;
    return {
      workflowId: this.info.workflowId,
      target: this.input.target,
      ip: this.input.ip,
      family: this.input.family,
      group: s.enforcement?.set ?? '',
      state: s.state,
      reason: this.input.reason,
      actor: this.input.actor,
      createdAt: iso(s.createdAtMs),
      blockedAt: s.blockedAtMs ? iso(s.blockedAtMs) : undefined,
      expiresAt: iso(s.expiresAtMs),
      endedAt: s.endedAtMs ? iso(s.endedAtMs) : undefined,
      events: s.events,
      eventCount: s.eventCount,
      extensions: s.extensions,
      cancelledBy: s.cancelledBy ? { actor: s.cancelledBy.actor, reason: s.cancelledBy.reason, at: iso(s.cancelledBy.atMs) } : undefined,
      evictedReason: s.evicted,
      lastError: s.lastError,
      ...(s.stillActive ? { stillActive: { ...s.stillActive, ...(s.stillActiveLast ? { last: s.stillActiveLast } : {}) } } : {}),
    };
  }

  private published = '';
  /** Mirrors the state into search attributes (only when it changed: each upsert is a history event) and the Web UI's details. */
  private publish(): void {
    const last = this.s.events[this.s.events.length - 1];
    const attrs: SearchAttributeUpdatePair[] = [
      { key: SA.blockedIp, value: this.input.ip },
      { key: SA.firewallTarget, value: this.input.target },
      { key: SA.blockState, value: this.s.state },
      { key: SA.blockExpiresAt, value: new Date(this.s.expiresAtMs) },
      { key: SA.adsEventId, value: this.s.events.slice(-SEARCHABLE_EVENT_IDS).map((e) => e.id) },
      ...(this.s.enforcement ? [{ key: SA.addressGroup, value: this.s.enforcement.set }] : []),
      ...(last?.severity ? [{ key: SA.adsSeverity, value: last.severity }] : []),
      ...(last?.method ? [{ key: SA.adsMethod, value: last.method }] : []),
    ];
    wf.setCurrentDetails(this.details());
    const fingerprint = JSON.stringify(attrs.map((a) => a.value));
    if (fingerprint === this.published) return;
    this.published = fingerprint;
    wf.upsertSearchAttributes(attrs);
  }

  /** Markdown for the Web UI: state, until when (UTC and relative), why, last events, who changed it. */
  private details(): string {
    const s = this.s;
    const now = Date.now();
    const ended = ENDED_STATES.includes(s.state);
    const lines = [
      `**${s.state}** — ${this.input.ip} on ${this.input.target}${s.enforcement ? ` (set ${s.enforcement.set})` : ''}`,
      ended ? `ended ${s.endedAtMs ? iso(s.endedAtMs) : ''}` : `until ${iso(s.expiresAtMs)} (${relative(s.expiresAtMs, now)})`,
      `why: ${this.input.reason} — by ${this.input.actor}`,
      ...s.events.slice(-3).reverse().map((e) => `event ${e.id}${e.method ? ` ${e.method}` : ''}${e.severity ? ` (${e.severity})` : ''} at ${iso(e.receivedAtMs)}`),
      ...(s.eventCount > 3 ? [`${s.eventCount} events in all`] : []),
      ...s.extensions.slice(-2).map((x) => `extended to ${iso(x.toMs)} by ${x.actor}`),
      ...(s.stillActiveLast ? [`still active? ${s.stillActiveLast.verdict} (${s.stillActiveLast.source}, ${iso(s.stillActiveLast.atMs)}): ${s.stillActiveLast.detail}`] : []),
      ...(s.cancelledBy ? [`cancelled by ${s.cancelledBy.actor}: ${s.cancelledBy.reason}`] : []),
      ...(s.evicted ? [`evicted: ${s.evicted}`] : []),
      ...(s.lastError ? [`error: ${s.lastError}`] : []),
    ];
    return lines.join('  \n');
  }

  /** A short description for the firewall object (the backend prefixes its ownership marker and the expiry). */
  private label(): string {
    return addLabel(this.s.events[this.s.events.length - 1], this.input.reason, this.input.actor);
  }
}
