/**
 * Options of the emulator and their resolution into one immutable config. Behaviours the reference marks
 * UNCERTAIN are switches here; their defaults are listed in server.ts's header.
 */
import { randomBytes } from 'node:crypto';
import { FortiErrorCode } from '../error-codes';
import { Prefix, parsePrefix } from '../subnet';
import { FaultSettings } from './faults';

export interface EmulatorOptions {
  host?: string;
  /** 0 = a free port. */
  port?: number;
  /** The accepted read-write token; generated when absent. */
  token?: string;
  readOnlyTokens?: string[];
  /** Sources allowed to use the API (and the admin routes); default loopback only. */
  trustedHosts?: string[];
  /** FortiOS version mimicked, "v<major>.<minor>.<patch>" (the "v" optional); default DEFAULT_VERSION. */
  version?: string;
  /** The single VDOM the emulated device has; default "root". */
  vdom?: string;
  groupMemberLimit?: number;
  /** Member limit of addrgrp6 (the 6.4.14 swagger gives none); default groupMemberLimit. */
  group6MemberLimit?: number;
  /** Accept groups with no member; default: true from 7.2.0 on, as real FortiOS. */
  allowEmptyGroup?: boolean;
  /** Include `"error": -3` in 404 bodies; default: true from 7.0 on (6.2.3 capture has none). */
  notFoundErrorCode?: boolean;
  /** Groups seeded holding `none`, referenced by a seeded deny local-in policy per family. */
  groups?: { ipv4: string[]; ipv6: string[] };
  /** Threat feeds (external resources of type address) seeded and referenced by the seeded deny policy. */
  feeds?: FeedSeed[];
  /**
   * Where the seeded deny policy (id 1) lives: 'local-in' (local-in-policy and local-in-policy6, the default;
   * feeds there need 7.2.4+, as on FortiOS), 'policy' (firewall/policy, srcaddr + srcaddr6, any version) or
   * 'none'.
   */
  denyPolicy?: 'local-in' | 'policy' | 'none';
  /** Entries per feed before 7.4.4 ("128K"); default 131072. */
  feedEntryLimit?: number;
  /** IP entries across all feeds from 7.4.4 on (model class); default 300000. */
  feedGlobalLimit?: number;
  /** Which limit applies; default 'global' from 7.4.4 on, 'per-feed' before. */
  feedLimitScope?: 'per-feed' | 'global';
  /** How often pull feeds are checked for a due refresh, ms; 0 = only on POST /__emulator/external-resource/refresh. */
  feedPollMs?: number;
  /** Timeout of one pull-feed download, ms; default 10000. */
  feedFetchTimeoutMs?: number;
  /** Largest pull-feed file accepted, bytes; default 10 MiB (the pre-7.4.4 per-file limit). */
  feedMaxBytes?: number;
  lockoutThreshold?: number;
  lockoutDurationMs?: number;
  /** Accept `?access_token=` (FortiOS `rest-api-key-url-query`); default false as since 7.4.5. */
  restApiKeyUrlQuery?: boolean;
  /** JSON persistence: loaded at start, saved (debounced) after writes. */
  stateFile?: string;
  tls?: { cert: string; key: string };
  /** Clock for banned-IP expiry, lock-outs and outages. */
  now?: () => number;
  /** Random source of fault draws and jitter. */
  random?: () => number;
  faults?: Partial<FaultSettings>;
  /** DELETE on a table path: 405 (swagger) or purge unreferenced entries (one field report). */
  tableDelete?: 'reject' | 'purge';
  /** The same member twice in one group write: -5 error, or silently keep one. */
  duplicateMembers?: 'reject' | 'dedupe';
  /** Store "10.0.0.5/24" as 10.0.0.0 (host bits cleared) instead of as given. */
  zeroHostBits?: boolean;
  /** Error number when an address and a group would share a name; default -163. */
  sharedNamespaceError?: number;
  /** local-in-policy `intf` as a [{name}] table; default: from 7.4.2 on (Ansible schema). */
  intfAsList?: boolean;
}

export interface EmulatorConfig {
  host: string;
  port: number;
  token: string;
  readOnlyTokens: readonly string[];
  trustedHosts: readonly Prefix[];
  version: string;
  major: number;
  build: number;
  serial: string;
  vdom: string;
  groupMemberLimit: number;
  group6MemberLimit: number;
  allowEmptyGroup: boolean;
  notFoundErrorCode: boolean;
  groups: { ipv4: readonly string[]; ipv6: readonly string[] };
  feeds: readonly FeedSeed[];
  denyPolicy: 'local-in' | 'policy' | 'none';
  feedEntryLimit: number;
  feedGlobalLimit: number;
  feedLimitScope: 'per-feed' | 'global';
  feedPollMs: number;
  feedFetchTimeoutMs: number;
  feedMaxBytes: number;
  /** `update-method push` and the dynamic push API exist (7.2.1+). */
  pushFeeds: boolean;
  /** External resources may be referenced by local-in policies (7.2.4+ / 7.4.0+). */
  feedInLocalIn: boolean;
  /** External resource type `mac-address` exists (7.4.0+). */
  macAddressFeeds: boolean;
  lockoutThreshold: number;
  lockoutDurationMs: number;
  restApiKeyUrlQuery: boolean;
  stateFile?: string;
  tls?: { cert: string; key: string };
  now: () => number;
  random: () => number;
  tableDelete: 'reject' | 'purge';
  duplicateMembers: 'reject' | 'dedupe';
  zeroHostBits: boolean;
  sharedNamespaceError: number;
  intfAsList: boolean;
}

