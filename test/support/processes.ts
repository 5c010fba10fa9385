/**
 * Real processes for the reliability tests: a free loopback port, the production build (dist/), and the
 * standalone worker (`node dist/src/worker/main.js`) as a child process that a test can SIGKILL and
 * start again. Every child is tracked so that a failing test still leaves none behind (killAll in afterAll).
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

/** Builds dist/ with the production tsconfig (the worker process runs the compiled code, as in production). */
export async function buildDist(): Promise<void> {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await run(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`tsc -p tsconfig.build.json failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

export interface ChildHandle {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** Resolves with the exit code, or the signal name, once the process is gone. */
  readonly exited: Promise<number | string>;
  /** stdout and stderr lines seen so far (for diagnostics when a test fails). */
  readonly output: string[];
  /** Resolves when a line matching `re` appears; rejects if the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
  /** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
}

const children = new Set<ChildHandle>();

export function track(child: ChildProcess, name: string): ChildHandle {
  const output: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onChunk = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      output.push(line);
      if (output.length > 2000) output.shift();
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout?.on('data', onChunk);
  child.stderr?.on('data', onChunk);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    // A process that could not be spawned emits 'error' and never 'exit'.
    child.once('error', (err) => {
      output.push(`spawn error: ${err.message}`);
      resolve(`spawn error: ${err.message}`);
    });
  });
  const handle: ChildHandle = {
    child,
    pid: child.pid,
    exited,
    output,
    waitFor(re, timeoutMs = 60_000) {
      const seen = output.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; last output:\n${output.slice(-20).join('\n')}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code}) before printing ${re}; last output:\n${output.slice(-20).join('\n')}`));
        });
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    async stop(graceMs = 15_000) {
      const timer = setTimeout(() => void handle.kill('SIGKILL'), graceMs);
      try {
        return await handle.kill('SIGTERM');
      } finally {
        clearTimeout(timer);
      }
    },
  };
  children.add(handle);
  void exited.then(() => children.delete(handle));
  return handle;
}

export interface WorkerProcessEnv {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  firewallUrl: string;
  firewallToken: string;
  /** FORTIGATE_NAME: must equal the `target` of the blocks it serves. */
  target: string;
  dataDir: string;
  extra?: Record<string, string>;
}

/** Starts the production worker process and waits for its "worker started" log line. */
export async function startWorkerProcess(e: WorkerProcessEnv): Promise<ChildHandle> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    TEMPORAL_ADDRESS: e.temporalAddress,
    TEMPORAL_NAMESPACE: e.namespace,
    TEMPORAL_TASK_QUEUE: e.taskQueue,
    FORTIGATE_URL: e.firewallUrl,
    FORTIGATE_TOKEN: e.firewallToken,
    FORTIGATE_NAME: e.target,
    DATA_DIR: e.dataDir,
    LOG_LEVEL: 'info',
    ...e.extra,
  };
  mkdirSync(e.dataDir, { recursive: true });
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'worker', 'main.js')], { cwd: e.dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const handle = track(child, `worker process ${child.pid ?? '(not started)'}`);
  await handle.waitFor(/worker started/, 60_000);
  return handle;
}

/** SIGKILLs every child started through this module that is still alive (afterAll safety net). */
export async function killAll(): Promise<void> {
  await Promise.all([...children].map((c) => c.kill('SIGKILL')));
}
