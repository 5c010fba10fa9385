/**
 * Configuration from the environment (see .env.example), validated once at start-up with one clear message
 * per bad value. Secrets that are not given are generated into DATA_DIR on first start (and printed once),
 * so a fresh clone runs with no set-up and a restart keeps the same credentials.
 */
import { newSecret } from './secret';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatDuration, parseDuration } from './duration';
import { NOTIFY_DISABLED, NOTIFY_KINDS, NotifyConfig, NotifyKind } from './notify/events';
import { assertValidIpPolicy, DEFAULT_IP_POLICY, IpPolicy, parseCidrList } from './policy/ip-policy';
import { DEFAULT_INTAKE_POLICY, IntakePolicy, validateIntakePolicy } from './ads/decision';
import { parsePriority } from './ads/event';
import { ENFORCEMENT_KINDS, EnforcementKind } from './enforcement/port';
import { plaintextProblem } from './api/listen';
import { MAX_TARGETS } from './ads/parse';
import { STILL_ACTIVE_MODES, StillActiveConfig, StillActiveMode } from './still-active';

export type Env = Record<string, string | undefined>;

export interface TargetConfig {
  /** Name used in workflow IDs and the API (`block:<target>:<ip>`). */
  name: string;
  /** FortiOS REST base URL; undefined = the bundled emulator. */
  url?: string;
  token: string;
  vdom: string;
  /** How blocks are enforced on this target (src/enforcement). */
  enforcement: EnforcementKind;
  /** address-group: the groups (shards, filled in order) a deny policy references, per family. */
  groups: { ipv4: string[]; ipv6: string[] };
  /** Members per group, the placeholder included. */
  capacity: number;
  /** threat-feed: the external resource (type address, update method push). */
  feed?: string;
  /** threat-feed: entries the feed may hold. */
  feedCapacity: number;
  caFile?: string;
  tlsInsecure: boolean;
}

/** The ADS syslog (CEF) listener; absent from Config when no SYSLOG_*_PORT is set (off by default). */
export interface SyslogConfig {
  /** Bind address. */
  host: string;
  udpPort?: number;
  /** Plain TCP, or TLS when `tls` is given (RFC 5425 on one port: no unencrypted twin beside it). */
  tcpPort?: number;
  tls?: { certFile: string; keyFile: string };
  /** Sender networks (CIDRs) whose messages are accepted; everything else is counted and dropped. */
  allow: string[];
}

