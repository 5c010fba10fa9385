/**
 * Per-hop breakdown of event → enforced → active (issue 13.1), from real timestamps only: the load
 * generator's send time, the API's Update-with-Start send (stack.ts), the workflow histories of a sample of
 * blocks and of every run of their set's enforcer (event times written by the server; local-activity
 * markers carry the worker's completion time), the emulator's change hook (tracker.ts) and the worker's
 * firewall-call hook. Nothing is inferred from averages: a hop is reported for an IP only when both of its
 * ends were seen.
 *
 * The path of one block, hop by hop (what each row of the table measures):
 *   api        webhook request sent → Update-with-Start sent (HTTP, parsing, policy, the per-IP queue)
 *   start      → WorkflowExecutionStarted of the block (server: create the execution, persist)
 *   pickup     → the block's first WorkflowTaskStarted (matching, the worker polling and taking it)
 *   first task → the block's add accepted by the enforcer (WorkflowExecutionUpdateAccepted of its submitChanges
 *                Update: the block's first activation, admitAndAsk sending it, and the enforcer's task taking it;
 *                a `changes` signal of before: received)
 *   early add  Update-with-Start sent → the API's early add (sent beside it, workflows/early-adds.ts) received by
 *                the enforcer. When it arrived before the block's own add, the path to the firewall is
 *                api → early add → queue → firewall, and start / pickup / first task run beside it (they
 *                still lead to `active`)
 *   ahead write  block started → enforced on the firewall, for an early add the API writes itself once the
 *                block's start is durable (`ahead`: a pushed feed, a group's append; src/blocks/ahead-writer.ts). Its path is
 *                api → start → ahead write; queue, firewall and commit end then belong to the block's own add, off that path
 *   queue      → the enforcer's tick that carries the IP starts (its workflow task started, or the previous
 *                local activity of the same task completed), from whichever add reached the enforcer first:
 *                waiting for the enforcer to get to it
 *   firewall   → enforced on the firewall (the emulator applied the write: tracker)
 *   commit end → applyChanges completed (marker completion time; the rest of the commit after the IP landed)
 *   answer     → the answer back in the block: its local activity's completion when the Update carried it back
 *                (the usual case), or the setAnswer signal received (WorkflowExecutionSignaled on the block)
 *   active     → the block's workflow task that turned it active completed
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { blockWorkflowId, enforcerWorkflowId } from '../../workflows/messages';
import { takenChanges } from '../../src/temporal/enforcer-history';
import type { Ours } from './stack';
import { dist, Dist, r1 } from './stats';

const ET = temporal.api.enums.v1.EventType;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payloads = temporal.api.common.v1.IPayloads | null | undefined;

export const HOPS = ['api', 'start', 'pickup', 'first task', 'early add', 'ahead write', 'queue', 'firewall', 'commit end', 'answer', 'active'] as const;
export type Hop = (typeof HOPS)[number];

export interface HopReport {
  /** Blocks in the sample, and how many had every timestamp. */
  sampled: number;
  complete: number;
  hops: Record<Hop, Dist>;
  /** Sums for reference: event → enforced and event → active, over the same sample. */
  eventToEnforced: Dist;
  eventToActive: Dist;
  /** IPs of the sample whose own add reached the enforcer more than once (a block re-sent its request). */
  resentAdds: number;
  /** IPs of the sample whose early add reached the enforcer before their block's own add (the shorter path). */
  earlyFirst: number;
  /** Of those, the ones the API wrote itself (`ahead`): enforced before the enforcer's tick. */
  aheadFirst: number;
  /** The enforcer's ticks in the window: how many, IPs per tick, applyChanges duration. */
  ticks: { n: number; ipsPerTick: Dist; applyMs: Dist; runs: number; historyEvents: number };
  /** The enforcer's workflow tasks in the window, started → completed (local activities run inside them). */
  enforcerTaskMs: Dist;
  /** Firewall calls of the worker in the window, per operation: count and duration (ms). */
  firewallOps: Record<string, { n: number; p50: number; p95: number }>;
  /** The emulator's own request log in the window: requests by kind/what. */
  emulatorRequests: Record<string, number>;
}

interface Tick {
  start: number;
  end: number;
  ips: string[];
}

