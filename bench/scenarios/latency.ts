/**
 * latency: event → enforced on the firewall at a steady 20 events/s for ~30 s, each event a new attacker IP,
 * for every backend side by side (address-group as 10 shards × 600, threat-feed, banned-ip, and dry-run as
 * the no-firewall reference), the floor (bench/floor: one workflow, one local activity, one call) and the
 * BASELINE (the seed's scripts). OURS: one POST /v1/events per event (like the forwarder, one ADS script run
 * per event); BASELINE: one seed run per event; floor: one workflow start per event. Enforced = the emulator
 * applied the change that holds the IP (tracker.ts), for every backend; dry-run: its enforcer's commit.
 * Each OURS run also breaks a sample of 200 blocks down hop by hop (lib/hops.ts). The emulator speaks HTTPS.
 * By default at 50 ms write latency; `--latency=50,0` or `--full` adds other latencies.
 */
import type { EnforcementKind } from '../../src/enforcement';
import { blockWorkflowId, enforcerWorkflowId } from '../../workflows/messages';
import { startBaseline } from '../baseline/harness';
import { seedMemberName } from '../baseline/seed';
import { startFloor } from '../floor/stack';
import { results, TARGETS } from '../lib/backends';
import { historyShape } from '../lib/history';
import { hopBreakdown, spread } from '../lib/hops';
import { Webhook, adsLine, attackerIps, eventId, openLoop } from '../lib/load';
import { emulatorCalls, waitActive, waitEnforced } from '../lib/measure';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { startOurs } from '../lib/stack';
import { dist, machine, now, r2 } from '../lib/stats';
import type { EnforcementTracker } from '../lib/tracker';
import { emulatorWrites } from '../baseline/harness';

const RATE = 20;
const WARMUP = 5;
const HOP_SAMPLE = 200;
/** address-group: shards of the platform's 600 members, enough for the 5,000-IP burst. */
export const GROUP_SHARDS = 10;

export const latencyScenario: Scenario = {
  name: 'latency',
  describe: 'event → enforced p50/p95/p99 at 20/s per backend, floor and seed; per-hop breakdown',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const durationS = ctx.quick ? 5 : 29; // 580 IPs
    const count = RATE * durationS;
    const lats = ctx.full || ctx.latencyGiven ? ctx.latencies : [50];
    const startedAt = new Date().toISOString();
    const ours: Record<string, unknown> = {};
    const baseline: Record<string, unknown> = {};
    const conditions: Record<string, unknown> = {};
    const rows: Row[] = [];
    let block = 10;

    for (const lat of lats) {
      // ---------------------------------------------------------------- BASELINE (the yardstick)
      ctx.log(`latency: baseline, write latency ${lat} ms`);
      const b = await seedLatency(lat, count, block, conditions);
      block += 2;
      baseline[`${lat}ms`] = b;
      const seed = b.enforcedMs as ReturnType<typeof dist>;
      if (lat === 50) results.seedP99Ms = seed.p99;

      // ---------------------------------------------------------------- OURS, per backend
      for (const kind of ctx.backends) {
        ctx.log(`latency: ours (${kind}), write latency ${lat} ms, ${count} events at ${RATE}/s`);
        const o = await oursLatency(kind, lat, count, block, conditions);
        block += 2;
        ours[`${kind} ${lat}ms`] = o;
        const e = o.enforcedMs as ReturnType<typeof dist>;
        const cpu = conditions[`ours_${kind}_${lat}ms`] as { temporalServerCpuS?: number; benchProcessCpuS: number };
        if (lat === 50) results.latency.set(kind, { p50: e.p50, p95: e.p95, p99: e.p99, n: e.n, notEnforced: o.neverEnforced as number, callsPerIp: o.firewallCallsPerIp as number, cpu: { devServerS: cpu.temporalServerCpuS, nodeS: cpu.benchProcessCpuS }, hops: o.hops as never });
        const target = TARGETS[kind].p99Ms;
        rows.push(
          { scenario: 'latency', lat: String(lat), metric: `${kind}: event→enforced p50 / p95 / p99 ms`, ours: `${e.p50} / ${e.p95} / ${e.p99}`, baseline: `${seed.p50} / ${seed.p95} / ${seed.p99}`, target: target ? `p99 ≤ ${target}` : undefined },
          { scenario: 'latency', lat: String(lat), metric: `${kind}: firewall calls (writes) per IP at 20/s`, ours: kind === 'dry-run' ? 'n/a' : `${o.firewallCallsPerIp} (${o.firewallWritesPerIp})`, baseline: `${b.firewallCallsPerIp} (${b.firewallWritesPerIp})` },
          { scenario: 'latency', lat: String(lat), metric: `${kind}: not enforced / not blocked at end (of ${count})`, ours: `${o.neverEnforced} / ${o.missingAtEnd ?? 'n/a'}`, baseline: `${b.neverEnforced} / ${b.missingAtEnd}`, target: '0 / 0' },
        );
      }

      // ---------------------------------------------------------------- the floor
      if (lat === 50) {
        ctx.log(`latency: floor, write latency ${lat} ms`);
        const f = await floorLatency(lat, count, block++, conditions);
        ours[`floor ${lat}ms`] = f;
        const e = f.enforcedMs as ReturnType<typeof dist>;
        results.floorLatency = { p50: e.p50, p95: e.p95, p99: e.p99, n: e.n, notEnforced: f.neverEnforced as number, callsPerIp: f.firewallCallsPerIp as number };
        rows.push({ scenario: 'latency', lat: String(lat), metric: 'floor (1 workflow, 1 call): event→enforced p50 / p95 / p99 ms', ours: `${e.p50} / ${e.p95} / ${e.p99}`, baseline: `${seed.p50} / ${seed.p95} / ${seed.p99}` });
      }
    }

    return {
      record: {
        scenario: 'latency',
        startedAt,
        machine: machine(),
        params: { ratePerS: RATE, durationS, eventsPerRun: count, warmupEvents: WARMUP, writeLatenciesMs: lats, backends: ctx.backends, groupShards: GROUP_SHARDS, groupCapacity: 600, hopSample: HOP_SAMPLE, tls: true, seedSweep: 'hourly (does not run in the window)', quick: ctx.quick },
        ours,
        baseline,
        targets: { p99Ms: Object.fromEntries(ctx.backends.map((k) => [k, TARGETS[k].p99Ms])) },
        conditions,
      },
      rows,
    };
  },
};

