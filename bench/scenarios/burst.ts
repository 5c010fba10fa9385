/**
 * burst: 5,000 distinct attacker IPs at once. Time until all are enforced (or, with the 600 capacity,
 * enforced or rotated out), firewall writes per IP (emulator counters), lost updates.
 *
 * Throughput case: FORTIGATE_GROUP_CAPACITY and the emulator's member limit at 6,000, so nothing rotates.
 * Rotation case (write latency 50 ms only): the default capacity of 600: the product evicts the oldest; the
 * seed has no capacity handling (its PUTs fail once the group is full).
 *
 * OURS gets the events through the webhook in requests of `batch` ADS lines, `inFlight` requests at a time
 * (ADS firing the forwarder for a storm of events). BASELINE: `seedConcurrency` seed runs in flight (ADS
 * spawning one process per event, capped); its sweep stays at the hourly cron, so it heals nothing here.
 * Lost update = an IP whose block was reported done (the seed run said OK / the webhook said started) but
 * that is missing from the group at the end (ours: missing although it should be there).
 */
import { blockWorkflowId, enforcerWorkflowId } from '../../workflows/messages';
import { addressObjectName } from '../../src/enforcement/address-group';
import { emulatorReads, emulatorWrites, startBaseline } from '../baseline/harness';
import { seedMemberName } from '../baseline/seed';
import { Webhook, adsLine, attackerIps, eventId, inPool } from '../lib/load';
import { historyShape } from '../lib/history';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { Ours, startOurs } from '../lib/stack';
import { machine, mib, now, r1, r2, sleep } from '../lib/stats';
import { BURST_VS_FLOOR, TARGETS } from '../lib/backends';
import { backendBurst, burstResultsFor, floorBurst } from './backend-burst';
import { GROUP_SHARDS } from './latency';

const TARGET_S = 60;
const TARGET_WRITES_PER_IP = 1.2;

export interface MemorySample {
  activeBlocks: number;
  writeLatencyMs?: number;
  benchProcessRssMiB: number;
  benchProcessHeapUsedMiB: number;
  benchProcessRssAfterGcMiB: number;
  temporalServerRssMiB?: number;
  /** The same, right after the stack started (no block yet). */
  idle: { benchProcessRssMiB: number; benchProcessHeapUsedMiB: number; temporalServerRssMiB?: number };
}

/** Set by a throughput burst, so that the memory scenario can reuse it in the same run. */
export let lastBurstMemory: MemorySample | undefined;

export const burstScenario: Scenario = {
  name: 'burst',
  describe: '5,000 distinct IPs at once per backend, the floor and the seed: time to all enforced, calls/IP, lost blocks/unblocks, per-hop',
  run: (ctx) => runBackendBursts(ctx),
};

/** Not in the default set (it takes ~6 min here): `node dist/bench/run.js rotation`. */
export const rotationScenario: Scenario = {
  name: 'rotation',
  describe: '5,000 distinct IPs into the default 600-member group (eviction of the oldest), write latency 50 ms',
  // --quick keeps it a rotation: 300 IPs into 60 places.
  run: (ctx) => runBursts(ctx, 'rotation', [{ key: '50ms', lat: 50, capacity: ctx.quick ? 60 : 600, ours: true }]),
};

interface BurstCase {
  key: string;
  lat: number;
  capacity: number;
  /**
   * Run OURS in this case. By default OURS bursts at write latency 50 ms only: at 5,000 IPs it is CPU-bound
   * (the firewall's share is small) and each run costs 3–5 min here, which the 10-minute budget of
   * `npm run bench` cannot hold twice. `--full` (or an explicit `--latency=`) runs it at every latency.
   */
  ours: boolean;
}

