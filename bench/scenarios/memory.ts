/**
 * memory: RSS with 5,000 active blocks (OURS). The worker and the API run in the bench process (as
 * `npm start` runs them in one process), so its RSS is theirs plus the emulator's tables and the load
 * generator (both small next to 5,000 cached workflows); the Temporal dev server is a child process whose
 * VmRSS is read from /proc. Sampled right after a 5,000-IP burst has been enforced: when `burst` ran in the
 * same invocation its sample is reused (firewall latency does not change what is held), otherwise a burst
 * at write latency 0 runs here.
 */
import { attackerIps } from '../lib/load';
import { Row, RunContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { machine } from '../lib/stats';
import { lastBurstMemory, MemorySample, oursBurst } from './burst';

export const memoryScenario: Scenario = {
  name: 'memory',
  describe: 'RSS of worker+API (bench process) and of the Temporal server at 5,000 active blocks',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const count = ctx.quick ? 300 : 5000;
    const startedAt = new Date().toISOString();
    const conditions: Record<string, unknown> = {};
    let sample: MemorySample | undefined = lastBurstMemory?.activeBlocks === count ? lastBurstMemory : undefined;
    const reused = sample !== undefined;
    let burst: Record<string, unknown> | undefined;
    if (!sample) {
      ctx.log(`memory: ours, burst of ${count} IPs at write latency 0`);
      burst = await oursBurst(ctx, attackerIps(count, 120), 0, 6000, 50, 8, conditions, 'burst0ms');
      sample = burst.memory as MemorySample;
    } else {
      ctx.log(`memory: reusing the sample of the burst scenario (write latency ${sample.writeLatencyMs} ms)`);
    }
    const perThousand = (a: number, b: number | undefined) => (b === undefined ? undefined : Math.round(((a - b) / count) * 1000));
    const ours = {
      ...sample,
      source: reused ? `burst scenario (write latency ${sample.writeLatencyMs} ms), same invocation` : 'own burst (write latency 0)',
      benchProcessMiBPer1000Blocks: perThousand(sample.benchProcessRssMiB, sample.idle.benchProcessRssMiB),
      temporalServerMiBPer1000Blocks: sample.temporalServerRssMiB === undefined ? undefined : perThousand(sample.temporalServerRssMiB, sample.idle.temporalServerRssMiB),
      burstAllEnforcedS: burst?.allEnforcedS,
    };
    const rows: Row[] = [
      { scenario: 'memory', lat: String(sample.writeLatencyMs ?? 0), metric: `worker+API process RSS, idle → ${count} blocks, MiB`, ours: `${sample.idle.benchProcessRssMiB} → ${sample.benchProcessRssMiB}`, baseline: 'n/a' },
      { scenario: 'memory', lat: String(sample.writeLatencyMs ?? 0), metric: `Temporal dev server RSS, idle → ${count} blocks, MiB`, ours: `${sample.idle.temporalServerRssMiB} → ${sample.temporalServerRssMiB}`, baseline: 'n/a' },
    ];
    return {
      record: {
        scenario: 'memory',
        startedAt,
        machine: machine(),
        params: { activeBlocks: count, writeLatencyMs: sample.writeLatencyMs ?? 0, capacity: 6000, quick: ctx.quick },
        ours,
        baseline: { note: 'n/a: the seed is a short-lived process per event plus an SQLite file' },
        targets: {},
        conditions,
      },
      rows,
    };
  },
};
