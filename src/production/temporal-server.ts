/**
 * The real Temporal server (built by temporal-build.ts) on PostgreSQL: the schema steps with
 * temporal-sql-tool (create the two databases, set up versioning, update to the latest schema the binary
 * embeds: idempotent), the server process started with deploy/temporal/config.yaml and
 * deploy/dynamicconfig/production.yaml (the files compose uses), its readiness, and the namespace with our
 * search attributes. A restart keeps every port, so clients reconnect to the same address.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { msToTs } from '@temporalio/common/lib/time';
import { registerSearchAttributes } from '../temporal/search-attributes';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/messages';
import { Child, startChild, until } from './child';
import type { TemporalServerBinaries } from './temporal-build';

const run = promisify(execFile);

/** Every port the server listens on (all four services run in one process). */
export interface ServerPorts {
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  frontendMembership: number;
  historyMembership: number;
  matchingMembership: number;
  workerMembership: number;
  /** Prometheus /metrics of the server. */
  metrics: number;
}

/**
 * Free loopback ports for every server port and PostgreSQL (tests, bench). Below 32768 on purpose: the
 * PostgreSQL schema keeps a membership port as a signed smallint (cluster_membership.rpc_port), so a
 * server whose membership port is in Linux's ephemeral range (32768+) dies at start with
 * "value … is out of range for type smallint".
 */
export async function freeServerPorts(): Promise<ServerPorts & { postgres: number }> {
  const taken = new Set<number>();
  const pick = async (): Promise<number> => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      if (taken.has(port) || !(await bindable(port))) continue;
      taken.add(port);
      return port;
    }
    throw new Error('no free port found between 20000 and 32000');
  };
  return {
    frontend: await pick(), frontendHttp: await pick(), history: await pick(), matching: await pick(), worker: await pick(),
    frontendMembership: await pick(), historyMembership: await pick(), matchingMembership: await pick(), workerMembership: await pick(),
    metrics: await pick(), postgres: await pick(),
  };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * The launcher's fixed layout from one base (TEMPORAL_PORT, default 7233): the frontend on the base, the
 * other services right above it like the stock 7233/7234/7235/7239, their membership ports at +20…+26,
 * the server's metrics at +30 and our PostgreSQL at +3.
 */
export function derivedPorts(base: number): ServerPorts & { postgres: number } {
  return {
    frontend: base,
    history: base + 1,
    matching: base + 2,
    postgres: base + 3,
    worker: base + 6,
    frontendHttp: base + 10,
    frontendMembership: base + 20,
    historyMembership: base + 21,
    matchingMembership: base + 22,
    workerMembership: base + 26,
    metrics: base + 30,
  };
}

export interface SqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

export const PERSISTENCE_DB = 'temporal';
export const VISIBILITY_DB = 'temporal_visibility';

/**
 * The schema steps for both databases (what compose's `temporal-schema` service runs):
 *   temporal-sql-tool --plugin postgres12 --db <db> create-database
 *   temporal-sql-tool --plugin postgres12 --db <db> setup-schema -v 0.0   (the versioning tables)
 *   temporal-sql-tool --plugin postgres12 --db <db> update-schema --schema-name postgresql/v12/<temporal|visibility>
 * All three are idempotent on v1.32.2 (create-database exits 0 on an existing database, setup-schema skips
 * a versioned one), and update-schema brings an existing database up to the binary's embedded schema
 * after an upgrade. Returns the commands run (passwords by environment, not in them).
 */
export async function setupSchemas(bins: TemporalServerBinaries, sql: SqlTarget, log: (msg: string) => void = () => {}): Promise<string[]> {
  const steps: string[] = [];
  for (const [db, schema] of [[PERSISTENCE_DB, 'temporal'], [VISIBILITY_DB, 'visibility']] as const) {
    const tool = async (...args: string[]) => {
      steps.push(`temporal-sql-tool --plugin postgres12 --ep ${sql.host} -p ${sql.port} -u ${sql.user} --db ${db} ${args.join(' ')}`);
      try {
        const { stdout, stderr } = await run(bins.sqlTool, ['--plugin', 'postgres12', '--ep', sql.host, '-p', String(sql.port), '-u', sql.user, '--db', db, ...args], {
          // The password goes by environment, never on a command line (ps shows those).
          env: { PATH: process.env.PATH, SQL_PASSWORD: sql.password },
          maxBuffer: 16 << 20,
        });
        return stdout + stderr;
      } catch (err) {
        const e = err as Error & { stdout?: string; stderr?: string };
        const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.replaceAll(sql.password, '[redacted]');
        throw Object.assign(new Error(`temporal-sql-tool ${args[0]} on ${db} failed: ${out.trim().split('\n').slice(-5).join('\n')}`), { output: out });
      }
    };
    await tool('create-database');
    await tool('setup-schema', '-v', '0.0');
    const out = await tool('update-schema', '--schema-name', `postgresql/v12/${schema}`);
    log(`schema ${db}: up to date (postgresql/v12/${schema}${/Schema updated from/.test(out) ? ', updated now' : ''})`);
  }
  return steps;
}

