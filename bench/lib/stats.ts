/** Percentiles, machine facts and the plain-text table of the benchmarks. */
import { execSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

/** Epoch milliseconds with sub-millisecond resolution (the emulator hook and the load share one clock). */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Dist {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function dist(values: number[]): Dist {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!);
  return {
    n: s.length,
    p50: r1(q(0.5)),
    p95: r1(q(0.95)),
    p99: r1(q(0.99)),
    max: r1(s.length ? s[s.length - 1]! : NaN),
    mean: r1(s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN),
  };
}

export function r1(x: number): number {
  return Math.round(x * 10) / 10;
}
export function r2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The commit the product was measured at (and whether the tree had local changes). */
export function revision(): string | undefined {
  try {
    const cwd = path.resolve(__dirname, '..', '..', '..');
    const head = execSync('git rev-parse --short HEAD', { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '';
    return dirty ? `${head}+local changes` : head;
  } catch {
    return undefined;
  }
}

export function machine() {
  return {
    commit: revision(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    mem: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** 1-minute load average, read before and after each measured phase (other work on the box shows here). */
export function load1(): number {
  return r2(os.loadavg()[0]!);
}

/** Jiffies of the whole box from /proc/stat: busy (user+nice+system+irq+softirq), idle (+iowait), steal. */
export function boxCpu(): { busy: number; idle: number; steal: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
    return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal: steal ?? 0 };
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in MiB, from /proc (Linux). */
export function vmRssMiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user+system) a process has used, from /proc/<pid>/stat; with `withReaped`, plus its children it
 * has waited for (cutime + cstime: PostgreSQL's ended backends). Undefined when it is gone.
 */
export function cpuSeconds(pid: number | undefined, withReaped = false): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]) + (withReaped ? Number(f[13]) + Number(f[14]) : 0); // utime, stime (cutime, cstime)
    return r2(ticks / 100);
  } catch {
    return undefined;
  }
}

/** Live children of `pid` (PostgreSQL's backends and helpers). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Proportional set size of a process, MiB (its private memory plus its share of what it maps with others):
 * summed over PostgreSQL's processes it counts the shared buffers once, where RSS would count them per backend.
 */
export function pssMiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of a Temporal service: the server process, plus PostgreSQL's when it has one (the postmaster,
 * the backends it has reaped, the live ones: it forks one per connection).
 */
export function serviceCpuS(serverPid: number, postgresPid?: number): number {
  const pg = postgresPid ? (cpuSeconds(postgresPid, true) ?? 0) + childrenOf(postgresPid).reduce((a, p) => a + (cpuSeconds(p) ?? 0), 0) : 0;
  return (cpuSeconds(serverPid) ?? 0) + pg;
}

/** Memory of a Temporal service, MiB: the server's RSS plus the PSS of every PostgreSQL process. */
export function serviceMemMiB(serverPid: number, postgresPid?: number): number | undefined {
  const server = vmRssMiB(serverPid);
  if (server === undefined) return undefined;
  const pg = postgresPid ? [postgresPid, ...childrenOf(postgresPid)].reduce((a, p) => a + pssMiB(p), 0) : 0;
  return Math.round(server + pg);
}

/** Bytes of the files in `dir` (and, `recursive`, below it), MiB. */
export function filesMiB(dir: string, recursive = false): number {
  let bytes = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      try {
        if (e.isDirectory()) {
          if (recursive) walk(path.join(d, e.name));
        } else if (e.isFile()) bytes += statSync(path.join(d, e.name)).size;
      } catch {
        // gone meanwhile
      }
    }
  };
  try {
    walk(dir);
  } catch {
    // gone
  }
  return mib(bytes);
}

/**
 * CPU seconds of this process's threads, grouped: `main` (the event loop: API, activities, the emulator,
 * the load generator), then by thread name (`tokio-runtime-w` = the SDK's Rust core talking gRPC to the
 * server, `node` = the workflow worker threads plus V8/libuv helpers).
 */
export function threadCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const name = tid === String(process.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/**
 * The event loop's delay while `fn` runs (worker, API and emulator share one loop in the bench): p50/p99/max
 * in ms. A hop that grows while this stays small is waiting on the server, not on our process.
 */
export async function loopDelay<T>(fn: () => Promise<T>): Promise<{ value: T; delayMs: { p50: number; p99: number; max: number } }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    const value = await fn();
    return { value, delayMs: { p50: r1(h.percentile(50) / 1e6), p99: r1(h.percentile(99) / 1e6), max: r1(h.max / 1e6) } };
  } finally {
    h.disable();
  }
}

export function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

/** A plain padded text table: the first `leftColumns` columns left-aligned, the others right-aligned. */
export function table(header: string[], rows: (string | number | undefined)[][], leftColumns = 1): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === undefined || (typeof c === 'number' && Number.isNaN(c)) ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
