/**
 * latency: event → enforced on the firewall at a steady 20 events/s for ~30 s, each event a new attacker IP.
 * OURS: one POST /v1/events per event (like the forwarder, one ADS script run per event); BASELINE: one seed
 * run per event. Enforced = the emulator put the member into the group (timestamped by the emulator hook).
 * The seed's sweep is left at its cron cadence (hourly), so it does not run (nor heal) during the window.
 */
import { blockWorkflowId, enforcerWorkflowId } from '../../workflows/messages';
import { addressObjectName } from '../../src/enforcement/address-group';
import { emulatorWrites, startBaseline } from '../baseline/harness';
import { seedMemberName } from '../baseline/seed';
import { Webhook, adsLine, attackerIps, eventId, openLoop } from '../lib/load';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { historyShape } from '../lib/history';
import { startOurs } from '../lib/stack';
import { dist, machine, now, r2 } from '../lib/stats';
import type { GroupTracker } from '../lib/tracker';

const TARGET_P99_MS = 400;

export const latencyScenario: Scenario = {
  name: 'latency',
  describe: 'event → enforced p50/p95/p99 at a steady rate',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const rate = 20;
    const durationS = ctx.quick ? 5 : 29; // 580 IPs: within the default 600-member group, no rotation
    const count = rate * durationS;
    const warmup = 5;
    const startedAt = new Date().toISOString();
    const ours: Record<string, unknown> = {};
    const baseline: Record<string, unknown> = {};
    const conditions: Record<string, unknown> = {};
    const rows: Row[] = [];
    let block = 10;

    for (const lat of ctx.latencies) {
      // ---------------------------------------------------------------- OURS
      ctx.log(`latency: ours, write latency ${lat} ms, ${count} events at ${rate}/s`);
      const stack = await startOurs({ writeLatencyMs: lat });
      const hook = new Webhook(stack.apiUrl, stack.webhookSecret);
      let o: Record<string, unknown>;
      try {
        await warm(warmup, block++, stack.tracker, (ip) => hook.post([adsLine(eventId(), ip)]), addressObjectName);
        const ips = attackerIps(count, block++);
        const sent: number[] = [];
        const w0 = emulatorWrites(stack.emulator);
        const g0 = stack.tracker.groupWrites;
        const meter = new CpuMeter(stack.dev.process.pid);
        const replies = await openLoop(count, rate, (i) => {
          sent[i] = now();
          return hook.post([adsLine(eventId(), ips[i]!)]);
        });
        const members = ips.map(addressObjectName);
        await stack.tracker.until(() => members.every((m) => stack.tracker.members.has(m)), 30_000);
        conditions[`ours_${lat}ms`] = meter.read();
        o = summarise(ips, members, sent, stack.tracker);
        o.webhookMs = dist(replies.filter((r) => r?.status === 200).map((r) => r!.ms));
        o.webhookErrors = replies.filter((r) => r?.status !== 200).length;
        o.firewallWritesPerIp = r2((emulatorWrites(stack.emulator) - w0) / count);
        o.groupWrites = stack.tracker.groupWrites - g0;
        o.batchWindowMs = stack.config.block.batchWindowMs;
        // What one block costs in Temporal: the history of a block workflow that is now holding its TTL.
        o.oneBlockHistory = await historyShape(stack.client, blockWorkflowId(stack.config.targets[0]!.name, ips[Math.floor(count / 2)]!));
        const groupHistory = await historyShape(stack.client, enforcerWorkflowId(stack.config.targets[0]!.name, stack.group), true);
        o.groupHistory = groupHistory;
        // Seconds into the sending when the group workflow continued as new (to line up with enforcedMsPer5s).
        o.groupContinuedAsNewAtS = (groupHistory.runsClosedAtMs ?? []).map((t) => r2((t - sent[0]!) / 1000));
      } finally {
        await hook.close();
        await stack.stop();
      }
      ours[`${lat}ms`] = o;

      // ---------------------------------------------------------------- BASELINE
      ctx.log(`latency: baseline, write latency ${lat} ms`);
      const base = await startBaseline({ writeLatencyMs: lat, ttlMs: 3_600_000, sweepPeriodMs: 3_600_000 });
      let b: Record<string, unknown>;
      try {
        const names = new Map<string, string>();
        await warm(warmup, block++, base.tracker, (ip) => base.seed.mitigate(rememberId(names, ip), ip), (ip) => seedMemberName(names.get(ip)!));
        const ips = attackerIps(count, block++);
        const ids = ips.map(() => eventId());
        const sent: number[] = [];
        const w0 = emulatorWrites(base.emulator);
        const meter = new CpuMeter();
        const outcomes = await openLoop(count, rate, (i) => {
          sent[i] = now();
          return base.seed.mitigate(ids[i]!, ips[i]!);
        });
        const members = ids.map(seedMemberName);
        await base.tracker.until(() => members.every((m) => base.tracker.members.has(m)), 5_000);
        conditions[`baseline_${lat}ms`] = meter.read();
        b = summarise(ips, members, sent, base.tracker);
        b.runsReportedBlocked = outcomes.filter((x) => x === 'blocked').length;
        b.firewallWritesPerIp = r2((emulatorWrites(base.emulator) - w0) / count);
        b.errors = Object.fromEntries(base.errors);
      } finally {
        await base.stop();
      }
      baseline[`${lat}ms`] = b;

      const e = (x: Record<string, unknown>) => x.enforcedMs as ReturnType<typeof dist>;
      rows.push(
        { scenario: 'latency', lat: String(lat), metric: 'event→enforced p50 ms', ours: e(o).p50, baseline: e(b).p50 },
        { scenario: 'latency', lat: String(lat), metric: 'event→enforced p95 ms', ours: e(o).p95, baseline: e(b).p95 },
        { scenario: 'latency', lat: String(lat), metric: 'event→enforced p99 ms', ours: e(o).p99, baseline: e(b).p99, target: `≤ ${TARGET_P99_MS}` },
        { scenario: 'latency', lat: String(lat), metric: 'firewall writes per IP (steady 20/s)', ours: o.firewallWritesPerIp as number, baseline: b.firewallWritesPerIp as number },
        { scenario: 'latency', lat: String(lat), metric: `not enforced / missing at end (of ${count})`, ours: `${o.neverEnforced} / ${o.missingAtEnd}`, baseline: `${b.neverEnforced} / ${b.missingAtEnd}`, target: '0 / 0' },
      );
    }

    return {
      record: {
        scenario: 'latency',
        startedAt,
        machine: machine(),
        params: { ratePerS: rate, durationS, eventsPerRun: count, warmupEvents: warmup, writeLatenciesMs: ctx.latencies, groupCapacity: 600, seedSweep: 'hourly (does not run in the window)', quick: ctx.quick },
        ours,
        baseline,
        targets: { eventToEnforcedP99Ms: TARGET_P99_MS },
        conditions,
      },
      rows,
    };
  },
};

