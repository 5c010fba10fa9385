/**
 * `npm run bench:production` — the latency and burst scenarios on the production topology (real Temporal
 * server on PostgreSQL, src/production/stack.ts) beside the same topology on the bundled dev server
 * (SQLite), in one run: the same worker and API processes (2 + 2 by default), the same in-process FortiOS
 * emulator (write latency 50 ms) and load generator. Per block, the CPU time of each process group read
 * from /proc: the server (temporal-server + every PostgreSQL process, or the dev server), our workers, our
 * API replicas, and the bench process (load generator + emulator). Kept apart from bench/run.ts.
 *
 *   node dist/bench/production.js [--quick] [--burst=5000] [--workers=2] [--apis=2] [--results=DIR]
 *
 * Latency: 20 events/s for 29 s (580 new IPs), one webhook request per event, alternating replicas;
 * event → enforced is the moment the emulator put the member into the group. Burst: N new IPs in requests
 * of 50 lines, 8 in flight across the replicas (capacity 6,000: no rotation); time until all enforced.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { freePort } from '../src/free-port';
import { startEmulator } from '../src/fortios/emulator/server';
import { ProductionStack, startProductionStack } from '../src/production/stack';
import { freeServerPorts } from '../src/production/temporal-server';
import { emulatorWrites } from './baseline/harness';
import { adsLine, attackerIps, eventId, inPool, openLoop, Webhook } from './lib/load';
import { boxCpu, cpuSeconds, dist, load1, machine, now, r1, r2, serviceCpuS, table } from './lib/stats';
import { GroupTracker } from './lib/tracker';

type Topology = 'postgres' | 'dev';
const LATENCY_MS = 50;

interface Args {
  quick: boolean;
  burst: number;
  workers: number;
  apis: number;
  results: string;
}

function parseArgs(argv: string[]): Args {
  const val = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  return {
    quick,
    burst: Number(val('burst') ?? (quick ? 300 : 5000)),
    workers: Number(val('workers') ?? 2),
    apis: Number(val('apis') ?? 2),
    results: path.resolve(val('results') ?? path.join(__dirname, '..', '..', 'bench', 'results')),
  };
}

// ------------------------------------------------------------------ CPU per process group (/proc)

interface CpuGroups {
  server: number;
  workers: number;
  apis: number;
  bench: number;
}

function cpuGroups(stack: ProductionStack): CpuGroups {
  const self = process.cpuUsage();
  return {
    server: serviceCpuS(stack.temporal.child().pid, stack.postgres?.child().pid),
    workers: stack.workers.reduce((a, w) => a + (cpuSeconds(w.pid) ?? 0), 0),
    apis: stack.apis.reduce((a, x) => a + (cpuSeconds(x.child.pid) ?? 0), 0),
    bench: (self.user + self.system) / 1e6,
  };
}

/** Worker processes that are gone (a crash: nobody restarts them in the bench). */
function deadWorkers(stack: ProductionStack): number {
  return stack.workers.filter((w) => !w.running).length;
}

function cpuDelta(a: CpuGroups, b: CpuGroups): CpuGroups {
  return { server: r2(b.server - a.server), workers: r2(b.workers - a.workers), apis: r2(b.apis - a.apis), bench: r2(b.bench - a.bench) };
}

// ------------------------------------------------------------------ one topology

interface Bench {
  stack: ProductionStack;
  tracker: GroupTracker;
  emulator: Awaited<ReturnType<typeof startEmulator>>;
  hooks: Webhook[];
  stop(): Promise<void>;
}