async function runBursts(ctx: RunContext, name: string, cases: BurstCase[]): Promise<ScenarioOutput> {
  const count = ctx.quick ? 300 : 5000;
  const batch = 50;
  const inFlight = 8;
  const seedConcurrency = 50;
  const startedAt = new Date().toISOString();
  const ours: Record<string, unknown> = {};
  const baseline: Record<string, unknown> = {};
  const conditions: Record<string, unknown> = {};
  const rows: Row[] = [];
  let block = name === 'burst' ? 40 : 50;

  for (const c of cases) {
    const rotation = c.capacity < count;
    const label = rotation ? `${c.lat} cap${c.capacity}` : String(c.lat);
    // ---------------------------------------------------------------- OURS
    let o: Record<string, unknown> = { skipped: 'not run by default at this write latency: --full runs it' };
    if (c.ours) {
      ctx.log(`${name}: ours, ${count} IPs, write latency ${c.lat} ms, capacity ${c.capacity}`);
      o = await oursBurst(ctx, attackerIps(count, block++), c.lat, c.capacity, batch, inFlight, conditions, c.key);
    }
    ours[c.key] = o;

    // ---------------------------------------------------------------- BASELINE
    ctx.log(`${name}: baseline, ${count} IPs, write latency ${c.lat} ms, member limit ${c.capacity}`);
    const b = await baselineBurst(attackerIps(count, block++), c.lat, c.capacity, seedConcurrency, conditions, c.key);
    baseline[c.key] = b;

    const n = (x: Record<string, unknown>, k: string) => x[k] as number | undefined;
    const skipped = '(--full)';
    const oursDone = !c.ours ? skipped : (n(o, 'allEnforcedS') ?? `>${n(o, 'waitedS')} (${n(o, rotation ? 'done' : 'enforced')} done)`);
    rows.push(
      rotation
        ? { scenario: name, lat: label, metric: `${count} IPs: all enforced or rotated out (baseline: runs done), s`, ours: oursDone, baseline: n(b, 'allRunsDoneS') }
        : { scenario: name, lat: label, metric: `${count} IPs: all enforced (baseline: runs done), s`, ours: oursDone, baseline: n(b, 'allRunsDoneS'), target: `≤ ${TARGET_S}` },
      { scenario: name, lat: label, metric: 'firewall writes per IP', ours: c.ours ? n(o, 'writesPerIp') : skipped, baseline: n(b, 'writesPerIp'), target: rotation ? undefined : `≤ ${TARGET_WRITES_PER_IP}` },
      rotation
        ? { scenario: name, lat: label, metric: 'lost (group owner vs firewall) / in group at end', ours: `${n(o, 'lost')} / ${n(o, 'inGroupAtEnd')}`, baseline: `${n(b, 'lost')} / ${n(b, 'inGroupAtEnd')}`, target: '0 (ours)' }
        : { scenario: name, lat: label, metric: 'lost updates (reported done, missing at end)', ours: c.ours ? n(o, 'lost') : skipped, baseline: n(b, 'lost'), target: '0 (ours)' },
    );
  }

  return {
    record: {
      scenario: name,
      startedAt,
      machine: machine(),
      params: {
        ips: count,
        webhook: { linesPerRequest: batch, requestsInFlight: inFlight },
        seedRunsInFlight: seedConcurrency,
        cases,
        ttl: '1h (nothing expires during the run)',
        seedSweep: 'hourly (does not run in the window)',
        quick: ctx.quick,
      },
      ours,
      baseline,
      targets: name === 'burst' ? { allEnforcedS: TARGET_S, writesPerIp: TARGET_WRITES_PER_IP, lostUpdatesOurs: 0 } : { lostUpdatesOurs: 0 },
      conditions,
    },
    rows,
  };
}

/**
 * The burst scenario: every backend (ctx.backends) at 50 ms, then the floor, then the seed at each latency.
 * `--full` or `--latency=` also bursts the backends at the other latencies (no floor there).
 */