export interface Config {
  dataDir: string;
  temporal: { address?: string; namespace: string; taskQueue: string; uiPort: number; port: number };
  api: {
    host: string;
    port: number;
    webhookSecret: string;
    readToken: string;
    writeToken: string;
    webhookRateLimit: number;
    /** HTTPS (API_TLS_CERT, API_TLS_KEY: PEM files); a client CA (API_TLS_CLIENT_CA) turns on mutual TLS. */
    tls?: { certFile: string; keyFile: string; clientCaFile?: string };
    /** Plain HTTP on a non-loopback address (API_ALLOW_PLAINTEXT): secrets and tokens would travel in clear. */
    allowPlaintext: boolean;
    /** The webhook accepts `Authorization: Bearer <WEBHOOK_SECRET>` (WEBHOOK_ALLOW_BEARER). */
    webhookAllowBearer: boolean;
    /** The webhook accepts the old HMAC of the body without timestamp (WEBHOOK_ALLOW_UNTIMED_SIGNATURE): replayable. */
    webhookAllowUntimedSignature: boolean;
    /** How long one HTTP request may wait on a block (API_WAIT_LIMIT): past it, 202 with the current state. */
    waitLimitMs: number;
    /** GET /v1/feeds/{target} (FEED_PULL_USER, FEED_PULL_PASSWORD): basic-auth credential of firewalls that pull their feed; unset: off. */
    feedPull?: { user: string; password: string };
  };
  targets: TargetConfig[];
  emulator: { port: number; token: string; groupLimit: number; version: string };
  /** earlyAdd (EARLY_ADD): the API hands a new block's add to the enforcer beside the block's start (workflows/early-adds.ts). */
  block: { ttlMs: number; maxTtlMs: number; escalation?: { factor: number; maxTtlMs: number }; batchWindowMs: number; earlyAdd: boolean };
  intake: IntakePolicy;
  ipPolicy: IpPolicy;
  syslog?: SyslogConfig;
  reconcileEveryMs: number;
  logLevel: string;
  /** Outbound notifications (NOTIFY_*); absent or `kinds: []` = off. */
  notify?: NotifyConfig;
  /** STILL_ACTIVE*, FLOWMON_*: blocks ask before they lapse whether their attacker is still active (loadConfig always sets it; absent = off). */
  stillActive?: StillActiveConfig;
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Collects every problem instead of stopping at the first, so one start-up shows all of them. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  str(name: string, fallback: string): string {
    const v = this.env[name];
    return v === undefined || v === '' ? fallback : v;
  }
  opt(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }
  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.opt(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  }
  num(name: string, fallback: number, min: number): number {
    const raw = this.opt(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) {
      this.problems.push(`${name}=${JSON.stringify(raw)}: expected a number ≥ ${min}`);
      return fallback;
    }
    return n;
  }
  bool(name: string, fallback: boolean): boolean {
    const raw = this.opt(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    this.problems.push(`${name}=${JSON.stringify(raw)}: expected true or false`);
    return fallback;
  }
  duration(name: string, fallback: string, allowZero = false): number {
    const text = this.str(name, fallback);
    if (allowZero && /^\s*0+\s*[a-z]*\s*$/i.test(text)) return 0;
    try {
      return parseDuration(text);
    } catch (err) {
      this.problems.push(`${name}: ${(err as Error).message}`);
      return parseDuration(fallback);
    }
  }
  list(name: string): string[] {
    return (this.opt(name) ?? '')
      .split(/[,\s]+/)
      .map((s) => s.trim())
      .filter(Boolean);
  }
  check(name: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.problems.push(`${name}: ${(err as Error).message}`);
    }
  }
}

/** Entries per feed before FortiOS 7.4.4 (128K); 7.4.4+ allows 300,000 across all feeds. */
const DEFAULT_FEED_CAPACITY = 131_072;

function groupList(value: string | string[] | undefined, fallback: string): string[] {
  const list = (Array.isArray(value) ? value : (value ?? '').split(',')).map((g) => g.trim()).filter(Boolean);
  return list.length ? [...new Set(list)] : [fallback];
}

const targetFileSchema = z.object({
  targets: z
    .array(
      z.object({
        name: z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/, 'letters, digits, _ . - (at most 40)'),
        url: z
          .string()
          .refine((u) => !firewallUrlProblem(u), { error: (iss) => firewallUrlProblem(String(iss.input)) ?? 'not a URL' })
          .optional(),
        token: z.string().optional(),
        tokenFile: z.string().optional(),
        vdom: z.string().default('root'),
        enforcement: z.enum(ENFORCEMENT_KINDS as [EnforcementKind, ...EnforcementKind[]]).default('address-group'),
        groups: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
        groups6: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
        group: z.string().optional(),
        group6: z.string().optional(),
        feed: z.string().max(35).optional(),
        feedCapacity: z.number().int().min(1).max(300_000).default(DEFAULT_FEED_CAPACITY),
        capacity: z.number().int().min(2).max(100_000).default(600),
        caFile: z.string().optional(),
        tlsInsecure: z.boolean().default(false),
      }),
    )
    .min(1),
});

/**
 * Secrets kept in DATA_DIR/secrets.json (mode 0600): generated once, reused on every start. Generated values
 * are only kept in memory here; `save` writes them once the whole configuration is valid, so a start-up that
 * fails leaves no file behind.
 */