async function startTopology(topology: Topology, a: Args): Promise<Bench> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `ads-bench-${topology}-`));
  chmodSync(dataDir, 0o755); // PostgreSQL runs as "nobody" when we are root
  const emulatorPort = await freePort();
  const base: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    API_PORT: '0',
    FORTIOS_EMULATOR_PORT: String(emulatorPort),
    FORTIGATE_GROUP_CAPACITY: '6000',
    FORTIOS_EMULATOR_GROUP_LIMIT: '6000',
    BLOCK_TTL: '1h',
    WEBHOOK_RATE_LIMIT: '1000000',
    LOG_LEVEL: 'info',
  };
  const { config: pre } = loadConfig(base);
  const t = pre.targets[0]!;
  const emulator = await startEmulator({
    port: emulatorPort,
    token: pre.emulator.token,
    groupMemberLimit: 6000,
    groups: { ipv4: t.groups.ipv4, ipv6: t.groups.ipv6 },
    faults: { latencyMs: { POST: LATENCY_MS, PUT: LATENCY_MS, DELETE: LATENCY_MS } },
  });
  const env = { ...base, FORTIGATE_URL: emulator.url, FORTIGATE_TOKEN: pre.emulator.token };
  const { config } = loadConfig(env);
  const ports = await freeServerPorts();
  let stack: ProductionStack;
  try {
    stack = await startProductionStack({ config, env: { ...env, TEMPORAL_PORT: String(ports.frontend) }, workers: a.workers, apis: a.apis, ports, server: topology });
  } catch (err) {
    await emulator.close();
    throw err;
  }
  const hooks = stack.apis.map((x) => new Webhook(x.url, config.api.webhookSecret));
  return {
    stack,
    emulator,
    tracker: new GroupTracker(emulator, t.groups.ipv4[0]),
    hooks,
    async stop() {
      await Promise.all(hooks.map((h) => h.close()));
      await stack.stop();
      await emulator.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function latency(b: Bench, a: Args, block: number): Promise<Record<string, unknown>> {
  const rate = 20;
  const count = rate * (a.quick ? 5 : 29);
  // Warm-up: the group workflow and first connections.
  const warm = attackerIps(5, block);
  await Promise.all(warm.map((ip, i) => b.hooks[i % b.hooks.length]!.post([adsLine(eventId(), ip)])));
  await b.tracker.until(() => warm.every((ip) => b.tracker.members.has(`ads-${ip}`)), 60_000);

  const ips = attackerIps(count, block + 1);
  const sent: number[] = [];
  const c0 = cpuGroups(b.stack);
  const w0 = emulatorWrites(b.emulator);
  const replies = await openLoop(count, rate, (i) => {
    sent[i] = now();
    return b.hooks[i % b.hooks.length]!.post([adsLine(eventId(), ips[i]!)]);
  });
  const members = ips.map((ip) => `ads-${ip}`);
  await b.tracker.until(() => members.every((m) => b.tracker.members.has(m)), 60_000);
  const cpu = cpuDelta(c0, cpuGroups(b.stack));
  const workersDied = deadWorkers(b.stack);
  if (workersDied) cpu.workers = NaN; // a dead process's CPU time is gone from /proc
  const lat = members.map((m, i) => (b.tracker.members.get(m)?.firstIn ?? NaN) - sent[i]!).filter((x) => !Number.isNaN(x));
  return {
    events: count,
    enforcedMs: dist(lat),
    notEnforced: count - lat.length,
    webhookErrors: replies.filter((r) => r?.status !== 200).length,
    writesPerIp: r2((emulatorWrites(b.emulator) - w0) / count),
    workersDied,
    cpuS: cpu,
    cpuMsPerBlock: perBlock(cpu, count),
  };
}

async function burst(b: Bench, a: Args, block: number): Promise<Record<string, unknown>> {
  const ips = attackerIps(a.burst, block);
  const members = ips.map((ip) => `ads-${ip}`);
  const batches: string[][] = [];
  for (let i = 0; i < ips.length; i += 50) batches.push(ips.slice(i, i + 50));
  const c0 = cpuGroups(b.stack);
  const w0 = emulatorWrites(b.emulator);
  const t0 = now();
  let errors = 0;
  const pending = new Set(members);
  const sending = inPool(batches, 8, async (batch, i) => {
    const res = await b.hooks[i % b.hooks.length]!.post(batch.map((ip) => adsLine(eventId(), ip)));
    if (res.status !== 200) errors++;
  });
  let lastCheck = 0;
  const done = await b.tracker.until(() => {
    if (now() - lastCheck < 200) return false;
    lastCheck = now();
    for (const m of pending) if (b.tracker.members.has(m)) pending.delete(m);
    return pending.size === 0;
  }, a.quick ? 120_000 : 900_000);
  const tEnd = now();
  await sending;
  const cpu = cpuDelta(c0, cpuGroups(b.stack));
  const workersDied = deadWorkers(b.stack);
  if (workersDied) cpu.workers = NaN; // a dead process's CPU time is gone from /proc
  return {
    ips: a.burst,
    allEnforcedS: done ? r2((tEnd - t0) / 1000) : undefined,
    waitedS: r2((tEnd - t0) / 1000),
    notEnforced: pending.size,
    ipsPerS: done ? r1(a.burst / ((tEnd - t0) / 1000)) : undefined,
    webhookErrors: errors,
    writesPerIp: r2((emulatorWrites(b.emulator) - w0) / a.burst),
    workersDied,
    cpuS: cpu,
    cpuMsPerBlock: perBlock(cpu, a.burst),
  };
}

function perBlock(cpu: CpuGroups, n: number): CpuGroups & { total: number } {
  const ms = (s: number) => (Number.isNaN(s) ? NaN : r1((s * 1000) / n));
  return { server: ms(cpu.server), workers: ms(cpu.workers), apis: ms(cpu.apis), bench: ms(cpu.bench), total: ms(cpu.server + cpu.workers + cpu.apis + cpu.bench) };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const log = (msg: string) => process.stderr.write(`[bench:production +${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);
  const load0 = load1();
  const box0 = boxCpu();
  const results: Record<Topology, Record<string, unknown>> = { postgres: {}, dev: {} };
  let block = 110;
  for (const topology of ['postgres', 'dev'] as const) {
    log(`${topology}: starting ${a.workers} worker(s) + ${a.apis} API replica(s) …`);
    const s0 = Date.now();
    const b = await startTopology(topology, a);
    results[topology].startS = r1((Date.now() - s0) / 1000);
    try {
      log(`${topology}: latency …`);
      results[topology].latency = await latency(b, a, block);
      block += 2;
      log(`${topology}: burst of ${a.burst} …`);
      results[topology].burst = await burst(b, a, block++);
    } catch (err) {
      results[topology].error = (err as Error).stack ?? String(err);
      log(`${topology} FAILED: ${(err as Error).message}`);
    } finally {
      await b.stop();
    }
  }

  const m = machine();
  const box1 = boxCpu();
  const busy = box0 && box1 ? Math.round(((box1.busy - box0.busy) / (box1.busy + box1.idle + box1.steal - box0.busy - box0.idle - box0.steal)) * 100) : undefined;
  const record = { scenario: 'production', startedAt: new Date(started).toISOString(), machine: m, params: { ...a, writeLatencyMs: LATENCY_MS }, results, conditions: { load1Before: load0, load1After: load1(), boxBusyPct: busy } };
  mkdirSync(a.results, { recursive: true });
  writeFileSync(path.join(a.results, 'production.json'), JSON.stringify(record, null, 2) + '\n');

  const get = (t: Topology, s: string) => (results[t][s] ?? {}) as Record<string, any>;
  const rows: (string | number | undefined)[][] = [];
  const row = (scenario: string, metric: string, f: (x: Record<string, any>) => string | number | undefined) => rows.push([scenario, metric, f(get('postgres', scenario)), f(get('dev', scenario))]);
  row('latency', 'event→enforced p50 / p95 / p99 ms', (x) => x.enforcedMs && `${r1(x.enforcedMs.p50)} / ${r1(x.enforcedMs.p95)} / ${r1(x.enforcedMs.p99)}`);
  row('latency', 'not enforced / webhook errors (of 580)', (x) => x.events && `${x.notEnforced} / ${x.webhookErrors}`);
  row('latency', `worker processes that died (of ${a.workers})`, (x) => x.workersDied);
  row('latency', 'CPU ms per block: server / workers / APIs', (x) => x.cpuMsPerBlock && `${x.cpuMsPerBlock.server} / ${x.cpuMsPerBlock.workers} / ${x.cpuMsPerBlock.apis}`);
  row('latency', 'CPU ms per block: bench (load + emulator)', (x) => x.cpuMsPerBlock?.bench);
  row('burst', `${a.burst} IPs: all enforced, s`, (x) => x.allEnforcedS ?? (x.waitedS && `>${x.waitedS} (${x.notEnforced} missing)`));
  row('burst', 'IPs per s', (x) => x.ipsPerS);
  row('burst', 'firewall writes per IP / webhook errors', (x) => x.ips && `${x.writesPerIp} / ${x.webhookErrors}`);
  row('burst', `worker processes that died (of ${a.workers})`, (x) => x.workersDied);
  row('burst', 'CPU ms per block: server / workers / APIs', (x) => x.cpuMsPerBlock && `${x.cpuMsPerBlock.server} / ${x.cpuMsPerBlock.workers} / ${x.cpuMsPerBlock.apis}`);
  row('burst', 'CPU ms per block: bench (load + emulator)', (x) => x.cpuMsPerBlock?.bench);
  row('burst', 'CPU ms per block: all', (x) => x.cpuMsPerBlock?.total);
  rows.push(['-', 'stack start (server, schema, workers, APIs), s', results.postgres.startS as number, results.dev.startS as number]);

  console.log('');
  console.log(
    `ads-mitigator bench:production${a.quick ? ' (--quick)' : ''} — ${m.cpus} CPU (${m.cpuModel}), ${m.mem}, node ${m.node}; load avg 1 min ${load0} → ${load1()}, ` +
      `box CPU busy ${busy ?? '?'}%; ${((Date.now() - started) / 1000).toFixed(0)} s; commit ${m.commit ?? '?'}`,
  );
  console.log(`${a.workers} worker + ${a.apis} API processes on each; emulator write latency ${LATENCY_MS} ms; server = temporal-server + PostgreSQL (all its processes) | dev server\n`);
  console.log(table(['scenario', 'metric', 'PostgreSQL (v1.32.2)', 'dev server (SQLite)'], rows, 2));
  const failed = (['postgres', 'dev'] as const).filter((t) => results[t].error);
  if (failed.length) {
    console.log(`\nFAILED: ${failed.join(', ')} (see ${path.join(a.results, 'production.json')})`);
    process.exitCode = 1;
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
