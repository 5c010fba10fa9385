/**
 * `npm start`: the whole job on embedded defaults, in one process tree —
 * Temporal dev server (SQLite under DATA_DIR, Web UI) unless TEMPORAL_ADDRESS is set, the FortiOS emulator
 * unless a real FortiGate is configured, the worker, and the HTTP API. Ctrl-C stops everything cleanly.
 */
import 'dotenv/config';
import path from 'node:path';
import { Config, loadConfigOrExit } from './config';
import { createLogger, Logger } from './logger';
import { startDevServer, RunningDevServer } from './temporal/dev-server';
import { bootstrapTemporal } from './temporal/bootstrap';
import { startEmulator, RunningEmulator } from './fortios/emulator/server';
import { connectClient, createFirewallClients, runWorker } from './worker/worker';
import { installRuntime } from './worker/runtime';
import { startFrontDoors } from './front-doors';
import { recordFirewallCall, recordStillActive } from './api/metrics';
import { Notifications } from './notify/durable';
import { FirewallFailureWatch } from './notify/firewall-watch';
import { startupFindings } from './enforcement';

type Stop = () => Promise<unknown>;

async function main(): Promise<void> {
  const { config, generatedSecrets } = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  const stops: Stop[] = [];
  const shutdown = once(async (signal: string) => {
    logger.info({ signal }, 'stopping');
    for (const stop of stops.reverse()) await stop().catch((err) => logger.error({ err }, 'error while stopping'));
    logger.info('stopped');
    process.exit(0);
  });
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const temporal = await startTemporal(config, logger, stops);
  const emulator = await startEmulatorIfNeeded(config, logger, stops);
  installRuntime(logger, []);
  const client = await connectClient(temporal.address, config.temporal.namespace);
  await bootstrapTemporal(client, config, { registerAttributes: !temporal.dev, reconcileEvery: config.reconcileEveryMs });

  const firewalls = createFirewallClients(config.targets);
  const notifications = new Notifications(client, config.temporal.taskQueue, config.notify);
  const watch = createFirewallWatch(config, notifications, logger);
  if (watch) stops.push(async () => watch.stop());
  stops.push(
    await runWorker(config, client, temporal.address, firewalls, {
      onFirewallCall: (target, op, ms, error) => {
        recordFirewallCall(target, op, ms, error);
        watch?.observe(target, op, ms, error);
      },
      onStillActive: recordStillActive,
    }),
  );
  const sa = config.stillActive;
  if (sa && sa.mode !== 'off') logger.info({ source: sa.mode, window: sa.windowMs, maxTotal: sa.maxTotalMs, flowmon: sa.flowmon?.url }, 'still-active on: blocks ask before they lapse');
  // What each target's enforcement needs on its firewall (objects, a deny policy using them): a warning with the fix.
  void startupFindings(config.targets, firewalls).then((all) => {
    for (const { target, findings } of all) {
      for (const f of findings) {
        if (f.ok) logger.info({ target }, f.what);
        else logger.warn({ target, fix: f.fix }, f.what);
      }
    }
  });

  const api = await startFrontDoors({ config, client, firewalls, logger, notifications });
  stops.push(() => api.close());

  logger.info(
    {
      api: api.apiUrl,
      temporal: temporal.address,
      webUi: temporal.dev?.uiUrl,
      firewall: config.targets.map((t) => ({ name: t.name, url: t.url, emulated: !!emulator })),
      syslog: api.syslog,
      dataDir: config.dataDir,
    },
    'ads-mitigator is up',
  );
  printBanner(config, api.apiUrl, temporal.dev, emulator, generatedSecrets);
}

/** Reports a firewall that keeps failing (NOTIFY_FIREWALL_FAILING_AFTER), when that kind is wanted. */
function createFirewallWatch(config: Config, notifications: Notifications, logger: Logger): FirewallFailureWatch | undefined {
  if (!notifications.wants('firewall-failing') && !notifications.wants('firewall-recovered')) return undefined;
  return new FirewallFailureWatch({
    afterMs: config.notify!.firewallFailingAfterMs,
    report: (n) => notifications.send(n),
    onReportError: (err) => logger.warn({ err }, 'firewall-failing notification not started; retrying at the next check'),
  });
}

async function startTemporal(config: Config, logger: Logger, stops: Stop[]): Promise<{ address: string; dev?: RunningDevServer }> {
  if (config.temporal.address) return { address: config.temporal.address };
  const dev = await startDevServer({
    dataDir: config.dataDir,
    port: config.temporal.port,
    uiPort: config.temporal.uiPort,
    namespace: config.temporal.namespace,
    onLog: (line) => logger.debug({ component: 'temporal' }, line),
  });
  stops.push(() => dev.stop());
  logger.info({ address: dev.address, ui: dev.uiUrl, db: dev.dbFile }, 'temporal dev server started');
  return { address: dev.address, dev };
}

async function startEmulatorIfNeeded(config: Config, logger: Logger, stops: Stop[]): Promise<RunningEmulator | undefined> {
  const emulated = config.targets.filter((t) => !t.url);
  if (emulated.length === 0) return undefined;
  const emulator = await startEmulator({
    port: config.emulator.port,
    token: config.emulator.token,
    groupMemberLimit: config.emulator.groupLimit,
    version: config.emulator.version,
    groups: { ipv4: [...new Set(emulated.flatMap((t) => t.groups.ipv4))], ipv6: [...new Set(emulated.flatMap((t) => t.groups.ipv6))] },
    feeds: [...new Set(emulated.flatMap((t) => (t.enforcement === 'threat-feed' && t.feed ? [t.feed] : [])))].map((name) => ({ name })),
    stateFile: path.join(config.dataDir, 'fortios-emulator.json'),
  });
  for (const t of emulated) t.url = emulator.url;
  stops.push(() => emulator.close());
  logger.info({ url: emulator.url }, 'FortiOS emulator started (no FORTIGATE_URL configured)');
  return emulator;
}

function printBanner(config: Config, apiUrl: string, dev: RunningDevServer | undefined, emulator: RunningEmulator | undefined, generated: string[]): void {
  const lines = [
    '',
    '  ads-mitigator is running',
    `  API + webhook   ${apiUrl}   (POST /v1/events, GET /v1/blocks, /openapi.json)`,
    dev ? `  Temporal Web UI ${dev.uiUrl}/namespaces/${config.temporal.namespace}/workflows` : `  Temporal        ${config.temporal.address}`,
    emulator ? `  FortiOS         ${emulator.url}   (bundled emulator; state: ${emulator.url}/__emulator/state)` : '',
    `  Data            ${config.dataDir}`,
  ];
  if (generated.length) {
    lines.push('', `  Generated on first start and stored in ${path.join(config.dataDir, 'secrets.json')} (shown once):`);
    const values: Record<string, string> = { WEBHOOK_SECRET: config.api.webhookSecret, API_READ_TOKEN: config.api.readToken, API_WRITE_TOKEN: config.api.writeToken };
    for (const name of generated) lines.push(`    ${name}=${values[name]}`);
  }
  lines.push('  Ctrl-C stops everything.', '');
  process.stdout.write(lines.filter((l) => l !== '').join('\n') + '\n\n');
}

function once<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
  let running: Promise<void> | undefined;
  return (...a) => (running ??= fn(...a));
}

main().catch((err) => {
  console.error(`ads-mitigator failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
