/**
 * A real stack for tests: a Temporal server (time-skipping test server or dev server, both from the
 * project's venv), the FortiOS emulator on a real socket, and our worker — nothing mocked.
 */
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { Client, WorkflowHandle } from '@temporalio/client';
import type { ipBlock } from '../../workflows/block';
import type { TargetConfig } from '../../src/config';
import { createBackends } from '../../src/worker/worker';
import type { EnforcementBackend } from '../../src/enforcement';
import { temporalCliPath, temporalTestServerPath } from '../../src/temporal/binaries';
import { registerSearchAttributes } from '../../src/temporal/search-attributes';
import { ALL_SEARCH_ATTRIBUTES, BlockInput, BlockStatus, blockWorkflowId, statusQuery, WORKFLOW_TYPES } from '../../workflows/messages';
import { startEmulator, RunningEmulator, EmulatorOptions } from '../../src/fortios/emulator/server';
import { FortiOSClient } from '../../src/fortios/client';
import { createWorker, ServiceWorker, WorkerOptions } from '../../src/worker/worker';
import { DEFAULT_IP_POLICY, IpPolicy } from '../../src/policy/ip-policy';

export const TARGET = 'fw1';
export const GROUP4 = 'ads-blocked';
export const GROUP6 = 'ads-blocked6';

export interface Stack {
  env: TestWorkflowEnvironment;
  client: Client;
  /**
   * The same server without the time-skipping client's habit: its result() never unlocks time skipping
   * (see resultAfter). On the dev server it is `client`.
   */
  lockedClient: Client;
  emulator: RunningEmulator;
  firewall: FortiOSClient;
  worker: ServiceWorker;
  taskQueue: string;
  /** The target the worker enforces on (TARGET, the emulator). */
  target: TargetConfig;
  backend: EnforcementBackend;
  /** Every firewall call the worker's activities made, with the kind of error if it failed. */
  firewallCalls: { op: string; ms: number; error?: string }[];
  stop(): Promise<void>;
}

export interface StackOptions {
  server: 'time-skipping' | 'dev';
  emulator?: EmulatorOptions;
  ipPolicy?: IpPolicy;
  dynamicConfig?: Record<string, string | number | boolean>;
  /** Client timeout towards the emulator (fault tests shorten it). */
  firewallTimeoutMs?: number;
  /** The target's enforcement settings (default: address-group on GROUP4/GROUP6, capacity 600). */
  target?: Partial<TargetConfig>;
  /** More targets on the same emulator (each scenario of a suite its own groups). */
  extraTargets?: (Partial<TargetConfig> & { name: string })[];
  batchWindowMs?: number;
  /** STILL_ACTIVE for the worker (test/workflows/still-active.test.ts); off when absent. */
  stillActive?: WorkerOptions['stillActive'];
  onStillActive?: WorkerOptions['onStillActive'];
}

/** The test target on an emulator. */
export function testTarget(url: string, token: string, over: Partial<TargetConfig> = {}): TargetConfig {
  return {
    name: TARGET,
    url,
    token,
    vdom: 'root',
    enforcement: 'address-group',
    groups: { ipv4: [GROUP4], ipv6: [GROUP6] },
    capacity: 600,
    feedCapacity: 131_072,
    tlsInsecure: false,
    ...over,
  };
}

/** The SDK logs every activity at INFO: keep test output to errors (once per process; a 2nd install throws). */
function quietRuntime(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // already installed by an earlier test file in this process
  }
}