function loadSecrets(r: Reader, dataDir: string, wanted: string[]): { values: Record<string, string>; generated: string[]; save(): void } {
  const file = path.join(dataDir, 'secrets.json');
  let values: Record<string, string> = {};
  try {
    if (existsSync(file)) values = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    r.problems.push(`DATA_DIR: cannot read ${file}: ${(err as Error).message}`);
  }
  const generated = wanted.filter((k) => !values[k]);
  for (const k of generated) values[k] = newSecret();
  const save = () => {
    if (generated.length === 0) return;
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(values, null, 2), { mode: 0o600 });
  };
  return { values, generated, save };
}

/** "cannot read" with the reason in words (ENOENT → no such file), never a bare error code. */
function fileProblem(file: string): string | undefined {
  try {
    readFileSync(file);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    return `cannot read ${file} (${why})`;
  }
}

/**
 * A firewall's REST base: http(s)://host[:port] and nothing else (the FortiOS client refuses a path, query
 * or credentials). Returns the problem in words, or undefined.
 */
export function firewallUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text)} is not a URL: expected https://<address or name>[:port], e.g. https://192.0.2.1 or https://fw:10443`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `${JSON.stringify(text)}: expected an https:// (or http://) URL, not ${url.protocol}`;
  if (url.username || url.password) return `${JSON.stringify(text)}: credentials do not belong in the URL (use the token)`;
  if (url.pathname !== '/' || url.search || url.hash) return `${JSON.stringify(text)}: give only scheme, host and port (no path such as /api/v2)`;
  return undefined;
}

function secretFrom(r: Reader, name: string, stored: Record<string, string>): string {
  const file = r.opt(`${name}_FILE`);
  if (file) {
    const problem = fileProblem(file);
    if (!problem) return readFileSync(file, 'utf8').trim();
    r.problems.push(`${name}_FILE: ${problem}`);
  }
  return r.opt(name) ?? stored[name];
}

export interface LoadedConfig {
  config: Config;
  /** Names of secrets generated on this start: the launcher prints them once. */
  generatedSecrets: string[];
}

/** For the entry points (`npm start`, the production stack, `npm run api`): the configuration, or exit 2 with every problem. */
export function loadConfigOrExit(env: Env = process.env): LoadedConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

