/**
 * emulator: the FortiOS emulator's own throughput (bench/emulator-bench.ts: 16 loops of GET addrgrp for 3 s,
 * no latency injected). A calibration: the emulator must be far faster than what the scenarios ask of it.
 */
import { benchEmulator } from '../emulator-bench';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { machine } from '../lib/stats';

export const emulatorScenario: Scenario = {
  name: 'emulator',
  describe: 'calibration: the emulator alone (GET addrgrp, 16 loops, no injected latency)',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const startedAt = new Date().toISOString();
    const params = { durationMs: ctx.quick ? 1000 : 3000, concurrency: 16 };
    ctx.log(`emulator: ${params.concurrency} loops of GET addrgrp for ${params.durationMs / 1000} s`);
    const meter = new CpuMeter();
    const r = await benchEmulator(params);
    const rows: Row[] = [
      { scenario: 'emulator', lat: '0', metric: 'GET addrgrp req/s (p99 ms)', ours: `${r.rps} (${r.p99Ms})`, baseline: 'same emulator' },
    ];
    return {
      record: { scenario: 'emulator', startedAt, machine: machine(), params, ours: { ...r }, baseline: {}, targets: {}, conditions: { run: meter.read() } },
      rows,
    };
  },
};