async function oursLatency(kind: EnforcementKind, lat: number, count: number, block: number, conditions: Record<string, unknown>): Promise<Record<string, unknown>> {
  const stack = await startOurs({ writeLatencyMs: lat, enforcement: kind, shards: kind === 'address-group' ? GROUP_SHARDS : undefined });
  const hook = new Webhook(stack.apiUrl, stack.webhookSecret);
  try {
    const warm = attackerIps(WARMUP, block);
    await Promise.all(warm.map((ip) => hook.post([adsLine(eventId(), ip)])));
    await waitEnforced(stack, warm, 30_000);
    const ips = attackerIps(count, block + 1);
    const sent: number[] = [];
    const c0 = emulatorCalls(stack);
    const w0 = emulatorWrites(stack.emulator);
    const meter = new CpuMeter(stack.server);
    const t0 = now();
    const replies = await openLoop(count, RATE, (i) => {
      sent[i] = now();
      return hook.post([adsLine(eventId(), ips[i]!)]);
    });
    await waitEnforced(stack, ips, 30_000, WARMUP + count);
    const t1 = now();
    conditions[`ours_${kind}_${lat}ms`] = meter.read();
    const o: Record<string, unknown> = {};
    // Per hop, over an even sample of the run, once every answer has arrived.
    o.allActive = await waitActive(stack, WARMUP + count, 60_000);
    const sample = spread(ips.map((ip, i) => ({ ip, sentAt: sent[i]! })), HOP_SAMPLE);
    const hops = await hopBreakdown(stack, sample, { from: t0, to: t1 });
    if (kind === 'dry-run') {
      // No firewall: enforced = the enforcer's commit (from its history), over the hop sample.
      o.enforcedMs = hops.eventToEnforced;
      o.enforcedFrom = `the enforcer's commit (applyChanges marker), sample of ${sample.length}`;
      o.neverEnforced = sample.length - hops.eventToEnforced.n;
    } else {
      Object.assign(o, summarise(ips, sent, stack.enforced));
      const end = stack.enforced.verify(ips);
      o.missingAtEnd = end.notBlocked.size;
    }
    o.hops = hops;
    o.webhookMs = dist(replies.filter((r) => r?.status === 200).map((r) => r!.ms));
    o.webhookErrors = replies.filter((r) => r?.status !== 200).length;
    o.firewallCallsPerIp = r2((emulatorCalls(stack) - c0) / count);
    o.firewallWritesPerIp = r2((emulatorWrites(stack.emulator) - w0) / count);
    o.emulatorCounters = stack.emulator.state.counters;
    o.oneBlockHistory = await historyShape(stack.client, blockWorkflowId(stack.target, ips[Math.floor(count / 2)]!)).catch((err: Error) => ({ error: err.message }));
    o.enforcerHistory = await historyShape(stack.client, enforcerWorkflowId(stack.target, stack.group), true).catch((err: Error) => ({ error: err.message }));
    return o;
  } finally {
    await hook.close();
    await stack.stop();
  }
}