export interface TemporalServerOptions {
  bins: TemporalServerBinaries;
  /** deploy/temporal/config.yaml */
  configFile: string;
  /** deploy/dynamicconfig/production.yaml */
  dynamicConfigFile: string;
  ports: ServerPorts;
  sql: SqlTarget;
  logFile: string;
  /** Fixed at the cluster's creation. Default: the config file's default (4). */
  historyShards?: number;
  logLevel?: string;
}

export interface RunningTemporalServer {
  address: string;
  metricsUrl: string;
  child(): Child;
  /** SIGTERM (graceful), then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /**
   * Stops it (gracefully, or SIGKILL: a crash) and starts it again on the same ports; resolves when it
   * serves again, with the moment it was gone and the moment it served again.
   */
  restart(how?: 'graceful' | 'kill'): Promise<{ downAt: number; servingAt: number }>;
}

export async function startTemporalServer(o: TemporalServerOptions): Promise<RunningTemporalServer> {
  const address = `127.0.0.1:${o.ports.frontend}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: o.logLevel ?? 'warn',
    POSTGRES_SEEDS: o.sql.host,
    DB_PORT: String(o.sql.port),
    POSTGRES_USER: o.sql.user,
    POSTGRES_PWD: o.sql.password,
    BIND_ON_IP: '127.0.0.1',
    FRONTEND_GRPC_PORT: String(o.ports.frontend),
    FRONTEND_HTTP_PORT: String(o.ports.frontendHttp),
    HISTORY_GRPC_PORT: String(o.ports.history),
    MATCHING_GRPC_PORT: String(o.ports.matching),
    WORKER_GRPC_PORT: String(o.ports.worker),
    FRONTEND_MEMBERSHIP_PORT: String(o.ports.frontendMembership),
    HISTORY_MEMBERSHIP_PORT: String(o.ports.historyMembership),
    MATCHING_MEMBERSHIP_PORT: String(o.ports.matchingMembership),
    WORKER_MEMBERSHIP_PORT: String(o.ports.workerMembership),
    PROMETHEUS_ENDPOINT: `127.0.0.1:${o.ports.metrics}`,
    DYNAMIC_CONFIG_FILE_PATH: o.dynamicConfigFile,
    ...(o.historyShards ? { NUM_HISTORY_SHARDS: String(o.historyShards) } : {}),
  };
  const spawnServer = () =>
    startChild({
      name: 'temporal-server',
      command: o.bins.server,
      // --allow-no-auth: loopback only here; put mTLS / an authorizer in front of a shared cluster.
      args: ['--config-file', o.configFile, '--allow-no-auth', 'start'],
      env,
      cwd: path.dirname(o.logFile),
      logFile: o.logFile,
    });
  let child = spawnServer();
  try {
    await waitServing(address, child);
  } catch (err) {
    await child.kill();
    throw err;
  }
  const stop = async () => {
    await child.stop('SIGTERM', 30_000);
  };
  return {
    address,
    metricsUrl: `http://127.0.0.1:${o.ports.metrics}/metrics`,
    child: () => child,
    stop,
    async restart(how = 'graceful') {
      if (how === 'kill') await child.kill();
      else await stop();
      const downAt = Date.now();
      child = spawnServer();
      await waitServing(address, child);
      return { downAt, servingAt: Date.now() };
    },
  };
}

/** The frontend's gRPC health check says SERVING (it does once history and matching are reachable). */
async function waitServing(address: string, child: Child, timeoutMs = 120_000): Promise<void> {
  await until(
    `Temporal frontend on ${address}`,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        const res = await connection.withDeadline(Date.now() + 2_000, () =>
          connection.healthService.check({ service: 'temporal.api.workflowservice.v1.WorkflowService' }),
        );
        return res.status === 1; // SERVING
      } finally {
        await connection.close();
      }
    },
    timeoutMs,
    child,
  );
}

/**
 * What compose's `temporal-bootstrap` does, from our code: the namespace (30-day retention of ended
 * blocks), then our search attributes (SQL visibility maps them onto its pre-allocated columns:
 * per namespace at most 10 Keyword, 3 KeywordList, 3 Datetime …; we use 6, 1 and 1). Waits until a
 * visibility query naming every attribute is accepted: from then on workflows may upsert them.
 */
export async function bootstrapNamespace(address: string, namespace: string, retentionDays = 30): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const ws = connection.workflowService;
    try {
      await ws.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(`${retentionDays}d`) });
    } catch (err) {
      if (!/already exists|already registered/i.test((err as Error).message)) throw err;
    }
    // A fresh namespace reaches the services' namespace caches within seconds (system.namespaceCacheRefreshInterval).
    await until(`namespace ${namespace}`, async () => !!(await ws.describeNamespace({ namespace })).namespaceInfo, 60_000);
    await until(
      `search attributes of ${namespace}`,
      async () => {
        await registerSearchAttributes(connection, namespace);
        const probe = ALL_SEARCH_ATTRIBUTES.map((k) => (k.type === SearchAttributeType.DATETIME ? `${k.name} > "2000-01-01T00:00:00Z"` : `${k.name} = "probe"`)).join(' AND ');
        await ws.countWorkflowExecutions({ namespace, query: probe });
        return true;
      },
      60_000,
    );
  } finally {
    await connection.close();
  }
}