/** Epoch ms of a protobuf Timestamp (server event time, ns resolution). */
function tsMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined {
  if (!t) return undefined;
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

function decode(p: Payloads, i = 0): unknown {
  const d = p?.payloads?.[i]?.data;
  if (!d) return undefined;
  try {
    return JSON.parse(Buffer.from(d).toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The local-activity marker's metadata (serde JSON of sdk-core's LocalActivityMarkerData): the activity type,
 * `complete_time` — NOT a wall-clock completion: sdk-core writes the workflow time when the LA was started
 * (the task's start, or the previous LA's complete_time in the same task) plus the LA's runtime — and
 * `original_schedule_time`, the wall-clock time the workflow scheduled it. So: start = original_schedule_time,
 * runtime = complete_time − workflow time at start, end = start + runtime (checked against the worker's
 * firewall-call hook and the emulator: they agree within a few ms).
 */
function markerMeta(e: HistoryEvent): { type: string; completeMs?: number; scheduledMs?: number } | undefined {
  const a = e.markerRecordedEventAttributes;
  if (!a || a.markerName !== 'core_local_activity') return undefined;
  const data = decode(a.details?.data) as Record<string, unknown> | undefined;
  if (!data) return undefined;
  const type = String(data.activity_type ?? data.activityType ?? '');
  const ct = (data.complete_time ?? data.completeTime) as unknown;
  return { type, completeMs: timeOf(ct), scheduledMs: timeOf(data.original_schedule_time ?? data.originalScheduleTime) };
}

function timeOf(t: unknown): number | undefined {
  if (typeof t === 'string') return Date.parse(t) + subMs(t);
  if (t && typeof t === 'object') return tsMs(t as { seconds?: unknown; nanos?: number });
  return undefined;
}

/** The sub-millisecond digits of an RFC 3339 time (Date.parse keeps milliseconds only). */
function subMs(iso: string): number {
  const m = /\.(\d+)/.exec(iso);
  return m && m[1]!.length > 3 ? Number(`0.${m[1]!.slice(3)}`) : 0;
}

/**
 * One run's history in pages of 200 events. The SDK's fetchHistory takes the server's default page (1,000
 * events), and a page of a big enforcer run outgrew the client's 4 MiB message limit at 100,000 blocks
 * (`RESOURCE_EXHAUSTED`, 4,451,549 bytes): the hop breakdown of that checkpoint was lost.
 */
async function runHistory(client: Client, workflowId: string, runId?: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const r = await client.workflowService.getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId, runId }, maximumPageSize: 200, nextPageToken });
    events.push(...(r.history?.events ?? []));
    nextPageToken = r.nextPageToken?.length ? r.nextPageToken : undefined;
  } while (nextPageToken);
  return events;
}

