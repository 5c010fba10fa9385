/**
 * Builds the worker that runs our workflows and activities: two Temporal workers in one process, one on the
 * blocks' task queue and one on the enforcers' (workflows/messages.ts: enforcerTaskQueue), each with its own slots.
 */
import { bundleWorkflowCode, NativeConnection, State, Worker, WorkerOptions as TemporalWorkerOptions } from '@temporalio/worker';
import { Client, Connection, defaultGrpcRetryOptions, GrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { createActivities } from '../../activities';
import { FortiOSClient, FortiOSError } from '../fortios/client';
import type { Config, TargetConfig } from '../config';
import { createBackend, EnforcementBackend } from '../enforcement';
import { createNotifyActivities } from '../../activities/notify';
import { createAllowlistActivities } from '../../activities/allowlist';
import { NOTIFY_DISABLED, NotifyConfig } from '../notify/events';
import { enforcerTaskQueue } from '../../workflows/messages';
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

/**
 * The blocks' worker and the enforcers' worker, run and stopped as one. Why two: a block's first task waits, in
 * its local activity, for its enforcer to commit the add (its Update completes with the answer), and holds a
 * workflow slot meanwhile. On one worker a burst's blocks could hold every slot, and the enforcer's task that
 * would answer them all could not run. The enforcers' worker has slots of its own; the same code runs on both
 * (an enforcer of before on the blocks' queue moves at its next continue-as-new).
 */
export class ServiceWorker {
  constructor(
    readonly blocks: Worker,
    readonly enforcers: Worker,
  ) {}

  /** Runs both until shutdown; the enforcers stop after the blocks, whose last tasks may wait for them. */
  async run(): Promise<void> {
    const enforcers = this.enforcers.run();
    enforcers.catch(() => this.stopBlocks());
    try {
      await this.blocks.run();
    } finally {
      if (this.enforcers.getState() === 'RUNNING') this.enforcers.shutdown();
      await enforcers;
    }
  }

  shutdown(): void {
    this.stopBlocks();
  }

  getState(): State {
    return this.blocks.getState();
  }

  private stopBlocks(): void {
    if (this.blocks.getState() === 'RUNNING') this.blocks.shutdown();
  }
}

export async function createWorker(o: WorkerOptions): Promise<ServiceWorker> {
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
  // One bundle for both workers.
  const workflowBundle = o.workflowBundlePath ? { codePath: o.workflowBundlePath } : await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietBundler });
  return createServiceWorker({ connection: o.connection, namespace: o.namespace, taskQueue: o.taskQueue, activities, workflowBundle, shutdownGraceTime: '10s' });
}

/**
 * The blocks' worker's slots, pollers and cache (the bench's floor takes the same: bench/floor/stack.ts).
 */
export const BLOCKS_WORKER_SIZING = {
  // Sized for bursts of thousands of blocks on a small box; firewall calls are short and I/O bound. A new
  // block's first task holds its slot (and a local-activity slot) while it waits for its enforcer's commit —
  // in a flood up to a tick's batch wait and the commit, 1-3 s: at ~100 blocks/s that is a few hundred waiting,
  // idle. With 500 slots a 5,000-IP burst filled them all in waves, and no new block was taken meanwhile.
  maxConcurrentActivityTaskExecutions: 200,
  maxConcurrentLocalActivityExecutions: 1000,
  maxConcurrentWorkflowTaskExecutions: 1000,
  // A burst is thousands of NEW workflows: their first tasks come from the task queue itself, not from this
  // worker's sticky queue, and the SDK's default (10 pollers, 2 of them on the task queue) takes them at
  // ~40/s here whatever the server could hand out (measured: 2,000 minimal workflows in 48 s, 35 s with
  // 10 pollers on each queue).
  maxConcurrentWorkflowTaskPolls: 20,
  nonStickyToStickyPollRatio: 1,
  // Blocks sleep for hours between a handful of tasks: caching every one costs ~0.3 MiB of workflow-VM
  // memory per block (measured: 2 GiB RSS at 5,000), while replaying an evicted one is ~30 events.
  maxCachedWorkflows: 1_500,
} satisfies Partial<TemporalWorkerOptions>;

/**
 * The two workers over the same options (`taskQueue` is the blocks'), each sized for its side. Tests with
 * activities of their own build theirs here too.
 */
export async function createServiceWorker(options: TemporalWorkerOptions): Promise<ServiceWorker> {
  const blocks = await Worker.create({ ...BLOCKS_WORKER_SIZING, ...options });
  // A handful of enforcers (one per target and set), each with one commit in flight and a few answer activities.
  const enforcers = await Worker.create({
    maxConcurrentActivityTaskExecutions: 50,
    maxConcurrentLocalActivityExecutions: 50,
    maxConcurrentWorkflowTaskExecutions: 20,
    maxCachedWorkflows: 100,
    ...options,
    taskQueue: enforcerTaskQueue(options.taskQueue),
  });
  return new ServiceWorker(blocks, enforcers);
}

/** The bundler's progress lines are noise in our logs; its warnings and errors are not. */
const quietBundler = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string, meta?: Record<string, unknown>) => console.warn(message, meta ?? ''),
  error: (message: string, meta?: Record<string, unknown>) => console.error(message, meta ?? ''),
};

/** One FortiOS client per configured target. */
export function createFirewallClients(targets: TargetConfig[]): Map<string, FortiOSClient> {
  return new Map(
    targets.map((t) => [
      t.name,
      new FortiOSClient({ baseUrl: t.url!, token: t.token, vdom: t.vdom, caFile: t.caFile, insecure: t.tlsInsecure }),
    ]),
  );
}

/**
 * The SDK's retries, but two refusals of an Update that pass within milliseconds are retried at once: a workflow
 * continuing as new (the server aborts the Updates it had admitted with a retryable RESOURCE_EXHAUSTED, "workflow is
 * closing", and the next attempt reaches the new run, there a few ms later), and a workflow at its limit of Updates
 * in flight (an enforcer's; each completes within a commit or two). The SDK's default waits ~1.7 s on any
 * RESOURCE_EXHAUSTED: an enforcer continues as new every few thousand events, and a block's add then would wait.
 */
const defaultRetries = defaultGrpcRetryOptions();
const RESOURCE_EXHAUSTED = 8; // gRPC status code
const TRANSIENT_UPDATE_REFUSAL = /workflow is closing|concurrent in-flight updates/;
export const grpcRetries: GrpcRetryOptions = {
  retryableDecider: defaultRetries.retryableDecider,
  delayFunction: (attempt, status) =>
    status.code === RESOURCE_EXHAUSTED && TRANSIENT_UPDATE_REFUSAL.test(status.details) ? 20 * attempt * (0.5 + Math.random()) : defaultRetries.delayFunction(attempt, status),
};

export async function connectClient(address: string, namespace: string): Promise<Client> {
  const connection = await Connection.connect({ address, interceptors: [makeGrpcRetryInterceptor(grpcRetries)] });
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
