/**
 * The block operations every front end uses (webhook, REST API, CLI through the API): start-or-repeat,
 * extend, cancel, read, list. Thin over the Temporal client: the workflows hold the state, visibility is
 * the database.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, Client, WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import type { Duration } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import ipaddr from 'ipaddr.js';
import type { Config, TargetConfig } from '../config';
import { KeyedQueue } from './keyed-queue';
import { BurstGate } from './burst-gate';
import { KnownBlocks } from './known-blocks';
import { BURST_LINGER_MS, type AheadWriter } from './ahead-writer';
import { BURST_CLAIM_MS } from '../../workflows/early-adds';
import { canonicalIp, checkIp, IpCheck } from '../policy/ip-policy';
import type { ipBlock } from '../../workflows/block';
import { addLabel } from '../../workflows/block-rules';
import { enforcementRefFor, takesEarlyAdds } from '../enforcement';
import { sendToEnforcer } from '../../activities/messaging';
import {
  BLOCK_TYPES_CLAUSE,
  BlockInput,
  BlockState,
  BlockStatus,
  blockWorkflowId,
  cancelUpdate,
  DUPLICATE_EVENT,
  EventOutcome,
  EventRef,
  extendUpdate,
  recordEventUpdate,
  RecordEventResult,
  SA,
  SetChange,
  statusQuery,
  WORKFLOW_TYPES,
} from '../../workflows/messages';

/**
 * A block's workflow-task timeout (the server's default: 10 s). A new block's first task waits for its enforcer's
 * commit (a flood's tick: up to 2 s for its batch, then the commit, 3 s at most in the enforcer's Update), and in a
 * 5,000-IP burst the server's own queue adds seconds to that: with 10 s, hundreds to thousands of first tasks
 * timed out and ran again whole (their add sent again, an address group's object touched again). A worker that
 * dies holding a task hands it on after this long.
 */
export const BLOCK_TASK_TIMEOUT: Duration = '20s';

export class BlockError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface BlockRequest {
  ip: string;
  ttlMs?: number;
  reason: string;
  actor: string;
  event?: Omit<EventRef, 'receivedAtMs'>;
  /** Target names; default: every configured target. */
  targets?: string[];
}

export interface BlockResult {
  target: string;
  workflowId: string;
  /** `queued`: the block is durable but did not answer within API_WAIT_LIMIT (a busy or absent worker). */
  outcome: EventOutcome | 'queued';
  state: BlockState;
  expiresAt: string;
}

export interface ListFilter {
  ip?: string;
  target?: string;
  state?: BlockState;
  expiresBefore?: Date;
  /** Include ended blocks (closed workflows still retained by Temporal). */
  includeEnded?: boolean;
  pageSize?: number;
  pageToken?: string;
}

export interface BlockSummary {
  workflowId: string;
  ip: string;
  target: string;
  group?: string;
  state?: string;
  expiresAt?: string;
  eventIds: string[];
  severity?: string;
  method?: string;
  status: string;
  startedAt: string;
  closedAt?: string;
}

export class BlockService {
  /** One Update at a time per block workflow from this process (see KeyedQueue). */
  private readonly perBlock = new KeyedQueue();
  /** Blocks seen running from here: their repeat events send no early add. */
  private readonly known = new KnownBlocks();
  /** Block requests of this process in flight: a burst (and a while after it) sends no early adds. */
  private readonly burst = new BurstGate();

  /** How long one HTTP request may wait on a block before it is answered with the block's current state. */
  private readonly waitLimitMs: number;

  constructor(
    private readonly client: Client,
    private readonly config: Pick<Config, 'targets' | 'block' | 'ipPolicy' | 'temporal'> & { api?: Pick<Config['api'], 'waitLimitMs'>; notify?: Config['notify'] },
    /** Writes early adds itself where the backend allows (a pushed feed); without it, the enforcer writes them. */
    private readonly ahead?: AheadWriter,
  ) {
    this.waitLimitMs = config.api?.waitLimitMs ?? 10_000;
  }

  /**
   * A request with several block requests in it (a webhook's lines) announces them before they run: as many
   * at once are a burst from the first of them on (BurstGate). Returns the call that ends the announcement.
   * One alone needs none: its own block request counts.
   */
  announce(n: number): () => void {
    if (n <= 1) return () => undefined;
    this.burst.enter(Date.now(), n);
    return () => this.burst.leave(Date.now(), n);
  }

