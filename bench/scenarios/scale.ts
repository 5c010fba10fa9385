/**
 * scale (opt-in: `npm run bench -- scale [--scale-max=N]`): one threat-feed target filled with up to
 * 100,000 active blocks through the webhook (50 lines per request, 8 in flight, at most FILL_AHEAD blocks not
 * yet active, write latency 50 ms, HTTPS, TTL 12 h so nothing expires). At each checkpoint (10,000 / 50,000 /
 * 100,000, capped by --scale-max) it
 * reports: RSS of our process (worker + API + emulator + load generator) and of the Temporal dev server,
 * the size of the server's database files, the fill rate, event → enforced p50/p99 of 100 new blocks at
 * 20/s, and the time of a full repair: the feed is wiped on the emulator (as an operator or a firmware
 * reset would), then `reconcileTarget` runs (it re-asserts every active block whose entry is missing;
 * they resend through the enforcer), timed until every active block is on the feed again. The whole run
 * to 100,000 takes about an hour and a half on the 2-core box. `--server=postgres` runs the same on the
 * production topology's Temporal server (PostgreSQL persistence and SQL visibility) instead of the dev
 * server's SQLite file: the store is the one thing that differs.
 */
import { BURST_HOLD_MS } from '../../src/blocks/burst-gate';
import { WORKFLOW_TYPES } from '../../workflows/messages';
import { hopBreakdown, spread } from '../lib/hops';
import { scrape, serverTime } from '../lib/server-metrics';
import { Webhook, adsLine, eventId, inPool, manyIps, openLoop } from '../lib/load';
import { activeBlocks, emulatorCalls, waitActive } from '../lib/measure';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput, sizesUpTo } from '../lib/scenario';
import { BENCH_FEED, Ours, startOurs } from '../lib/stack';
import { dist, loopDelay, machine, mib, now, r1, r2, sleep } from '../lib/stats';

const CHECKPOINTS = [10_000, 50_000, 100_000];
const PROBE = 100;
/** The probe's webhook connections: as many as the latency scenario's (Webhook's default). */
const PROBE_CONNECTIONS = 64;
/**
 * The fill keeps at most this many of its blocks started and not yet active. Unbounded, the webhook took 150
 * blocks/s while the 2-core box turned ~30 of them active a second (the server at a full core): 36,000 first tasks
 * waited in the task queue, more than the checkpoint's settle wait (10 min) could see through, and its probe would
 * have measured that backlog rather than 50,000 settled blocks. Bounded, the fill goes at the rate the stack
 * sustains and is still a burst (the API's burst path writes the feed ahead): the rate it reports is blocks turned
 * active per second.
 */
const FILL_AHEAD = 2000;
/** A repair with no entry back for this long has stalled: stop waiting and record the worker's pollers. */
const STALL_MS = 180_000;

/** The server counts as quiet below this share of one core (sleeping blocks cost it next to nothing). */
const QUIET_SERVER_CORES = 0.15;
const QUIET_WAIT_MAX_MS = 600_000;

/**
 * Waits until the Temporal server (with PostgreSQL's processes) uses less than QUIET_SERVER_CORES over 5 s, at
 * most QUIET_WAIT_MAX_MS. After a fill of 50,000 blocks PostgreSQL's autovacuum and analyze of tables of
 * gigabytes run for minutes; a repair timed meanwhile is charged their CPU, which grows with the database, not
 * with the repair.
 */
async function serverQuiet(server: Ours['server']): Promise<{ waitedS: number; cores?: number }> {
  const t0 = now();
  let cores: number | undefined;
  while (now() - t0 < QUIET_WAIT_MAX_MS) {
    const c0 = server.cpuS();
    await sleep(5000);
    const c1 = server.cpuS();
    if (c0 === undefined || c1 === undefined) return { waitedS: r1((now() - t0) / 1000) };
    cores = r2((c1 - c0) / 5);
    if (cores < QUIET_SERVER_CORES) break;
  }
  return { waitedS: r1((now() - t0) / 1000), cores };
}

