/**
 * The API on a real socket over the real stack (Temporal dev server, FortiOS emulator, worker), for the
 * api and cli tests: one per test file. Logs are captured (JSON lines) so that tests can read them.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { BlockService } from '../../src/blocks/service';
import { newSecret } from '../../src/secret';
import type { Config } from '../../src/config';
import { DEFAULT_INTAKE_POLICY } from '../../src/ads/decision';
import { DEFAULT_IP_POLICY, IpPolicy } from '../../src/policy/ip-policy';
import type { Logger } from '../../src/logger';
import type { ApiLimits } from '../../src/api/limits';
import { ApiMetrics } from '../../src/api/metrics';
import { RunningApiServer, startApiServer } from '../../src/api/server';
import { GROUP4, GROUP6, Stack, startStack, TARGET, testTarget } from '../support/stack';

export { GROUP4, GROUP6, TARGET };

export interface Secrets {
  webhook: string;
  read: string;
  write: string;
}

export interface ApiStack {
  stack: Stack;
  config: Config;
  blocks: BlockService;
  metrics: ApiMetrics;
  secrets: Secrets;
  logs: string[];
  url: string;
  server: RunningApiServer;
  stop(): Promise<void>;
}

export interface ApiStackOptions {
  ipPolicy?: Partial<IpPolicy>;
  limits?: Partial<ApiLimits>;
  /** Over the test defaults, e.g. `tls` or the webhook flags. */
  api?: Partial<Config['api']>;
}

/** Tests run for minutes at most: blocks live one hour unless a test says otherwise. */
export async function startApiStack(o: ApiStackOptions = {}): Promise<ApiStack> {
  const ipPolicy: IpPolicy = { ...DEFAULT_IP_POLICY, ...o.ipPolicy };
  // The worker applies the same policy as the API (defence in depth), so both get it.
  const stack = await startStack({ server: 'dev', ipPolicy });
  const secrets: Secrets = { webhook: secret(), read: secret(), write: secret() };
  const config = testConfig({ taskQueue: stack.taskQueue, firewallUrl: stack.emulator.url, firewallToken: stack.emulator.token }, secrets, ipPolicy);
  Object.assign(config.api, o.api);
  const blocks = new BlockService(stack.client, config);
  const metrics = new ApiMetrics({ blockCountCacheMs: 0 });
  const { logger, lines: logs } = captureLogger();
  const server = await startApiServer({
    config,
    blocks,
    temporal: stack.client,
    firewalls: new Map([[TARGET, stack.firewall]]),
    logger,
    metrics,
    limits: { webhookPerMinute: 100_000, ...o.limits },
  });
  return {
    stack,
    config,
    blocks,
    metrics,
    secrets,
    logs,
    url: server.url,
    server,
    async stop() {
      await server.close();
      await stack.stop();
    },
  };
}

export interface Where {
  taskQueue: string;
  firewallUrl: string;
  firewallToken: string;
}

export function testConfig(w: Where, secrets: Secrets, ipPolicy: IpPolicy = { ...DEFAULT_IP_POLICY }): Config {
  return {
    dataDir: '/nonexistent',
    temporal: { namespace: 'default', taskQueue: w.taskQueue, uiPort: 0, port: 0 },
    api: {
      host: '127.0.0.1',
      port: 0,
      webhookSecret: secrets.webhook,
      readToken: secrets.read,
      writeToken: secrets.write,
      webhookRateLimit: 100_000,
      allowPlaintext: false,
      webhookAllowBearer: true,
      webhookAllowUntimedSignature: false,
      waitLimitMs: 10_000,
    },
    targets: [testTarget(w.firewallUrl, w.firewallToken)],
    emulator: { port: 0, token: w.firewallToken, groupLimit: 600, version: 'v7.0.15' },
    block: { ttlMs: 3_600_000, maxTtlMs: 30 * 86_400_000, batchWindowMs: 0, earlyAdd: true },
    intake: { ...DEFAULT_INTAKE_POLICY },
    ipPolicy,
    logLevel: 'trace',
    reconcileEveryMs: 300_000,
  };
}

/** Like the product's (never starting with "-": the forwarder tests pass it as `--secret <value>`). */
export function secret(): string {
  return newSecret();
}

/** A pino logger at trace level whose every line lands in `lines`. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'trace' }, sink), lines };
}

export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface CallOptions {
  method?: string;
  token?: string;
  /** JSON-encoded unless it is a string or a Buffer (sent as is). */
  body?: unknown;
  headers?: Record<string, string>;
}

/** One HTTP request; the reply body parsed as JSON when it is JSON. */
export async function call<T = any>(base: string, path: string, o: CallOptions = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | Buffer | undefined;
  if (typeof o.body === 'string' || Buffer.isBuffer(o.body)) body = o.body;
  else if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, { method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export interface LineFields {
  id: string | number;
  method?: string;
  priority?: string;
  source: string;
  targets?: string[];
}

/** A standard (15-field) ADS stdin line, as the forwarder posts it (no terminator). */
export function adsLine(f: LineFields): string {
  return [
    String(f.id),
    '2025-11-03 15:15:02',
    '2025-11-03 15:10:43',
    f.method ?? 'SSHDICT',
    'test event',
    'Security Issues',
    f.priority ?? 'High',
    'detail, with commas; and (parentheses)',
    '22',
    'TCP',
    f.source,
    ' ',
    (f.targets ?? ['198.51.100.10']).join(', '),
    'WAN',
    ' ',
  ].join('\t');
}

let nextId = Number(String(Date.now()).slice(-8)) * 1000;
/** A fresh ADS event id (digits), distinct within the process. */
export function eventId(): string {
  return String(nextId++);
}