  /** Validates against the full safety policy; throws a 422 naming the rule. */
  checkIp(ip: string): Extract<IpCheck, { ok: true }> {
    const verdict = checkIp(ip, this.config.ipPolicy);
    if (!verdict.ok) throw new BlockError(422, `ip-${verdict.code}`, verdict.reason, { ip });
    return verdict;
  }

  targetsFor(names?: string[]): TargetConfig[] {
    if (!names || names.length === 0) return this.config.targets;
    return names.map((n) => {
      const t = this.config.targets.find((x) => x.name === n);
      if (!t) throw new BlockError(422, 'unknown-target', `unknown firewall target "${n}"`, { known: this.config.targets.map((x) => x.name) });
      return t;
    });
  }

  /**
   * Starts the block workflow of each target, or records the event in the running one (Update-with-Start:
   * one workflow per IP however many events arrive; a retried delivery of one event id changes nothing).
   */
  async block(req: BlockRequest): Promise<BlockResult[]> {
    const verdict = this.checkIp(req.ip);
    const ttlMs = req.ttlMs ?? this.config.block.ttlMs;
    if (ttlMs <= 0 || ttlMs > this.config.block.maxTtlMs) {
      throw new BlockError(422, 'ttl-out-of-range', `ttl must be positive and at most ${this.config.block.maxTtlMs} ms`);
    }
    const event: EventRef = { id: req.event?.id ?? `manual:${randomUUID()}`, method: req.event?.method, severity: req.event?.severity, receivedAtMs: Date.now() };
    const targets = this.targetsFor(req.targets);
    return Promise.all(targets.map((t) => this.blockOn(t, verdict, { ...req, ttlMs }, event)));
  }

  private async blockOn(t: TargetConfig, v: Extract<IpCheck, { ok: true }>, req: BlockRequest & { ttlMs: number }, event: EventRef): Promise<BlockResult> {
    this.burst.enter(Date.now());
    try {
      return await this.startOrRecord(t, v, req, event);
    } finally {
      this.burst.leave(Date.now());
    }
  }