export function loadConfig(env: Env = process.env): LoadedConfig {
  const r = new Reader(env);
  const dataDir = path.resolve(r.str('DATA_DIR', './data'));
  const secretNames = ['WEBHOOK_SECRET', 'API_READ_TOKEN', 'API_WRITE_TOKEN', 'FORTIOS_EMULATOR_TOKEN'];
  const secrets = loadSecrets(r, dataDir, secretNames.filter((n) => !r.opt(n) && !r.opt(`${n}_FILE`)));
  const stored = secrets.values;

  const emulator = {
    port: r.int('FORTIOS_EMULATOR_PORT', 8443, 0, 65535),
    token: secretFrom(r, 'FORTIOS_EMULATOR_TOKEN', stored),
    groupLimit: r.int('FORTIOS_EMULATOR_GROUP_LIMIT', 600, 1, 100_000),
    // Push threat feeds in local-in policies need 7.2.4+: the emulator mimics 7.4 when the default target uses one.
    version: r.str('FORTIOS_EMULATOR_VERSION', r.opt('FORTIGATE_ENFORCEMENT') === 'threat-feed' ? 'v7.4.5' : 'v7.0.15'),
  };
  const temporalAddress = r.opt('TEMPORAL_ADDRESS');
  // The bundled dev server's frontend port (ignored when TEMPORAL_ADDRESS points at another server).
  const temporalPort = r.int('TEMPORAL_PORT', 7233, 1, 65535);
  const config: Config = {
    dataDir,
    temporal: {
      address: temporalAddress,
      namespace: r.str('TEMPORAL_NAMESPACE', 'default'),
      taskQueue: r.str('TEMPORAL_TASK_QUEUE', 'ads-mitigator'),
      uiPort: r.int('TEMPORAL_UI_PORT', 8233, 1, 65535),
      port: temporalPort,
    },
    api: {
      host: r.str('API_HOST', '127.0.0.1'),
      port: r.int('API_PORT', 8080, 0, 65535),
      webhookSecret: secretFrom(r, 'WEBHOOK_SECRET', stored),
      readToken: secretFrom(r, 'API_READ_TOKEN', stored),
      writeToken: secretFrom(r, 'API_WRITE_TOKEN', stored),
      webhookRateLimit: r.int('WEBHOOK_RATE_LIMIT', 600, 1, 1_000_000),
      // Every wait in an HTTP request is bounded: past this, answer 202 with the block's current state.
      waitLimitMs: r.duration('API_WAIT_LIMIT', '10s'),
      tls: readApiTls(r),
      allowPlaintext: r.bool('API_ALLOW_PLAINTEXT', false),
      webhookAllowBearer: r.bool('WEBHOOK_ALLOW_BEARER', true),
      webhookAllowUntimedSignature: r.bool('WEBHOOK_ALLOW_UNTIMED_SIGNATURE', false),
      feedPull: readFeedPull(r),
    },
    targets: [],
    emulator,
    block: {
      ttlMs: r.duration('BLOCK_TTL', '6h'),
      maxTtlMs: r.duration('BLOCK_MAX_TTL', '30d'),
      batchWindowMs: r.duration('GROUP_BATCH_WINDOW', '0s', true),
      earlyAdd: r.bool('EARLY_ADD', true),
    },
    intake: { ...DEFAULT_INTAKE_POLICY },
    ipPolicy: { ...DEFAULT_IP_POLICY },
    logLevel: r.str('LOG_LEVEL', 'info'),
    reconcileEveryMs: r.duration('RECONCILE_INTERVAL', '5m'),
    stillActive: { mode: 'off', windowMs: 0, maxTotalMs: 0 },
  };
  const plaintext = plaintextProblem(config.api);
  if (plaintext) r.problems.push(plaintext);
  const factor = r.num('ESCALATION_FACTOR', 1, 1);
  if (factor > 1) config.block.escalation = { factor, maxTtlMs: r.duration('ESCALATION_MAX_TTL', '7d') };
  if (config.block.ttlMs > config.block.maxTtlMs) {
    r.problems.push(`BLOCK_TTL: ${formatDuration(config.block.ttlMs)} is longer than BLOCK_MAX_TTL (${formatDuration(config.block.maxTtlMs)})`);
  }
  config.stillActive = readStillActive(r, config.block.ttlMs);
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(config.logLevel)) {
    r.problems.push(`LOG_LEVEL=${JSON.stringify(config.logLevel)}: expected debug, info, warn or error`);
  }

  r.check('MIN_PRIORITY', () => {
    const p = parsePriority(r.str('MIN_PRIORITY', 'medium'));
    if (!p) throw new Error('expected critical, high, medium, low or info');
    config.intake.minPriority = p;
  });
  const sourceMethods = r.list('BLOCK_SOURCE_METHODS');
  if (sourceMethods.length) config.intake.blockSourceMethods = sourceMethods.map((m) => m.toUpperCase());
  config.intake.acceptIds = r.bool('ACCEPT_IDS_EVENTS', false);
  config.intake.maxTargetsPerEvent = r.int('MAX_TARGETS_PER_EVENT', DEFAULT_INTAKE_POLICY.maxTargetsPerEvent, 1, MAX_TARGETS);
  config.syslog = readSyslog(r);
  r.check('ALLOWLIST', () => {
    const extra = r.list('ALLOWLIST');
    parseCidrList(extra);
    config.ipPolicy.allowlist = [...config.ipPolicy.allowlist, ...extra];
  });
  config.ipPolicy.allowPrivate = r.bool('ALLOW_PRIVATE', false);
  config.ipPolicy.maxPrefixV4 = r.int('MAX_PREFIX_V4', config.ipPolicy.maxPrefixV4, 8, 32);
  config.ipPolicy.maxPrefixV6 = r.int('MAX_PREFIX_V6', config.ipPolicy.maxPrefixV6, 16, 128);

  r.check('BLOCK_SOURCE_METHODS', () => validateIntakePolicy(config.intake));
  r.check('ALLOWLIST / MAX_PREFIX_V4 / MAX_PREFIX_V6', () => assertValidIpPolicy(config.ipPolicy));
  config.targets = readTargets(r, emulator);
  // Never block the firewalls themselves: their management addresses join the allowlist.
  for (const t of config.targets) {
    const host = t.url && !firewallUrlProblem(t.url) ? new URL(t.url).hostname.replace(/^\[|\]$/g, '') : undefined;
    if (host && /^[0-9a-f.:]+$/i.test(host)) config.ipPolicy.allowlist = [...config.ipPolicy.allowlist, host];
  }
  config.notify = readNotifyConfig(r, secretFrom(r, 'NOTIFY_WEBHOOK_SECRET', {}));
  if (r.problems.length) throw new ConfigError(r.problems);
  // Only a configuration that starts gets its generated secrets written.
  secrets.save();
  return { config, generatedSecrets: secrets.generated.filter((n) => n !== 'FORTIOS_EMULATOR_TOKEN') };
}

