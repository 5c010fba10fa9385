/**
 * Where the CLI finds the API and its credentials, first match wins:
 *   API base: --api, API_URL, http://API_HOST:API_PORT (127.0.0.1:8080);
 *   token:    --token, API_WRITE_TOKEN / API_READ_TOKEN, DATA_DIR/secrets.json (written by the service).
 * The environment is the process's plus `.env` in the working directory, as the service reads it (real
 * variables win), so that `API_PORT=8081` in .env moves the CLI along with the service.
 * A read uses the read token when there is one, else the write token (which also reads); a write the write
 * token, else the read token (so that the API answers 403, naming what is missing).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import type { Env } from '../config';

export type Access = 'read' | 'write';

/** process.env over `<cwd>/.env` (the service's rule: a variable that is set wins). An unreadable .env is skipped. */
export function cliEnvironment(processEnv: Env, cwd: string = process.cwd()): Env {
  const file = path.join(cwd, '.env');
  let fromFile: Env = {};
  try {
    if (existsSync(file)) fromFile = parseDotenv(readFileSync(file));
  } catch {
    fromFile = {};
  }
  return { ...fromFile, ...processEnv };
}

export function apiBase(flag: string | undefined, env: Env): string {
  if (flag) return flag.replace(/\/+$/, '');
  if (env.API_URL) return env.API_URL.replace(/\/+$/, '');
  // A service listening on every interface is reached on loopback.
  const listen = env.API_HOST && !['0.0.0.0', '::'].includes(env.API_HOST) ? env.API_HOST : '127.0.0.1';
  const host = listen.includes(':') ? `[${listen}]` : listen;
  return `http://${host}:${env.API_PORT || '8080'}`;
}

export function apiToken(flag: string | undefined, access: Access, env: Env): string | undefined {
  if (flag) return flag;
  const stored = storedSecrets(env);
  // With only a read token at hand, a write still sends it: the API's 403 says what is missing.
  const from = (source: Record<string, string | undefined>) =>
    access === 'write' ? (nonEmpty(source.API_WRITE_TOKEN) ?? source.API_READ_TOKEN) : (nonEmpty(source.API_READ_TOKEN) ?? source.API_WRITE_TOKEN);
  return nonEmpty(from(env)) ?? nonEmpty(from(stored));
}

/** DATA_DIR/secrets.json as the service writes it; an unreadable file is the same as none. */
function storedSecrets(env: Env): Record<string, string | undefined> {
  const file = path.join(path.resolve(env.DATA_DIR || './data'), 'secrets.json');
  if (!existsSync(file)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