function rememberId(names: Map<string, string>, ip: string): string {
  const id = eventId();
  names.set(ip, id);
  return id;
}

/** A few blocks before measuring: starts the group workflow / first connections and warms the JIT. */
async function warm(n: number, block: number, tracker: GroupTracker, send: (ip: string) => Promise<unknown>, member: (ip: string) => string): Promise<void> {
  const ips = attackerIps(n, block);
  await Promise.all(ips.map(send));
  await tracker.until(() => ips.every((ip) => tracker.members.has(member(ip))), 30_000);
}

function summarise(ips: string[], members: string[], sent: number[], tracker: GroupTracker): Record<string, unknown> {
  const latencies: number[] = [];
  const toAddress: number[] = [];
  const addressToGroup: number[] = [];
  let never = 0;
  members.forEach((m, i) => {
    const t = tracker.members.get(m)?.firstIn;
    const a = tracker.addressCreated.get(m);
    if (a !== undefined) toAddress.push(a - sent[i]!);
    if (t === undefined) never++;
    else {
      latencies.push(t - sent[i]!);
      if (a !== undefined) addressToGroup.push(t - a);
    }
  });
  // p50/p99 per 5 s of sending: shows whether a tail is steady or one stall.
  const windows: { fromS: number; p50: number; p99: number; n: number }[] = [];
  const t0 = sent[0] ?? 0;
  members.forEach((m, i) => {
    const t = tracker.members.get(m)?.firstIn;
    if (t === undefined) return;
    const w = Math.floor((sent[i]! - t0) / 5000);
    (windows[w] ??= { fromS: w * 5, p50: 0, p99: 0, n: 0 }).n++;
  });
  for (const w of windows.filter(Boolean)) {
    const inWindow = members
      .map((m, i) => ({ t: tracker.members.get(m)?.firstIn, i }))
      .filter(({ t, i }) => t !== undefined && Math.floor((sent[i]! - t0) / 5000) * 5 === w.fromS)
      .map(({ t, i }) => t! - sent[i]!);
    const d = dist(inWindow);
    Object.assign(w, { p50: d.p50, p99: d.p99 });
  }
  const current = tracker.current();
  return {
    events: ips.length,
    enforcedMs: dist(latencies),
    enforcedMsPer5s: windows.filter(Boolean),
    // Where the time goes: event sent → address object created (emulator applied the POST), then
    // address created → member in the group (the group write applied).
    sentToAddressMs: dist(toAddress),
    addressToGroupMs: dist(addressToGroup),
    neverEnforced: never,
    missingAtEnd: members.filter((m) => !current.has(m)).length,
    droppedAndReadded: members.filter((m) => (tracker.members.get(m)?.joins ?? 0) > 1).length,
  };
}

