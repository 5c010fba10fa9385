/**
 * The floor's stack (bench-only): the same Temporal dev server binary and settings as OURS (fresh SQLite
 * DATA_DIR), the same emulator over HTTPS with the same write latency, and a worker in this process with
 * its own tiny workflow bundle (workflows.ts) on its own task queue, sized like the product's worker
 * (src/worker/worker.ts). Workflows are started straight from the client, `inFlight` at a time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { FortiOSClient } from '../../src/fortios/client';
import { startEmulator, type RunningEmulator } from '../../src/fortios/emulator/server';
import { startDevServer } from '../../src/temporal/dev-server';
import { BLOCKS_WORKER_SIZING } from '../../src/worker/worker';
import { freeServerPorts } from '../../src/production/temporal-server';
import { EnforcementTracker } from '../lib/tracker';
import { benchTls } from '../lib/tls';
import { BenchServer, devBenchServer, ensureBenchRuntime } from '../lib/stack';
import { createFloorActivities } from './activities';
import type { floorBlock } from './workflows';

const TASK_QUEUE = 'bench-floor';
let bundlePath: string | undefined;

export interface Floor {
  client: Client;
  server: BenchServer;
  emulator: RunningEmulator;
  enforced: EnforcementTracker;
  /** Starts the floor workflow of one IP (TTL 1 h). */
  start(ip: string): Promise<unknown>;
  stop(): Promise<void>;
}

async function bundle(): Promise<string> {
  if (bundlePath) return bundlePath;
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
  });
  bundlePath = path.join(os.tmpdir(), `ads-mitigator-bench-floor-${process.pid}.js`);
  writeFileSync(bundlePath, code);
  return bundlePath;
}

export function removeFloorBundle(): void {
  if (bundlePath) rmSync(bundlePath, { force: true });
  bundlePath = undefined;
}

export async function startFloor(o: { writeLatencyMs: number }): Promise<Floor> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ads-bench-floor-'));
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err) => console.error('bench floor: error while stopping', err));
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    ensureBenchRuntime();
    const tls = benchTls();
    // A port outside the ephemeral range, picked as OURS picks its server's: an OS-picked one (freePort) once
    // collided with a port the dev server or an outgoing connection took meanwhile (the server exited with code 2).
    const port = (await freeServerPorts()).frontend;
    const dev = await startDevServer({ dataDir, port, uiPort: 0, ui: false, namespace: 'default' });
    stops.push(() => dev.stop());
    const emulator = await startEmulator({
      port: 0,
      faults: { latencyMs: { POST: o.writeLatencyMs, PUT: o.writeLatencyMs, DELETE: o.writeLatencyMs } },
      tls: { cert: tls.cert, key: tls.key },
    });
    stops.push(() => emulator.close());
    const enforced = new EnforcementTracker(emulator);
    const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token, caFile: tls.caFile });
    stops.push(() => fw.close());
    const connection = await Connection.connect({ address: dev.address });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: 'default' });
    const native = await NativeConnection.connect({ address: dev.address });
    const worker = await Worker.create({
      connection: native,
      namespace: 'default',
      taskQueue: TASK_QUEUE,
      activities: createFloorActivities(fw),
      workflowBundle: { codePath: await bundle() },
      // As the product's blocks worker.
      ...BLOCKS_WORKER_SIZING,
      shutdownGraceTime: '10s',
    });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running.catch(() => undefined);
      await native.close();
    });
    return {
      client,
      server: devBenchServer(dev),
      emulator,
      enforced,
      start: (ip) => client.workflow.start<typeof floorBlock>('floorBlock', { workflowId: `floor:${ip}`, taskQueue: TASK_QUEUE, args: [ip, 3_600_000] }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