async function runBackendBursts(ctx: RunContext): Promise<ScenarioOutput> {
  const count = ctx.quick ? 300 : 5000;
  const seedConcurrency = 50;
  const startedAt = new Date().toISOString();
  const ours: Record<string, unknown> = {};
  const baseline: Record<string, unknown> = {};
  const conditions: Record<string, unknown> = {};
  const rows: Row[] = [];
  // The same IPs for every run: each gets a fresh server and emulator.
  const ips = attackerIps(count, 40);
  const oursLats = ctx.full || ctx.latencyGiven ? ctx.latencies : [50];
  // dry-run's burst (the no-firewall reference) costs as much as a backend's: only with --full or --backends=.
  const kinds = ctx.full || ctx.backendsGiven ? ctx.backends : ctx.backends.filter((k) => k !== 'dry-run');
  for (const lat of oursLats) {
    for (const kind of kinds) {
      ctx.log(`burst: ours (${kind}), ${count} IPs, write latency ${lat} ms`);
      let idle: MemorySample['idle'] | undefined;
      const probe = kind === 'address-group' && lat === 50
        ? { started: (s: Ours) => void (idle = memory(s, 0).idle), enforced: (s: Ours) => void (lastBurstMemory = { ...memory(s, count, idle), writeLatencyMs: lat }) }
        : undefined;
      const { result, record } = await backendBurst(ctx, kind, ips, lat, conditions, probe);
      ours[`${kind} ${lat}ms`] = record;
      if (lat === 50) burstResultsFor(kind, result);
      const t = TARGETS[kind];
      rows.push(
        { scenario: 'burst', lat: String(lat), metric: `${kind}: ${count} IPs all enforced, s`, ours: result.allEnforcedS ?? `not all (${result.enforced} done)` },
        { scenario: 'burst', lat: String(lat), metric: `${kind}: firewall calls (writes) per IP`, ours: kind === 'dry-run' ? 'n/a' : `${result.callsPerIp} (${result.writesPerIp})`, target: t.callsPerIp ? `≤ ${t.callsPerIp}` : undefined },
        { scenario: 'burst', lat: String(lat), metric: `${kind}: lost blocks / unblocks (of ${count - Math.floor(count * 0.9)} cancelled)`, ours: result.lostBlocks === undefined ? 'n/a' : `${result.lostBlocks} / ${result.lostUnblocks}`, target: '0 / 0' },
      );
    }
    if (lat === 50) {
      ctx.log(`burst: floor, ${count} IPs, write latency ${lat} ms`);
      const f = await floorBurst(ctx, ips, lat, conditions);
      ours[`floor ${lat}ms`] = f.record;
      burstResultsFor('floor', f.result);
      rows.push({ scenario: 'burst', lat: String(lat), metric: `floor (1 workflow, 1 call): ${count} IPs all enforced, s`, ours: f.result.allEnforcedS ?? `>(${f.result.enforced} done)` });
    }
  }
  for (const lat of ctx.latencies) {
    ctx.log(`burst: baseline, ${count} IPs, write latency ${lat} ms`);
    const b = await baselineBurst(attackerIps(count, 41), lat, 6000, seedConcurrency, conditions, `${lat}ms`);
    baseline[`${lat}ms`] = b;
    rows.push(
      { scenario: 'burst', lat: String(lat), metric: `seed: ${count} runs done, s / calls per IP / lost`, baseline: `${b.allRunsDoneS} / ${r2(((b.writesPerIp as number) + (b.readsPerIp as number)))} / ${b.lost}` },
    );
  }
  return {
    record: {
      scenario: 'burst',
      startedAt,
      machine: machine(),
      params: {
        ips: count,
        backends: kinds,
        writeLatenciesMs: oursLats,
        webhook: { linesPerRequest: 50, requestsInFlight: 8 },
        groupShards: GROUP_SHARDS,
        groupCapacity: 600,
        unblockedShare: 0.1,
        seedRunsInFlight: seedConcurrency,
        tls: true,
        ttl: '1h (nothing expires during the run)',
        seedSweep: 'hourly (does not run in the window)',
        quick: ctx.quick,
      },
      ours,
      baseline,
      targets: { callsPerIp: Object.fromEntries(ctx.backends.map((k) => [k, TARGETS[k].callsPerIp])), burstVsFloor: BURST_VS_FLOOR, lost: 0 },
      conditions,
    },
    rows,
  };
}

