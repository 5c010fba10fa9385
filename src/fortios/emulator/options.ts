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
  /** Accept groups with no member; default: true from 7.2.0 on, as real FortiOS. */
  allowEmptyGroup?: boolean;
  /** Include `"error": -3` in 404 bodies; default: true from 7.0 on (6.2.3 capture has none). */
  notFoundErrorCode?: boolean;
  /** Groups seeded holding `none`, referenced by a seeded deny local-in policy per family. */
  groups?: { ipv4: string[]; ipv6: string[] };
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
  allowEmptyGroup: boolean;
  notFoundErrorCode: boolean;
  groups: { ipv4: readonly string[]; ipv6: readonly string[] };
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
    allowEmptyGroup: o.allowEmptyGroup ?? atLeast(7, 2, 0),
    notFoundErrorCode: o.notFoundErrorCode ?? atLeast(7, 0, 0),
    groups: o.groups ?? { ipv4: ['ads-blocked'], ipv6: ['ads-blocked6'] },
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
