/**
 * The production topology on one machine, as separate processes: a private PostgreSQL cluster, the real
 * Temporal server on it (schemas set up, namespace and search attributes registered), the FortiOS
 * emulator when no firewall url is configured, N standalone workers (`dist/src/worker/main.js`) and M API
 * replicas (`dist/src/api/main.js`, replica k on API_PORT + k). Used by scripts/production-stack, the
 * production scenario test and the production bench; each process can be killed or restarted on its own.
 * Children run the compiled code in dist/ (`npm run build` first).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { freePort } from '../free-port';
import { newSecret } from '../secret';
import { projectRoot } from '../temporal/binaries';
import { startDevServer } from '../temporal/dev-server';
import { Child, startChild, until } from './child';
import { RunningPostgres, startPostgres } from './postgres';
import { ensureTemporalServer, TemporalServerBinaries } from './temporal-build';
import { bootstrapNamespace, derivedPorts, RunningTemporalServer, ServerPorts, setupSchemas, startTemporalServer } from './temporal-server';

export interface ProductionStackOptions {
  /** Loaded from the same environment that is handed to the children (loadConfig(env)). */
  config: Config;
  /** The environment our children start from (the launcher's own, or a test's). */
  env: NodeJS.ProcessEnv;
  workers: number;
  apis: number;
  /** Default: derivedPorts(TEMPORAL_PORT). Tests pass free ports. */
  ports?: ServerPorts & { postgres: number };
  /** Default: API_PORT + k (free ports when API_PORT is 0). */
  apiPorts?: number[];
  /** Fixed when the cluster is created; default 4 (deploy/temporal/config.yaml). */
  historyShards?: number;
  /**
   * 'postgres' (default): the real server on PostgreSQL. 'dev': the bundled dev server on SQLite with the
   * same worker and API processes (the bench compares the two).
   */
  server?: 'postgres' | 'dev';
  log?: (msg: string) => void;
}

export interface ApiReplica {
  url: string;
  port: number;
  child: Child;
}

export interface ProductionStack {
  /** Undefined with server 'dev'. */
  bins?: TemporalServerBinaries;
  postgres?: RunningPostgres;
  temporal: Pick<RunningTemporalServer, 'address' | 'child'> & Partial<RunningTemporalServer>;
  /** The firewall the workers and APIs use (the emulator's url when it was started here). */
  firewallUrl: string;
  emulator?: Child;
  workers: Child[];
  apis: ApiReplica[];
  schemaSteps: string[];
  dir: string;
  /** Starts worker `i` again (after a kill); resolves when it polls. */
  startWorker(i: number): Promise<Child>;
  /** Starts API replica `i` again on its port; resolves when /readyz says ready. */
  startApi(i: number): Promise<ApiReplica>;
  /** Stops everything, in reverse order of start. */
  stop(): Promise<void>;
}

const DIST = () => path.join(projectRoot(), 'dist', 'src');

