/**
 * OURS, assembled like src/main.ts: the bundled Temporal dev server on a SQLite file (WAL) in a fresh temp
 * DATA_DIR (or, with `server: 'postgres'`, the production topology's Temporal server on a private PostgreSQL
 * cluster: src/production/stack.ts), the FortiOS emulator, the worker and the HTTP API, all on 127.0.0.1.
 * The worker and the API run in this (the bench) process, as `npm start` runs them in one process; the
 * emulator and the load generator share the process too. The server is a child process (its memory and
 * CPU, PostgreSQL's included, are read from /proc).
 *
 * Differences from main.ts, all outside the product's code paths: free ports instead of 7233/8080/8443, no
 * Web UI, the emulator keeps no state file and serves HTTPS with a private CA the target trusts (caFile, as
 * for a real FortiGate), logs (info level, as shipped) go to a file in the temp dir, the workflow bundle is
 * built once per bench run, and the webhook rate limit is lifted (one source sends everything here).
 *
 * Observation points (bench-only, no product change): the emulator hooks (tracker.ts); the Update-with-Start
 * calls of the API, timestamped by wrapping `client.workflow.executeUpdateWithStart` on the bench's client
 * instance (only BlockService calls it); every firewall call through the worker's `onFirewallCall` hook.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config';
import type { RunningDevServer } from '../../src/temporal/dev-server';
import { startTemporalService } from '../../src/production/stack';
import { freeServerPorts } from '../../src/production/temporal-server';
import { bootstrapTemporal } from '../../src/temporal/bootstrap';
import { startEmulator, type RunningEmulator } from '../../src/fortios/emulator/server';
import { connectClient, createFirewallClients, runWorker } from '../../src/worker/worker';
import { installRuntime } from '../../src/worker/runtime';
import type { BlockService } from '../../src/blocks/service';
import { createBlockService } from '../../src/front-doors';
import { startApiServer } from '../../src/api/server';
import { recordFirewallCall } from '../../src/api/metrics';
import { setsOf, type EnforcementKind } from '../../src/enforcement';
import { EnforcementTracker, GroupTracker } from './tracker';
import { benchTls } from './tls';
import { filesMiB, now, serviceCpuS, serviceMemMiB } from './stats';

/** The feed the threat-feed runs use (an external resource of type address, update method push). */
export const BENCH_FEED = 'ads-feed';

export interface OursOptions {
  /** Firewall write latency of the emulator (POST, PUT, DELETE), ms. */
  writeLatencyMs: number;
  /** FORTIGATE_GROUP_CAPACITY (and the emulator's member limit). */
  capacity?: number;
  /** BLOCK_TTL, e.g. "1h", "10s". */
  ttl?: string;
  /** Extra environment for loadConfig (e.g. GROUP_BATCH_WINDOW); unset = product defaults. */
  env?: Record<string, string>;
  /** FORTIGATE_ENFORCEMENT; default address-group. */
  enforcement?: EnforcementKind;
  /** address-group: the IPv4 group shards (FORTIGATE_GROUP), `capacity` members each; default the product's one group. */
  shards?: number;
  /** Plain HTTP to the emulator (the seed-era bench); default HTTPS. */
  plainHttp?: boolean;
  /** The Temporal service: the bundled dev server on SQLite (default), or the real server on PostgreSQL. */
  server?: ServerKind;
}

export type ServerKind = 'dev' | 'postgres';

/** The Temporal service a bench stack runs on, as the bench measures it (/proc and its files). */
export interface BenchServer {
  kind: ServerKind;
  address: string;
  /** CPU seconds used so far: the server process, plus PostgreSQL's processes. */
  cpuS(): number | undefined;
  /** Memory, MiB: the server's RSS, plus the PSS of PostgreSQL's processes. */
  memMiB(): number | undefined;
  /** The database's files, MiB (the SQLite file with its WAL, or PostgreSQL's tables and indexes). */
  dbMiB(): number;
  /** The server's Prometheus /metrics (the production topology's server; the dev server here has none). */
  metricsUrl?: string;
}

/**
 * A server as the bench measures it: its process (plus PostgreSQL's, when `postgresPid` answers one) and its
 * database files — the SQLite file and WAL directly in `dataDir`, or PostgreSQL's tables and indexes (base/).
 */