/** Builds of the versions seen in real captures; others get a plausible placeholder. */
const KNOWN_BUILDS: Record<string, number> = {
  'v6.2.3': 1066,
  'v6.2.4': 1112,
  'v6.4.8': 1914,
  'v7.0.15': 632,
  'v7.2.5': 1517,
  'v7.4.2': 2484,
};

export const DEFAULT_VERSION = 'v7.0.15';

/** A threat feed created at start (type address); `entries` fill a push feed. */
export interface FeedSeed {
  name: string;
  /** Default 'push' (7.2.1+). */
  updateMethod?: 'push' | 'feed';
  resource?: string;
  /** Minutes, default 5. */
  refreshRate?: number;
  username?: string;
  password?: string;
  entries?: string[];
}

export function resolveOptions(o: EmulatorOptions): EmulatorConfig {
  const [major, minor, patch] = parseVersion(o.version ?? DEFAULT_VERSION);
  const version = `v${major}.${minor}.${patch}`;
  const atLeast = (ma: number, mi: number, pa: number) =>
    major !== ma ? major > ma : minor !== mi ? minor > mi : patch >= pa;
  return {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    token: o.token ?? randomBytes(15).toString('hex'),
    readOnlyTokens: o.readOnlyTokens ?? [],
    trustedHosts: (o.trustedHosts ?? ['127.0.0.0/8', '::1/128']).map(parseTrustedHost),
    version,
    major,
    build: KNOWN_BUILDS[version] ?? 1000 + minor * 100 + patch,
    serial: 'FGVMEVEMULATOR01',
    vdom: o.vdom ?? 'root',
    groupMemberLimit: positiveInt('groupMemberLimit', o.groupMemberLimit ?? 600),
    group6MemberLimit: positiveInt('group6MemberLimit', o.group6MemberLimit ?? o.groupMemberLimit ?? 600),
    allowEmptyGroup: o.allowEmptyGroup ?? atLeast(7, 2, 0),
    notFoundErrorCode: o.notFoundErrorCode ?? atLeast(7, 0, 0),
    groups: o.groups ?? { ipv4: ['ads-blocked'], ipv6: ['ads-blocked6'] },
    feeds: o.feeds ?? [],
    denyPolicy: o.denyPolicy ?? 'local-in',
    // "128K entries" (Fortinet KB 378964); whether K is 1000 or 1024 is UNCERTAIN: 1024 chosen.
    feedEntryLimit: positiveInt('feedEntryLimit', o.feedEntryLimit ?? 131_072),
    feedGlobalLimit: positiveInt('feedGlobalLimit', o.feedGlobalLimit ?? 300_000),
    feedLimitScope: o.feedLimitScope ?? (atLeast(7, 4, 4) ? 'global' : 'per-feed'),
    feedPollMs: o.feedPollMs ?? 1000,
    feedFetchTimeoutMs: positiveInt('feedFetchTimeoutMs', o.feedFetchTimeoutMs ?? 10_000),
    feedMaxBytes: positiveInt('feedMaxBytes', o.feedMaxBytes ?? 10 * 1024 * 1024),
    pushFeeds: atLeast(7, 2, 1),
    feedInLocalIn: atLeast(7, 2, 4),
    macAddressFeeds: atLeast(7, 4, 0),
    lockoutThreshold: positiveInt('lockoutThreshold', o.lockoutThreshold ?? 3),
    lockoutDurationMs: o.lockoutDurationMs ?? 60_000,
    restApiKeyUrlQuery: o.restApiKeyUrlQuery ?? false,
    stateFile: o.stateFile,
    tls: o.tls,
    now: o.now ?? Date.now,
    random: o.random ?? Math.random,
    tableDelete: o.tableDelete ?? 'reject',
    duplicateMembers: o.duplicateMembers ?? 'reject',
    zeroHostBits: o.zeroHostBits ?? false,
    sharedNamespaceError: o.sharedNamespaceError ?? FortiErrorCode.AddressGroupSameName,
    intfAsList: o.intfAsList ?? atLeast(7, 4, 2),
  };
}

function parseVersion(version: string): [number, number, number] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new Error(`emulator version must look like v7.0.15, got ${JSON.stringify(version)}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function parseTrustedHost(cidr: string): Prefix {
  const family = cidr.includes(':') ? 'ipv6' : 'ipv4';
  const parsed = parsePrefix(family, cidr);
  if (!parsed.ok) throw new Error(`invalid trusted host ${JSON.stringify(cidr)}`);
  return parsed.prefix;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  return value;
}
