/**
 * `npm run api`: the webhook and REST API alone (production: several replicas behind a load balancer, next
 * to standalone workers and a Temporal cluster). What src/main.ts does for the API, minus the dev server,
 * the emulator and the worker: the namespace must exist (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE) and the
 * firewall targets need their url. Start-up is idempotent, so replicas may start together: our search
 * attributes and the reconciliation Schedules are ensured like `npm start` does.
 */
import 'dotenv/config';
import { loadConfigOrExit } from '../config';
import { createLogger } from '../logger';
import { bootstrapTemporal } from '../temporal/bootstrap';
import { connectClient, createFirewallClients } from '../worker/worker';
import { startFrontDoors } from '../front-doors';

async function main(): Promise<void> {
  const { config } = loadConfigOrExit();
  const logger = createLogger(config.logLevel, 'api');
  const address = config.temporal.address ?? `127.0.0.1:${config.temporal.port}`;
  if (config.targets.some((t) => !t.url)) throw new Error('the API process needs FORTIGATE_URL (or TARGETS_FILE with urls): it starts no emulator');

  const client = await connectClient(address, config.temporal.namespace);
  await bootstrapTemporal(client, config, { registerAttributes: true, reconcileEvery: config.reconcileEveryMs });
  const firewalls = createFirewallClients(config.targets);
  // The same front doors as `npm start`: HTTP API and (when configured) the syslog listener; start syslog in
  // one replica only, or give each replica its own SYSLOG_* ports.
  const api = await startFrontDoors({ config, client, firewalls, logger });
  logger.info({ api: api.apiUrl, temporal: address, namespace: config.temporal.namespace }, 'api started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await api.close().catch((err) => logger.error({ err }, 'error while closing the HTTP server'));
    await Promise.all([...firewalls.values()].map((f) => f.close())).catch(() => undefined);
    await client.connection.close().catch(() => undefined);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  console.error(`ads-mitigator API failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
