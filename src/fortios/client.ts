/**
 * FortiOS REST client on an undici Pool (keep-alive). Each method is one API call with no retries of its
 * own: callers retry on `isRetryable(err)` (Temporal retry policies) so that retries stay visible and
 * bounded. Idempotent helpers (`ensureAddress`, `deleteAddress`, `addGroupMember`, ...) turn the
 * "already done" answers of FortiOS (-5 duplicate, 404) into normal results.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { FortiOSError, describeHttpFailure, kindOfFortiError, kindOfHttpStatus, transportError } from './errors';
import { parseFeedEntry } from './feed-entry';
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
export interface LocalInPolicy {
  policyid: number;
  srcaddr: string[];
  dstaddr: string[];
  action: string;
  status?: string;
  intf?: string | string[];
}

/** A threat feed (`system/external-resource`); `updateMethod` is absent before FortiOS 7.2.1. */
export interface ExternalResource {
  name: string;
  type: string;
  updateMethod?: 'feed' | 'push';
  status: string;
  resource: string;
  /** Minutes. */
  refreshRate: number;
  comments: string;
}
export type FeedCommand = 'add' | 'remove' | 'snapshot';
export interface FeedPush {
  name: string;
  command: FeedCommand;
  entries: string[];
}
export interface FeedEntry {
  /** As pushed or as listed in the file. */
  entry: string;
  valid: boolean;
  /** Cut by the device's entry limit: listed, not enforced (emulator field; absent on a real device = false). */
  overflow: boolean;
}
export interface FeedEntries {
  entries: FeedEntry[];
  validCount: number;
  invalidCount: number;
  /** Some entries are cut by the entry limit. */
  overflow: boolean;
  /** Emulator counts (a real device answers none: undefined). */
  buildableCount?: number;
  overflowCount?: number;
}
export type PolicyTable = 'local-in-policy' | 'local-in-policy6' | 'policy';
/** A local-in or firewall policy; srcaddr6/dstaddr6 exist in firewall/policy only (else []). */
export interface FirewallPolicy {
  table: PolicyTable;
  policyid: number;
  name?: string;
  srcaddr: string[];
  dstaddr: string[];
  srcaddr6: string[];
  dstaddr6: string[];
  action: string;
  status?: string;
}
export interface DenyPolicyMatch {
  table: PolicyTable;
  policyid: number;
  /** From the name the policy references down to the name asked about (length 1: referenced directly). */
  via: string[];
}

/**
 * Entries per push request and IPs per banned-list request: 10,000 entries is about 0.2 MB of JSON for
 * IPv4 and at most 0.85 MB for IPv6 ranges, under the 1 MiB body the emulator accepts (FortiOS's own limit
 * is not documented) and small enough that one request stays well within the client timeout.
 */