function benchServer(kind: ServerKind, address: string, pid: number, dataDir: string, postgresPid: () => number | undefined = () => undefined, metricsUrl?: string): BenchServer {
  return {
    kind,
    address,
    metricsUrl,
    cpuS: () => serviceCpuS(pid, postgresPid()),
    memMiB: () => serviceMemMiB(pid, postgresPid()),
    dbMiB: () => (kind === 'postgres' ? filesMiB(path.join(dataDir, 'base'), true) : filesMiB(dataDir)),
  };
}

/** A dev server as a BenchServer (the floor runs its own). */
export function devBenchServer(dev: RunningDevServer): BenchServer {
  return benchServer('dev', dev.address, dev.process.pid ?? 0, path.dirname(dev.dbFile));
}

/** One firewall call of the worker (the onFirewallCall hook): operation, end time, duration. */
export interface FirewallCall {
  op: string;
  endAt: number;
  ms: number;
  failed: boolean;
}

export interface Ours {
  config: Config;
  apiUrl: string;
  webhookSecret: string;
  emulator: RunningEmulator;
  /** Address-group member changes of the first IPv4 group (the seed-era scenarios). */
  tracker: GroupTracker;
  /** Enforced on the firewall, any backend (first time per IP), and the emulator's request log. */
  enforced: EnforcementTracker;
  client: Client;
  blocks: BlockService;
  server: BenchServer;
  /** The IPv4 enforcement set (its enforcer is enforce:<target>:<set>). */
  group: string;
  target: string;
  enforcement: EnforcementKind;
  dataDir: string;
  /** When the API sent each block's Update-with-Start (first send), by workflow id. */
  uwsSentAt: Map<string, number>;
  firewallCalls: FirewallCall[];
  stop(): Promise<void>;
}

let bundlePath: string | undefined;
let runtimeInstalled = false;
/** SDK/core log lines at WARN and above, counted by message (they would drown the table otherwise). */
export const sdkWarnings: Record<string, number> = {};
/** The first three lines of each, in full (for the failure reasons). */
export const sdkWarningSamples: Record<string, string[]> = {};
const benchLogger = pino(
  { level: 'warn' },
  new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        let msg = line;
        try {
          msg = String((JSON.parse(line) as { msg?: unknown }).msg);
        } catch {
          // not JSON: count the raw line
        }
        sdkWarnings[msg] = (sdkWarnings[msg] ?? 0) + 1;
        if (sdkWarnings[msg] <= 3) (sdkWarningSamples[msg] ??= []).push(line.slice(0, 2000));
      }
      done();
    },
  }),
);

async function workflowBundle(): Promise<string> {
  if (bundlePath) return bundlePath;
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
  });
  bundlePath = path.join(os.tmpdir(), `ads-mitigator-bench-workflows-${process.pid}.js`);
  writeFileSync(bundlePath, code);
  return bundlePath;
}

/** The SDK runtime of this process, installed once with the bench's logger (before any worker, the floor's too). */
export function ensureBenchRuntime(): void {
  if (runtimeInstalled) return;
  installRuntime(benchLogger, []);
  runtimeInstalled = true;
}

/** Removes the workflow bundle written by this process (end of a bench run). */
export function removeWorkflowBundle(): void {
  if (bundlePath) rmSync(bundlePath, { force: true });
  bundlePath = undefined;
}

