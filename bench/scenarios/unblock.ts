/**
 * unblock: lateness of the unblock after the TTL. Blocks with a 10 s TTL, `count` new IPs sent at `rate`/s;
 * lateness = when the member left the group − (when it was enforced + TTL). For OURS also against the
 * expiry the product promised in its webhook reply (expiresAt = event received + TTL).
 * BASELINE: the seed's timeout sweep every 1 s (the seed: hourly cron; 1 s here, or nothing would expire
 * within a bench), decrease = 1 s: a row goes on the sweep where its remaining ttl ≤ 1 s, so the seed
 * unblocks up to one period EARLY by design (negative lateness).
 */
import { addressObjectName } from '../../src/enforcement/address-group';
import { startBaseline } from '../baseline/harness';
import { seedMemberName } from '../baseline/seed';
import { Webhook, adsLine, attackerIps, eventId, openLoop } from '../lib/load';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { startOurs } from '../lib/stack';
import { dist, machine, now } from '../lib/stats';
import type { GroupTracker } from '../lib/tracker';

const TARGET_P99_MS = 1000;

export const unblockScenario: Scenario = {
  name: 'unblock',
  describe: 'lateness of the unblock after the TTL (p50/p99)',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const ttlMs = 10_000;
    const count = ctx.quick ? 40 : 150;
    const rate = 30;
    const sweepPeriodMs = 1000;
    const startedAt = new Date().toISOString();
    const ours: Record<string, unknown> = {};
    const baseline: Record<string, unknown> = {};
    const conditions: Record<string, unknown> = {};
    const rows: Row[] = [];
    let block = 70;

    for (const lat of ctx.latencies) {
      ctx.log(`unblock: ours, ${count} blocks with TTL ${ttlMs / 1000} s, write latency ${lat} ms`);
      const stack = await startOurs({ writeLatencyMs: lat, ttl: `${ttlMs / 1000}s` });
      const hook = new Webhook(stack.apiUrl, stack.webhookSecret);
      let o: Record<string, unknown>;
      try {
        const ips = attackerIps(count, block++);
        const members = ips.map(addressObjectName);
        const meter = new CpuMeter(stack.server);
        const replies = await openLoop(count, rate, (i) => hook.post([adsLine(eventId(), ips[i]!)]));
        const expiresAt = replies.map((r) => Date.parse(r?.body?.events[0]?.ips?.[0]?.targets?.[0]?.expiresAt ?? ''));
        await waitLifted(stack.tracker, members, ttlMs + 60_000);
        conditions[`ours_${lat}ms`] = meter.read();
        // The address objects go after the members (leave first, then delete): give them a moment.
        await stack.tracker.until(() => members.every((m) => stack.tracker.addressDeleted.has(m)), 10_000);
        o = lateness(members, stack.tracker, ttlMs);
        const promised: number[] = [];
        members.forEach((m, i) => {
          const out = stack.tracker.members.get(m)?.lastOut;
          if (out !== undefined && Number.isFinite(expiresAt[i])) promised.push(out - expiresAt[i]!);
        });
        o.latenessVsExpiresAtMs = dist(promised);
        const deleted: number[] = [];
        members.forEach((m, i) => {
          const d = stack.tracker.addressDeleted.get(m);
          if (d !== undefined && Number.isFinite(expiresAt[i])) deleted.push(d - expiresAt[i]!);
        });
        o.addressDeletedVsExpiresAtMs = dist(deleted);
      } finally {
        await hook.close();
        await stack.stop();
      }
      ours[`${lat}ms`] = o;

      ctx.log(`unblock: baseline, sweep every ${sweepPeriodMs} ms, write latency ${lat} ms`);
      const base = await startBaseline({ writeLatencyMs: lat, ttlMs, sweepPeriodMs });
      let b: Record<string, unknown>;
      try {
        const ips = attackerIps(count, block++);
        const ids = ips.map(() => eventId());
        const members = ids.map(seedMemberName);
        const meter = new CpuMeter();
        await openLoop(count, rate, (i) => base.seed.mitigate(ids[i]!, ips[i]!));
        await waitLifted(base.tracker, members, ttlMs + 30_000);
        conditions[`baseline_${lat}ms`] = meter.read();
        b = lateness(members, base.tracker, ttlMs);
        b.sweeps = base.seed.stats.sweeps;
        b.errors = Object.fromEntries(base.errors);
      } finally {
        await base.stop();
      }
      baseline[`${lat}ms`] = b;

      const l = (x: Record<string, unknown>) => x.latenessMs as ReturnType<typeof dist>;
      const pe = (x: Record<string, unknown>) => x.latenessVsExpiresAtMs as ReturnType<typeof dist>;
      rows.push(
        { scenario: 'unblock', lat: String(lat), metric: 'lateness after TTL p50 ms', ours: l(o).p50, baseline: l(b).p50 },
        { scenario: 'unblock', lat: String(lat), metric: 'lateness after TTL p99 ms', ours: l(o).p99, baseline: l(b).p99, target: `≤ ${TARGET_P99_MS}` },
        { scenario: 'unblock', lat: String(lat), metric: 'out of group after promised expiresAt p50 / p99 ms', ours: `${pe(o).p50} / ${pe(o).p99}`, baseline: 'n/a' },
        { scenario: 'unblock', lat: String(lat), metric: `still in group at the end (of ${count})`, ours: o.notLifted as number, baseline: b.notLifted as number, target: '0' },
      );
    }
    return {
      record: {
        scenario: 'unblock',
        startedAt,
        machine: machine(),
        params: { blocks: count, ratePerS: rate, ttlMs, seedSweepPeriodMs: sweepPeriodMs, writeLatenciesMs: ctx.latencies, quick: ctx.quick },
        ours,
        baseline,
        targets: { latenessP99Ms: TARGET_P99_MS },
        conditions,
      },
      rows,
    };
  },
};

/** Until every member has been in the group and is out of it again. */
async function waitLifted(tracker: GroupTracker, members: string[], timeoutMs: number): Promise<boolean> {
  return tracker.until(() => {
    const current = tracker.current();
    return members.every((m) => tracker.members.get(m)?.lastOut !== undefined && !current.has(m));
  }, timeoutMs);
}

function lateness(members: string[], tracker: GroupTracker, ttlMs: number): Record<string, unknown> {
  const late: number[] = [];
  const current = tracker.current();
  let neverIn = 0;
  for (const m of members) {
    const e = tracker.members.get(m);
    if (!e?.firstIn) neverIn++;
    else if (e.lastOut !== undefined && !current.has(m)) late.push(e.lastOut - (e.firstIn + ttlMs));
  }
  return {
    blocks: members.length,
    latenessMs: dist(late),
    neverEnforced: neverIn,
    notLifted: members.filter((m) => current.has(m)).length,
    earlierThanTtl: late.filter((x) => x < 0).length,
  };
}
