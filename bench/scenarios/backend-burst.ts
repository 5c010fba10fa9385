/**
 * burst, per backend side by side: 5,000 distinct IPs through the webhook at once (50 lines per request,
 * 8 requests in flight), emulator write latency 50 ms, HTTPS. For each of address-group (10 shards × 600),
 * threat-feed, banned-ip and dry-run (the no-firewall reference): time from the first request until every
 * IP is enforced on the firewall (dry-run: every block active), firewall calls (reads + writes) per IP,
 * CPU of the dev server and of our process, the per-hop breakdown of 200 sampled blocks, and then lost
 * blocks and unblocks: the last 10 % are cancelled (BlockService.cancel, as DELETE /v1/blocks/{ip} does);
 * once they have left the firewall, the emulator's own oracle (`blocked(ip)`) must block every kept IP and
 * none of the cancelled ones. The floor (bench/floor) runs the same 5,000 IPs — one workflow each, one
 * local activity, one call — on a fresh server of the same kind, for the "÷ floor" ratio.
 */
import type { EnforcementKind } from '../../src/enforcement';
import { blockWorkflowId, enforcerWorkflowId } from '../../workflows/messages';
import { emulatorWrites } from '../baseline/harness';
import { startFloor } from '../floor/stack';
import { BurstResult, results } from '../lib/backends';
import { historyShape } from '../lib/history';
import { hopBreakdown, spread } from '../lib/hops';
import { Webhook, adsLine, eventId, inPool } from '../lib/load';
import { emulatorCalls, waitActive, waitEnforced } from '../lib/measure';
import { CpuMeter, RunContext } from '../lib/scenario';
import { Ours, startOurs } from '../lib/stack';
import { now, r1, r2, sleep } from '../lib/stats';
import { GROUP_SHARDS } from './latency';

const BATCH = 50;
const IN_FLIGHT = 8;
/** The webhook runs 16 blocks of a request at once (src/api/limits.ts) × 8 requests: the floor starts as many. */
const FLOOR_STARTS_IN_FLIGHT = 128;
const HOP_SAMPLE = 200;
const UNBLOCK_SHARE = 0.1;

export interface BackendBurstOut {
  record: Record<string, unknown>;
  result: BurstResult;
}

/** Extra readings of the caller (memory): right after the stack started, and once every IP is enforced. */
export interface BurstProbe {
  started(stack: Ours): void;
  enforced(stack: Ours): void;
}

