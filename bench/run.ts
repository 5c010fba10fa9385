/**
 * `npm run bench` — every scenario, OURS (the real product) beside the BASELINE (the seed's scripts), with
 * the emulator's write latency at 50 ms and at 0. Prints one combined table and writes one JSON file per
 * scenario to bench/results/<scenario>.json.
 *
 *   node dist/bench/run.js [scenario…] [--quick] [--full] [--latency=50,0] [--backends=a,b] [--scale-max=N] [--server=dev|postgres] [--results=DIR]
 *
 * Scenarios: emulator, latency, burst, unblock, ingest, memory (the default set), rotation and scale (only
 * when named). See bench/README.md. `--quick` is a smoke version (small counts, short windows); its numbers
 * are not comparable with a full run. latency and burst run every backend (address-group, threat-feed,
 * banned-ip, dry-run; `--backends=` narrows) at 50 ms, plus the floor and the seed; `--full` or `--latency=`
 * runs the backends at the other latencies too. After the main table come the backends side by side (with
 * pass/fail columns) and the critical path hop by hop.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { burstScenario, rotationScenario } from './scenarios/burst';
import { emulatorScenario } from './scenarios/emulator';
import { ingestScenario } from './scenarios/ingest';
import { latencyScenario } from './scenarios/latency';
import { memoryScenario } from './scenarios/memory';
import { unblockScenario } from './scenarios/unblock';
import { Row, RunContext, Scenario } from './lib/scenario';
import { scaleScenario } from './scenarios/scale';
import { repairScenario } from './scenarios/repair';
import { removeWorkflowBundle, type ServerKind } from './lib/stack';
import { removeFloorBundle } from './floor/stack';
import { removeBenchTls } from './lib/tls';
import { BACKENDS, hopsTable, sideBySideTable } from './lib/backends';
import { ENFORCEMENT_KINDS, type EnforcementKind } from '../src/enforcement';
import { boxCpu, load1, machine, table } from './lib/stats';

/** The default set, in order (`npm run bench`). */
const DEFAULT: Scenario[] = [emulatorScenario, latencyScenario, burstScenario, unblockScenario, ingestScenario, memoryScenario];
/** Run only when named (long). */
const EXTRA: Scenario[] = [rotationScenario, scaleScenario, repairScenario];
const SCENARIOS = [...DEFAULT, ...EXTRA];
const DEFAULT_RESULTS_DIR = path.resolve(__dirname, '..', '..', 'bench', 'results');

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const full = args.includes('--full');
  const latArg = args.find((a) => a.startsWith('--latency='));
  const latencies = latArg ? latArg.slice('--latency='.length).split(',').map(Number) : [50, 0];
  const resultsArg = args.find((a) => a.startsWith('--results='));
  const RESULTS_DIR = resultsArg ? path.resolve(resultsArg.slice('--results='.length)) : DEFAULT_RESULTS_DIR;
  const backendsArg = args.find((a) => a.startsWith('--backends='));
  const backends = backendsArg ? (backendsArg.slice('--backends='.length).split(',') as EnforcementKind[]) : BACKENDS;
  const scaleArg = args.find((a) => a.startsWith('--scale-max='));
  const scaleMax = scaleArg ? Number(scaleArg.slice('--scale-max='.length)) : 100_000;
  const serverArg = args.find((a) => a.startsWith('--server='));
  const server = (serverArg ? serverArg.slice('--server='.length) : 'dev') as ServerKind;
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = [
    ...names.filter((n) => !SCENARIOS.some((s) => s.name === n)),
    ...backends.filter((b) => !ENFORCEMENT_KINDS.includes(b)).map((b) => `--backends: ${b}`),
    ...(Number.isInteger(scaleMax) && scaleMax >= 100 && scaleMax <= 250_000 ? [] : ['--scale-max: an integer from 100 to 250000']),
    ...(server === 'dev' || server === 'postgres' ? [] : ['--server: dev or postgres']),
    ...(serverArg && !names.includes(scaleScenario.name) && !names.includes(repairScenario.name) ? ['--server: only the scale and repair scenarios take it'] : []),
  ];
  if (unknown.length || args.includes('--help')) {
    if (unknown.length) console.error(`unknown or invalid: ${unknown.join(', ')}`);
    console.error(`usage: node dist/bench/run.js [${SCENARIOS.map((s) => s.name).join('|')} …] [--quick] [--full] [--latency=50,0] [--backends=${BACKENDS.join(',')}] [--scale-max=N] [--server=dev|postgres] [--results=DIR]`);
    for (const s of SCENARIOS) console.error(`  ${s.name.padEnd(8)} ${s.describe}${EXTRA.includes(s) ? ' (only when named)' : ''}`);
    process.exit(unknown.length ? 2 : 0);
  }
  // --full runs everything but scale (an hour): scale runs only when named.
  const chosen = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : full ? SCENARIOS.filter((s) => s !== scaleScenario && s !== repairScenario) : DEFAULT;
  const started = Date.now();
  const log = (msg: string) => process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);
  const ctx: RunContext = { quick, full, latencyGiven: latArg !== undefined, latencies, backends, backendsGiven: backendsArg !== undefined, scaleMax, server, log };
  mkdirSync(RESULTS_DIR, { recursive: true });

  const rows: Row[] = [];
  const failed: string[] = [];
  const loadBefore = load1();
  const box0 = boxCpu();
  for (const s of chosen) {
    log(`scenario ${s.name} …`);
    try {
      const out = await s.run(ctx);
      const file = path.join(RESULTS_DIR, `${s.name}.json`);
      writeFileSync(file, JSON.stringify(out.record, null, 2) + '\n');
      rows.push(...out.rows);
      log(`scenario ${s.name} done → ${path.relative(process.cwd(), file)}`);
    } catch (err) {
      failed.push(s.name);
      log(`scenario ${s.name} FAILED: ${(err as Error).stack ?? String(err)}`);
    }
  }

  removeWorkflowBundle();
  removeFloorBundle();
  removeBenchTls();
  const m = machine();
  const box1 = boxCpu();
  const busy = box0 && box1 ? Math.round(((box1.busy - box0.busy) / (box1.busy + box1.idle + box1.steal - box0.busy - box0.idle - box0.steal)) * 100) : undefined;
  console.log('');
  console.log(
    `ads-mitigator bench${quick ? ' (--quick: smoke sizes, not comparable)' : ''} — ${m.cpus} CPU (${m.cpuModel}), ${m.mem}, node ${m.node}; ` +
      `load avg 1 min ${loadBefore} → ${load1()}, box CPU busy ${busy ?? '?'}% (all processes, this run included); ${((Date.now() - started) / 1000).toFixed(0)} s; commit ${m.commit ?? '?'}`,
  );
  console.log('lat = emulator write latency (POST/PUT/DELETE) in ms; ours = the product, baseline = the seed\'s scripts\n');
  console.log(table(['scenario', 'lat', 'metric', 'ours', 'baseline', 'target'], rows.map((r) => [r.scenario, r.lat, r.metric, r.ours, r.baseline, r.target]), 3));
  const side = sideBySideTable();
  if (side) {
    console.log('\nBackends side by side (write latency 50 ms, HTTPS; latency at 20/s, burst of 5,000; ÷floor = burst time over the floor\'s; calls = reads + writes)\n');
    console.log(side);
  }
  const hops = hopsTable();
  if (hops) {
    console.log('\nCritical path hop by hop, p50 / p95 ms (sample of 200 blocks per run; see bench/lib/hops.ts)\n');
    console.log(hops);
  }
  if (failed.length) {
    console.log(`\nFAILED: ${failed.join(', ')} (see the log above)`);
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
