/**
 * Reliability when our own processes die (issue "Proof under fire"): the production worker process killed
 * with SIGKILL mid-flight and started again; the Temporal dev server killed with SIGKILL and restarted on
 * its SQLite file while blocks wait for their expiry. Real processes, the FortiOS emulator over a socket;
 * every child process is killed in afterAll even when a test fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { FortiOSClient } from '../../src/fortios/client';
import { RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import { RunningDevServer, startDevServer, DevServerOptions } from '../../src/temporal/dev-server';
import { createBackends, createWorker, ServiceWorker } from '../../src/worker/worker';
import { statusQuery } from '../../workflows/messages';
import { blockInput, eventually, TARGET, testTarget } from '../support/stack';
import { freePort } from '../../src/free-port';
import { buildDist, ChildHandle, killAll, startWorkerProcess } from '../support/processes';
import { cancelBlocks, Ctx, expectActive, expectEnded, expectFirewallConverges, expectOneExecutionEach, handle, ips, since, sleep, startBlock, view } from './convergence';

const DAY = 86_400_000;
const G_WORKER = 'rel-worker-kill';
const G_SERVER = 'rel-server-kill';
const NAMESPACE = 'default';

let dataDir: string;
let serverOpts: DevServerOptions;
let server: RunningDevServer;
let emulator: RunningEmulator;
let firewall: FortiOSClient;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed by an earlier test file in this process
  }
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'ads-reliability-'));
  serverOpts = { dataDir: path.join(dataDir, 'temporal'), port: await freePort(), uiPort: 0, ui: false, namespace: NAMESPACE };
  // The worker process runs the production build: compile it while the dev server starts.
  [, server, emulator] = await Promise.all([
    buildDist(),
    startDevServer(serverOpts),
    startEmulator({ port: 0, groups: { ipv4: [G_WORKER, G_SERVER], ipv6: ['ads-blocked6'] } }),
  ]);
  firewall = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token, timeoutMs: 5000 });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: NAMESPACE });
}, 120_000);

afterAll(async () => {
  await killAll();
  await connection?.close().catch(() => undefined);
  await server?.stop().catch(() => undefined);
  await firewall?.close();
  await emulator?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the worker process SIGKILLed while firewall calls are in flight, then restarted: every block, expiry and unblock converges', async () => {
  const t0 = Date.now();
  const ctx: Ctx = { client, taskQueue: `rel-worker-${randomUUID()}`, firewall };
  const workerEnv = {
    temporalAddress: server.address,
    namespace: NAMESPACE,
    taskQueue: ctx.taskQueue,
    firewallUrl: emulator.url,
    firewallToken: emulator.token,
    target: TARGET,
    dataDir: path.join(dataDir, 'worker'),
    extra: { FORTIGATE_GROUP: G_WORKER },
  };
  const expiring = ips(40, 81); // TTL 20 s: expire while (or after) the worker is down
  const cancelled = ips(10, 82); // unblocked by signal just before the kill
  const live = ips(10, 83); // must still be enforced at the end
  let worker: ChildHandle | undefined = await startWorkerProcess(workerEnv);
  try {
    // Slow answers (well under the worker's 10 s client timeout) keep firewall calls in flight at the kill.
    emulator.setFaults({ latencyMs: { GET: 400, POST: 400, PUT: 400, DELETE: 400 } });
    const input = (ip: string, ttlMs: number) => blockInput(ip, { ttlMs });
    await Promise.all([...expiring.map((ip) => startBlock(ctx, input(ip, 20_000))), ...[...cancelled, ...live].map((ip) => startBlock(ctx, input(ip, DAY)))]);
    await eventually(async () => (await view(firewall, G_WORKER)).addresses.length >= 10, 30_000, 'some addresses created');
    await cancelBlocks(ctx, cancelled);
    await sleep(300);
    // Firewall calls run as local activities inside workflow tasks: a block still pending (creating or
    // joining) or releasing has one in flight.
    const states = await Promise.all([...expiring, ...cancelled, ...live].map(async (ip) => (await handle(ctx, ip).query(statusQuery)).state));
    const inFlight = states.filter((st) => st === 'pending' || st === 'releasing').length;
    const killedAt = Date.now();
    expect(await worker.kill('SIGKILL')).toBe('SIGKILL');
    worker = undefined;
    expect(inFlight).toBeGreaterThan(0); // the kill did catch blocks mid-flight
    const before = await view(firewall, G_WORKER);
    console.log(`worker killed with ${inFlight} blocks mid-flight; firewall then: ${before.members.length} members, ${before.addresses.length} addresses`);

    await sleep(3000);
    emulator.setFaults({ latencyMs: { GET: 0, POST: 0, PUT: 0, DELETE: 0 } });
    worker = await startWorkerProcess(workerEnv);

    await expectFirewallConverges(firewall, G_WORKER, live, 150_000);
    console.log(`worker kill: converged ${since(killedAt)} after the kill`);
    await expectEnded(ctx, expiring, 'expired', 30_000);
    await expectEnded(ctx, cancelled, 'cancelled', 30_000);
    await expectActive(ctx, live);
    await expectOneExecutionEach(ctx, [...expiring, ...cancelled, ...live]);

    await cancelBlocks(ctx, live);
    await expectEnded(ctx, live, 'cancelled', 60_000);
    await expectFirewallConverges(firewall, G_WORKER, [], 30_000);
    console.log(`worker-kill scenario: ${since(t0)}`);
  } finally {
    emulator.setFaults({ latencyMs: { GET: 0, POST: 0, PUT: 0, DELETE: 0 } });
    await worker?.stop();
  }
}, 240_000);

test('the Temporal dev server SIGKILLed and restarted on its SQLite file while blocks wait for expiry: none lost', async () => {
  const t0 = Date.now();
  const ctx: Ctx = { client, taskQueue: `rel-server-${randomUUID()}`, firewall };
  const expiring = ips(30, 84); // TTL 15 s: the timers fire after the restart
  const kept = ips(10, 85); // long TTL: half are unblocked after the restart, half must still be enforced
  const [unblocked, live] = [kept.slice(0, 5), kept.slice(5)];

  const workers: { worker: ServiceWorker; connection: NativeConnection; running: Promise<unknown> }[] = [];
  const startWorker = async () => {
    const nc = await NativeConnection.connect({ address: server.address });
    const worker = await createWorker({
      connection: nc,
      client,
      namespace: NAMESPACE,
      taskQueue: ctx.taskQueue,
      backends: createBackends([testTarget(emulator.url, emulator.token, { groups: { ipv4: [G_SERVER], ipv6: ['ads-blocked6'] } })], new Map([[TARGET, firewall]])),
      ipPolicy: DEFAULT_IP_POLICY,
      workflowBundlePath: process.env.WORKFLOW_BUNDLE_PATH,
    });
    const entry = { worker, connection: nc, running: worker.run().then(() => 'stopped', (err: Error) => `failed: ${err.message}`) };
    workers.push(entry);
    return entry;
  };
  let current = await startWorker();
  try {
    const input = (ip: string, ttlMs: number) => blockInput(ip, { ttlMs });
    const startedAt = Date.now();
    await Promise.all([...expiring.map((ip) => startBlock(ctx, input(ip, 15_000))), ...kept.map((ip) => startBlock(ctx, input(ip, DAY)))]);
    await expectFirewallConverges(firewall, G_SERVER, [...expiring, ...kept], 10_000);
    await expectActive(ctx, [...expiring, ...kept], 10_000);
    // The point is to kill the server while the expiry timers are pending: fail clearly if we got here too late.
    expect(Date.now() - startedAt).toBeLessThan(11_000);

    const killedAt = Date.now();
    server.process.kill('SIGKILL');
    await eventually(() => server.process.exitCode !== null || server.process.signalCode !== null, 10_000, 'dev server gone');
    await sleep(5000);
    server = await startDevServer(serverOpts); // same SQLite file, same port
    console.log(`dev server down for ${since(killedAt)}`);

    // The worker reconnects on its own; if it died with the server, a new one takes over.
    const outcome = await Promise.race([current.running, sleep(3000).then(() => 'running')]);
    if (outcome !== 'running') {
      console.log(`in-process worker ended with the server (${outcome}): starting a new one`);
      current = await startWorker();
    }
    await eventually(async () => {
      await cancelBlocks(ctx, unblocked, 'after the restart');
      return true;
    }, 30_000, 'signals accepted after the restart');

    await expectFirewallConverges(firewall, G_SERVER, live, 90_000);
    console.log(`server kill: converged ${since(killedAt)} after the kill`);
    await expectEnded(ctx, expiring, 'expired', 30_000);
    await expectEnded(ctx, unblocked, 'cancelled', 30_000);
    await expectActive(ctx, live);
    await expectOneExecutionEach(ctx, [...expiring, ...kept]);

    await cancelBlocks(ctx, live);
    await expectEnded(ctx, live, 'cancelled', 60_000);
    await expectFirewallConverges(firewall, G_SERVER, [], 30_000);
    console.log(`server-kill scenario: ${since(t0)}`);
  } finally {
    for (const w of workers) {
      if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
      await w.running;
      await w.connection.close().catch(() => undefined);
    }
  }
}, 240_000);