/** NOTIFY_*: an outbound webhook and/or syslog, which kinds, and when a failing firewall is worth a word. */
function readNotifyConfig(r: Reader, webhookSecret: string | undefined): NotifyConfig {
  const notify: NotifyConfig = { ...NOTIFY_DISABLED, kinds: [], firewallFailingAfterMs: r.duration('NOTIFY_FIREWALL_FAILING_AFTER', '2m') };
  const url = r.opt('NOTIFY_WEBHOOK_URL');
  if (url) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      r.problems.push(`NOTIFY_WEBHOOK_URL: ${JSON.stringify(url)} is not a URL: expected e.g. https://hooks.example.net/ads`);
    }
    if (parsed && parsed.protocol !== 'https:' && parsed.protocol !== 'http:') r.problems.push(`NOTIFY_WEBHOOK_URL: expected an https:// (or http://) URL, not ${parsed.protocol}`);
    if (!webhookSecret) r.problems.push('NOTIFY_WEBHOOK_SECRET: required when NOTIFY_WEBHOOK_URL is set (every notification is signed with it)');
    if (parsed && webhookSecret) notify.webhook = { url, secret: webhookSecret };
  }
  const syslog = r.opt('NOTIFY_SYSLOG');
  if (syslog) {
    const m = /^(udp|tcp):\/\/(\[[0-9a-f:.]+\]|[^:/\s]+)(?::(\d{1,5}))?\/?$/i.exec(syslog);
    const port = m ? Number(m[3] ?? 514) : NaN;
    if (!m || port < 1 || port > 65535) r.problems.push(`NOTIFY_SYSLOG: ${JSON.stringify(syslog)}: expected udp://host:port or tcp://host:port, e.g. udp://192.0.2.10:514`);
    else notify.syslog = { protocol: m[1].toLowerCase() as 'udp' | 'tcp', host: m[2].replace(/^\[|\]$/g, ''), port };
  }
  const wanted = r.list('NOTIFY_EVENTS').map((k) => k.toLowerCase());
  const unknown = wanted.filter((k) => !(NOTIFY_KINDS as readonly string[]).includes(k));
  if (unknown.length) r.problems.push(`NOTIFY_EVENTS: unknown kind ${unknown.map((k) => JSON.stringify(k)).join(', ')}; expected some of ${NOTIFY_KINDS.join(', ')}`);
  if (notify.webhook || notify.syslog) notify.kinds = wanted.length ? (NOTIFY_KINDS.filter((k) => wanted.includes(k)) as NotifyKind[]) : [...NOTIFY_KINDS];
  return notify;
}