  private async startOrRecord(t: TargetConfig, v: Extract<IpCheck, { ok: true }>, req: BlockRequest & { ttlMs: number }, event: EventRef): Promise<BlockResult> {
    const set = enforcementRefFor(t, v.family).set;
    const input: BlockInput = {
      target: t.name,
      ip: v.ip,
      family: v.family,
      ttlMs: req.ttlMs,
      maxTtlMs: this.config.block.maxTtlMs,
      escalation: this.config.block.escalation,
      reason: req.reason,
      actor: req.actor,
      ...(this.config.notify?.kinds.length ? { notify: this.config.notify.kinds } : {}),
    };
    const workflowId = blockWorkflowId(t.name, v.ip);
    const waitUntil = Date.now() + this.waitLimitMs;
    // The firewall write need not wait for the block to start and run its first task: the enforcer gets the add
    // now, beside the start, and checks it later (workflows/early-adds.ts). Not for a block known to run. In a
    // burst only as the backend says (EnforcementBackend.earlyInBurst: written here a batch per write, or by the
    // enforcer in its flood ticks), once the block has started, and counted (AheadWriter.admitBurstAdd).
    const fresh = this.config.block.earlyAdd && !this.known.has(workflowId, Date.now());
    const calm = this.burst.calm(Date.now());
    const inBurst = fresh && !calm ? this.ahead?.earlyInBurst(t.name) : undefined;
    const early = !!inBurst || (fresh && calm && (takesEarlyAdds(t) || !!this.ahead?.takes(t.name)));
    // Written by this process (a pushed feed, a group's append): once the block's start is durable, below.
    const ahead = early && (inBurst ? inBurst === 'ahead' : this.ahead?.takes(t.name)) ? this.ahead : undefined;
    if (early && !ahead && !inBurst) this.earlyAdd(t, set, v, req, event);
    const start = {
      workflowId,
      taskQueue: this.config.temporal.taskQueue,
      workflowTaskTimeout: BLOCK_TASK_TIMEOUT,
      staticSummary: summaryOf(v.ip, t.name, req),
      typedSearchAttributes: [
        { key: SA.blockedIp, value: v.ip },
        { key: SA.firewallTarget, value: t.name },
        { key: SA.addressGroup, value: set },
        { key: SA.blockState, value: 'pending' },
        { key: SA.blockExpiresAt, value: new Date(Date.now() + req.ttlMs) },
        ...(req.event?.method ? [{ key: SA.adsMethod, value: req.event.method }] : []),
        ...(req.event?.severity ? [{ key: SA.adsSeverity, value: req.event.severity }] : []),
      ],
    };
    // A block not known to run here starts with its event in its input: answered as soon as the start is durable.
    // Its first task — admission, and the add waiting for its enforcer's commit — runs behind the answer, so a
    // burst's webhook replies never wait for the firewall. One that runs already takes the event by Update.
    if (!this.known.has(workflowId, Date.now())) {
      const started = await this.perBlock.run(workflowId, () =>
        this.client.workflow.start<typeof ipBlock>(WORKFLOW_TYPES.block, { ...start, args: [{ ...input, event }], workflowIdConflictPolicy: 'FAIL' }).then(
          () => true,
          (err) => {
            if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
            throw err;
          },
        ),
      );
      if (started) {
        // A burst's early add (written here or by the enforcer) only for a block that started: no entry for a start that failed.
        if (inBurst ? this.ahead!.admitBurstAdd(t.name, set, Date.now()) : ahead) this.earlyAdd(t, set, v, req, event, ahead, !!inBurst);
        const expiresAt = new Date(event.receivedAtMs + req.ttlMs).toISOString();
        this.known.remember(workflowId, Date.parse(expiresAt));
        return { target: t.name, workflowId, outcome: 'started', state: 'pending', expiresAt };
      }
    }
    // A run that is already releasing cannot take the event: wait (bounded) for it to end, then start afresh.
    for (;;) {
      const op = new WithStartWorkflowOperation<typeof ipBlock>(WORKFLOW_TYPES.block, { ...start, args: [input], workflowIdConflictPolicy: 'USE_EXISTING' });
      const r = await this.perBlock.run(workflowId, () =>
        withDeadline(
          this.client.workflow.executeUpdateWithStart(recordEventUpdate, { args: [{ event, ttlMs: req.ttlMs }], startWorkflowOperation: op }).catch(duplicateAnswer),
          waitUntil,
        ),
      );
      if (r === TIMED_OUT) return { target: t.name, workflowId, outcome: 'queued', state: 'pending', expiresAt: new Date(Date.now() + req.ttlMs).toISOString() };
      if (r.outcome !== 'unchanged' || r.state === 'active' || r.state === 'pending') {
        if (r.state === 'active' || r.state === 'pending') this.known.remember(workflowId, Date.parse(r.expiresAt));
        else this.known.forget(workflowId);
        return { target: t.name, workflowId, outcome: r.outcome, state: r.state, expiresAt: r.expiresAt };
      }
      const ended = await withDeadline((await op.workflowHandle()).result().catch(() => undefined), waitUntil);
      if (ended === TIMED_OUT) {
        throw new BlockError(409, 'block-ending', `the block of ${v.ip} on ${t.name} is being lifted; the event was not recorded: send it again in a moment`);
      }
    }
  }

