/**
 * `npm run fortigate-emulator`: the FortiOS emulator as a standalone process, configured from the
 * environment (see .env.example), persisting its tables under DATA_DIR, stopping cleanly on SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { faultPatchSchema } from './faults';
import { DEFAULT_VERSION } from './options';
import { EmulatorOptions, startEmulator } from './server';

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** Emulator options from the environment; exported for tests of the mapping. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): EmulatorOptions {
  const certFile = env.FORTIOS_EMULATOR_TLS_CERT;
  const keyFile = env.FORTIOS_EMULATOR_TLS_KEY;
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new Error('FORTIOS_EMULATOR_TLS_CERT and FORTIOS_EMULATOR_TLS_KEY must be set together');
  }
  return {
    host: env.FORTIOS_EMULATOR_HOST || '127.0.0.1',
    port: intEnv(env, 'FORTIOS_EMULATOR_PORT', 8443),
    token: env.FORTIOS_EMULATOR_TOKEN || undefined,
    groupMemberLimit: intEnv(env, 'FORTIOS_EMULATOR_GROUP_LIMIT', 600),
    version: env.FORTIOS_EMULATOR_VERSION || undefined,
    groups: { ipv4: (env.FORTIGATE_GROUP || 'ads-blocked').split(',').map((g) => g.trim()).filter(Boolean), ipv6: (env.FORTIGATE_GROUP6 || 'ads-blocked6').split(',').map((g) => g.trim()).filter(Boolean) },
    stateFile: path.join(env.DATA_DIR || './data', 'fortios-emulator.json'),
    ...(certFile && keyFile ? { tls: { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } } : {}),
    // Optional fault defaults, e.g. FORTIOS_EMULATOR_FAULTS='{"latencyMs":{"POST":50},"error500Rate":0.05}'.
    ...(env.FORTIOS_EMULATOR_FAULTS ? { faults: faultPatchSchema.parse(JSON.parse(env.FORTIOS_EMULATOR_FAULTS)) } : {}),
  };
}

async function main(): Promise<void> {
  const options = optionsFromEnv(process.env);
  const emulator = await startEmulator(options);
  console.log(`FortiOS emulator (${options.version ?? DEFAULT_VERSION}) listening on ${emulator.url}`);
  console.log(`  admin: ${emulator.url}/__emulator/state   state file: ${options.stateFile}`);
  // The operator asked for a generated token by not setting one: it must be shown once to be usable.
  if (!options.token) console.log(`  API token (generated, set FORTIOS_EMULATOR_TOKEN to fix it): ${emulator.token}`);
  const stop = (signal: string) => {
    console.log(`${signal}: stopping FortiOS emulator`);
    emulator.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