async function seedLatency(lat: number, count: number, block: number, conditions: Record<string, unknown>): Promise<Record<string, unknown>> {
  const base = await startBaseline({ writeLatencyMs: lat, ttlMs: 3_600_000, sweepPeriodMs: 3_600_000 });
  try {
    const warm = attackerIps(WARMUP, block);
    await Promise.all(warm.map((ip) => base.seed.mitigate(eventId(), ip)));
    const ips = attackerIps(count, block + 1);
    const ids = ips.map(() => eventId());
    const sent: number[] = [];
    const c0 = emulatorCalls(base);
    const w0 = emulatorWrites(base.emulator);
    const meter = new CpuMeter();
    const outcomes = await openLoop(count, RATE, (i) => {
      sent[i] = now();
      return base.seed.mitigate(ids[i]!, ips[i]!);
    });
    const members = ids.map(seedMemberName);
    await base.tracker.until(() => members.every((m) => base.tracker.members.has(m)), 5_000);
    conditions[`baseline_${lat}ms`] = meter.read();
    const b = summarise(ips, sent, base.enforced);
    b.missingAtEnd = base.enforced.verify(ips).notBlocked.size;
    b.runsReportedBlocked = outcomes.filter((x) => x === 'blocked').length;
    b.firewallCallsPerIp = r2((emulatorCalls(base) - c0) / count);
    b.firewallWritesPerIp = r2((emulatorWrites(base.emulator) - w0) / count);
    b.errors = Object.fromEntries(base.errors);
    return b;
  } finally {
    await base.stop();
  }
}

async function floorLatency(lat: number, count: number, block: number, conditions: Record<string, unknown>): Promise<Record<string, unknown>> {
  const floor = await startFloor({ writeLatencyMs: lat });
  try {
    const warm = attackerIps(WARMUP, block).map((ip) => ip.replace(/^45\./, '46.'));
    await Promise.all(warm.map((ip) => floor.start(ip)));
    await floor.enforced.untilAllEnforced(warm, 30_000);
    const ips = attackerIps(count, block);
    const sent: number[] = [];
    const c0 = emulatorCalls(floor);
    const meter = new CpuMeter(floor.server);
    await openLoop(count, RATE, (i) => {
      sent[i] = now();
      return floor.start(ips[i]!);
    });
    await floor.enforced.untilAllEnforced(ips, 30_000);
    conditions[`floor_${lat}ms`] = meter.read();
    return { ...summarise(ips, sent, floor.enforced), firewallCallsPerIp: r2((emulatorCalls(floor) - c0) / count) };
  } finally {
    await floor.stop();
  }
}

function summarise(ips: string[], sent: number[], tracker: EnforcementTracker): Record<string, unknown> {
  const latencies: number[] = [];
  let never = 0;
  ips.forEach((ip, i) => {
    const t = tracker.ips.get(ip)?.firstIn;
    if (t === undefined) never++;
    else latencies.push(t - sent[i]!);
  });
  // p50/p99 per 5 s of sending: shows whether a tail is steady or one stall.
  const t0 = sent[0] ?? 0;
  const windows = new Map<number, number[]>();
  ips.forEach((ip, i) => {
    const t = tracker.ips.get(ip)?.firstIn;
    if (t === undefined) return;
    const w = Math.floor((sent[i]! - t0) / 5000) * 5;
    windows.set(w, [...(windows.get(w) ?? []), t - sent[i]!]);
  });
  return {
    events: ips.length,
    enforcedMs: dist(latencies),
    enforcedMsPer5s: [...windows].map(([fromS, v]) => ({ fromS, ...dist(v) })),
    neverEnforced: never,
    droppedAndReadded: ips.filter((ip) => (tracker.ips.get(ip)?.joins ?? 0) > 1).length,
  };
}