/** Runs a burst through the product; also used by the memory scenario. */
export async function oursBurst(
  ctx: RunContext,
  ips: string[],
  lat: number,
  capacity: number,
  batch: number,
  inFlight: number,
  conditions: Record<string, unknown>,
  key: string,
  keep?: (stack: Ours) => Promise<void>,
): Promise<Record<string, unknown>> {
  const stack = await startOurs({ writeLatencyMs: lat, capacity });
  const hook = new Webhook(stack.apiUrl, stack.webhookSecret, inFlight);
  try {
    const idle = memory(stack, 0).idle;
    const members = ips.map(addressObjectName);
    const count = ips.length;
    const rotation = capacity < count;
    const t = stack.tracker;
    // Rotation: an IP is done once it was in the group, or evicted (its address object deleted), which
    // may happen before any write showed it (evicted within the tick that admitted it).
    const done = (m: string) => t.members.has(m) || (rotation && t.addressDeleted.has(m));
    let doneCount = 0;
    const pendingSet = new Set(members);
    const progress = () => {
      for (const m of pendingSet) if (done(m)) pendingSet.delete(m);
      doneCount = count - pendingSet.size;
      return pendingSet.size === 0;
    };
    const w0 = emulatorWrites(stack.emulator);
    const r0 = emulatorReads(stack.emulator);
    const meter = new CpuMeter(stack.server);
    const t0 = now();
    const outcomes: Record<string, number> = {};
    let webhookErrors = 0;
    let lastReply = t0;
    const batches: string[][] = [];
    for (let i = 0; i < count; i += batch) batches.push(ips.slice(i, i + batch));
    const sending = inPool(batches, inFlight, async (b) => {
      const res = await hook.post(b.map((ip) => adsLine(eventId(), ip)));
      lastReply = now();
      if (res.status !== 200) webhookErrors++;
      for (const [k, v] of Object.entries(res.body?.summary ?? {})) outcomes[k] = (outcomes[k] ?? 0) + v;
    });
    const maxWaitMs = ctx.quick ? 60_000 : rotation ? 600_000 : 300_000;
    // Progress is checked on every emulator change, but at most every 200 ms (it is O(pending)).
    let finished = false;
    let lastCheck = 0;
    const allDone = await t.until(() => {
      if (now() - lastCheck < 200) return false;
      lastCheck = now();
      return (finished = progress());
    }, maxWaitMs);
    const tEnd = now();
    if (!finished) progress();
    await Promise.race([sending, sleep(10_000)]);
    conditions[`ours_${key}`] = meter.read();
    const enforcedTimes = members.map((m) => t.members.get(m)?.firstIn).filter((x): x is number => x !== undefined);
    const ingestS = r2((lastReply - t0) / 1000);

    // End state, once the tail has settled.
    await sleep(2000);
    const onFirewall = t.current();
    let lost: number;
    let groupView: Record<string, unknown> = {};
    if (!rotation) {
      // Lost = was enforced (the group write carried it) and is gone now. Not yet enforced at the deadline
      // is reported apart (pendingAtEnd): slow, not lost.
      lost = members.filter((m) => t.members.has(m) && !onFirewall.has(m)).length;
    } else {
      // Lost = a block that reports active while its member is not on the firewall.
      const active = new Set<string>();
      for await (const w of stack.client.workflow.list({ query: `ExecutionStatus = "Running" AND BlockState = "active"` })) {
        const ip = w.searchAttributes?.BlockedIp;
        if (Array.isArray(ip) && typeof ip[0] === 'string') active.add(addressObjectName(ip[0]));
      }
      lost = [...active].filter((m) => !onFirewall.has(m)).length;
      groupView = { activeBlocks: active.size, onFirewallNotActive: [...onFirewall].filter((m) => !active.has(m)).length };
    }
    const mem = memory(stack, count, idle);
    const target = stack.config.targets[0]!.name;
    const histories = {
      enforcer: await historyShape(stack.client, enforcerWorkflowId(target, stack.group), true).catch((err: Error) => ({ error: err.message })),
      oneBlockWorkflow: await historyShape(stack.client, blockWorkflowId(target, ips[Math.floor(count / 2)]!)).catch((err: Error) => ({ error: err.message })),
    };
    if (!rotation) lastBurstMemory = { ...mem, writeLatencyMs: lat };
    if (keep) await keep(stack);
    return {
      ips: count,
      allEnforcedS: allDone ? r2((tEnd - t0) / 1000) : undefined,
      waitedS: r2((tEnd - t0) / 1000),
      enforced: enforcedTimes.length,
      done: doneCount,
      ipsPerS: allDone ? r1(count / ((tEnd - t0) / 1000)) : undefined,
      webhookAllRepliedS: ingestS,
      webhookOutcomes: outcomes,
      webhookErrors,
      writesPerIp: r2((emulatorWrites(stack.emulator) - w0) / count),
      readsPerIp: r2((emulatorReads(stack.emulator) - r0) / count),
      emulatorCounters: stack.emulator.state.counters,
      groupWrites: t.groupWrites,
      lost,
      pendingAtEnd: count - doneCount,
      inGroupAtEnd: onFirewall.size,
      maxGroupSize: t.maxSize,
      ...groupView,
      histories,
      memory: mem,
    };
  } finally {
    await hook.close();
    await stack.stop();
  }
}

