/**
 * What every front end (the webhook, the syslog listener) does with parsed ADS events, free of any
 * transport, in two phases so that nothing is half-done:
 *  1. plan: every event through the intake policy (`decide`, with the cap on addresses per event) and
 *     every IP through the safety policy (`BlockService.checkIp`). Pure validation, nothing is started.
 *  2. execute: one `BlockService.block` per (event, IP). A retried delivery of the same event is a no-op in
 *     the block workflow (it dedups on the event id), so re-sending a whole batch after a failure is safe.
 * `runIntake` is both phases in one call; it is what the front ends use.
 */
import type { AdsEvent } from '../ads/event';
import { AllowlistCache, coveringEntry, describeEntry } from '../allowlist/cache';
import type { AllowEntry } from '../../workflows/allowlist';
import { CanHold, CAP_APPLIES, decide, IgnoreRule, IntakePolicy } from '../ads/decision';
import { BlockError, BlockRequest, BlockResult, BlockService } from '../blocks/service';
import type { EventOutcome } from '../../workflows/messages';
import { inPool } from '../pool';

/** `queued`: durable, but the block did not answer within API_WAIT_LIMIT; `ignored`: allowlisted. */
export type IpOutcome = EventOutcome | 'queued' | 'ignored' | 'rejected';

export interface IpResult {
  ip: string;
  /** Across targets, the most consequential: started > extended > unchanged > duplicate. */
  outcome: IpOutcome;
  /** Why it was rejected (`ip-private`, `ip-allowlisted`, ...). */
  code?: string;
  reason?: string;
  targets?: BlockResult[];
  /** The runtime allowlist entry that covers the address (outcome `ignored`). */
  allowlist?: AllowEntry;
}

export interface EventResult {
  eventId: string;
  kind: AdsEvent['kind'];
  method: string;
  priority?: string;
  /** Blocked events: the most consequential IP outcome (`rejected` only when every IP was). */
  outcome: IpOutcome | 'ignored';
  /** Whose address the method blocks: the source, or the targets (DOS). */
  role?: 'source' | 'targets';
  /** The intake rule that ignored the event; `allowlisted`: every address is on the runtime allowlist. */
  rule?: IgnoreRule | 'allowlisted';
  reason?: string;
  ips?: IpResult[];
  /** The runtime allowlist entry, when every address of the event is covered by the same one. */
  allowlist?: AllowEntry;
}

interface BlockJob {
  result: IpResult;
  request: BlockRequest;
}

export interface IntakePlan {
  results: EventResult[];
  jobs: BlockJob[];
}

export interface IntakeOptions {
  blocks: BlockService;
  policy: IntakePolicy;
  /** Block operations in flight for this call. */
  concurrency: number;
  /** Lifts MAX_TARGETS_PER_EVENT for an event whose addresses the enforcement backend can all hold. Default: never. */
  canHold?: CanHold;
  /**
   * Awaited once, after planning and before the first block is started, and only when there is one to
   * start: e.g. the webhook's "is Temporal there?" probe, which turns an outage into a quick 503. A throw
   * aborts the call with nothing started.
   */
  beforeExecute?: () => Promise<void>;
  /** The runtime allowlist: covered addresses are answered `ignored` with the entry named (webhook and syslog alike). */
  allowlist?: Pick<AllowlistCache, 'entries'>;
}

/**
 * Plan and execute: the per-event results. BlockErrors become per-IP results; anything else (Temporal
 * gone, a throw from beforeExecute) propagates, and the caller may retry the same events safely.
 */
export async function runIntake(events: readonly AdsEvent[], o: IntakeOptions): Promise<EventResult[]> {
  const plan = planIntake(events, o.blocks, o.policy, o.canHold);
  if (plan.jobs.length > 0) {
    await o.beforeExecute?.();
    const entries = o.allowlist ? await o.allowlist.entries() : [];
    if (entries.length) applyAllowlist(plan, (ip) => coveringEntry(ip, entries));
  }
  return executeIntake(plan, o.blocks, o.concurrency);
}

/** Phase 1: decide and validate every event and IP. Throws nothing for bad data: it becomes a result. */
export function planIntake(events: readonly AdsEvent[], blocks: BlockService, intake: IntakePolicy, canHold: CanHold = CAP_APPLIES): IntakePlan {
  const plan: IntakePlan = { results: [], jobs: [] };
  for (const e of events) {
    const base = { eventId: e.id, kind: e.kind, method: e.method, ...(e.priority ? { priority: e.priority } : {}) };
    const decision = decide(e, intake, canHold);
    if (decision.action === 'ignore') {
      plan.results.push({ ...base, outcome: 'ignored', rule: decision.rule, reason: decision.reason });
      continue;
    }
    const ips = decision.ips.map((ip) => planIp(ip, e, decision.role, blocks, plan.jobs));
    plan.results.push({ ...base, outcome: 'rejected', role: decision.role, ips });
  }
  return plan;
}