  /**
   * The early add of a new block (fire and forget): a failure costs only the head start, the block's own add
   * follows. Carries what the block's add will carry, so an early entry looks the same on the firewall. Where the
   * backend takes adds beside its writer (a pushed feed, a group's append), this process writes it itself, once the
   * block's start is durable (the block that will claim it exists), beside the message that schedules the entry's
   * check at its enforcer: waiting for that message's acknowledgement (the enforcer's next workflow task, 40 ms
   * p50 and 110 ms p95 measured at 20 events/s) would put it on the attacker's way to the firewall. Should the
   * message not land (this process dies in between) while the block is refused, the entry is one no block
   * holds: reconciliation removes it.
   */
  private earlyAdd(t: TargetConfig, set: string, v: Extract<IpCheck, { ok: true }>, req: BlockRequest & { ttlMs: number }, event: EventRef, ahead?: AheadWriter, inBurst = false): void {
    const label = addLabel(event, req.reason, req.actor);
    const change: SetChange = {
      op: 'add',
      ip: v.ip,
      family: v.family,
      expiresAtMs: event.receivedAtMs + req.ttlMs,
      label,
      early: true,
      ...(ahead ? { ahead: true as const } : {}),
      // A burst's blocks claim late (their first tasks wait for the server): checked after BURST_CLAIM_MS. It also
      // tells the enforcer that this early add is a burst's: an arrival, kept in a flood (workflows/early-adds.ts).
      ...(inBurst ? { claimMs: BURST_CLAIM_MS } : {}),
    };
    const message = sendToEnforcer({ temporal: this.client, taskQueue: this.config.temporal.taskQueue }, t.name, set, [change]).catch(() => undefined);
    const write = ahead?.write(t.name, set, { ip: change.ip, family: change.family, expiresAtMs: change.expiresAtMs, label }, inBurst ? BURST_LINGER_MS : 0).catch(() => undefined);
    void Promise.all([message, write]);
  }

  async extend(ip: string, target: string | undefined, req: { byMs?: number; untilMs?: number; actor: string }): Promise<BlockStatus> {
    const handle = this.client.workflow.getHandle(blockWorkflowId(this.oneTarget(target).name, this.checkIp(ip).ip));
    try {
      return await handle.executeUpdate(extendUpdate, { args: [req] });
    } catch (err) {
      throw this.translate(err, ip);
    }
  }

  /** Unblock now. Idempotent: unblocking an IP that is not blocked answers `found: false`. */
  async cancel(ip: string, target: string | undefined, req: { reason: string; actor: string }): Promise<{ target: string; found: boolean; status?: BlockStatus }[]> {
    const canonical = this.canonical(ip);
    return Promise.all(
      this.targetsFor(target ? [target] : undefined).map(async (t) => {
        const handle = this.client.workflow.getHandle(blockWorkflowId(t.name, canonical));
        try {
          const status = await handle.executeUpdate(cancelUpdate, { args: [req] });
          // Answer with the end state when the set confirms in time; otherwise `releasing` (it completes on its own).
          const done = await withDeadline(handle.result().catch(() => undefined) as Promise<BlockStatus | undefined>, Date.now() + Math.min(this.waitLimitMs, 5_000));
          return { target: t.name, found: true, status: done !== TIMED_OUT && done ? done : status };
        } catch (err) {
          if (isGone(err)) return { target: t.name, found: false };
          throw this.translate(err, ip);
        }
      }),
    );
  }

  /** The live state of a running block (query), or the result of an ended one. */
  async get(ip: string, target?: string): Promise<BlockStatus> {
    const handle = this.client.workflow.getHandle(blockWorkflowId(this.oneTarget(target).name, this.canonical(ip)));
    try {
      const d = await handle.describe();
      if (d.status.name === 'RUNNING') return await handle.query(statusQuery);
      if (d.status.name === 'COMPLETED') return (await handle.result()) as BlockStatus;
      throw new BlockError(404, 'not-blocked', `${ip} is not blocked (last block ${d.status.name.toLowerCase()})`);
    } catch (err) {
      throw this.translate(err, ip);
    }
  }

  async list(f: ListFilter): Promise<{ blocks: BlockSummary[]; nextPageToken?: string }> {
    const clauses = [BLOCK_TYPES_CLAUSE];
    if (!f.includeEnded) clauses.push('ExecutionStatus = "Running"');
    if (f.target) clauses.push(`FirewallTarget = ${quote(f.target)}`);
    if (f.state) clauses.push(`BlockState = ${quote(f.state)}`);
    if (f.expiresBefore) clauses.push(`BlockExpiresAt < ${quote(f.expiresBefore.toISOString())}`);
    const cidr = f.ip ? this.cidrFilter(f.ip) : undefined;
    if (cidr && cidr.exact) clauses.push(`BlockedIp = ${quote(cidr.exact)}`);
    const pageSize = Math.min(Math.max(f.pageSize ?? 100, 1), 1000);
    const res = await this.client.workflowService.listWorkflowExecutions({
      namespace: this.client.options.namespace,
      query: clauses.join(' AND '),
      pageSize,
      nextPageToken: f.pageToken ? Buffer.from(f.pageToken, 'base64url') : undefined,
    });
    const blocks = (res.executions ?? []).map(summarise).filter((b) => !cidr || cidr.contains(b.ip));
    const token = res.nextPageToken?.length ? Buffer.from(res.nextPageToken).toString('base64url') : undefined;
    return { blocks, nextPageToken: token };
  }