/** STILL_ACTIVE, STILL_ACTIVE_WINDOW, STILL_ACTIVE_MAX_TOTAL and, for flowmon, FLOWMON_* (README, "Blocks that outlive a once-firing event"). */
function readStillActive(r: Reader, ttlMs: number): StillActiveConfig {
  const mode = r.str('STILL_ACTIVE', 'off').toLowerCase() as StillActiveMode;
  const windowMs = r.duration('STILL_ACTIVE_WINDOW', '15m');
  const maxTotalMs = r.duration('STILL_ACTIVE_MAX_TOTAL', '7d');
  if (!STILL_ACTIVE_MODES.includes(mode)) {
    r.problems.push(`STILL_ACTIVE=${JSON.stringify(r.opt('STILL_ACTIVE'))}: expected off, intake or flowmon`);
    return { mode: 'off', windowMs, maxTotalMs };
  }
  if (mode === 'off') return { mode, windowMs, maxTotalMs };
  if (windowMs >= ttlMs) r.problems.push('STILL_ACTIVE_WINDOW: must be shorter than BLOCK_TTL (blocks ask this long before they lapse)');
  if (maxTotalMs < ttlMs) r.problems.push('STILL_ACTIVE_MAX_TOTAL: shorter than BLOCK_TTL, so no block could ever be extended');
  if (mode === 'intake') return { mode, windowMs, maxTotalMs };
  const url = r.opt('FLOWMON_URL');
  const user = r.opt('FLOWMON_USER');
  const password = secretFrom(r, 'FLOWMON_PASSWORD', {});
  const caFile = r.opt('FLOWMON_CA_FILE');
  const timeZone = r.str('FLOWMON_TIMEZONE', 'UTC');
  if (!url) r.problems.push('FLOWMON_URL: required with STILL_ACTIVE=flowmon (e.g. https://flowmon.example)');
  else
    r.check('FLOWMON_URL', () => {
      const u = new URL(url);
      if (!['https:', 'http:'].includes(u.protocol) || u.pathname !== '/' || u.search || u.username || u.password) throw new Error('expected https://host[:port], without path, query or credentials');
    });
  if (!user) r.problems.push('FLOWMON_USER: required with STILL_ACTIVE=flowmon');
  if (!password) r.problems.push('FLOWMON_PASSWORD (or FLOWMON_PASSWORD_FILE): required with STILL_ACTIVE=flowmon');
  if (caFile) {
    try {
      accessSync(caFile, constants.R_OK);
    } catch {
      r.problems.push(`FLOWMON_CA_FILE: cannot read ${caFile}`);
    }
  }
  r.check('FLOWMON_TIMEZONE', () => void new Intl.DateTimeFormat('en', { timeZone }));
  return { mode, windowMs, maxTotalMs, flowmon: { url: url ?? '', user: user ?? '', password: password ?? '', caFile, timeZone } };
}

/** API_TLS_*: both files or neither, each readable; the client CA only with a certificate. */
function readFeedPull(r: Reader): Config['api']['feedPull'] {
  const user = r.opt('FEED_PULL_USER');
  const password = secretFrom(r, 'FEED_PULL_PASSWORD', {});
  if (!user && !password) return undefined;
  if (!user || !password) {
    r.problems.push('FEED_PULL_USER and FEED_PULL_PASSWORD: give both (the credential firewalls use to pull GET /v1/feeds/{target}) or neither');
    return undefined;
  }
  if (user.includes(':')) r.problems.push('FEED_PULL_USER: must not contain ":" (HTTP basic auth)');
  return { user, password };
}

