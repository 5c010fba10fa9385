/**
 * repair (opt-in: `npm run bench -- repair [--scale-max=N] [--server=dev|postgres]`): the full repair of a
 * wiped threat feed, alone, at 10,000 / 50,000 / 100,000 entries, in minutes instead of the `scale` scenario's
 * hour. Why it exists: `scale` measured the repair's CPU per entry growing +62–67 % from 10,000 to 100,000
 * (server and ours) and could not say which part grows — its repair shares the process with a fill's
 * aftermath, the load generator and a tracker that checks every pending IP twice a second.
 *
 * Here the running blocks are seeded straight into Temporal: `ipBlock` workflows with the search attributes
 * of an active block, on a task queue no worker polls (nothing of the blocks runs, as in a repair, where the
 * enforcer vouches for the re-adds and never wakes a block). Then, per size: wipe the feed, run
 * `reconcileTarget`, wait until the enforcer's queue is empty and the feed holds every entry. Reported per
 * phase — the visibility listing, the rest of the repair — CPU per entry of our process (by thread) and of
 * the server, so that whatever grows faster than the entries shows where. BENCH_CPU_PROFILE=<dir> writes a
 * V8 CPU profile of our main thread per repair.
 */
import { Session } from 'node:inspector/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { blockWorkflowId, enforcerStatusQuery, enforcerWorkflowId, SA, WORKFLOW_TYPES } from '../../workflows/messages';
import { runningBlocks, runningBlocksQuery } from '../../src/temporal/visibility';
import { inPool, manyIps } from '../lib/load';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput, sizesUpTo } from '../lib/scenario';
import { BENCH_FEED, startOurs } from '../lib/stack';
import { machine, now, r1, r2, sleep } from '../lib/stats';
import { RELEASE_MARGIN_MS } from '../../workflows/release-log';

const SIZES = [10_000, 50_000, 100_000];
/** No worker polls it: the seeded blocks never run. */
const SEED_QUEUE = 'bench-repair-seeded-blocks';
const SEEDS_IN_FLIGHT = 32;


type Meter = ReturnType<CpuMeter['read']>;
const perEntryMs = (m: Meter, n: number) => ({
  oursMain: r2(((m.benchThreadsCpuS.main ?? 0) * 1000) / n),
  oursAll: r2((m.benchProcessCpuS * 1000) / n),
  server: m.temporalServerCpuS === undefined ? undefined : r2((m.temporalServerCpuS * 1000) / n),
});