/** Who polls the product's task queue (a worker whose workflow pollers are gone has stalled). */
async function workflowPollers(stack: Ours): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, type] of [['workflow', 1], ['activity', 2]] as const) {
    const r = await stack.client.workflowService.describeTaskQueue({
      namespace: stack.config.temporal.namespace,
      taskQueue: { name: stack.config.temporal.taskQueue },
      taskQueueType: type,
    });
    out[name] = (r.pollers ?? []).map((p) => ({ identity: p.identity, lastAccess: p.lastAccessTime?.seconds?.toString() }));
  }
  return out;
}


export const scaleScenario: Scenario = {
  name: 'scale',
  describe: 'threat-feed with up to 100,000 active blocks: memory, DB size, p99 of new blocks, full repair time (--scale-max=N, --server=dev|postgres)',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const { max, sizes: checkpoints } = sizesUpTo(ctx, CHECKPOINTS);
    const startedAt = new Date().toISOString();
    const rows: Row[] = [];
    const points: Record<string, unknown>[] = [];
    const conditions: Record<string, unknown> = {};
    const all = manyIps(max + checkpoints.length * PROBE);
    let next = 0;
    const stack = await startOurs({ writeLatencyMs: 50, enforcement: 'threat-feed', ttl: '12h', env: { FORTIGATE_FEED_CAPACITY: '300000' }, server: ctx.server });
    ctx.log(`scale: Temporal server: ${stack.server.kind === 'postgres' ? 'PostgreSQL-backed (production topology)' : 'dev server (SQLite)'}`);
    const hook = new Webhook(stack.apiUrl, stack.webhookSecret, 8);
    // The probe's own client, as many connections as the latency scenario's: a webhook answers once the block's
    // first task ran (~1 s at 50,000 blocks), so 8 connections carried ~8 requests/s and the 20/s probe queued
    // in the load generator — its `api` hop (438 ms p50 at 50,000) was mostly that queue.
    const probeHook = new Webhook(stack.apiUrl, stack.webhookSecret, PROBE_CONNECTIONS);
    const active: string[] = [];
    try {
      const idle = { rssMiB: mib(process.memoryUsage().rss), serverMemMiB: stack.server.memMiB(), dbMiB: stack.server.dbMiB() };
      for (const cp of checkpoints) {
        // ---- fill up to the checkpoint (the probe's blocks count too)
        const fill = all.slice(next, next + Math.max(0, cp - active.length - PROBE));
        next += fill.length;
        ctx.log(`scale: filling ${fill.length} blocks (to ${cp})`);
        const meter = new CpuMeter(stack.server);
        const f0 = now();
        const batches: string[][] = [];
        for (let i = 0; i < fill.length; i += 50) batches.push(fill.slice(i, i + 50));
        let errors = 0;
        // FILL_AHEAD: a batch goes once fewer than that many of the fill's blocks are not yet active (counted once a second).
        const activeBefore = await activeBlocks(stack);
        let posted = 0;
        let activeNow = activeBefore;
        let countedAtMs = 0;
        const sending = inPool(batches, 8, async (b) => {
          while (posted - (activeNow - activeBefore) > FILL_AHEAD - b.length) {
            if (now() - countedAtMs >= 1000) {
              countedAtMs = now();
              activeNow = await activeBlocks(stack);
            } else await sleep(200);
          }
          posted += b.length;
          const r = await hook.post(b.map((ip) => adsLine(eventId(), ip)));
          if (r.status !== 200) errors++;
        });
        const filled = await stack.enforced.untilAllEnforced(fill, Math.max(600_000, fill.length * 100));
        await sending;
        const fillEnd = now();
        const fillS = (now() - f0) / 1000;
        active.push(...fill);
        conditions[`fill_${cp}`] = meter.read();
        // The probe measures new blocks beside `cp` settled ones: the fill's tail (answers, blocks turning
        // active, the webhook's waits) must be over first, or the probe measures the fill's backlog.
        const settle0 = now();
        const settled = await waitActive(stack, active.length, 600_000);
        const settleS = r1((now() - settle0) / 1000);
        // … and the API's burst hold (src/blocks/burst-gate.ts), counted from the fill's last request: a new block
        // right after a burst goes without an early add, which is not what a trickle beside `cp` blocks sees.
        await sleep(Math.max(0, BURST_HOLD_MS - (now() - fillEnd)));

        // ---- new blocks at 20/s: event → enforced
        ctx.log(`scale: ${PROBE} new blocks at 20/s`);
        const probe = all.slice(next, next + PROBE);
        next += probe.length;
        const sent: number[] = [];
        // The server's side of the probe: its CPU, and which of its operations took the time (its /metrics).
        const probeMeter = new CpuMeter(stack.server);
        const m0 = stack.server.metricsUrl ? await scrape(stack.server.metricsUrl).catch(() => undefined) : undefined;
        const p0 = now();
        const { delayMs: probeLoopDelayMs } = await loopDelay(async () => {
          await openLoop(probe.length, 20, (i) => {
            sent[i] = now();
            return probeHook.post([adsLine(eventId(), probe[i]!)]);
          });
          await stack.enforced.untilAllEnforced(probe, 60_000);
        });
        const p1 = now();
        conditions[`probe_${cp}`] = probeMeter.read();
        const m1 = m0 && (await scrape(stack.server.metricsUrl!).catch(() => undefined));
        const serverTimes = m0 && m1 ? serverTime(m0, m1) : undefined;
        if (serverTimes) ctx.log(`scale: server time during the probe (top series): ${JSON.stringify(serverTimes)}`);
        active.push(...probe);
        const probeMs = dist(probe.map((ip, i) => (stack.enforced.ips.get(ip)?.firstIn ?? NaN) - sent[i]!).filter(Number.isFinite));
        const hops = await hopBreakdown(stack, spread(probe.map((ip, i) => ({ ip, sentAt: sent[i]! })), 50), { from: p0, to: p1 }).catch((err) => {
          // At 100,000 it failed once without a word: say why (the rest of the checkpoint does not need it).
          ctx.log(`scale: no hop breakdown: ${(err as Error).message}`);
          return undefined;
        });

        // ---- memory and database, settled
        (globalThis as { gc?: () => void }).gc?.();
        const rssMiB = mib(process.memoryUsage().rss);
        const heapMiB = mib(process.memoryUsage().heapUsed);
        const serverMemMiB = stack.server.memMiB();
        const dbMiB = stack.server.dbMiB();

        // Logged before the repair too: a run cut short keeps what it measured.
        ctx.log(`scale: ${JSON.stringify({ activeBlocks: active.length, settled, settleS, fillS: r1(fillS), fillPerS: r1(fill.length / fillS), newBlocksMs: probeMs, probeLoopDelayMs, rssMiB, heapMiB, serverMemMiB, dbMiB, idle, newBlocksHops: hops && Object.fromEntries(Object.entries(hops.hops).map(([h, d]) => [h, [d.p50, d.p95]])) })}`);
        // ---- full repair: wipe the feed, reconcile, until every active block is back
        const quiet = await serverQuiet(stack.server);
        ctx.log(`scale: server quiet after ${quiet.waitedS} s (${quiet.cores ?? '?'} cores); repair of ${active.length} entries (feed wiped, reconcileTarget)`);
        stack.emulator.state.feeds.replace(BENCH_FEED, []);
        const c0 = emulatorCalls(stack);
        const fc0 = stack.firewallCalls.length;
        const rMeter = new CpuMeter(stack.server);
        const r0 = now();
        const report = stack.client.workflow.execute(WORKFLOW_TYPES.reconcile, {
          workflowId: `bench-repair-${cp}`,
          taskQueue: stack.config.temporal.taskQueue,
          args: [{ target: stack.target }],
        });
        let reconcileS: number | undefined;
        const reconciled = report.then((r) => ((reconcileS = r2((now() - r0) / 1000)), r)).catch((err: Error) => ({ error: err.message }));
        // Every active IP is off the feed now: each leaves `pending` as it comes back (O(1) per entry, not a scan).
        const { pending, stop: stopPending } = stack.enforced.pendingUntilIn(active.filter((ip) => !stack.enforced.holds(ip)));
        // Bounded, and given up when nothing came back for STALL_MS (a stalled worker: see workflowPollers).
        let progressAt = now();
        let lastSize = pending.size;
        let stalled = false;
        const repaired = await stack.enforced.until(() => {
          if (pending.size < lastSize) progressAt = now();
          lastSize = pending.size;
          stalled = now() - progressAt > STALL_MS;
          return pending.size === 0 || stalled;
        }, Math.max(900_000, active.length * 50));
        stopPending();
        const repairS = r2((now() - r0) / 1000);
        const reconcileReport = await Promise.race([reconciled, sleep(30_000).then(() => ({ error: 'reconcileTarget still running 30 s after the repair wait ended' }))]);
        const pollers = await workflowPollers(stack).catch((err: Error) => ({ error: err.message }));
        conditions[`repair_${cp}`] = rMeter.read();
        const ops: Record<string, number> = {};
        for (const c of stack.firewallCalls.slice(fc0)) ops[c.op] = (ops[c.op] ?? 0) + 1;
        const missingAfter = stack.enforced.verify(spread(active, 1000)).notBlocked.size;
        // The repair's pace: entries back on the feed per 10 s after the wipe.
        const backPer10s: number[] = [];
        for (const ip of active) {
          const t = stack.enforced.ips.get(ip)?.lastIn;
          if (t !== undefined && t >= r0) backPer10s[Math.floor((t - r0) / 10_000)] = (backPer10s[Math.floor((t - r0) / 10_000)] ?? 0) + 1;
        }

        const point = {
          activeBlocks: active.length,
          fill: { ips: fill.length, aheadMax: FILL_AHEAD, seconds: r1(fillS), perS: r1(fill.length / fillS), allEnforced: filled.all, webhookErrors: errors, allActiveAfterS: settled ? settleS : undefined },
          newBlocksEnforcedMs: probeMs,
          newBlocksHops: hops,
          /** The Temporal server's operations that took the most time during the probe (its /metrics; PostgreSQL runs only). */
          serverTimeInProbe: serverTimes,
          /** Our process's event-loop delay during the probe (worker, API, emulator and load share it). */
          probeLoopDelayMs,
          memory: { ourProcessRssMiB: rssMiB, ourProcessHeapMiB: heapMiB, serverMemMiB, databaseMiB: dbMiB, idle },
          repair: { serverQuietBefore: quiet, entries: active.length, allBackS: repaired && !stalled ? repairS : undefined, stalled, workerPollers: pollers, pendingAtEnd: pending.size, reconcileWorkflowS: reconcileS, firewallCalls: emulatorCalls(stack) - c0, firewallOps: ops, backPer10s: Array.from(backPer10s, (x) => x ?? 0), report: reconcileReport, notBlockedInSampleOf1000: missingAfter },
        };
        points.push(point);
        ctx.log(`scale: repair ${JSON.stringify({ ...point.repair, report: undefined })}`);
        const k = `${active.length}`;
        rows.push(
          { scenario: 'scale', lat: '50', metric: `${k} blocks: our process RSS / ${stack.server.kind} server memory / database MiB`, ours: `${rssMiB} / ${serverMemMiB} / ${dbMiB}` },
          { scenario: 'scale', lat: '50', metric: `${k} blocks: fill rate blocks/s; new blocks event→enforced p50 / p99 ms`, ours: `${point.fill.perS}; ${probeMs.p50} / ${probeMs.p99}` },
          { scenario: 'scale', lat: '50', metric: `${k} blocks: full repair (feed wiped → all back), s; firewall calls`, ours: `${point.repair.allBackS ?? `${stalled ? 'stalled' : 'not done'} after ${repairS} (${pending.size} missing)`}; ${point.repair.firewallCalls}` },
        );
      }
    } finally {
      await hook.close();
      await probeHook.close();
      await stack.stop();
    }
    return {
      record: {
        scenario: 'scale',
        startedAt,
        machine: machine(),
        params: { server: ctx.server, checkpoints, probe: PROBE, writeLatencyMs: 50, backend: 'threat-feed', ttl: '12h', webhook: { linesPerRequest: 50, requestsInFlight: 8, probeConnections: PROBE_CONNECTIONS }, quick: ctx.quick },
        ours: { points },
        baseline: {},
        targets: {},
        conditions,
      },
      rows,
    };
  },
};