async function histories(client: Client, workflowId: string, allRuns: boolean): Promise<HistoryEvent[][]> {
  if (!allRuns) return [await runHistory(client, workflowId)];
  const runs: { runId: string; start: number }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = ${JSON.stringify(workflowId)}` })) {
    runs.push({ runId: w.runId, start: w.startTime.getTime() });
    if (runs.length >= 200) break;
  }
  runs.sort((a, b) => a.start - b.start);
  const out: HistoryEvent[][] = [];
  for (const r of runs) out.push(await runHistory(client, workflowId, r.runId));
  return out;
}

/** The enforcer's view: when each IP's add arrived (first signal) and the tick that committed it. */
async function enforcerTimes(client: Client, workflowId: string) {
  const signalAt = new Map<string, number>();
  const earlyAt = new Map<string, number>();
  /** Early adds the API wrote itself. */
  const ahead = new Set<string>();
  const addSignals = new Map<string, number>();
  const tickOf = new Map<string, Tick>();
  const ticks: Tick[] = [];
  /** Each workflow task of the enforcer: started → completed (a replay after a cache eviction shows here). */
  const tasks: { at: number; ms: number }[] = [];
  let events = 0;
  const runs = await histories(client, workflowId, true);
  for (const run of runs) {
    events += run.length;
    let wftStart = 0;
    /** Workflow-task start times of this run, in order (a long local activity spans several: core heartbeats the task). */
    const starts: number[] = [];
    let laEnd: { base: number; complete: number } | undefined;
    for (const e of run) {
      const at = tsMs(e.eventTime) ?? 0;
      switch (e.eventType) {
        case ET.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        case ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: {
          for (const c of takenChanges([e]).flatMap((t) => t.changes)) {
            if (c.op !== 'add') continue;
            if (c.early) {
              if (!earlyAt.has(c.ip)) earlyAt.set(c.ip, at);
              if (c.ahead) ahead.add(c.ip);
              continue;
            }
            if (!signalAt.has(c.ip)) signalAt.set(c.ip, at);
            addSignals.set(c.ip, (addSignals.get(c.ip) ?? 0) + 1);
          }
          break;
        }
        case ET.EVENT_TYPE_WORKFLOW_TASK_STARTED:
          wftStart = at;
          starts.push(at);
          break;
        case ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
          tasks.push({ at, ms: at - wftStart });
          break;
        case ET.EVENT_TYPE_MARKER_RECORDED: {
          const m = markerMeta(e);
          if (!m || m.completeMs === undefined) break;
          // The workflow time the LA started at: the start of the task it was scheduled in (the last task
          // started before its schedule time), or the previous LA's complete_time in that same task.
          const sched = m.scheduledMs ?? wftStart;
          const base = [...starts].reverse().find((t) => t <= sched) ?? wftStart;
          const wfTime = laEnd && laEnd.base === base ? laEnd.complete : base;
          const runtime = m.completeMs - wfTime;
          const start = m.scheduledMs ?? wfTime;
          laEnd = { base, complete: m.completeMs };
          if (m.type !== 'applyChanges') break;
          const result = decode(e.markerRecordedEventAttributes?.details?.result) as { outcomes?: Record<string, { status: string }> } | undefined;
          const ips = Object.entries(result?.outcomes ?? {})
            .filter(([, o]) => o.status === 'ok')
            .map(([ip]) => ip);
          const tick = { start, end: start + runtime, ips };
          ticks.push(tick);
          for (const ip of ips) if (!tickOf.has(ip)) tickOf.set(ip, tick);
          break;
        }
      }
    }
  }
  return { signalAt, earlyAt, ahead, addSignals, tickOf, ticks, tasks, runs: runs.length, events };
}

/**
 * The block's view: started, its answer's arrival and the task that made it active. The answer comes back with
 * the block's own local activity (its marker's completion) when the enforcer settled the add within its wait,
 * otherwise as a setAnswer signal.
 */
function blockTimes(events: HistoryEvent[]): { startedAt?: number; pickedAt?: number; answeredAt?: number; activeAt?: number } {
  let startedAt: number | undefined;
  let pickedAt: number | undefined;
  let answeredAt: number | undefined;
  let activeAt: number | undefined;
  for (const e of events) {
    const at = tsMs(e.eventTime);
    if (e.eventType === ET.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) startedAt = at;
    else if (e.eventType === ET.EVENT_TYPE_WORKFLOW_TASK_STARTED) pickedAt ??= at;
    else if (e.eventType === ET.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED && e.workflowExecutionSignaledEventAttributes?.signalName === 'setAnswer') answeredAt ??= at;
    else if (e.eventType === ET.EVENT_TYPE_MARKER_RECORDED && answeredAt === undefined) {
      const m = markerMeta(e);
      const result = m && (m.type === 'admitAndAsk' || m.type === 'askEnforcer') ? (decode(e.markerRecordedEventAttributes?.details?.result) as { answer?: unknown; op?: unknown } | undefined) : undefined;
      if (result && (result.answer || result.op)) answeredAt = m!.completeMs;
    }
    else if (e.eventType === ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && answeredAt !== undefined && activeAt === undefined) activeAt = at;
  }
  return { startedAt, pickedAt, answeredAt, activeAt };
}

/**
 * The breakdown over `sample` (IPs with the time their event was sent). `window` bounds the firewall calls
 * and emulator requests counted (the measured phase).
 */
export async function hopBreakdown(stack: Ours, sample: { ip: string; sentAt: number }[], window: { from: number; to: number }): Promise<HopReport> {
  const enf = await enforcerTimes(stack.client, enforcerWorkflowId(stack.target, stack.group));
  const per: Record<Hop, number[]> = Object.fromEntries(HOPS.map((h) => [h, []])) as unknown as Record<Hop, number[]>;
  const toEnforced: number[] = [];
  const toActive: number[] = [];
  let complete = 0;
  let earlyFirst = 0;
  let aheadFirst = 0;
  const CONCURRENT = 8;
  const blocks = new Map<string, ReturnType<typeof blockTimes>>();
  for (let i = 0; i < sample.length; i += CONCURRENT) {
    await Promise.all(
      sample.slice(i, i + CONCURRENT).map(async ({ ip }) => {
        const events = await histories(stack.client, blockWorkflowId(stack.target, ip), false).catch(() => [[]]);
        blocks.set(ip, blockTimes(events[0]!));
      }),
    );
  }
  for (const { ip, sentAt } of sample) {
    const b = blocks.get(ip)!;
    const uws = stack.uwsSentAt.get(blockWorkflowId(stack.target, ip));
    const sig = enf.signalAt.get(ip);
    const early = enf.earlyAt.get(ip);
    const viaEarly = early !== undefined && (sig === undefined || early < sig);
    if (viaEarly) earlyFirst++;
    const tick = enf.tickOf.get(ip);
    const enforcedAt = stack.enforced.ips.get(ip)?.firstIn;
    // Written by the API itself (once the block's start is durable, beside the early add's message) and on the
    // firewall before the enforcer's tick: the tick is off the path.
    const viaAhead = enf.ahead.has(ip) && enforcedAt !== undefined && (tick === undefined || enforcedAt < tick.start);
    if (viaAhead) aheadFirst++;
    type Point = [Hop, number | undefined, number | undefined];
    const points: Point[] = [
      ['api', sentAt, uws],
      ['start', uws, b.startedAt],
      ['pickup', b.startedAt, b.pickedAt],
      ['first task', b.pickedAt, sig],
      ...(early !== undefined ? ([['early add', uws, early]] as Point[]) : []),
      ...(viaAhead
        ? ([['ahead write', b.startedAt, enforcedAt]] as Point[])
        : ([
            ['queue', viaEarly ? early : sig, tick?.start],
            // dry-run has no firewall: its "firewall" hop is the commit itself.
            ['firewall', tick?.start, stack.enforcement === 'dry-run' ? tick?.end : enforcedAt],
            ['commit end', stack.enforcement === 'dry-run' ? tick?.end : enforcedAt, tick?.end],
          ] as Point[])),
      ['answer', tick?.end, b.answeredAt],
      ['active', b.answeredAt, b.activeAt],
    ];
    let all = true;
    for (const [hop, a, z] of points) {
      if (a === undefined || z === undefined) all = false;
      else per[hop].push(z - a);
    }
    if (all) complete++;
    const enforced = stack.enforcement === 'dry-run' ? tick?.end : enforcedAt;
    if (enforced !== undefined) toEnforced.push(enforced - sentAt);
    if (b.activeAt !== undefined) toActive.push(b.activeAt - sentAt);
  }
  const inWindow = enf.ticks.filter((t) => t.end >= window.from && t.start <= window.to);
  const ops: Record<string, number[]> = {};
  for (const c of stack.firewallCalls) if (c.endAt >= window.from && c.endAt <= window.to) (ops[c.op] ??= []).push(c.ms);
  const requests: Record<string, number> = {};
  for (const r of stack.enforced.requests) if (r.at >= window.from && r.at <= window.to) requests[`${r.kind} ${r.what}`] = (requests[`${r.kind} ${r.what}`] ?? 0) + 1;
  return {
    sampled: sample.length,
    complete,
    resentAdds: sample.filter(({ ip }) => (enf.addSignals.get(ip) ?? 0) > 1).length,
    earlyFirst,
    aheadFirst,
    hops: Object.fromEntries(HOPS.map((h) => [h, dist(per[h])])) as Record<Hop, Dist>,
    eventToEnforced: dist(toEnforced),
    eventToActive: dist(toActive),
    ticks: {
      n: inWindow.length,
      ipsPerTick: dist(inWindow.map((t) => t.ips.length)),
      applyMs: dist(inWindow.map((t) => t.end - t.start)),
      runs: enf.runs,
      historyEvents: enf.events,
    },
    enforcerTaskMs: dist(enf.tasks.filter((t) => t.at >= window.from && t.at <= window.to + 60_000).map((t) => t.ms)),
    firewallOps: Object.fromEntries(Object.entries(ops).map(([op, v]) => [op, { n: v.length, p50: dist(v).p50, p95: dist(v).p95 }])),
    emulatorRequests: requests,
  };
}

/** "p50 / p95" of a hop, for the table. */
export function hopCell(d: Dist | undefined): string {
  return d && d.n > 0 ? `${r1(d.p50)} / ${r1(d.p95)}` : '-';
}

/** Spreads `n` picks evenly over `items` (a sample that covers the whole run). */
export function spread<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  const step = items.length / n;
  return Array.from({ length: n }, (_, i) => items[Math.floor(i * step)]!);
}
