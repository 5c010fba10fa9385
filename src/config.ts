/**
 * Configuration from the environment (see .env.example), validated once at start-up with one clear message
 * per bad value. Secrets that are not given are generated into DATA_DIR on first start (and printed once),
 * so a fresh clone runs with no set-up and a restart keeps the same credentials.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration';
import { assertValidIpPolicy, DEFAULT_IP_POLICY, IpPolicy, parseCidrList } from './policy/ip-policy';
import { DEFAULT_INTAKE_POLICY, IntakePolicy, validateIntakePolicy } from './ads/decision';
import { parsePriority } from './ads/event';
import { ENFORCEMENT_KINDS, EnforcementKind } from './enforcement/port';
import { plaintextProblem } from './api/listen';

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
  block: { ttlMs: number; maxTtlMs: number; escalation?: { factor: number; maxTtlMs: number }; batchWindowMs: number };
  intake: IntakePolicy;
  ipPolicy: IpPolicy;
  reconcileEveryMs: number;
  logLevel: string;
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
        url: z.string().url().optional(),
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

/** Secrets kept in DATA_DIR/secrets.json (mode 0600): generated once, reused on every start. */
function loadSecrets(dataDir: string, wanted: string[]): { values: Record<string, string>; generated: string[] } {
  const file = path.join(dataDir, 'secrets.json');
  const values: Record<string, string> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const generated = wanted.filter((k) => !values[k]);
  for (const k of generated) values[k] = randomBytes(24).toString('base64url');
  if (generated.length > 0) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(values, null, 2), { mode: 0o600 });
  }
  return { values, generated };
}

function secretFrom(r: Reader, name: string, stored: Record<string, string>): string {
  const file = r.opt(`${name}_FILE`);
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      r.problems.push(`${name}_FILE: cannot read ${file}`);
    }
  }
  return r.opt(name) ?? stored[name];
}

export interface LoadedConfig {
  config: Config;
  /** Names of secrets generated on this start: the launcher prints them once. */
  generatedSecrets: string[];
}

export function loadConfig(env: Env = process.env): LoadedConfig {
  const r = new Reader(env);
  const dataDir = path.resolve(r.str('DATA_DIR', './data'));
  const secretNames = ['WEBHOOK_SECRET', 'API_READ_TOKEN', 'API_WRITE_TOKEN', 'FORTIOS_EMULATOR_TOKEN'];
  const { values: stored, generated } = loadSecrets(dataDir, secretNames.filter((n) => !r.opt(n) && !r.opt(`${n}_FILE`)));

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
    },
    intake: { ...DEFAULT_INTAKE_POLICY },
    ipPolicy: { ...DEFAULT_IP_POLICY },
    logLevel: r.str('LOG_LEVEL', 'info'),
    reconcileEveryMs: r.duration('RECONCILE_INTERVAL', '5m'),
  };
  const plaintext = plaintextProblem(config.api);
  if (plaintext) r.problems.push(plaintext);
  const factor = r.num('ESCALATION_FACTOR', 1, 1);
  if (factor > 1) config.block.escalation = { factor, maxTtlMs: r.duration('ESCALATION_MAX_TTL', '7d') };
  if (config.block.ttlMs > config.block.maxTtlMs) r.problems.push('BLOCK_TTL: longer than BLOCK_MAX_TTL');
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
  r.check('ALLOWLIST', () => {
    const extra = r.list('ALLOWLIST');
    parseCidrList(extra);
    config.ipPolicy.allowlist = [...config.ipPolicy.allowlist, ...extra];
  });
  config.ipPolicy.allowPrivate = r.bool('ALLOW_PRIVATE', false);
  config.ipPolicy.maxPrefixV4 = r.int('MAX_PREFIX_V4', config.ipPolicy.maxPrefixV4, 8, 32);
  config.ipPolicy.maxPrefixV6 = r.int('MAX_PREFIX_V6', config.ipPolicy.maxPrefixV6, 16, 128);

  r.check('BLOCK_SOURCE_METHODS', () => validateIntakePolicy(config.intake));
  r.check('ALLOWLIST / MAX_PREFIX_*', () => assertValidIpPolicy(config.ipPolicy));
  config.targets = readTargets(r, emulator);
  // Never block the firewalls themselves: their management addresses join the allowlist.
  for (const t of config.targets) {
    const host = t.url ? new URL(t.url).hostname.replace(/^\[|\]$/g, '') : undefined;
    if (host && /^[0-9a-f.:]+$/i.test(host)) config.ipPolicy.allowlist = [...config.ipPolicy.allowlist, host];
  }
  if (r.problems.length) throw new ConfigError(r.problems);
  return { config, generatedSecrets: generated.filter((n) => n !== 'FORTIOS_EMULATOR_TOKEN') };
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

function readTargets(r: Reader, emulator: Config['emulator']): TargetConfig[] {
  const file = r.opt('TARGETS_FILE');
  if (file) {
    try {
      const text = readFileSync(file, 'utf8');
      const parsed = targetFileSchema.parse(file.endsWith('.json') ? JSON.parse(text) : parseYaml(text));
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
  if (url) r.check('FORTIGATE_URL', () => void new URL(url));
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
      caFile: r.opt('FORTIGATE_CA_FILE'),
      tlsInsecure: r.bool('FORTIGATE_TLS_INSECURE', false),
    },
  ];
}