export const repairScenario: Scenario = {
  name: 'repair',
  describe: 'full repair of a wiped threat feed alone, 10,000 / 50,000 / 100,000 seeded blocks: CPU per entry by phase (--scale-max=N, --server=dev|postgres)',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const { max, sizes } = sizesUpTo(ctx, SIZES);
    const startedAt = new Date().toISOString();
    const rows: Row[] = [];
    const points: Record<string, unknown>[] = [];
    const profileDir = process.env.BENCH_CPU_PROFILE;
    const all = manyIps(max);
    // No scheduled reconciliation: a pass of the schedule's over the seeded blocks would overlap the measured one.
    const stack = await startOurs({ writeLatencyMs: 50, enforcement: 'threat-feed', ttl: '12h', env: { FORTIGATE_FEED_CAPACITY: '300000', RECONCILE_INTERVAL: '24h' }, server: ctx.server });
    const { client, target } = stack;
    const taskQueue = stack.config.temporal.taskQueue;
    try {
      // The enforcer runs from here on: the release log of a run vouches for re-adds listed RELEASE_MARGIN_MS after
      // its start (before that every re-add is checked with a describe, which is not the repair of a running set).
      await client.workflow.execute(WORKFLOW_TYPES.reconcile, { workflowId: 'bench-repair-warm', taskQueue, args: [{ target }] });
      const enforcerFrom = now();
      let seeded = 0;
      for (const size of sizes) {
        const seed = all.slice(seeded, size);
        ctx.log(`repair: seeding ${seed.length} blocks (to ${size})`);
        const s0 = now();
        const expiresAt = new Date(Date.now() + 12 * 3600_000);
        await inPool(seed, SEEDS_IN_FLIGHT, async (ip) => {
          await client.workflow.start(WORKFLOW_TYPES.block, {
            workflowId: blockWorkflowId(target, ip),
            taskQueue: SEED_QUEUE,
            args: [{ seeded: true }],
            typedSearchAttributes: [
              { key: SA.blockedIp, value: ip },
              { key: SA.firewallTarget, value: target },
              { key: SA.blockState, value: 'active' },
              { key: SA.addressGroup, value: BENCH_FEED },
              { key: SA.blockExpiresAt, value: expiresAt },
            ],
          });
        });
        seeded = size;
        const seedS = r1((now() - s0) / 1000);
        ctx.log(`repair: seeded in ${seedS} s; waiting for visibility to list ${size}`);
        // Visibility is eventually consistent: the listing must see every seeded block before the repair is timed.
        while ((await client.workflow.count(runningBlocksQuery({ target, set: BENCH_FEED }))).count < size) await sleep(1000);
        const wait = enforcerFrom + RELEASE_MARGIN_MS + 10_000 - now();
        if (wait > 0) {
          ctx.log(`repair: waiting ${Math.round(wait / 1000)} s for the enforcer's release log to reach back past a listing`);
          await sleep(wait);
        }

        // ---- the listing alone (what reconcileSet does first), timed and metered on its own
        const lMeter = new CpuMeter(stack.server);
        const l0 = now();
        let listed = 0;
        for await (const _ of runningBlocks(client, { target, set: BENCH_FEED })) listed++;
        const listS = r2((now() - l0) / 1000);
        const listing = lMeter.read();

        // ---- the full repair: wipe, reconcile, until the feed holds every entry and the enforcer's queue is empty
        stack.emulator.state.feeds.replace(BENCH_FEED, []);
        const c0 = stack.firewallCalls.length;
        const session = profileDir ? new Session() : undefined;
        if (session) {
          session.connect();
          await session.post('Profiler.enable');
          await session.post('Profiler.start');
        }
        const rMeter = new CpuMeter(stack.server);
        const r0 = now();
        await client.workflow.execute(WORKFLOW_TYPES.reconcile, { workflowId: `bench-repair-${size}`, taskQueue, args: [{ target }] });
        const reconcileS = r2((now() - r0) / 1000);
        const enforcer = client.workflow.getHandle(enforcerWorkflowId(target, BENCH_FEED));
        for (;;) {
          const st = await enforcer.query(enforcerStatusQuery).catch(() => undefined);
          if (st && st.queued === 0 && stack.emulator.state.feeds.counts(BENCH_FEED).valid >= size) break;
          await sleep(250);
        }
        const repairS = r2((now() - r0) / 1000);
        const repair = rMeter.read();
        if (session) {
          const { profile } = await session.post('Profiler.stop');
          mkdirSync(profileDir!, { recursive: true });
          writeFileSync(path.join(profileDir!, `repair-${size}.cpuprofile`), JSON.stringify(profile));
          session.disconnect();
        }
        const ops: Record<string, number> = {};
        for (const c of stack.firewallCalls.slice(c0)) ops[c.op] = (ops[c.op] ?? 0) + 1;
        const point = {
          entries: size,
          seedS,
          listing: { listed, s: listS, perEntryMs: perEntryMs(listing, size), meter: listing },
          repair: { allBackS: repairS, reconcileWorkflowS: reconcileS, perEntryMs: perEntryMs(repair, size), firewallOps: ops, meter: repair },
        };
        points.push(point);
        ctx.log(`repair: ${JSON.stringify({ ...point, listing: { ...point.listing, meter: undefined }, repair: { ...point.repair, meter: undefined } })}`);
        const pe = point.repair.perEntryMs;
        const le = point.listing.perEntryMs;
        rows.push(
          { scenario: 'repair', lat: '50', metric: `${size} entries: listing s; CPU per entry ms ours (main) / server`, ours: `${listS}; ${le.oursAll} (${le.oursMain}) / ${le.server ?? '?'}` },
          { scenario: 'repair', lat: '50', metric: `${size} entries: full repair s; CPU per entry ms ours (main) / server`, ours: `${repairS}; ${pe.oursAll} (${pe.oursMain}) / ${pe.server ?? '?'}` },
        );
      }
    } finally {
      await stack.stop();
    }
    return { rows, record: { scenario: 'repair', startedAt, machine: machine(), params: { server: stack.server.kind, sizes, writeLatencyMs: 50, backend: 'threat-feed', quick: ctx.quick }, ours: { points }, baseline: {}, targets: {}, conditions: {} } };
  },
};