  private cidrFilter(ip: string): { exact?: string; contains: (candidate: string) => boolean } {
    const c = this.canonical(ip);
    return c.includes('/') ? { contains: (x) => cidrContains(c, x) } : { exact: c, contains: (x) => x === c };
  }

  /** Syntax only: unblocking or reading must work whatever the policy says today. */
  private canonical(ip: string): string {
    const c = canonicalIp(ip);
    if (!c) throw new BlockError(400, 'ip-invalid', `"${ip}" is not an IP address or CIDR block`, { ip });
    return c;
  }

  private oneTarget(name?: string): TargetConfig {
    if (name) return this.targetsFor([name])[0];
    if (this.config.targets.length > 1) throw new BlockError(400, 'target-required', 'several firewall targets are configured: name one with ?target=');
    return this.config.targets[0];
  }

  private translate(err: unknown, ip: string): Error {
    if (err instanceof BlockError) return err;
    if (isGone(err)) return new BlockError(404, 'not-blocked', `${ip} is not blocked`);
    if (err instanceof WorkflowUpdateFailedError) return new BlockError(409, 'rejected', (err.cause as Error | undefined)?.message ?? err.message);
    return err as Error;
  }
}

const TIMED_OUT = Symbol('timed out');

/** The promise's value, or TIMED_OUT once the deadline passed (the promise goes on; its outcome is durable). */
async function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The Web UI's one-line summary of a block: `203.0.113.45 on edge-a — SSHDICT (High)`. */
function summaryOf(ip: string, target: string, req: BlockRequest): string {
  const why = req.event?.method ? `${req.event.method}${req.event.severity ? ` (${req.event.severity})` : ''}` : req.reason;
  return `${ip} on ${target} — ${why}`.slice(0, 200);
}

/** The block's validator refused an event it already holds (no history written): its answer rides in the failure. */
function duplicateAnswer(err: unknown): RecordEventResult {
  const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.type === DUPLICATE_EVENT) return cause.details?.[0] as RecordEventResult;
  throw err;
}

function isGone(err: unknown): boolean {
  return err instanceof WorkflowNotFoundError || /already completed|not found/i.test((err as Error)?.message ?? '');
}

function quote(s: string): string {
  return JSON.stringify(s);
}

type RawExecution = temporal.api.workflow.v1.IWorkflowExecutionInfo;

function summarise(raw: RawExecution): BlockSummary {
  const sa = decodeTypedSearchAttributes(raw.searchAttributes?.indexedFields);
  return {
    workflowId: raw.execution?.workflowId ?? '',
    ip: sa.get(SA.blockedIp) ?? '',
    target: sa.get(SA.firewallTarget) ?? '',
    group: sa.get(SA.addressGroup),
    state: sa.get(SA.blockState),
    expiresAt: sa.get(SA.blockExpiresAt)?.toISOString(),
    eventIds: sa.get(SA.adsEventId) ?? [],
    severity: sa.get(SA.adsSeverity),
    method: sa.get(SA.adsMethod),
    status: WORKFLOW_STATUS[raw.status ?? 0] ?? 'UNKNOWN',
    startedAt: tsToIso(raw.startTime) ?? '',
    closedAt: tsToIso(raw.closeTime),
  };
}

const WORKFLOW_STATUS = ['UNSPECIFIED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'CONTINUED_AS_NEW', 'TIMED_OUT'];

function tsToIso(ts: temporal.api.workflow.v1.IWorkflowExecutionInfo['startTime']): string | undefined {
  return ts ? new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString() : undefined;
}

function cidrContains(cidr: string, ip: string): boolean {
  try {
    const addr = ipaddr.parse(ip.split('/')[0]);
    const range = ipaddr.parseCIDR(cidr);
    return addr.kind() === range[0].kind() && addr.match(range);
  } catch {
    return false;
  }
}