export async function startOurs(o: OursOptions): Promise<Ours> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ads-bench-'));
  const capacity = o.capacity ?? 600;
  const enforcement = o.enforcement ?? 'address-group';
  const tls = o.plainHttp ? undefined : benchTls();
  const shardNames = o.shards && o.shards > 1 ? Array.from({ length: o.shards }, (_, i) => (i === 0 ? 'ads-blocked' : `ads-blocked-${i + 1}`)) : undefined;
  const { config } = loadConfig({
    DATA_DIR: dataDir,
    API_HOST: '127.0.0.1',
    API_PORT: '0',
    FORTIOS_EMULATOR_PORT: '0',
    TEMPORAL_TASK_QUEUE: 'ads-mitigator',
    FORTIGATE_GROUP_CAPACITY: String(capacity),
    FORTIOS_EMULATOR_GROUP_LIMIT: String(capacity),
    BLOCK_TTL: o.ttl ?? '1h',
    WEBHOOK_RATE_LIMIT: '1000000',
    LOG_LEVEL: 'info',
    FORTIGATE_ENFORCEMENT: enforcement,
    ...(enforcement === 'threat-feed' ? { FORTIGATE_FEED: BENCH_FEED } : {}),
    ...(shardNames ? { FORTIGATE_GROUP: shardNames.join(',') } : {}),
    ...(tls ? { FORTIGATE_CA_FILE: tls.caFile } : {}),
    ...o.env,
  });
  const stops: (() => Promise<unknown>)[] = [];
  // Each step bounded: a wedged worker's shutdown never returns (seen in `scale`), and the run must still end.
  const stop = async () => {
    for (const s of stops.reverse()) {
      await Promise.race([s(), new Promise((_, reject) => setTimeout(() => reject(new Error('stop step took over 30 s')), 30_000).unref())]).catch((err) =>
        console.error('bench: error while stopping', err),
      );
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const logger = pino({ level: config.logLevel }, pino.destination({ dest: path.join(dataDir, 'ads-mitigator.log'), sync: false }));
    ensureBenchRuntime();
    const kind = o.server ?? 'dev';
    if (kind === 'postgres') chmodSync(dataDir, 0o755); // PostgreSQL runs as "nobody" when we are root
    const service = await startTemporalService({ server: kind, dir: dataDir, namespace: config.temporal.namespace, ports: await freeServerPorts() });
    stops.push(() => service.stop());
    const server = benchServer(kind, service.temporal.address, service.temporal.child().pid, service.dataDir, () => service.postgres?.child().pid, service.temporal.metricsUrl);

    const t = config.targets[0]!;
    const emulator = await startEmulator({
      port: 0,
      token: config.emulator.token,
      groupMemberLimit: config.emulator.groupLimit,
      version: config.emulator.version,
      groups: { ipv4: t.groups.ipv4, ipv6: t.groups.ipv6 },
      feeds: t.enforcement === 'threat-feed' && t.feed ? [{ name: t.feed }] : [],
      faults: { latencyMs: { POST: o.writeLatencyMs, PUT: o.writeLatencyMs, DELETE: o.writeLatencyMs } },
      ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    });
    stops.push(() => emulator.close());
    for (const target of config.targets) target.url ??= emulator.url;
    const tracker = new GroupTracker(emulator, t.groups.ipv4[0]);
    const enforced = new EnforcementTracker(emulator, { groups: [...t.groups.ipv4, ...t.groups.ipv6], feeds: t.feed ? [t.feed] : [] });

    const client = await connectClient(server.address, config.temporal.namespace);
    stops.push(() => client.connection.close());
    // The API hop ends when the block's start (a new block) or Update-with-Start (a running one) goes out:
    // timestamp it (the first send per block).
    const uwsSentAt = new Map<string, number>();
    const uws = client.workflow.executeUpdateWithStart.bind(client.workflow);
    client.workflow.executeUpdateWithStart = ((def: unknown, opts: { startWorkflowOperation: { options: { workflowId: string } } }) => {
      const id = opts.startWorkflowOperation.options.workflowId;
      if (!uwsSentAt.has(id)) uwsSentAt.set(id, now());
      return uws(def as never, opts as never);
    }) as typeof client.workflow.executeUpdateWithStart;
    const start = client.workflow.start.bind(client.workflow);
    client.workflow.start = ((type: unknown, opts: { workflowId: string }) => {
      if (!uwsSentAt.has(opts.workflowId)) uwsSentAt.set(opts.workflowId, now());
      return start(type as never, opts as never);
    }) as typeof client.workflow.start;
    await bootstrapTemporal(client, config, { registerAttributes: false, reconcileEvery: config.reconcileEveryMs });

    const firewalls = createFirewallClients(config.targets);
    stops.push(() => Promise.all([...firewalls.values()].map((f) => f.close())));
    const firewallCalls: FirewallCall[] = [];
    const onFirewallCall: typeof recordFirewallCall = (target, op, ms, error) => {
      firewallCalls.push({ op, endAt: now(), ms, failed: error !== undefined });
      recordFirewallCall(target, op, ms, error);
    };
    stops.push(await runWorker(config, client, server.address, firewalls, { workflowBundlePath: await workflowBundle(), onFirewallCall }));

    const blocks = createBlockService(config, client, firewalls);
    const api = await startApiServer({
      config,
      blocks,
      temporal: client,
      firewalls,
      logger,
      limits: { webhookPerMinute: 1_000_000 },
    });
    stops.push(() => api.close());
    return {
      config,
      apiUrl: api.url,
      webhookSecret: config.api.webhookSecret,
      emulator,
      tracker,
      enforced,
      client,
      blocks,
      server,
      group: setsOf(t)[0]!,
      target: t.name,
      enforcement,
      dataDir,
      uwsSentAt,
      firewallCalls,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
