/**
 * FortiOS REST client on an undici Pool (keep-alive). Each method is one API call with no retries of its
 * own: callers retry on `isRetryable(err)` (Temporal retry policies) so that retries stay visible and
 * bounded. Idempotent helpers (`ensureAddress`, `deleteAddress`, `addGroupMember`, ...) turn the
 * "already done" answers of FortiOS (-5 duplicate, 404) into normal results.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { FortiOSError, describeHttpFailure, kindOfFortiError, kindOfHttpStatus, transportError } from './errors';
import { AddressFamily, Prefix, formatCidr, formatIpMask, parseAddress, parsePrefix, sameNetwork } from './subnet';

export type { AddressFamily } from './subnet';
export { FortiOSError, isRetryable } from './errors';
export type { FortiOSErrorKind } from './errors';

export interface FortiOSClientOptions {
  baseUrl: string;
  /** Sent only as `Authorization: Bearer`; never logged, never in a URL or an error message. */
  token: string;
  vdom?: string;
  caFile?: string;
  insecure?: boolean;
  /** Whole request (connect, headers and body), default 10000. */
  timeoutMs?: number;
  connections?: number;
}

export interface FortiAddress {
  name: string;
  family: AddressFamily;
  /** Normalised CIDR, e.g. "203.0.113.7/32" or "2001:db8::1/128". */
  subnet: string;
  comment: string;
}
export interface FortiGroup {
  name: string;
  family: AddressFamily;
  members: string[];
}
export interface SystemStatus {
  version: string;
  build: number;
  serial: string;
  hostname?: string;
  model?: string;
}
export interface BannedEntry {
  ip: string;
  created: number;
  expires?: number;
  source?: string;
}
export interface ExternalResource {
  name: string;
  type: string;
  updateMethod?: string;
  status?: string;
}
export interface FeedCommand {
  name: string;
  command: 'add' | 'remove' | 'snapshot';
  entries: string[];
}
export interface LocalInPolicy {
  policyid: number;
  srcaddr: string[];
  dstaddr: string[];
  action: string;
  status?: string;
  intf?: string | string[];
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Query = Record<string, string>;

/** The parts of a FortiOS reply this client reads. */
interface Envelope {
  status?: unknown;
  error?: unknown;
  cli_error?: unknown;
  results?: unknown;
  version?: unknown;
  build?: unknown;
  serial?: unknown;
}

const TABLES = {
  ipv4: { address: 'address', group: 'addrgrp', localIn: 'local-in-policy' },
  ipv6: { address: 'address6', group: 'addrgrp6', localIn: 'local-in-policy6' },
} as const;

const CMDB = '/api/v2/cmdb/firewall';
const BANNED = '/api/v2/monitor/user/banned';
const MONITOR_EXT = '/api/v2/monitor/system/external-resource';

/**
 * Percent-encodes an mkey with no safe characters (like Python's quote(safe='')), so that "/", "?", "#",
 * spaces and sub-delims survive as one path segment.
 */
function encodeMkey(name: string): string {
  return encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * An empty name would address the whole table (a DELETE there purged objects on a real box) and "." or
 * ".." may be collapsed into the parent path by URL normalisation: refuse them before any request.
 */
function requireName(name: string, method: Method, path: string): string {
  if (name === '' || name === '.' || name === '..') throw validation(method, path, `refusing object name ${JSON.stringify(name)}`);
  return name;
}

export class FortiOSClient {
  readonly #authorization: string;
  private readonly pool: Pool;
  private readonly vdom: string;
  private readonly timeoutMs: number;
  /** 7.x serves the banned list at `user/banned`, older builds at `user/banned/select`; learnt on first use. */
  private bannedListPath = BANNED;

  constructor(opts: FortiOSClientOptions) {
    const url = new URL(opts.baseUrl);
    if (url.pathname !== '/' || url.search !== '' || url.username !== '') {
      throw new Error('baseUrl must be scheme://host[:port] without path, query or credentials');
    }
    this.#authorization = `Bearer ${opts.token}`;
    this.vdom = opts.vdom ?? 'root';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.pool = new Pool(url.origin, {
      connections: opts.connections ?? 10,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: {
        timeout: this.timeoutMs,
        rejectUnauthorized: opts.insecure !== true,
        ...(opts.caFile ? { ca: readFileSync(opts.caFile, 'utf8') } : {}),
      },
    });
  }

  async systemStatus(): Promise<SystemStatus> {
    const path = '/api/v2/monitor/system/status';
    const env = await this.call('GET', path);
    const results = asRecord(env.results);
    if (typeof env.version !== 'string' || typeof env.build !== 'number' || typeof env.serial !== 'string') {
      throw badResponse('GET', path, 'status reply lacks version/build/serial');
    }
    return {
      version: env.version,
      build: env.build,
      serial: env.serial,
      hostname: optionalString(results.hostname),
      model: optionalString(results.model),
    };
  }

  async getAddress(family: AddressFamily, name: string): Promise<FortiAddress | undefined> {
    const path = this.objectPath('GET', TABLES[family].address, name);
    const env = await this.callOrUndefined('GET', path);
    if (!env) return undefined;
    const [raw] = resultList(env, 'GET', path);
    const address = raw && toFortiAddress(family, raw);
    if (!address) throw new FortiOSError({ kind: 'conflict', method: 'GET', path, detail: 'not an ip/prefix address object' });
    return address;
  }

  /** Subnet-type objects only; other address types (fqdn, range, ...) are not ours and are skipped. */
  async listAddresses(family: AddressFamily, opts: { namePrefix?: string } = {}): Promise<FortiAddress[]> {
    const path = `${CMDB}/${TABLES[family].address}`;
    const prefix = opts.namePrefix;
    // FortiOS filters offer "contains" (=@) but no "starts with": narrow on the device, finish here.
    const env = await this.call('GET', path, prefix ? { filter: `name=@${prefix}` } : {});
    return resultList(env, 'GET', path)
      .map((raw) => toFortiAddress(family, raw))
      .filter((a): a is FortiAddress => a !== undefined && (prefix === undefined || a.name.startsWith(prefix)));
  }

  async createAddress(family: AddressFamily, a: { name: string; subnet: string; comment?: string }): Promise<void> {
    const path = `${CMDB}/${TABLES[family].address}`;
    const prefix = requirePrefix(family, a.subnet, 'POST', path);
    // Always send the subnet: FortiOS defaults an omitted one to 0.0.0.0/0, i.e. "any".
    const body =
      family === 'ipv4'
        ? { name: a.name, type: 'ipmask', subnet: formatIpMask(prefix) }
        : { name: a.name, type: 'ipprefix', ip6: formatCidr(prefix) };
    await this.call('POST', path, {}, a.comment === undefined ? body : { ...body, comment: a.comment });
  }

  /** Creates the address, or accepts an existing one with the same network; another network is a conflict. */
  async ensureAddress(
    family: AddressFamily,
    a: { name: string; subnet: string; comment?: string },
  ): Promise<'created' | 'exists'> {
    const wanted = requirePrefix(family, a.subnet, 'POST', `${CMDB}/${TABLES[family].address}`);
    // A duplicate whose object vanished before our GET (a concurrent delete) deserves one more create.
    for (let attempt = 1; ; attempt++) {
      if (await this.createUnlessDuplicate(family, a)) return 'created';
      const existing = await this.getAddress(family, a.name);
      if (existing) return matchExisting(existing, wanted, this.objectPath('GET', TABLES[family].address, a.name));
      if (attempt === 2) {
        throw new FortiOSError({
          kind: 'server',
          method: 'POST',
          path: `${CMDB}/${TABLES[family].address}`,
          detail: `${a.name} reported as duplicate yet not found`,
        });
      }
    }
  }

  async deleteAddress(family: AddressFamily, name: string): Promise<'deleted' | 'absent'> {
    const env = await this.callOrUndefined('DELETE', this.objectPath('DELETE', TABLES[family].address, name));
    return env ? 'deleted' : 'absent';
  }

  /** Rewrites an address object's comment (our objects carry their block's expiry there). */
  async setAddressComment(family: AddressFamily, name: string, comment: string): Promise<void> {
    await this.call('PUT', this.objectPath('PUT', TABLES[family].address, name), {}, { comment });
  }

  async getGroup(family: AddressFamily, name: string): Promise<FortiGroup | undefined> {
    const path = this.objectPath('GET', TABLES[family].group, name);
    const env = await this.callOrUndefined('GET', path);
    if (!env) return undefined;
    const [raw] = resultList(env, 'GET', path);
    if (!raw) throw badResponse('GET', path, 'empty results');
    return { name: String(raw.name), family, members: names(raw.member) };
  }

  /** Replaces the whole member list (FortiOS PUT has set semantics). */
  async setGroupMembers(family: AddressFamily, group: string, members: string[]): Promise<void> {
    const path = this.objectPath('PUT', TABLES[family].group, group);
    await this.call('PUT', path, {}, { member: members.map((name) => ({ name })) });
  }

  /** Appends through the child table, which avoids the lost update of a read-modify-write PUT. */
  async addGroupMember(family: AddressFamily, group: string, member: string): Promise<'added' | 'present'> {
    const path = this.memberPath('POST', family, group);
    try {
      await this.call('POST', path, {}, { name: requireName(member, 'POST', path) });
      return 'added';
    } catch (err) {
      if (err instanceof FortiOSError && err.kind === 'duplicate') return 'present';
      throw err;
    }
  }

  async removeGroupMember(family: AddressFamily, group: string, member: string): Promise<'removed' | 'absent'> {
    // 404 means the member (or the whole group) is absent: either way it is not a member.
    const path = this.memberPath('DELETE', family, group, member);
    return (await this.callOrUndefined('DELETE', path)) ? 'removed' : 'absent';
  }

  /** Adds IPs to the banned (quarantine) list; expirySeconds 0 means until cleared. */
  async bannedAdd(ips: string[], expirySeconds: number): Promise<void> {
    const path = `${BANNED}/add_users`;
    if (!Number.isInteger(expirySeconds) || expirySeconds < 0) {
      throw validation('POST', path, `expiry must be a non-negative integer, got ${expirySeconds}`);
    }
    if (ips.length === 0) return;
    await this.call('POST', path, {}, { ip_addresses: requireIps(ips, 'POST', path), expiry: expirySeconds });
  }

  async bannedClear(ips: string[]): Promise<void> {
    const path = `${BANNED}/clear_users`;
    if (ips.length === 0) return;
    await this.call('POST', path, {}, { ip_addresses: requireIps(ips, 'POST', path) });
  }

  async bannedList(): Promise<BannedEntry[]> {
    let env = await this.callOrUndefined('GET', this.bannedListPath);
    if (!env && this.bannedListPath === BANNED) {
      this.bannedListPath = `${BANNED}/select`;
      env = await this.call('GET', this.bannedListPath);
    }
    if (!env) throw new FortiOSError({ kind: 'not-found', method: 'GET', path: this.bannedListPath, detail: 'HTTP 404' });
    return resultList(env, 'GET', this.bannedListPath).map(toBannedEntry);
  }

  /** An external resource (threat feed), or undefined. */
  async externalResource(name: string): Promise<ExternalResource | undefined> {
    const path = `/api/v2/cmdb/system/external-resource/${encodeMkey(requireName(name, 'GET', '/api/v2/cmdb/system/external-resource'))}`;
    const env = await this.callOrUndefined('GET', path);
    if (!env) return undefined;
    const [raw] = resultList(env, 'GET', path);
    if (!raw) return undefined;
    return { name: String(raw.name), type: String(raw.type ?? ''), updateMethod: optionalString(raw['update-method']), status: optionalString(raw.status) };
  }

  /** Pushes add / remove / snapshot commands to push-type feeds (FortiOS 7.2.1+). */
  async pushFeed(commands: FeedCommand[]): Promise<void> {
    if (commands.length === 0) return;
    await this.call('POST', `${MONITOR_EXT}/dynamic`, {}, { commands });
  }

  /** The entries a feed holds now. */
  async feedEntries(name: string): Promise<string[]> {
    const path = `${MONITOR_EXT}/entry-list`;
    const env = await this.call('GET', path, { mkey: name });
    return resultList(env, 'GET', path).map((r) => String(r.entry ?? r.ip ?? '')).filter(Boolean);
  }

  /** Local-in policies of the family (IPv4 by default; IPv6 ones live in local-in-policy6). */
  async localInPolicies(family: AddressFamily = 'ipv4'): Promise<LocalInPolicy[]> {
    const path = `${CMDB}/${TABLES[family].localIn}`;
    return resultList(await this.call('GET', path), 'GET', path).map(toLocalInPolicy);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private objectPath(method: Method, table: string, name: string): string {
    const base = `${CMDB}/${table}`;
    return `${base}/${encodeMkey(requireName(name, method, base))}`;
  }

  /** The group's member child table, or one entry of it. */
  private memberPath(method: Method, family: AddressFamily, group: string, member?: string): string {
    const table = `${this.objectPath(method, TABLES[family].group, group)}/member`;
    return member === undefined ? table : `${table}/${encodeMkey(requireName(member, method, table))}`;
  }

  /** True when created, false when FortiOS answered "duplicate". */
  private async createUnlessDuplicate(
    family: AddressFamily,
    a: { name: string; subnet: string; comment?: string },
  ): Promise<boolean> {
    try {
      await this.createAddress(family, a);
      return true;
    } catch (err) {
      if (err instanceof FortiOSError && err.kind === 'duplicate') return false;
      throw err;
    }
  }

  /** Like call(), but a 404 becomes undefined (the object, or child entry, is absent). */
  private async callOrUndefined(method: Method, path: string): Promise<Envelope | undefined> {
    try {
      return await this.call(method, path);
    } catch (err) {
      if (err instanceof FortiOSError && err.kind === 'not-found' && err.status === 404) return undefined;
      throw err;
    }
  }

  private async call(method: Method, path: string, query: Query = {}, body?: unknown): Promise<Envelope> {
    const search = new URLSearchParams({ ...query, vdom: this.vdom });
    const signal = AbortSignal.timeout(this.timeoutMs);
    let status: number;
    let text: string;
    try {
      const res = await this.pool.request({
        method,
        path: `${path}?${search.toString()}`,
        headers: {
          authorization: this.#authorization,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw transportError(err, method, path, signal.aborted);
    }
    return interpretReply(status, text, method, path);
  }
}

/** Turns a status and body into the envelope, or the FortiOSError it stands for. */
function interpretReply(status: number, text: string, method: Method, path: string): Envelope {
  // 401 and 429 come from the web server as HTML pages: only ever parse JSON opportunistically.
  const env = parseJsonObject(text);
  const fortiError = typeof env?.error === 'number' && env.error < 0 ? env.error : undefined;
  const cliError = typeof env?.cli_error === 'string' ? env.cli_error : undefined;
  if (status >= 200 && status < 300) {
    if (!env) {
      throw new FortiOSError({ kind: 'bad-response', method, path, status, detail: `HTTP ${status} with a body that is not a JSON object` });
    }
    if (env.status === 'success') return env;
  }
  const httpKind = kindOfHttpStatus(status);
  // The error number decides among application failures; auth, lock-out and 404 are decided by status.
  const kind =
    fortiError !== undefined && !['auth', 'rate-limited', 'not-found'].includes(httpKind)
      ? kindOfFortiError(fortiError)
      : status < 300
        ? 'bad-response'
        : httpKind;
  throw new FortiOSError({ kind, method, path, status, fortiError, cliError, detail: describeHttpFailure(status, fortiError, cliError) });
}

function parseJsonObject(text: string): Envelope | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Envelope) : undefined;
  } catch {
    return undefined;
  }
}

function resultList(env: Envelope, method: Method, path: string): Record<string, unknown>[] {
  if (!Array.isArray(env.results)) throw badResponse(method, path, '`results` is not an array');
  return env.results.map(asRecord);
}

function toFortiAddress(family: AddressFamily, raw: Record<string, unknown>): FortiAddress | undefined {
  const text = family === 'ipv4' ? raw.subnet : raw.ip6;
  const type = raw.type ?? (family === 'ipv4' ? 'ipmask' : 'ipprefix');
  if (typeof text !== 'string' || type !== (family === 'ipv4' ? 'ipmask' : 'ipprefix')) return undefined;
  const parsed = parsePrefix(family, text);
  if (!parsed.ok) return undefined;
  return { name: String(raw.name), family, subnet: formatCidr(parsed.prefix), comment: optionalString(raw.comment) ?? '' };
}

function matchExisting(existing: FortiAddress, wanted: Prefix, path: string): 'exists' {
  const have = parsePrefix(existing.family, existing.subnet);
  if (have.ok && sameNetwork(have.prefix, wanted)) return 'exists';
  throw new FortiOSError({
    kind: 'conflict',
    method: 'GET',
    path,
    detail: `exists with subnet ${existing.subnet}, wanted ${formatCidr(wanted)}`,
  });
}

function toBannedEntry(raw: Record<string, unknown>): BannedEntry {
  const text = String(raw.ip_address);
  // Normalise so that "0000:...:0001" from the device compares equal to what we sent.
  const address = parseAddress('ipv4', text) ?? parseAddress('ipv6', text);
  return {
    ip: address ? address.toString() : text,
    created: Number(raw.created),
    ...(typeof raw.expires === 'number' ? { expires: raw.expires } : {}),
    ...(typeof raw.source === 'string' ? { source: raw.source } : {}),
  };
}

function toLocalInPolicy(raw: Record<string, unknown>): LocalInPolicy {
  // intf is a string up to 7.4.1 and a [{name}] table afterwards.
  const intf = Array.isArray(raw.intf) ? names(raw.intf) : optionalString(raw.intf);
  return {
    policyid: Number(raw.policyid),
    srcaddr: names(raw.srcaddr),
    dstaddr: names(raw.dstaddr),
    action: String(raw.action),
    ...(typeof raw.status === 'string' ? { status: raw.status } : {}),
    ...(intf === undefined ? {} : { intf }),
  };
}

function requirePrefix(family: AddressFamily, subnet: string, method: Method, path: string): Prefix {
  const parsed = parsePrefix(family, subnet);
  if (!parsed.ok) throw validation(method, path, `invalid ${family} subnet ${JSON.stringify(subnet)}`);
  return parsed.prefix;
}

function requireIps(ips: string[], method: Method, path: string): string[] {
  const bad = ips.find((ip) => !parseAddress('ipv4', ip) && !parseAddress('ipv6', ip));
  if (bad !== undefined) throw validation(method, path, `invalid IP address ${JSON.stringify(bad)}`);
  return ips;
}

function names(table: unknown): string[] {
  return Array.isArray(table) ? table.map((entry) => String(asRecord(entry).name)) : [];
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function validation(method: Method, path: string, detail: string): FortiOSError {
  return new FortiOSError({ kind: 'validation', method, path, detail });
}

function badResponse(method: Method, path: string, detail: string): FortiOSError {
  return new FortiOSError({ kind: 'bad-response', method, path, detail });
}
