/**
 * One long-running process of the production stack (PostgreSQL, the Temporal server, a worker, an API
 * replica, the emulator): its output goes straight into a log file (the child writes it itself, so nothing
 * is lost when we are busy), it can be stopped gracefully, SIGKILLed, and waited on. Readiness is asked of
 * the process's own interface by the caller (a port, /readyz), or of a line in its log (waitForLine).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface ChildSpec {
  /** Short name for logs and errors, e.g. "worker-1". */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
  /** Run as this user and group (PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code or signal name once the process is gone. */
  readonly exited: Promise<number | string>;
  readonly running: boolean;
  /** Sends `signal` (default SIGTERM), escalates to SIGKILL after `graceMs`, resolves when it is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
  /** SIGKILL, no grace (the crash the scenario test simulates). */
  kill(): Promise<number | string>;
  /** The log's last `n` lines (for error messages). */
  tail(n?: number): string;
  /** Resolves when a line matching `re` is in the log (written after `fromByte`); rejects on exit or timeout. */
  waitForLine(re: RegExp, timeoutMs: number, fromByte?: number): Promise<void>;
  /** Current size of the log (pass to waitForLine to ignore older lines). */
  logSize(): number;
}

/** Children started here and still running, in start order (the launcher's Ctrl-C during start-up). */
const live: Child[] = [];

/** Stops every child still running, newest first (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAllChildren(graceMs = 15_000): Promise<void> {
  for (const c of [...live].reverse()) await c.stop('SIGTERM', graceMs);
}

/** SIGKILLs every child still running (synchronous: for process.on('exit')). */
export function killAllChildren(): void {
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function startChild(spec: ChildSpec): Child {
  mkdirSync(path.dirname(spec.logFile), { recursive: true });
  const fd = openSync(spec.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', fd, fd],
      uid: spec.uid,
      gid: spec.gid,
      // Own process group: a terminal's Ctrl-C reaches only the launcher, which stops children in order.
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  let spawnError: string | undefined;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (err) => {
      spawnError = err.message;
      resolve(`spawn error: ${err.message}`);
    });
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
    const i = live.indexOf(handle);
    if (i >= 0) live.splice(i, 1);
  });

  const tail = (n = 20): string => {
    try {
      const text = readFileSync(spec.logFile, 'utf8');
      // Server lines carry whole stack traces: the start of each is what tells.
      return text.split('\n').slice(-n - 1).map((l) => (l.length > 400 ? `${l.slice(0, 400)} …` : l)).join('\n');
    } catch {
      return spawnError ?? '';
    }
  };
  const signal = (s: NodeJS.Signals) => {
    if (!gone && child.pid !== undefined) {
      try {
        process.kill(child.pid, s);
      } catch {
        // already gone
      }
    }
  };

  const handle: Child = {
    name: spec.name,
    pid: child.pid ?? -1,
    logFile: spec.logFile,
    exited,
    get running() {
      return !gone;
    },
    async stop(s = 'SIGTERM', graceMs = 20_000) {
      if (gone) return exited;
      signal(s);
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      signal('SIGKILL');
      return exited;
    },
    tail,
    logSize: () => {
      try {
        return statSync(spec.logFile).size;
      } catch {
        return 0;
      }
    },
    async waitForLine(re, timeoutMs, fromByte = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let text = '';
        try {
          text = readFileSync(spec.logFile, 'utf8').slice(fromByte);
        } catch {
          // not written yet
        }
        if (re.test(text)) return;
        if (gone) throw new Error(`${spec.name} exited (${await exited}) before logging ${re}; last lines of ${spec.logFile}:\n${tail()}`);
        if (Date.now() > deadline) throw new Error(`${spec.name}: no line matching ${re} within ${timeoutMs} ms; last lines of ${spec.logFile}:\n${tail()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
  live.push(handle);
  return handle;
}

/** Polls `probe` until it returns true (errors count as "not yet"), at most `timeoutMs`. */
export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    if (child && !child.running) throw new Error(`${child.name} exited (${await child.exited}) while waiting for ${what}; last lines of ${child.logFile}:\n${child.tail()}`);
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s${why}${child ? `; last lines of ${child.logFile}:\n${child.tail()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