export async function startProductionStack(o: ProductionStackOptions): Promise<ProductionStack> {
  const log = o.log ?? (() => {});
  const { config } = o;
  const dir = path.join(config.dataDir, 'production');
  const logs = path.join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const ports = o.ports ?? derivedPorts(config.temporal.port);
  const started: { stop(): Promise<unknown> }[] = [];
  const stopAll = async () => {
    for (const s of started.splice(0).reverse()) await s.stop().catch((err) => log(`error while stopping: ${(err as Error).message}`));
  };
  if (!existsSync(path.join(DIST(), 'worker', 'main.js')) || !existsSync(path.join(DIST(), 'api', 'main.js'))) {
    throw new Error('dist/ is missing: run "npm run build" first');
  }
  if (config.targets.length > 1 && config.targets.some((t) => !t.url)) throw new Error('TARGETS_FILE: every target needs its url here (the emulator stands in for one FORTIGATE_URL only)');

  try {
    const service = await startTemporalService({ server: o.server, dir, namespace: config.temporal.namespace, ports, historyShards: o.historyShards, log });
    started.push(service);
    const { bins, postgres, temporal, schemaSteps } = service;

    // ---- the firewall: the configured one, or the bundled emulator as its own process
    const target = config.targets[0]!;
    let firewallUrl = target.url;
    let emulator: Child | undefined;
    if (!firewallUrl) {
      const port = config.emulator.port || (await freePort());
      emulator = startChild({
        name: 'fortios-emulator',
        command: process.execPath,
        args: [path.join(DIST(), 'fortios', 'emulator', 'main.js')],
        env: {
          PATH: process.env.PATH,
          DATA_DIR: dir,
          FORTIOS_EMULATOR_PORT: String(port),
          FORTIOS_EMULATOR_TOKEN: config.emulator.token,
          FORTIOS_EMULATOR_GROUP_LIMIT: String(config.emulator.groupLimit),
          FORTIOS_EMULATOR_VERSION: config.emulator.version,
          FORTIGATE_GROUP: target.groups.ipv4.join(','),
          FORTIGATE_GROUP6: target.groups.ipv6.join(','),
          ...(o.env.FORTIOS_EMULATOR_FAULTS ? { FORTIOS_EMULATOR_FAULTS: o.env.FORTIOS_EMULATOR_FAULTS } : {}),
        },
        logFile: path.join(logs, 'fortios-emulator.log'),
      });
      started.push(emulator);
      await emulator.waitForLine(/listening on/, 30_000);
      firewallUrl = `http://127.0.0.1:${port}`;
      log(`FortiOS emulator on ${firewallUrl} (no FORTIGATE_URL configured)`);
    }

    // ---- our processes
    const childEnv: NodeJS.ProcessEnv = {
      ...o.env,
      NODE_ENV: o.env.NODE_ENV ?? 'production',
      DATA_DIR: config.dataDir,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: config.temporal.namespace,
      ...(emulator ? { FORTIGATE_URL: firewallUrl, FORTIGATE_TOKEN: config.emulator.token, FORTIGATE_TOKEN_FILE: '' } : {}),
    };
    const workers: Child[] = [];
    const startWorker = async (i: number) => {
      const child = startChild({
        name: `worker-${i + 1}`,
        command: process.execPath,
        args: [path.join(DIST(), 'worker', 'main.js')],
        env: childEnv,
        cwd: projectRoot(),
        logFile: path.join(logs, `worker-${i + 1}.log`),
      });
      const from = child.logSize();
      workers[i] = child;
      await child.waitForLine(/worker started/, 90_000, from);
      return child;
    };
    const apiPorts = o.apiPorts ?? (config.api.port === 0 ? await Promise.all(Array.from({ length: o.apis }, () => freePort())) : Array.from({ length: o.apis }, (_, k) => config.api.port + k));
    const apis: ApiReplica[] = [];
    const startApi = async (i: number) => {
      const port = apiPorts[i]!;
      const child = startChild({
        name: `api-${i + 1}`,
        command: process.execPath,
        args: [path.join(DIST(), 'api', 'main.js')],
        env: { ...childEnv, API_PORT: String(port) },
        cwd: projectRoot(),
        logFile: path.join(logs, `api-${i + 1}.log`),
      });
      const host = config.api.host === '0.0.0.0' || config.api.host === '::' ? '127.0.0.1' : config.api.host;
      const replica = { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port, child };
      apis[i] = replica;
      await until(`API replica ${i + 1} ready on ${replica.url}`, async () => (await fetch(`${replica.url}/readyz`)).status === 200, 90_000, child);
      return replica;
    };
    // Workers and APIs start in parallel (each costs a second or two of CPU for its bundle or its imports).
    await Promise.all([...Array.from({ length: o.workers }, (_, i) => startWorker(i)), ...Array.from({ length: o.apis }, (_, i) => startApi(i))]);
    started.push({ stop: () => Promise.all(workers.map((w) => w.stop('SIGTERM', 20_000))) });
    started.push({ stop: () => Promise.all(apis.map((a) => a.child.stop('SIGTERM', 10_000))) });
    log(`${o.workers} worker(s) and ${o.apis} API replica(s) up`);

    return { bins, postgres, temporal, firewallUrl: firewallUrl!, emulator, workers, apis, schemaSteps, dir, startWorker, startApi, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export interface TemporalServiceOptions {
  /** 'postgres' (default): the real server on a private PostgreSQL cluster; 'dev': the bundled dev server on SQLite. */
  server?: 'postgres' | 'dev';
  /** Its files: DIR/postgresql (the cluster) and DIR/logs, or the dev server's SQLite file in DIR. */
  dir: string;
  namespace: string;
  ports: ServerPorts & { postgres: number };
  historyShards?: number;
  log?: (msg: string) => void;
}

export interface TemporalService {
  bins?: TemporalServerBinaries;
  postgres?: RunningPostgres;
  temporal: ProductionStack['temporal'];
  schemaSteps: string[];
  /** Where the server keeps its data (the PostgreSQL cluster, or the directory of the SQLite file). */
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * The Temporal service alone, ready for workers: PostgreSQL, the schemas, the server, the namespace and our
 * search attributes (or the dev server). The production stack starts its processes on it; the bench runs
 * its in-process worker on it to compare the two stores at scale.
 */
export async function startTemporalService(o: TemporalServiceOptions): Promise<TemporalService> {
  const log = o.log ?? (() => {});
  const logs = path.join(o.dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const started: { stop(): Promise<unknown> }[] = [];
  const stop = async () => {
    for (const s of started.splice(0).reverse()) await s.stop().catch((err) => log(`error while stopping: ${(err as Error).message}`));
  };
  try {
    if (o.server === 'dev') {
      const dev = await startDevServer({ dataDir: o.dir, port: o.ports.frontend, uiPort: 0, ui: false, namespace: o.namespace });
      started.push(dev);
      const devChild = { name: 'temporal-dev-server', pid: dev.process.pid ?? -1 } as Child;
      log(`Temporal dev server (SQLite ${dev.dbFile}) serving on ${dev.address}`);
      return { temporal: { address: dev.address, child: () => devChild }, schemaSteps: [], dataDir: o.dir, stop };
    }
    const bins = await ensureTemporalServer({ log });

    // ---- PostgreSQL and the schemas
    const password = secretFile(path.join(o.dir, 'postgres-password'));
    const sql = { host: '127.0.0.1', port: o.ports.postgres, user: 'temporal', password };
    const pgDir = path.join(o.dir, 'postgresql');
    const postgres = await startPostgres({ dir: pgDir, port: o.ports.postgres, user: sql.user, password, logFile: path.join(logs, 'postgresql.log') });
    started.push(postgres);
    log(`PostgreSQL ${postgres.version} on 127.0.0.1:${postgres.port} (runs as ${postgres.osUser}; data ${pgDir})`);
    const schemaSteps = await setupSchemas(bins, sql, log);

    // ---- Temporal server, namespace, search attributes
    const server = await startTemporalServer({
      bins,
      configFile: path.join(projectRoot(), 'deploy', 'temporal', 'config.yaml'),
      dynamicConfigFile: path.join(projectRoot(), 'deploy', 'dynamicconfig', 'production.yaml'),
      ports: o.ports,
      sql,
      logFile: path.join(logs, 'temporal-server.log'),
      historyShards: o.historyShards,
    });
    started.push(server);
    log(`Temporal server ${bins.version} serving on ${server.address}`);
    await bootstrapNamespace(server.address, o.namespace);
    log(`namespace ${o.namespace} and search attributes registered`);
    return { bins, postgres, temporal: server, schemaSteps, dataDir: pgDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A generated secret kept in a 0600 file (created on first start, the same on every later one). */
function secretFile(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = newSecret();
  writeFileSync(file, value + '\n', { mode: 0o600 });
  return value;
}
