/** Standalone worker process (production: one or more of these next to a real Temporal cluster). */
import 'dotenv/config';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../config';
import { createLogger } from '../logger';
import { connectClient, createBackends, createFirewallClients, createWorker } from './worker';
import { installRuntime } from './runtime';

async function main(): Promise<void> {
  const { config } = loadConfig();
  const logger = createLogger(config.logLevel, 'worker');
  installRuntime(logger);
  const address = config.temporal.address ?? `127.0.0.1:${config.temporal.port}`;
  if (config.targets.some((t) => !t.url)) throw new Error('the standalone worker needs FORTIGATE_URL (or TARGETS_FILE with urls)');
  const connection = await NativeConnection.connect({ address });
  const client = await connectClient(address, config.temporal.namespace);
  const worker = await createWorker({
    connection,
    client,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    backends: createBackends(config.targets, createFirewallClients(config.targets)),
    ipPolicy: config.ipPolicy,
    batchWindowMs: config.block.batchWindowMs,
    notify: config.notify,
  });
  logger.info({ address, taskQueue: config.temporal.taskQueue }, 'worker started');
  await worker.run(); // resolves after SIGINT/SIGTERM (the runtime's shutdown signals)
  await connection.close();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