function readApiTls(r: Reader): Config['api']['tls'] {
  const certFile = r.opt('API_TLS_CERT');
  const keyFile = r.opt('API_TLS_KEY');
  const clientCaFile = r.opt('API_TLS_CLIENT_CA');
  if (!certFile && !keyFile) {
    if (clientCaFile) r.problems.push('API_TLS_CLIENT_CA: needs API_TLS_CERT and API_TLS_KEY (mutual TLS is TLS)');
    return undefined;
  }
  if (!certFile || !keyFile) {
    r.problems.push(`${certFile ? 'API_TLS_KEY' : 'API_TLS_CERT'}: required with ${certFile ? 'API_TLS_CERT' : 'API_TLS_KEY'}`);
    return undefined;
  }
  for (const [name, file] of [['API_TLS_CERT', certFile], ['API_TLS_KEY', keyFile], ['API_TLS_CLIENT_CA', clientCaFile]] as const) {
    if (!file) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch {
      r.problems.push(`${name}: cannot read ${file}`);
    }
  }
  return { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) };
}

const LOOPBACK = ['127.0.0.0/8', '::1'];

/**
 * Off unless a port is given. Syslog carries no credentials, so the sender allowlist is its only gate:
 * loopback by default. The bind address follows it unless SYSLOG_HOST says otherwise: loopback for a
 * loopback-only allowlist, every interface once remote senders are allowed (their messages must reach us).
 */
function readSyslog(r: Reader): SyslogConfig | undefined {
  const udpPort = r.opt('SYSLOG_UDP_PORT') === undefined ? undefined : r.int('SYSLOG_UDP_PORT', 0, 0, 65535);
  const tcpPort = r.opt('SYSLOG_TCP_PORT') === undefined ? undefined : r.int('SYSLOG_TCP_PORT', 0, 0, 65535);
  const certFile = r.opt('SYSLOG_TLS_CERT');
  const keyFile = r.opt('SYSLOG_TLS_KEY');
  if (!!certFile !== !!keyFile) r.problems.push('SYSLOG_TLS_CERT / SYSLOG_TLS_KEY: give both (TLS on SYSLOG_TCP_PORT) or neither');
  if (certFile && keyFile && tcpPort === undefined) r.problems.push('SYSLOG_TLS_CERT: TLS runs on SYSLOG_TCP_PORT, which is not set');
  for (const [name, file] of [['SYSLOG_TLS_CERT', certFile], ['SYSLOG_TLS_KEY', keyFile]] as const) {
    if (file) r.check(name, () => void readFileSync(file));
  }
  const allow = r.opt('SYSLOG_ALLOW') === undefined ? LOOPBACK : r.list('SYSLOG_ALLOW');
  let remoteV6 = false;
  let remote = false;
  r.check('SYSLOG_ALLOW', () => {
    if (allow.length === 0) throw new Error('name at least one sender network (default: loopback)');
    const loopback = parseCidrList(LOOPBACK);
    for (const c of parseCidrList(allow)) {
      const isLoopback = loopback.some((l) => l.family === c.family && c.prefix >= l.prefix && c.address.match(l.address, l.prefix));
      if (isLoopback) continue;
      remote = true;
      remoteV6 ||= c.family === 'ipv6';
    }
  });
  if (udpPort === undefined && tcpPort === undefined) return undefined;
  return {
    host: r.str('SYSLOG_HOST', remote ? (remoteV6 ? '::' : '0.0.0.0') : '127.0.0.1'),
    udpPort,
    tcpPort,
    tls: certFile && keyFile ? { certFile, keyFile } : undefined,
    allow,
  };
}

