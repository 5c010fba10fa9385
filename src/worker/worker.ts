/** Builds the worker that runs our workflows and activities on one task queue. */
import { NativeConnection, Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { createActivities } from '../../activities';
import { FortiOSClient, FortiOSError } from '../fortios/client';
import type { Config, TargetConfig } from '../config';
import { createBackend, EnforcementBackend } from '../enforcement';
import { createNotifyActivities } from '../../activities/notify';
import { createAllowlistActivities } from '../../activities/allowlist';
import { NOTIFY_DISABLED, NotifyConfig } from '../notify/events';
import { createStillActive, StillActiveRuntime } from '../still-active';
import type { StillActiveHook } from '../../activities/still-active';

/** Observes every firewall call (metrics, tests): target, operation, duration, and the error if it failed. */
export type FirewallCallHook = (target: string, op: string, ms: number, error?: FortiOSError) => void;

export interface WorkerOptions {
  connection: NativeConnection;
  client: Client;
  namespace: string;
  taskQueue: string;
  /** One enforcement backend per target (createBackends). */
  backends: Map<string, EnforcementBackend>;
  ipPolicy: Config['ipPolicy'];
  /** GROUP_BATCH_WINDOW: optional debounce of enforcer ticks. */
  batchWindowMs?: number;
  /** A prebuilt bundle (tests bundle once for all files); otherwise workflows/ is bundled at start (~1 s). */
  workflowBundlePath?: string;
  /** Notification sinks (NOTIFY_*); default: none. */
  notify?: NotifyConfig;
  /** STILL_ACTIVE (createStillActive): blocks admitted by this worker ask before they lapse; undefined = off. */
  stillActive?: StillActiveRuntime;
  /** Observes every still-active answer (metrics). */
  onStillActive?: StillActiveHook;
}

/** The backend of every target, over its FortiOS client, each call observed. */
export function createBackends(targets: TargetConfig[], firewalls: Map<string, FortiOSClient>, onFirewallCall?: FirewallCallHook): Map<string, EnforcementBackend> {
  return new Map(
    targets.map((t) => {
      const observe = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
        const started = Date.now();
        try {
          const r = await fn();
          onFirewallCall?.(t.name, op, Date.now() - started);
          return r;
        } catch (err) {
          onFirewallCall?.(t.name, op, Date.now() - started, err instanceof FortiOSError ? err : undefined);
          throw err;
        }
      };
      return [t.name, createBackend(t, { fw: firewalls.get(t.name)!, observe })];
    }),
  );
}

export async function createWorker(o: WorkerOptions): Promise<Worker> {
  const allowlist = createAllowlistActivities({ temporal: o.client });
  const activities = {
    ...createActivities({
      backends: o.backends,
      ipPolicy: o.ipPolicy,
      temporal: o.client,
      taskQueue: o.taskQueue,
      batchWindowMs: o.batchWindowMs ?? 0,
      stillActive: o.stillActive,
      onStillActive: o.onStillActive,
      // The runtime allowlist is the worker's last check before a block is applied.
      admission: async (_target, ip) => {
        const entry = await allowlist.checkAllowlist(ip);
        return entry ? `allowlisted by ${entry.cidr} (${entry.reason}, ${entry.actor})` : undefined;
      },
    }),
    ...createNotifyActivities({ notify: o.notify ?? NOTIFY_DISABLED }),
    ...allowlist,
  };
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    activities,
    ...(o.workflowBundlePath
      ? { workflowBundle: { codePath: o.workflowBundlePath } }
      : { workflowsPath: require.resolve('../../workflows') }),
    // Sized for bursts of thousands of blocks on a small box; firewall calls are short and I/O bound.
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    maxConcurrentWorkflowTaskExecutions: 100,
    // Blocks sleep for hours between a handful of tasks: caching every one costs ~0.3 MiB of workflow-VM
    // memory per block (measured: 2 GiB RSS at 5,000), while replaying an evicted one is ~30 events.
    maxCachedWorkflows: 1_000,
    shutdownGraceTime: '10s',
  });
}

/** One FortiOS client per configured target. */
export function createFirewallClients(targets: TargetConfig[]): Map<string, FortiOSClient> {
  return new Map(
    targets.map((t) => [
      t.name,
      new FortiOSClient({ baseUrl: t.url!, token: t.token, vdom: t.vdom, caFile: t.caFile, insecure: t.tlsInsecure }),
    ]),
  );
}

export async function connectClient(address: string, namespace: string): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace });
}

/**
 * Connects, creates and runs the worker for a loaded configuration (the launcher and the benchmarks).
 * Returns its stop: shutdown, wait for in-flight tasks, close the connection.
 */
export async function runWorker(
  config: Config,
  client: Client,
  address: string,
  firewalls: Map<string, FortiOSClient>,
  extra: Pick<WorkerOptions, 'workflowBundlePath' | 'onStillActive'> & { onFirewallCall?: FirewallCallHook } = {},
): Promise<() => Promise<void>> {
  const connection = await NativeConnection.connect({ address });
  const stillActive = config.stillActive && createStillActive(config.stillActive);
  const worker = await createWorker({
    connection,
    client,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    backends: createBackends(config.targets, firewalls, extra.onFirewallCall),
    ipPolicy: config.ipPolicy,
    batchWindowMs: config.block.batchWindowMs,
    workflowBundlePath: extra.workflowBundlePath,
    notify: config.notify,
    stillActive,
    onStillActive: extra.onStillActive,
  });
  const done = worker.run();
  return async () => {
    worker.shutdown();
    await done.catch(() => undefined);
    await stillActive?.port.close();
    await connection.close();
  };
}