export async function startStack(o: StackOptions): Promise<Stack> {
  quietRuntime();
  const env =
    o.server === 'time-skipping'
      ? await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: temporalTestServerPath() } } })
      : await TestWorkflowEnvironment.createLocal({
          server: {
            executable: { type: 'existing-path', path: temporalCliPath() },
            searchAttributes: ALL_SEARCH_ATTRIBUTES,
            extraArgs: Object.entries(o.dynamicConfig ?? {}).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${JSON.stringify(v)}`]),
          },
        });
  if (o.server === 'time-skipping') await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  const emulator = await startEmulator({ port: 0, ...o.emulator });
  const firewall = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token, timeoutMs: o.firewallTimeoutMs ?? 2000 });
  const taskQueue = `test-${randomUUID()}`;
  const firewallCalls: Stack['firewallCalls'] = [];
 const target = testTarget(emulator.url, emulator.token, o.target);
  const targets = [target, ...(o.extraTargets ?? []).map((t) => testTarget(emulator.url, emulator.token, t))];
  const backends = createBackends(targets, new Map(targets.map((t) => [t.name, firewall])), (_target, op, ms, error) => void firewallCalls.push({ op, ms, error: error?.kind }));
  const worker = await createWorker({
    connection: env.nativeConnection,
    client: env.client,
    namespace: env.namespace ?? 'default',
    taskQueue,
    backends,
    ipPolicy: o.ipPolicy ?? DEFAULT_IP_POLICY,
    batchWindowMs: o.batchWindowMs ?? 0,
    workflowBundlePath: process.env.WORKFLOW_BUNDLE_PATH,
    stillActive: o.stillActive,
    onStillActive: o.onStillActive,
  });
  const running = worker.run();
  return {
    env,
    client: env.client,
    lockedClient: o.server === 'time-skipping' ? new Client({ connection: env.connection, namespace: env.namespace ?? 'default' }) : env.client,
    emulator,
    firewall,
    worker,
    taskQueue,
    target,
    backend: backends.get(TARGET)!,
    firewallCalls,
    async stop() {
      try {
        worker.shutdown();
      } catch {
        // already shut down by the test (a worker restart scenario)
      }
      await running;
      await firewall.close();
      await emulator.close();
      await env.teardown();
    },
  };
}

export function blockInput(ip: string, over: Partial<BlockInput> = {}): BlockInput {
  return {
    target: TARGET,
    ip,
    family: ip.includes(':') ? 'ipv6' : 'ipv4',
    ttlMs: 3_600_000,
    maxTtlMs: 30 * 86_400_000,
    reason: 'test',
    actor: 'test',
    ...over,
  };
}

export function startBlock(stack: Stack, input: BlockInput) {
  return stack.client.workflow.start<typeof ipBlock>(WORKFLOW_TYPES.block, {
    workflowId: blockWorkflowId(input.target, input.ip),
    taskQueue: stack.taskQueue,
    args: [input],
  });
}

/** Polls (in real time) until `probe` returns a truthy value. */
export async function eventually<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Polls each item of `items` until `probe(item)` is truthy for all of them. An item that passed is not asked
 * again, and one item whose probe throws (a query that timed out on a loaded box) only waits for the next
 * round: on a busy machine some of 200 queries always fail, so "all at once" would never succeed.
 * At most `concurrency` probes are in flight. On timeout the error names the items still open.
 */
export async function eventuallyEach<T>(items: T[], probe: (item: T) => Promise<unknown>, timeoutMs: number, what: string, concurrency = 20): Promise<void> {
  let open = [...items];
  let last: unknown;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const passed = new Set<T>();
    for (let i = 0; i < open.length; i += concurrency) {
      await Promise.all(
        open.slice(i, i + concurrency).map(async (item) => {
          try {
            if (await probe(item)) passed.add(item);
          } catch (err) {
            last = err;
          }
        }),
      );
    }
    open = open.filter((item) => !passed.has(item));
    if (open.length === 0) return;
    if (Date.now() > deadline) {
      const names = open.slice(0, 10).map(String).join(', ') + (open.length > 10 ? ` (+${open.length - 10})` : '');
      throw new Error(`timed out waiting for ${what}; still open: ${names}${last ? `; last error: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The block's status once it is active. The entry lands on the firewall a moment before the enforcer's
 * answer turns the block active, so a test that saw the entry must still wait for this.
 */
export function activeStatus(handle: WorkflowHandle, timeoutMs = 20_000): Promise<BlockStatus> {
  return eventually(async () => {
    const st = await handle.query(statusQuery);
    return st.state === 'active' && st;
  }, timeoutMs, 'block active');
}

/**
 * A workflow's result on the time-skipping server, with the clock moved by the test and never by the wait.
 * The test server jumps to its next timer whenever nothing holds its time lock, and the SDK's result() unlocks
 * it for the whole wait: when a workflow task loses its lock (the server's own lapse, seen under load), the
 * jump reaches that task's 10 s timeout, then each retry's, then the run's 10-year execution timeout (CI:
 * "Workflow execution timed out" for a block whose release had been answered). So: skip to `atMs` + 1 s (a
 * bounded sleep: the clock locks again there), then wait in real time. What the timer wakes then runs with the
 * clock locked; a lapse costs a task retry, never the run. Without `atMs` nothing is skipped (a cancel, a
 * refusal: nothing needs time to pass).
 */
export async function resultAfter<T = BlockStatus>(stack: Stack, handle: WorkflowHandle, atMs?: number): Promise<T> {
  if (atMs !== undefined) await skipTo(stack, atMs);
  return stack.lockedClient.workflow.getHandle(handle.workflowId).result() as Promise<T>;
}

/** The server's clock to `atMs` + 1 s, and locked again there (resultAfter). */
export async function skipTo(stack: Stack, atMs: number): Promise<void> {
  const now = await stack.env.currentTimeMs();
  if (atMs + 1000 > now) await stack.env.sleep(atMs + 1000 - now);
}

/**
 * A block run to its end on the time-skipping server one wake-up at a time: the clock skips to the block's next
 * deadline (a STILL_ACTIVE question, else its expiry) + 1 s, and what wakes runs in real time until the block
 * has reacted — never a skip past a task still running (resultAfter says why the SDK's result() is not used).
 * Past every deadline (releasing: waiting for its enforcer), it waits in real time, skipping a minute at a
 * time only when nothing happens (a request re-sent after minutes).
 */
export async function blockOutcome(stack: Stack, handle: WorkflowHandle, timeoutMs = 90_000): Promise<BlockStatus> {
  const deadline = Date.now() + timeoutMs;
  const closed = async () => (await handle.describe()).status.name !== 'RUNNING';
  const mark = (s: BlockStatus) => JSON.stringify([s.state, s.expiresAt, s.stillActive?.last?.atMs, s.extensions.length]);
  const reached = new Set<number>(); // deadlines skipped to already: never twice (a question the block did not ask)
  while (!(await closed())) {
    if (Date.now() > deadline) throw new Error(`${handle.workflowId} still running after ${timeoutMs} ms`);
    const s = await handle.query(statusQuery);
    const wake = nextWakeMs(s, reached);
    if (s.state === 'pending') {
      await eventually(async () => (await closed()) || (await handle.query(statusQuery)).state !== 'pending', 30_000, `${handle.workflowId} answered`);
    } else if (wake !== undefined && wake + 1000 > (await stack.env.currentTimeMs())) {
      reached.add(wake);
      await skipTo(stack, wake);
      await eventually(async () => (await closed()) || mark(await handle.query(statusQuery)) !== mark(s), 10_000).catch(() => undefined);
    } else if (!(await eventually(closed, 5_000).catch(() => false))) {
      await stack.env.sleep(60_000);
    }
  }
  return resultAfter(stack, handle);
}

/** When a running block wakes by itself: its STILL_ACTIVE question (not yet asked for this expiry), else its expiry. */
function nextWakeMs(s: BlockStatus, reached: Set<number>): number | undefined {
  if (s.state !== 'active') return undefined;
  const expiry = Date.parse(s.expiresAt);
  const sa = s.stillActive;
  const fromAds = s.events.some((e) => !e.id.startsWith('manual:'));
  if (sa && fromAds && expiry < Date.parse(s.createdAt) + sa.maxTotalMs) {
    const question = expiry - sa.windowMs;
    if ((sa.last?.atMs ?? -Infinity) < question && !reached.has(question)) return question;
  }
  return expiry;
}