export const PUSH_CHUNK = 10_000;

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
const EXTERNAL_RESOURCE = '/api/v2/cmdb/system/external-resource';
const FEED_MONITOR = '/api/v2/monitor/system/external-resource';

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

  /**
   * Creates the address, or accepts an existing one with the same network; another network is a conflict.
   * `seen` receives the existing object (its comment, say) so that the caller need not read it again.
   */
  async ensureAddress(
    family: AddressFamily,
    a: { name: string; subnet: string; comment?: string },
    seen?: (existing: FortiAddress) => void,
  ): Promise<'created' | 'exists'> {
    const wanted = requirePrefix(family, a.subnet, 'POST', `${CMDB}/${TABLES[family].address}`);
    // A duplicate whose object vanished before our GET (a concurrent delete) deserves one more create.
    for (let attempt = 1; ; attempt++) {
      if (await this.createUnlessDuplicate(family, a)) return 'created';
      const existing = await this.getAddress(family, a.name);
      if (existing) {
        const r = matchExisting(existing, wanted, this.objectPath('GET', TABLES[family].address, a.name));
        seen?.(existing);
        return r;
      }
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
    return toGroup(family, raw);
  }

  /**
   * Several groups in one table GET (`filter=name==a,name==b`: commas OR inside one filter): the shards of a
   * set cost one read per commit instead of one each. A group that does not exist is absent from the map.
   * Names holding a comma cannot go in a filter: those are read one by one.
   */
  async getGroups(family: AddressFamily, groupNames: string[]): Promise<Map<string, FortiGroup>> {
    const out = new Map<string, FortiGroup>();
    const plain = groupNames.filter((n) => !n.includes(','));
    for (const n of groupNames.filter((x) => x.includes(','))) {
      const g = await this.getGroup(family, n);
      if (g) out.set(n, g);
    }
    if (plain.length === 0) return out;
    if (plain.length === 1) {
      const g = await this.getGroup(family, plain[0]);
      if (g) out.set(plain[0], g);
      return out;
    }
    const path = `${CMDB}/${TABLES[family].group}`;
    const env = await this.call('GET', path, { filter: plain.map((n) => `name==${n}`).join(',') });
    // `==` matches case-insensitively; FortiOS names are unique regardless of case, so take the row by its own name.
    const byLower = new Map(resultList(env, 'GET', path).map((raw) => [String(raw.name).toLowerCase(), raw] as const));
    for (const n of plain) {
      const raw = byLower.get(n.toLowerCase());
      if (raw) out.set(n, toGroup(family, raw));
    }
    return out;
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

  /**
   * Adds IPs to the banned (quarantine) list; expirySeconds 0 means until cleared. Re-adding an IP sets its
   * expiry anew. Sent in requests of at most PUSH_CHUNK IPs, all validated before the first one.
   */
  async bannedAdd(ips: string[], expirySeconds: number): Promise<void> {
    const path = `${BANNED}/add_users`;
    if (!Number.isInteger(expirySeconds) || expirySeconds < 0) {
      throw validation('POST', path, `expiry must be a non-negative integer, got ${expirySeconds}`);
    }
    requireIps(ips, 'POST', path);
    for (const chunk of chunks(ips, PUSH_CHUNK)) await this.call('POST', path, {}, { ip_addresses: chunk, expiry: expirySeconds });
  }

  async bannedClear(ips: string[]): Promise<void> {
    const path = `${BANNED}/clear_users`;
    requireIps(ips, 'POST', path);
    for (const chunk of chunks(ips, PUSH_CHUNK)) await this.call('POST', path, {}, { ip_addresses: chunk });
  }

  /** Empties the whole banned list, entries of other origins included. */
  async bannedClearAll(): Promise<void> {
    await this.call('POST', `${BANNED}/clear_all`);
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

  /** Every address group of the family (members as names). */
  async listGroups(family: AddressFamily): Promise<FortiGroup[]> {
    const path = `${CMDB}/${TABLES[family].group}`;
    return resultList(await this.call('GET', path), 'GET', path).map((raw) => toGroup(family, raw));
  }

  /** A threat feed, or undefined when absent. */
  async externalResource(name: string): Promise<ExternalResource | undefined> {
    const path = `${EXTERNAL_RESOURCE}/${encodeMkey(requireName(name, 'GET', EXTERNAL_RESOURCE))}`;
    const env = await this.callOrUndefined('GET', path);
    if (!env) return undefined;
    const [raw] = resultList(env, 'GET', path);
    if (!raw) throw badResponse('GET', path, 'empty results');
    const method = raw['update-method'];
    return {
      name: String(raw.name),
      type: String(raw.type),
      ...(method === 'feed' || method === 'push' ? { updateMethod: method } : {}),
      status: String(raw.status),
      resource: optionalString(raw.resource) ?? '',
      refreshRate: Number(raw['refresh-rate']),
      comments: optionalString(raw.comments) ?? '',
    };
  }

  /**
   * One push request carrying several commands, applied in order by the device (FortiOS 7.2.1+). All
   * entries are validated first; more than PUSH_CHUNK entries in one request is refused (use pushFeed).
   */
  async pushFeedCommands(commands: FeedPush[]): Promise<void> {
    const path = `${FEED_MONITOR}/dynamic`;
    if (commands.length === 0) return;
    for (const c of commands) requireFeedEntries(c.entries, path);
    const total = commands.reduce((n, c) => n + c.entries.length, 0);
    if (total > PUSH_CHUNK) throw validation('POST', path, `${total} entries in one request, at most ${PUSH_CHUNK}`);
    const body = { commands: commands.map((c) => ({ name: requireName(c.name, 'POST', path), command: c.command, entries: c.entries })) };
    await this.call('POST', path, {}, body);
  }

  /**
   * Pushes to a push feed in requests of at most `chunkSize` (default PUSH_CHUNK) entries. add and remove
   * are split freely. A snapshot that fits one request is sent as one (atomic on the device); a larger one
   * is applied as a difference against the current list (`feedEntries`): adds of the missing entries
   * first, then removes of the extra ones, so that an entry present before and after is never lifted on
   * the way. Every entry is validated before the first request.
   */
  async pushFeed(
    name: string,
    command: FeedCommand,
    entries: string[],
    opts: { chunkSize?: number } = {},
  ): Promise<{ requests: number }> {
    const path = `${FEED_MONITOR}/dynamic`;
    const size = opts.chunkSize ?? PUSH_CHUNK;
    if (!Number.isInteger(size) || size < 1 || size > PUSH_CHUNK) {
      throw validation('POST', path, `chunkSize must be an integer in 1..${PUSH_CHUNK}`);
    }
    requireFeedEntries(entries, path);
    if (command === 'snapshot' && entries.length <= size) {
      await this.pushFeedCommands([{ name, command, entries }]);
      return { requests: 1 };
    }
    let add = entries;
    let remove: string[] = [];
    let requests = 0;
    if (command === 'snapshot') {
      const current = (await this.feedEntries(name)).entries.filter((e) => e.valid).map((e) => e.entry);
      requests++;
      const keyOf = (e: string) => parseFeedEntry(e)?.key ?? e;
      const have = new Set(current.map(keyOf));
      const want = new Set(entries.map(keyOf));
      add = entries.filter((e) => !have.has(keyOf(e)));
      remove = current.filter((e) => !want.has(keyOf(e)));
    } else if (command === 'remove') {
      [add, remove] = [[], entries];
    }
    for (const chunk of chunks(add, size)) {
      await this.pushFeedCommands([{ name, command: 'add', entries: chunk }]);
      requests++;
    }
    for (const chunk of chunks(remove, size)) {
      await this.pushFeedCommands([{ name, command: 'remove', entries: chunk }]);
      requests++;
    }
    return { requests };
  }

  /**
   * The feed's entries (`entry-list`, whole list: FortiOS documents no paging; 100,000 entries are about
   * 3.5 MB of JSON). `entry` narrows to the entries equal to or containing an address.
   */
  async feedEntries(name: string, opts: { entry?: string } = {}): Promise<FeedEntries> {
    const path = `${FEED_MONITOR}/entry-list`;
    const env = await this.call('GET', path, { mkey: requireName(name, 'GET', path), ...(opts.entry ? { entry: opts.entry } : {}) });
    const results = asRecord(env.results);
    if (!Array.isArray(results.entries)) throw badResponse('GET', path, '`results.entries` is not an array');
    return {
      ...feedCounts(results),
      entries: results.entries.map(asRecord).map((e) => ({ entry: String(e.entry), valid: e.valid !== false, overflow: e.overflow === true })),
    };
  }

  /** The counts of the feed only (`counts_only`), without the list. */
  async feedCounts(name: string): Promise<Omit<FeedEntries, 'entries'>> {
    const path = `${FEED_MONITOR}/entry-list`;
    const env = await this.call('GET', path, { mkey: requireName(name, 'GET', path), counts_only: 'true' });
    return feedCounts(asRecord(env.results));
  }

  /** The policies of one table, IPv4 and IPv6 sources apart. */
  async listPolicies(table: PolicyTable): Promise<FirewallPolicy[]> {
    const path = `${CMDB}/${table}`;
    return resultList(await this.call('GET', path), 'GET', path).map((raw) => ({
      table,
      policyid: Number(raw.policyid),
      ...(typeof raw.name === 'string' && raw.name !== '' ? { name: raw.name } : {}),
      srcaddr: names(raw.srcaddr),
      dstaddr: names(raw.dstaddr),
      srcaddr6: names(raw.srcaddr6),
      dstaddr6: names(raw.dstaddr6),
      action: String(raw.action),
      ...(typeof raw.status === 'string' ? { status: raw.status } : {}),
    }));
  }

  /**
   * Enabled deny policies whose source references `name` (an address, a group or a feed), directly or,
   * with `throughGroups` (default true), through groups that contain it at any depth. A table the device
   * does not have (404) is skipped. The start-up check of an enforcement backend: an empty answer means
   * nothing the backend writes would be enforced.
   */
  async findDenyPolicies(
    name: string,
    opts: { tables?: PolicyTable[]; throughGroups?: boolean } = {},
  ): Promise<DenyPolicyMatch[]> {
    const tables = opts.tables ?? ['local-in-policy', 'local-in-policy6', 'policy'];
    const chains = { ipv4: new Map([[name, [name]]]), ipv6: new Map([[name, [name]]]) };
    if (opts.throughGroups !== false) {
      for (const family of ['ipv4', 'ipv6'] as const) chains[family] = ancestorChains(name, await this.listGroups(family));
    }
    const matches: DenyPolicyMatch[] = [];
    for (const table of tables) {
      let policies: FirewallPolicy[];
      try {
        policies = await this.listPolicies(table);
      } catch (err) {
        if (err instanceof FortiOSError && err.kind === 'not-found' && err.status === 404) continue;
        throw err;
      }
      for (const p of policies) {
        if (p.action !== 'deny' || (p.status !== undefined && p.status !== 'enable')) continue;
        const sources: [string[], Map<string, string[]>][] =
          table === 'policy' ? [[p.srcaddr, chains.ipv4], [p.srcaddr6, chains.ipv6]] : [[p.srcaddr, chains[table === 'local-in-policy' ? 'ipv4' : 'ipv6']]];
        const via = sources.flatMap(([src, chain]) => src.filter((n) => chain.has(n)).map((n) => chain.get(n)!));
        const shortest = via.sort((a, b) => a.length - b.length)[0];
        if (shortest) matches.push({ table, policyid: p.policyid, via: shortest });
      }
    }
    return matches;
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

function requireFeedEntries(entries: string[], path: string): void {
  const bad = entries.find((e) => typeof e !== 'string' || !parseFeedEntry(e));
  if (bad !== undefined) throw validation('POST', path, `invalid feed entry ${JSON.stringify(bad)}`);
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function feedCounts(results: Record<string, unknown>): Omit<FeedEntries, 'entries'> {
  const optionalNumber = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const buildable = optionalNumber(results.buildable_count);
  const overflowCount = optionalNumber(results.overflow_count);
  return {
    validCount: Number(results.valid_count ?? 0),
    invalidCount: Number(results.invalid_count ?? 0),
    overflow: results.overflow === true,
    ...(buildable === undefined ? {} : { buildableCount: buildable }),
    ...(overflowCount === undefined ? {} : { overflowCount }),
  };
}

/**
 * For `name` and every group containing it at any depth: the chain from that group down to `name`
 * (shortest first found, breadth-first upwards).
 */
function ancestorChains(name: string, groups: FortiGroup[]): Map<string, string[]> {
  const chains = new Map<string, string[]>([[name, [name]]]);
  const queue = [name];
  while (queue.length > 0) {
    const child = queue.shift()!;
    for (const g of groups) {
      if (!chains.has(g.name) && g.members.includes(child)) {
        chains.set(g.name, [g.name, ...chains.get(child)!]);
        queue.push(g.name);
      }
    }
  }
  return chains;
}

function toGroup(family: AddressFamily, raw: Record<string, unknown>): FortiGroup {
  return { name: String(raw.name), family, members: names(raw.member) };
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