export async function backendBurst(ctx: RunContext, kind: EnforcementKind, ips: string[], lat: number, conditions: Record<string, unknown>, probe?: BurstProbe): Promise<BackendBurstOut> {
  const stack = await startOurs({ writeLatencyMs: lat, enforcement: kind, shards: kind === 'address-group' ? GROUP_SHARDS : undefined });
  const hook = new Webhook(stack.apiUrl, stack.webhookSecret, IN_FLIGHT);
  try {
    probe?.started(stack);
    const count = ips.length;
    const c0 = emulatorCalls(stack);
    const w0 = emulatorWrites(stack.emulator);
    const meter = new CpuMeter(stack.server);
    const sentAt = new Map<string, number>();
    const outcomes: Record<string, number> = {};
    let webhookErrors = 0;
    const t0 = now();
    let lastReply = t0;
    const batches: string[][] = [];
    for (let i = 0; i < count; i += BATCH) batches.push(ips.slice(i, i + BATCH));
    const sending = inPool(batches, IN_FLIGHT, async (b) => {
      const at = now();
      for (const ip of b) sentAt.set(ip, at);
      const res = await hook.post(b.map((ip) => adsLine(eventId(), ip)));
      lastReply = now();
      if (res.status !== 200) webhookErrors++;
      for (const [k, v] of Object.entries(res.body?.summary ?? {})) outcomes[k] = (outcomes[k] ?? 0) + v;
    });
    const done = await waitEnforced(stack, ips, ctx.quick ? 60_000 : 400_000);
    const tEnd = kind === 'dry-run' ? now() : done.at;
    await Promise.race([sending, sleep(10_000)]);
    const cpu = meter.read();
    conditions[`ours_${kind}`] = cpu;
    probe?.enforced(stack);
    const calls = emulatorCalls(stack) - c0;
    const writes = emulatorWrites(stack.emulator) - w0;
    // The hops need every answer in the histories: wait until all blocks are active (the last hop).
    const allActive = await waitActive(stack, count, 120_000);
    const allActiveS = allActive ? r2((now() - t0) / 1000) : undefined;
    const hops = await hopBreakdown(
      stack,
      spread(ips, HOP_SAMPLE).map((ip) => ({ ip, sentAt: sentAt.get(ip)! })),
      { from: t0, to: tEnd },
    );
    const histories = {
      enforcer: await historyShape(stack.client, enforcerWorkflowId(stack.target, stack.group), true).catch((err: Error) => ({ error: err.message })),
      oneBlockWorkflow: await historyShape(stack.client, blockWorkflowId(stack.target, ips[Math.floor(count / 2)]!)).catch((err: Error) => ({ error: err.message })),
    };

    // Lost blocks and unblocks: cancel the last 10 %, wait until they left, ask the emulator's oracle.
    const cut = Math.floor(count * (1 - UNBLOCK_SHARE));
    const kept = ips.slice(0, cut);
    const cancelled = ips.slice(cut);
    const u0 = now();
    const cancelErrors: Record<string, number> = {};
    await inPool(cancelled, 16, async (ip) => {
      await stack.blocks.cancel(ip, stack.target, { reason: 'bench: unblock', actor: 'bench' }).catch((err: Error) => {
        cancelErrors[err.message.slice(0, 80)] = (cancelErrors[err.message.slice(0, 80)] ?? 0) + 1;
      });
    });
    let unblockAllS: number | undefined;
    let lostBlocks: number | undefined;
    let lostUnblocks: number | undefined;
    if (kind !== 'dry-run') {
      const lifted = await stack.enforced.until(() => cancelled.every((ip) => !stack.enforced.holds(ip)), 120_000);
      if (lifted) unblockAllS = r2((now() - u0) / 1000);
      await sleep(2000); // let any late write land before judging the end state
      lostBlocks = stack.enforced.verify(kept).notBlocked.size;
      lostUnblocks = stack.enforced.verify(cancelled).blocked.size;
    }
    const result: BurstResult = {
      ips: count,
      allEnforcedS: done.all ? r2((tEnd - t0) / 1000) : undefined,
      enforced: done.done,
      callsPerIp: r2(calls / count),
      writesPerIp: r2(writes / count),
      lostBlocks,
      lostUnblocks,
      unblocked: cancelled.length,
      cpu: { devServerS: cpu.temporalServerCpuS, nodeS: cpu.benchProcessCpuS },
      hops,
    };
    return {
      result,
      record: {
        ...result,
        ipsPerS: done.all ? r1(count / ((tEnd - t0) / 1000)) : undefined,
        allActiveS,
        webhookAllRepliedS: r2((lastReply - t0) / 1000),
        webhookOutcomes: outcomes,
        webhookErrors,
        unblockAllS,
        cancelErrors,
        emulatorCounters: stack.emulator.state.counters,
        histories,
      },
    };
  } finally {
    await hook.close();
    await stack.stop();
  }
}

/** The floor: the same IPs, one minimal workflow each, started straight from a client. */
export async function floorBurst(ctx: RunContext, ips: string[], lat: number, conditions: Record<string, unknown>): Promise<{ record: Record<string, unknown>; result: BurstResult }> {
  const floor = await startFloor({ writeLatencyMs: lat });
  try {
    const c0 = emulatorCalls(floor);
    const meter = new CpuMeter(floor.server);
    const t0 = now();
    const startErrors: Record<string, number> = {};
    // When the last start returned (taken as it happens: read after the wait, it would be the wait's end).
    const starting = inPool(ips, FLOOR_STARTS_IN_FLIGHT, async (ip) => {
      await floor.start(ip).catch((err: Error) => void (startErrors[err.message.slice(0, 80)] = (startErrors[err.message.slice(0, 80)] ?? 0) + 1));
    }).then(() => now());
    const done = await floor.enforced.untilAllEnforced(ips, ctx.quick ? 60_000 : 400_000);
    const startsDoneS = r2(((await starting) - t0) / 1000);
    const cpu = meter.read();
    conditions.floor = cpu;
    const result: BurstResult = {
      ips: ips.length,
      allEnforcedS: done.all ? r2((done.at - t0) / 1000) : undefined,
      enforced: done.done,
      callsPerIp: r2((emulatorCalls(floor) - c0) / ips.length),
      writesPerIp: r2(emulatorWrites(floor.emulator) / ips.length),
      cpu: { devServerS: cpu.temporalServerCpuS, nodeS: cpu.benchProcessCpuS },
    };
    return { result, record: { ...result, startsInFlight: FLOOR_STARTS_IN_FLIGHT, allStartedS: startsDoneS, startErrors } };
  } finally {
    await floor.stop();
  }
}

export function burstResultsFor(kind: EnforcementKind | 'floor', r: BurstResult): void {
  if (kind === 'floor') results.floorBurst = r;
  else results.burst.set(kind, r);
}
