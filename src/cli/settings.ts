/**
 * Where the CLI finds the API and its credentials, first match wins:
 *   API base: --api, API_URL, http://API_HOST:API_PORT (127.0.0.1:8080);
 *   token:    --token, API_WRITE_TOKEN / API_READ_TOKEN, DATA_DIR/secrets.json (written by the service);
 *   TLS:      --ca-file / ADS_MITIGATOR_CA_FILE (a private CA that signed the API's certificate),
 *             --client-cert + --client-key / ADS_MITIGATOR_CLIENT_CERT + _KEY (mutual TLS).
 * The environment is the process's plus `.env` in the working directory, as the service reads it (real
 * variables win), so that `API_PORT=8081` in .env moves the CLI along with the service.
 * A read uses the read token when there is one, else the write token (which also reads); a write the write
 * token, else the read token (so that the API answers 403, naming what is missing).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
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
  // The service serves HTTPS when it has a certificate: the same .env says so to the CLI.
  return `${env.API_TLS_CERT ? 'https' : 'http'}://${host}:${env.API_PORT || '8080'}`;
}

export interface TlsFlags {
  caFile?: string;
  clientCert?: string;
  clientKey?: string;
}

/** A bad TLS setting (unreadable file, a certificate without its key): a usage error. */
export class TlsSettingsError extends Error {}

export interface ApiTransport {
  fetch: typeof fetch;
  close(): Promise<void>;
}

/**
 * A fetch that trusts the given CA and presents the client certificate, or undefined when none is set
 * (then the platform's fetch and the system CAs serve).
 */
export function apiTransport(flags: TlsFlags, env: Env): ApiTransport | undefined {
  const caFile = flags.caFile ?? nonEmpty(env.ADS_MITIGATOR_CA_FILE);
  const certFile = flags.clientCert ?? nonEmpty(env.ADS_MITIGATOR_CLIENT_CERT);
  const keyFile = flags.clientKey ?? nonEmpty(env.ADS_MITIGATOR_CLIENT_KEY);
  if (!caFile && !certFile && !keyFile) return undefined;
  if (!certFile !== !keyFile) throw new TlsSettingsError('a client certificate needs its key: give both --client-cert and --client-key (ADS_MITIGATOR_CLIENT_CERT, ADS_MITIGATOR_CLIENT_KEY)');
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TlsSettingsError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const agent = new Agent({
    connect: {
      ...(caFile ? { ca: read(caFile, 'CA file') } : {}),
      ...(certFile && keyFile ? { cert: read(certFile, 'client certificate'), key: read(keyFile, 'client key') } : {}),
    },
  });
  // undici's own fetch with its own Agent: Node's bundled fetch may be another undici major.
  const tlsFetch = (input: string | URL, init?: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher: agent });
  return { fetch: tlsFetch as unknown as typeof fetch, close: () => agent.close() };
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
