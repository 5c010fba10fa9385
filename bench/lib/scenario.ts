/** What every scenario returns: its JSON record (bench/results/<scenario>.json) and its rows of the table. */
import type { EnforcementKind } from '../../src/enforcement';
import { sdkWarnings, sdkWarningSamples, type ServerKind } from './stack';
import { boxCpu, load1, r2, threadCpu } from './stats';

export interface RunContext {
  quick: boolean;
  /** --full: every case at every latency (OURS bursts at 0 ms too), and the long extra scenarios. */
  full: boolean;
  /** --latency= was given: run exactly those latencies everywhere. */
  latencyGiven: boolean;
  /** Emulator write latencies to run (ms): [50, 0] unless narrowed. */
  latencies: number[];
  /** Backends the latency and burst scenarios run side by side (--backends=; default all of BACKENDS). */
  backends: EnforcementKind[];
  /** --backends= was given: the burst runs exactly those (by default it leaves dry-run out: see burst.ts). */
  backendsGiven: boolean;
  /** `scale`: the largest number of active blocks (--scale-max=; default 100,000). */
  scaleMax: number;
  /** `scale`: the Temporal server it runs on (--server=; default the dev server). */
  server: ServerKind;
  log: (msg: string) => void;
}

/** The sizes `scale` and `repair` stop at: the standard ones below --scale-max, then --scale-max (1,000 at most with --quick). */
export function sizesUpTo(ctx: RunContext, standard: readonly number[]): { max: number; sizes: number[] } {
  const max = ctx.quick ? Math.min(ctx.scaleMax, 1000) : ctx.scaleMax;
  return { max, sizes: [...standard.filter((c) => c < max), max] };
}

/** One line of the combined table. */
export interface Row {
  scenario: string;
  /** Emulator write latency (ms) or '-' when it does not apply. */
  lat: string;
  metric: string;
  ours?: string | number;
  baseline?: string | number;
  target?: string;
}

export interface ScenarioRecord {
  scenario: string;
  startedAt: string;
  machine: Record<string, unknown>;
  params: Record<string, unknown>;
  ours: Record<string, unknown>;
  baseline: Record<string, unknown>;
  targets: Record<string, unknown>;
  /** Load average and CPU use around the measured phases: the conditions the numbers were taken under. */
  conditions: Record<string, unknown>;
}

export interface ScenarioOutput {
  record: ScenarioRecord;
  rows: Row[];
}

export interface Scenario {
  name: string;
  describe: string;
  run(ctx: RunContext): Promise<ScenarioOutput>;
}

/** CPU seconds of this process and of the Temporal server over a phase, and the load average around it. */
export class CpuMeter {
  private readonly startSelf = process.cpuUsage();
  private readonly startServer: number | undefined;
  private readonly load1Before = load1();
  private readonly t0 = Date.now();

  /** `server`: the stack's BenchServer (PostgreSQL's processes count with it). */
  constructor(private readonly server?: { cpuS(): number | undefined }) {
    this.startServer = server?.cpuS();
  }

  private readonly warningsBefore = { ...sdkWarnings };
  private readonly threadsBefore = threadCpu();
  private readonly boxBefore = boxCpu();

  read(): {
    wallS: number;
    benchProcessCpuS: number;
    benchThreadsCpuS: Record<string, number>;
    temporalServerCpuS?: number;
    load1Before: number;
    load1After: number;
    /** The whole box over the phase: share of CPU time busy (all processes, ours included) and stolen by the hypervisor. */
    boxBusyPct?: number;
    boxStealPct?: number;
    sdkWarnings?: Record<string, number>;
    /** Up to three full lines of each warning that is not the usual benign "Task not found when completing". */
    sdkWarningSamples?: Record<string, string[]>;
  } {
    const box = boxCpu();
    const b0 = this.boxBefore;
    const total = box && b0 ? box.busy + box.idle + box.steal - (b0.busy + b0.idle + b0.steal) : 0;
    const self = process.cpuUsage(this.startSelf);
    const threads = threadCpu();
    const benchThreadsCpuS = Object.fromEntries(Object.entries(threads).map(([k, v]) => [k, r2(v - (this.threadsBefore[k] ?? 0))]));
    const warnings = Object.fromEntries(
      Object.entries(sdkWarnings)
        .map(([k, v]) => [k, v - (this.warningsBefore[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    );
    const server = this.server?.cpuS();
    return {
      wallS: r2((Date.now() - this.t0) / 1000),
      benchProcessCpuS: r2((self.user + self.system) / 1e6),
      benchThreadsCpuS,
      temporalServerCpuS: server !== undefined && this.startServer !== undefined ? r2(server - this.startServer) : undefined,
      load1Before: this.load1Before,
      load1After: load1(),
      ...(box && b0 && total > 0
        ? { boxBusyPct: Math.round(((box.busy - b0.busy) / total) * 100), boxStealPct: Math.round(((box.steal - b0.steal) / total) * 100) }
        : {}),
      ...(Object.keys(warnings).length ? { sdkWarnings: warnings } : {}),
      ...(Object.keys(warnings).some((k) => k !== 'Task not found when completing')
        ? { sdkWarningSamples: Object.fromEntries(Object.keys(warnings).filter((k) => k !== 'Task not found when completing').map((k) => [k, sdkWarningSamples[k] ?? []])) }
        : {}),
    };
  }
}