function memory(stack: Ours, activeBlocks: number, idle?: MemorySample['idle']): MemorySample {
  const m = process.memoryUsage();
  const gc = globalGc();
  gc?.();
  const after = process.memoryUsage();
  const temporal = stack.server.memMiB();
  return {
    activeBlocks,
    benchProcessRssMiB: mib(m.rss),
    benchProcessHeapUsedMiB: mib(m.heapUsed),
    benchProcessRssAfterGcMiB: mib(after.rss),
    temporalServerRssMiB: temporal,
    idle: idle ?? { benchProcessRssMiB: mib(m.rss), benchProcessHeapUsedMiB: mib(m.heapUsed), temporalServerRssMiB: temporal },
  };
}

let gcFn: (() => void) | undefined | null = null;
/** A full GC when the process can be given one (expose-gc set at run time), else undefined. */
function globalGc(): (() => void) | undefined {
  if (gcFn === null) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('node:v8').setFlagsFromString('--expose-gc');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      gcFn = require('node:vm').runInNewContext('gc') as () => void;
    } catch {
      gcFn = undefined;
    }
  }
  return gcFn ?? undefined;
}

async function baselineBurst(ips: string[], lat: number, capacity: number, concurrency: number, conditions: Record<string, unknown>, key: string): Promise<Record<string, unknown>> {
  const base = await startBaseline({ writeLatencyMs: lat, capacity, ttlMs: 3_600_000, sweepPeriodMs: 3_600_000, connections: concurrency });
  try {
    const ids = ips.map(() => eventId());
    const outcomes: string[] = new Array(ips.length);
    const meter = new CpuMeter();
    const t0 = now();
    await inPool(ips, concurrency, async (ip, i) => {
      outcomes[i] = await base.seed.mitigate(ids[i]!, ip);
    });
    const tEnd = now();
    conditions[`baseline_${key}`] = meter.read();
    const onFirewall = base.tracker.current();
    const members = ids.map(seedMemberName);
    const reportedDone = members.filter((_, i) => outcomes[i] === 'blocked');
    const firstIns = members.map((m) => base.tracker.members.get(m)?.firstIn).filter((x): x is number => x !== undefined);
    return {
      ips: ips.length,
      allRunsDoneS: r2((tEnd - t0) / 1000),
      lastFirstEnforcedS: firstIns.length ? r2((Math.max(...firstIns) - t0) / 1000) : undefined,
      runsReportedBlocked: reportedDone.length,
      runsFailed: outcomes.filter((x) => x === 'failed').length,
      everInGroup: firstIns.length,
      inGroupAtEnd: onFirewall.size,
      lost: reportedDone.filter((m) => !onFirewall.has(m)).length,
      writesPerIp: r2(emulatorWrites(base.emulator) / ips.length),
      readsPerIp: r2(emulatorReads(base.emulator) / ips.length),
      emulatorCounters: base.emulator.state.counters,
      maxGroupSize: base.tracker.maxSize,
      errors: Object.fromEntries(base.errors),
    };
  } finally {
    await base.stop();
  }
}
