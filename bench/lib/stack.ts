/**
 * OURS, assembled like src/main.ts: the bundled Temporal dev server on a SQLite file (WAL) in a fresh temp
 * DATA_DIR, the FortiOS emulator, the worker and the HTTP API, all on 127.0.0.1. The worker and the API run
 * in this (the bench) process, as `npm start` runs them in one process; the emulator and the load generator
 * share the process too. The dev server is a child process (its RSS and CPU are read from /proc).
 *
 * Differences from main.ts, all outside the product's code paths: free ports instead of 7233/8080/8443, no
 * Web UI, the emulator keeps no state file, logs (info level, as shipped) go to a file in the temp dir, the
 * workflow bundle is built once per bench run, and the webhook rate limit is lifted (one source sends
 * everything here).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config';
import { startDevServer, type RunningDevServer } from '../../src/temporal/dev-server';
import { bootstrapTemporal } from '../../src/temporal/bootstrap';
import { startEmulator, type RunningEmulator } from '../../src/fortios/emulator/server';
import { connectClient, createFirewallClients, runWorker } from '../../src/worker/worker';
import { installRuntime } from '../../src/worker/runtime';
import { BlockService } from '../../src/blocks/service';
import { startApiServer } from '../../src/api/server';
import { recordFirewallCall } from '../../src/api/metrics';
import { freePort } from '../../src/free-port';
import { GroupTracker } from './tracker';

export interface OursOptions {
  /** Firewall write latency of the emulator (POST, PUT, DELETE), ms. */
  writeLatencyMs: number;
  /** FORTIGATE_GROUP_CAPACITY (and the emulator's member limit). */
  capacity?: number;
  /** BLOCK_TTL, e.g. "1h", "10s". */
  ttl?: string;
  /** Extra environment for loadConfig (e.g. GROUP_BATCH_WINDOW); unset = product defaults. */
  env?: Record<string, string>;
}

export interface Ours {
  config: Config;
  apiUrl: string;
  webhookSecret: string;
  emulator: RunningEmulator;
  tracker: GroupTracker;
  client: Client;
  dev: RunningDevServer;
  group: string;
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

/** Removes the workflow bundle written by this process (end of a bench run). */
export function removeWorkflowBundle(): void {
  if (bundlePath) rmSync(bundlePath, { force: true });
  bundlePath = undefined;
}

export async function startOurs(o: OursOptions): Promise<Ours> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ads-bench-'));
  const capacity = o.capacity ?? 600;
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
    ...o.env,
  });
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err) => console.error('bench: error while stopping', err));
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const logger = pino({ level: config.logLevel }, pino.destination({ dest: path.join(dataDir, 'ads-mitigator.log'), sync: false }));
    if (!runtimeInstalled) {
      installRuntime(benchLogger, []);
      runtimeInstalled = true;
    }
    const port = await freePort();
    const dev = await startDevServer({ dataDir, port, uiPort: 0, ui: false, namespace: config.temporal.namespace });
    stops.push(() => dev.stop());

    const t = config.targets[0]!;
    const emulator = await startEmulator({
      port: 0,
      token: config.emulator.token,
      groupMemberLimit: config.emulator.groupLimit,
      version: config.emulator.version,
      groups: { ipv4: t.groups.ipv4, ipv6: t.groups.ipv6 },
      faults: { latencyMs: { POST: o.writeLatencyMs, PUT: o.writeLatencyMs, DELETE: o.writeLatencyMs } },
    });
    stops.push(() => emulator.close());
    for (const target of config.targets) target.url ??= emulator.url;
    const tracker = new GroupTracker(emulator, t.groups.ipv4[0]);

    const client = await connectClient(dev.address, config.temporal.namespace);
    stops.push(() => client.connection.close());
    await bootstrapTemporal(client, config, { registerAttributes: false, reconcileEvery: config.reconcileEveryMs });

    const firewalls = createFirewallClients(config.targets);
    stops.push(() => Promise.all([...firewalls.values()].map((f) => f.close())));
    stops.push(await runWorker(config, client, dev.address, firewalls, { workflowBundlePath: await workflowBundle(), onFirewallCall: recordFirewallCall }));

    const api = await startApiServer({
      config,
      blocks: new BlockService(client, config),
      temporal: client,
      firewalls,
      logger,
      limits: { webhookPerMinute: 1_000_000 },
    });
    stops.push(() => api.close());
    return { config, apiUrl: api.url, webhookSecret: config.api.webhookSecret, emulator, tracker, client, dev, group: t.groups.ipv4[0], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