function readTargets(r: Reader, emulator: Config['emulator']): TargetConfig[] {
  const file = r.opt('TARGETS_FILE');
  if (file) {
    try {
      const problem = fileProblem(file);
      if (problem) throw new Error(problem);
      const text = readFileSync(file, 'utf8');
      const parsed = targetFileSchema.parse(file.endsWith('.json') ? JSON.parse(text) : parseYaml(text));
      const unreadable = parsed.targets.flatMap((t) =>
        [['tokenFile', t.tokenFile], ['caFile', t.caFile]].flatMap(([key, f]) => {
          const problem = f ? fileProblem(f) : undefined;
          return problem ? [`target ${t.name}: ${key}: ${problem}`] : [];
        }),
      );
      if (unreadable.length) throw new Error(unreadable.join('; '));
      const targets = parsed.targets.map((t) => ({
        name: t.name,
        url: t.url,
        token: t.tokenFile ? readFileSync(t.tokenFile, 'utf8').trim() : t.url ? (t.token ?? '') : emulator.token,
        vdom: t.vdom,
        enforcement: t.enforcement,
        groups: { ipv4: groupList(t.groups ?? t.group, 'ads-blocked'), ipv6: groupList(t.groups6 ?? t.group6, 'ads-blocked6') },
        capacity: t.capacity,
        feed: t.feed,
        feedCapacity: t.feedCapacity,
        caFile: t.caFile,
        tlsInsecure: t.tlsInsecure,
      }));
      for (const t of targets) if (t.enforcement === 'threat-feed' && !t.feed) r.problems.push(`TARGETS_FILE=${file}: target "${t.name}" uses threat-feed enforcement: give its "feed" (external resource name)`);
      return targets;
    } catch (err) {
      const msg = err instanceof z.ZodError ? z.prettifyError(err) : (err as Error).message;
      r.problems.push(`TARGETS_FILE=${file}: ${msg}`);
      return [];
    }
  }
  const url = r.opt('FORTIGATE_URL');
  const urlProblem = url ? firewallUrlProblem(url) : undefined;
  if (urlProblem) r.problems.push(`FORTIGATE_URL: ${urlProblem}`);
  const caFile = r.opt('FORTIGATE_CA_FILE');
  const caProblem = caFile ? fileProblem(caFile) : undefined;
  if (caProblem) r.problems.push(`FORTIGATE_CA_FILE: ${caProblem}; give the PEM file of the CA that signed the firewall's certificate`);
  const token = secretFrom(r, 'FORTIGATE_TOKEN', {}) ?? '';
  if (url && !token) r.problems.push('FORTIGATE_TOKEN: required when FORTIGATE_URL is set');
  const enforcement = r.str('FORTIGATE_ENFORCEMENT', 'address-group') as EnforcementKind;
  if (!ENFORCEMENT_KINDS.includes(enforcement)) r.problems.push(`FORTIGATE_ENFORCEMENT=${JSON.stringify(enforcement)}: expected one of ${ENFORCEMENT_KINDS.join(', ')}`);
  const feed = r.opt('FORTIGATE_FEED');
  if (enforcement === 'threat-feed' && !feed) r.problems.push('FORTIGATE_FEED: required with FORTIGATE_ENFORCEMENT=threat-feed (the external resource, type address, update method push)');
  if (feed && feed.length > 35) r.problems.push(`FORTIGATE_FEED=${JSON.stringify(feed)}: at most 35 characters (FortiOS limit)`);
  return [
    {
      name: r.str('FORTIGATE_NAME', 'fortigate'),
      url,
      token: url ? token : emulator.token,
      vdom: r.str('FORTIGATE_VDOM', 'root'),
      enforcement,
      groups: { ipv4: groupList(r.opt('FORTIGATE_GROUP'), 'ads-blocked'), ipv6: groupList(r.opt('FORTIGATE_GROUP6'), 'ads-blocked6') },
      capacity: r.int('FORTIGATE_GROUP_CAPACITY', 600, 2, 100_000),
      feed,
      feedCapacity: r.int('FORTIGATE_FEED_CAPACITY', DEFAULT_FEED_CAPACITY, 1, 300_000),
      caFile,
      tlsInsecure: r.bool('FORTIGATE_TLS_INSECURE', false),
    },
  ];
}
