/**
 * Prometheus metrics (prom-client), each instance on its own registry so that several apps in one
 * process (tests) never collide. The process-wide instance, `sharedMetrics()`, is the one `/metrics`
 * serves in production and the one `recordFirewallCall` (called by the worker's activities) feeds.
 *
 * Active blocks are counted in Temporal visibility (the running block workflows are the database,
 * design decision 8), cached briefly so that a scrape costs at most two count queries per target.
 */
import type { Client } from '@temporalio/client';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TargetConfig } from '../config';
import { capacityOf, setsOf } from '../enforcement';
import { BLOCK_TYPES_CLAUSE } from '../../workflows/messages';

export interface GroupCount {
  target: string;
  group: string;
  capacity: number;
  active: number;
}

export interface ApiMetricsOptions {
  /** Node process metrics (CPU, memory, event loop): only for the process-wide instance. */
  processMetrics?: boolean;
  /** How long a visibility count is reused (default 15 s). */
  blockCountCacheMs?: number;
}

export class ApiMetrics {
  readonly registry = new Registry();
  readonly webhookEvents: Counter<'outcome'>;
  readonly httpRequests: Histogram<'method' | 'route' | 'status'>;
  readonly firewallCalls: Histogram<'target' | 'op' | 'result'>;
  readonly firewallErrors: Counter<'target' | 'op' | 'kind'>;
  readonly stillActiveChecks: Counter<'source' | 'verdict'>;
  private countBlocks?: () => Promise<GroupCount[]>;
  private cached?: { at: number; counts: Promise<GroupCount[]> };
  private readonly cacheMs: number;

  constructor(o: ApiMetricsOptions = {}) {
    const registers = [this.registry];
    this.cacheMs = o.blockCountCacheMs ?? 15_000;
    if (o.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'ads_mitigator_' });
    this.webhookEvents = new Counter({
      name: 'ads_mitigator_webhook_events_total',
      help: 'ADS events received on the webhook, by outcome (started, extended, duplicate, unchanged, ignored, rejected, malformed)',
      labelNames: ['outcome'],
      registers,
    });
    this.httpRequests = new Histogram({
      name: 'ads_mitigator_http_request_duration_seconds',
      help: 'HTTP requests served, by route template (never the IP in the path) and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.firewallCalls = new Histogram({
      name: 'ads_mitigator_firewall_call_duration_seconds',
      help: 'FortiOS REST calls made by the worker, by target, operation and result (ok or error)',
      labelNames: ['target', 'op', 'result'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.firewallErrors = new Counter({
      name: 'ads_mitigator_firewall_call_errors_total',
      help: 'Failed FortiOS REST calls, by target, operation and error kind (auth, timeout, rate-limited, ...)',
      labelNames: ['target', 'op', 'kind'],
      registers,
    });
    this.stillActiveChecks = new Counter({
      name: 'ads_mitigator_still_active_checks_total',
      help: 'STILL_ACTIVE questions of blocks about to lapse, by source (intake, flowmon) and verdict (seen, not-seen, unknown = the source could not tell: no extension)',
      labelNames: ['source', 'verdict'],
      registers,
    });
    this.groupGauge('ads_mitigator_blocks_active', 'Blocks in state active (running block workflows), per firewall target and address group', (c) => c.active);
    this.groupGauge(
      'ads_mitigator_group_fill_ratio',
      'Active blocks divided by the capacity of the address group (1 = full: the oldest is evicted next)',
      (c) => c.active / c.capacity,
    );
  }

  /** A gauge per (target, group) computed at scrape time from the (cached) visibility counts. */
  private groupGauge(name: string, help: string, value: (c: GroupCount) => number): void {
    const counts = () => this.groupCounts();
    new Gauge({
      name,
      help,
      labelNames: ['target', 'group'],
      registers: [this.registry],
      async collect() {
        this.reset(); // a group that vanished from the configuration must not keep its last value
        for (const c of await counts()) this.set({ target: c.target, group: c.group }, value(c));
      },
    });
  }

  /** Where the active-block gauges get their numbers (createApp wires visibility counts). */
  watchBlocks(count: () => Promise<GroupCount[]>): void {
    this.countBlocks = count;
    this.cached = undefined;
  }

  /** For the worker's activities: one FortiOS call, its duration and, when it failed, the error (its `kind`). */
  recordFirewallCall(target: string, op: string, ms: number, error?: unknown): void {
    this.firewallCalls.observe({ target, op, result: error ? 'error' : 'ok' }, ms / 1000);
    if (error) this.firewallErrors.inc({ target, op, kind: errorKind(error) });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A failed count leaves the gauges without samples rather than failing the scrape. */
  private groupCounts(): Promise<GroupCount[]> {
    if (!this.countBlocks) return Promise.resolve([]);
    if (!this.cached || Date.now() - this.cached.at >= this.cacheMs) {
      const counts = this.countBlocks().catch((): GroupCount[] => {
        this.cached = undefined; // ask again at the next scrape instead of serving the failure for cacheMs
        return [];
      });
      this.cached = { at: Date.now(), counts };
    }
    return this.cached.counts;
  }
}

function errorKind(error: unknown): string {
  const kind = (error as { kind?: unknown }).kind;
  return typeof kind === 'string' ? kind : 'other';
}

/** Counts active blocks per (target, group) in Temporal visibility, within a deadline. */
export function visibilityBlockCounter(client: Client, targets: readonly TargetConfig[], timeoutMs: number): () => Promise<GroupCount[]> {
  const groups = targets.flatMap((t) => setsOf(t).map((group) => ({ target: t.name, group, capacity: capacityOf(t) })));
  return () =>
    client.withDeadline(Date.now() + timeoutMs, () =>
      Promise.all(
        groups.map(async (g) => {
          const query = [
            BLOCK_TYPES_CLAUSE,
            'ExecutionStatus = "Running"',
            'BlockState = "active"',
            `FirewallTarget = ${JSON.stringify(g.target)}`,
            `AddressGroup = ${JSON.stringify(g.group)}`,
          ].join(' AND ');
          const { count } = await client.workflow.count(query);
          return { ...g, active: count };
        }),
      ),
    );
}

let shared: ApiMetrics | undefined;

/** The process-wide metrics (created on first use, with Node process metrics). */
export function sharedMetrics(): ApiMetrics {
  shared ??= new ApiMetrics({ processMetrics: true });
  return shared;
}

/** The worker's `onStillActive` hook: `runWorker(..., { onStillActive: recordStillActive })`. */
export function recordStillActive(answer: { source: string; verdict: string }): void {
  sharedMetrics().stillActiveChecks.inc({ source: answer.source, verdict: answer.verdict });
}

/** Signature of the activities' `onFirewallCall` hook: `createWorker({ ..., onFirewallCall: recordFirewallCall })`. */
export function recordFirewallCall(target: string, op: string, ms: number, error?: unknown): void {
  sharedMetrics().recordFirewallCall(target, op, ms, error);
}
