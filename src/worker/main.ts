/** Standalone worker process (production: one or more of these next to a real Temporal cluster). */
import 'dotenv/config';
import { loadConfigOrExit } from '../config';
import { createLogger } from '../logger';
import { recordFirewallCall, recordStillActive } from '../api/metrics';
import { connectClient, createFirewallClients, runWorker } from './worker';
import { installRuntime } from './runtime';

async function main(): Promise<void> {
  const { config } = loadConfigOrExit();
  const logger = createLogger(config.logLevel, 'worker');
  // Shutdown is ours (below): stop polling, let tasks in flight finish, close connections.
  installRuntime(logger, []);
  const address = config.temporal.address ?? `127.0.0.1:${config.temporal.port}`;
  if (config.targets.some((t) => !t.url)) throw new Error('the standalone worker needs FORTIGATE_URL (or TARGETS_FILE with urls)');
  const client = await connectClient(address, config.temporal.namespace);
  const firewalls = createFirewallClients(config.targets);
  // The same assembly as `npm start` (runWorker): backends, allowlist, notifications, still-active.
  const stop = await runWorker(config, client, address, firewalls, { onFirewallCall: recordFirewallCall, onStillActive: recordStillActive });
  logger.info({ address, taskQueue: config.temporal.taskQueue }, 'worker started');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info('worker stopping');
  await stop();
  await Promise.all([...firewalls.values()].map((f) => f.close()));
  await client.connection.close();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