function planIp(ip: string, e: AdsEvent, role: 'source' | 'targets', blocks: BlockService, jobs: BlockJob[]): IpResult {
  try {
    const canonical = blocks.checkIp(ip).ip;
    const result: IpResult = { ip: canonical, outcome: 'rejected' }; // until phase 2 says otherwise
    jobs.push({ result, request: blockRequest(canonical, e, role) });
    return result;
  } catch (err) {
    if (!(err instanceof BlockError)) throw err;
    return { ip, outcome: 'rejected', code: err.code, reason: err.message };
  }
}

function blockRequest(ip: string, e: AdsEvent, role: 'source' | 'targets'): BlockRequest {
  const who = role === 'targets' ? 'named as a target' : 'source';
  return {
    ip,
    reason: `${e.kind.toUpperCase()} ${e.method} event ${e.id}${e.priority ? ` (${e.priority})` : ''}: ${who}`,
    actor: 'ads',
    event: { id: eventRefId(e), method: e.method, severity: e.priority },
  };
}

/**
 * The id the block workflow dedups on. ADS and IDS number their events independently, so an IDS id gets a
 * prefix: ADS event 88812 and IDS event 88812 are different events.
 */
export function eventRefId(e: Pick<AdsEvent, 'id' | 'kind'>): string {
  return e.kind === 'ids' ? `ids:${e.id}` : e.id;
}

/**
 * Between the phases: addresses on the runtime allowlist are answered `ignored`, naming the entry, and are
 * not blocked. `covers` is synchronous over a list read once per request (AllowlistCache.entries()).
 */
export function applyAllowlist(plan: IntakePlan, covers: (ip: string) => AllowEntry | undefined): void {
  plan.jobs = plan.jobs.filter((job) => {
    const entry = covers(job.result.ip);
    if (!entry) return true;
    Object.assign(job.result, { outcome: 'ignored', code: 'allowlisted', reason: `${job.result.ip} is covered by ${describeEntry(entry)}`, allowlist: entry });
    return false;
  });
}

/**
 * Phase 2: runs the block jobs, at most `concurrency` at a time, and the jobs of one IP in order (so that
 * "started" goes to the first event that names it). BlockErrors (e.g. a block being lifted right now)
 * reject that IP; anything else (Temporal gone) propagates and fails the request, which may be retried.
 */
export async function executeIntake(plan: IntakePlan, blocks: BlockService, concurrency: number): Promise<EventResult[]> {
  const byIp = new Map<string, BlockJob[]>();
  for (const job of plan.jobs) byIp.set(job.result.ip, [...(byIp.get(job.result.ip) ?? []), job]);
  const announced = blocks.announce(plan.jobs.length);
  try {
    await inPool([...byIp.values()], concurrency, async (jobs) => {
      for (const job of jobs) await runJob(job, blocks);
    });
  } finally {
    announced();
  }
  for (const r of plan.results) {
    if (!r.ips) continue;
    r.outcome = mostConsequential(r.ips.map((i) => i.outcome));
    const allowed = r.ips.map((i) => i.allowlist);
    if (r.outcome === 'ignored' && allowed.every((e) => e && e.cidr === allowed[0]!.cidr)) {
      Object.assign(r, { rule: 'allowlisted', reason: r.ips[0].reason, allowlist: allowed[0] });
    }
  }
  return plan.results;
}

async function runJob(job: BlockJob, blocks: BlockService): Promise<void> {
  try {
    const targets = await blocks.block(job.request);
    job.result.outcome = mostConsequential(targets.map((t) => t.outcome));
    job.result.targets = targets;
  } catch (err) {
    if (!(err instanceof BlockError)) throw err;
    Object.assign(job.result, { outcome: 'rejected', code: err.code, reason: err.message });
  }
}

const RANK: readonly IpOutcome[] = ['started', 'queued', 'extended', 'unchanged', 'duplicate', 'ignored', 'rejected'];

function mostConsequential(outcomes: readonly IpOutcome[]): IpOutcome {
  return RANK.find((o) => outcomes.includes(o)) ?? 'rejected';
}
