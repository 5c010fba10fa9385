/**
 * The emulated device's configuration: per address family the address, address-group and local-in-policy
 * tables, the firewall policies (both families in one table, as since 7.0), the threat feeds (feeds.ts),
 * the banned-IP list, the config revision and request counters. References (group members, policy
 * addresses) are indexed by name so that "is it in use" (-23) and renames are O(referrers).
 * This module enforces no REST rules: cmdb.ts validates, then calls these mutators.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parseFeedEntry } from '../feed-entry';
import { AddressFamily } from '../subnet';
import { FeedSnapshot, FeedStore } from './feeds';
import { EmulatorConfig, FeedSeed } from './options';

export interface AddressEntry {
  name: string;
  uuid: string;
  /** IPv4: "a.b.c.d m.m.m.m"; IPv6: "addr/len". */
  subnet: string;
  comment: string;
  color: number;
}

export interface GroupEntry {
  name: string;
  uuid: string;
  /** Insertion-ordered and O(1) to test. */
  members: Set<string>;
  comment: string;
  color: number;
}

export interface PolicyEntry {
  policyid: number;
  uuid: string;
  intf: string[];
  srcaddr: string[];
  dstaddr: string[];
  action: 'accept' | 'deny';
  service: string[];
  schedule: string;
  status: 'enable' | 'disable';
  comments: string;
}

/** firewall/policy (through traffic): IPv4 and IPv6 addresses in one entry (srcaddr6/dstaddr6, 7.0+). */
export interface FirewallPolicyEntry {
  policyid: number;
  uuid: string;
  name: string;
  srcintf: string[];
  dstintf: string[];
  srcaddr: string[];
  dstaddr: string[];
  srcaddr6: string[];
  dstaddr6: string[];
  action: 'accept' | 'deny';
  service: string[];
  schedule: string;
  status: 'enable' | 'disable';
  comments: string;
}

export interface BannedEntry {
  ip: string;
  ipv6: boolean;
  /** Epoch seconds. */
  created: number;
  /** Epoch seconds; absent = until cleared. */
  expires?: number;
}

const groupRef = (name: string) => `addrgrp:${name}`;
const policyRef = (id: number) => `policy:${id}`;
const firewallPolicyRef = (id: number) => `fwpolicy:${id}`;

/** One family's tables. Addresses and groups share one namespace. */
export class FamilyTables {
  readonly addresses = new Map<string, AddressEntry>();
  readonly groups = new Map<string, GroupEntry>();
  readonly policies = new Map<number, PolicyEntry>();
  /** name -> keys of the groups/policies referring to it. */
  private readonly referrers = new Map<string, Set<string>>();

  constructor(
    readonly family: AddressFamily,
    /** Renames inside referrers kept outside this family's tables (firewall policies). */
    private readonly renameForeign: (ref: string, from: string, to: string) => void = () => {},
  ) {}

  hasName(name: string): boolean {
    return this.addresses.has(name) || this.groups.has(name);
  }

  /** How many entries (groups, policies) refer to the name. */
  usage(name: string): number {
    return this.referrers.get(name)?.size ?? 0;
  }

  putAddress(entry: AddressEntry): void {
    this.addresses.set(entry.name, entry);
  }

  deleteAddress(name: string): void {
    this.addresses.delete(name);
  }

  /** Creates or replaces a group, re-indexing its member references. */
  putGroup(entry: GroupEntry): void {
    const previous = this.groups.get(entry.name);
    if (previous) this.unlink(groupRef(entry.name), previous.members);
    this.groups.set(entry.name, entry);
    this.link(groupRef(entry.name), entry.members);
  }

  deleteGroup(name: string): void {
    const group = this.groups.get(name);
    if (!group) return;
    this.unlink(groupRef(name), group.members);
    this.groups.delete(name);
  }

  addMember(group: GroupEntry, member: string): void {
    group.members.add(member);
    this.link(groupRef(group.name), [member]);
  }

  removeMember(group: GroupEntry, member: string): void {
    group.members.delete(member);
    this.unlink(groupRef(group.name), [member]);
  }

  putPolicy(entry: PolicyEntry): void {
    const previous = this.policies.get(entry.policyid);
    if (previous) this.unlink(policyRef(entry.policyid), [...previous.srcaddr, ...previous.dstaddr]);
    this.policies.set(entry.policyid, entry);
    this.link(policyRef(entry.policyid), [...entry.srcaddr, ...entry.dstaddr]);
  }

  deletePolicy(id: number): void {
    const policy = this.policies.get(id);
    if (!policy) return;
    this.unlink(policyRef(id), [...policy.srcaddr, ...policy.dstaddr]);
    this.policies.delete(id);
  }

  /** True when `member` is `group` itself or contains it through nested groups (a cycle). */
  wouldCycle(group: string, member: string): boolean {
    if (member === group) return true;
    const nested = this.groups.get(member);
    return nested !== undefined && [...nested.members].some((m) => this.wouldCycle(group, m));
  }

  /** Renames an address or group; references follow, as on FortiOS. */
  rename(from: string, to: string): void {
    const address = this.addresses.get(from);
    if (address) {
      this.addresses.delete(from);
      this.addresses.set(to, { ...address, name: to });
    }
    const group = this.groups.get(from);
    if (group) {
      this.deleteGroup(from);
      this.putGroup({ ...group, name: to });
    }
    for (const ref of [...(this.referrers.get(from) ?? [])]) this.renameIn(ref, from, to);
  }

  clear(): void {
    this.addresses.clear();
    this.groups.clear();
    this.policies.clear();
    this.referrers.clear();
  }

  private renameIn(ref: string, from: string, to: string): void {
    const swap = (names: Iterable<string>) => [...names].map((n) => (n === from ? to : n));
    const group = ref.startsWith('addrgrp:') ? this.groups.get(ref.slice('addrgrp:'.length)) : undefined;
    if (group) this.putGroup({ ...group, members: new Set(swap(group.members)) });
    const policy = ref.startsWith('policy:') ? this.policies.get(Number(ref.slice('policy:'.length))) : undefined;
    if (policy) this.putPolicy({ ...policy, srcaddr: swap(policy.srcaddr), dstaddr: swap(policy.dstaddr) });
    if (!group && !policy) this.renameForeign(ref, from, to);
  }

  /** Records that `ref` (an entry of another table) refers to `names`. */
  link(ref: string, names: Iterable<string>): void {
    for (const name of names) {
      let set = this.referrers.get(name);
      if (!set) this.referrers.set(name, (set = new Set()));
      set.add(ref);
    }
  }

  unlink(ref: string, names: Iterable<string>): void {
    for (const name of names) {
      const set = this.referrers.get(name);
      set?.delete(ref);
      if (set?.size === 0) this.referrers.delete(name);
    }
  }
}

/** firewall/policy; its address references live in the two families' reference indexes. */
export class FirewallPolicies {
  readonly policies = new Map<number, FirewallPolicyEntry>();

  constructor(
    private readonly ipv4: FamilyTables,
    private readonly ipv6: FamilyTables,
  ) {}

  put(entry: FirewallPolicyEntry): void {
    this.delete(entry.policyid);
    this.policies.set(entry.policyid, entry);
    this.ipv4.link(firewallPolicyRef(entry.policyid), [...entry.srcaddr, ...entry.dstaddr]);
    this.ipv6.link(firewallPolicyRef(entry.policyid), [...entry.srcaddr6, ...entry.dstaddr6]);
  }

  delete(id: number): void {
    const p = this.policies.get(id);
    if (!p) return;
    this.ipv4.unlink(firewallPolicyRef(id), [...p.srcaddr, ...p.dstaddr]);
    this.ipv6.unlink(firewallPolicyRef(id), [...p.srcaddr6, ...p.dstaddr6]);
    this.policies.delete(id);
  }

  /** A renamed address or group of `family` that policy `ref` refers to. */
  rename(family: AddressFamily, ref: string, from: string, to: string): void {
    const p = ref.startsWith('fwpolicy:') ? this.policies.get(Number(ref.slice('fwpolicy:'.length))) : undefined;
    if (!p) return;
    const swap = (names: string[]) => names.map((n) => (n === from ? to : n));
    this.put(
      family === 'ipv4'
        ? { ...p, srcaddr: swap(p.srcaddr), dstaddr: swap(p.dstaddr) }
        : { ...p, srcaddr6: swap(p.srcaddr6), dstaddr6: swap(p.dstaddr6) },
    );
  }

  clear(): void {
    for (const id of [...this.policies.keys()]) this.delete(id);
  }
}

/** The banned (quarantine) list; entries past their expiry vanish when read. */
export class BannedList {
  private readonly entries = new Map<string, BannedEntry>();

  constructor(private readonly nowSeconds: () => number) {}

  add(ip: string, ipv6: boolean, expirySeconds: number): void {
    const created = this.nowSeconds();
    this.entries.set(ip, { ip, ipv6, created, ...(expirySeconds > 0 ? { expires: created + expirySeconds } : {}) });
  }

  remove(ip: string): void {
    this.entries.delete(ip);
  }

  /** The live entry for a canonical IP, if any (expired ones are gone). */
  get(ip: string): BannedEntry | undefined {
    const e = this.entries.get(ip);
    if (e?.expires !== undefined && e.expires <= this.nowSeconds()) {
      this.entries.delete(ip);
      return undefined;
    }
    return e;
  }

  clear(): void {
    this.entries.clear();
  }

  list(): BannedEntry[] {
    const now = this.nowSeconds();
    for (const [ip, e] of this.entries) if (e.expires !== undefined && e.expires <= now) this.entries.delete(ip);
    return [...this.entries.values()];
  }

  restore(entries: BannedEntry[]): void {
    for (const e of entries) this.entries.set(e.ip, e);
  }
}

export type Counters = Record<'reads' | 'writes' | 'rejected' | 'injected', Record<string, number>>;

function emptyCounters(): Counters {
  return { reads: {}, writes: {}, rejected: {}, injected: {} };
}

/** Serializable form of the tables: the state file and GET /__emulator/state. */
export interface TablesSnapshot {
  address: AddressEntry[];
  address6: AddressEntry[];
  addrgrp: GroupSnapshot[];
  addrgrp6: GroupSnapshot[];
  'local-in-policy': PolicyEntry[];
  'local-in-policy6': PolicyEntry[];
  /** Absent in state files written before firewall policies and feeds were modelled. */
  policy?: FirewallPolicyEntry[];
  'external-resource'?: FeedSnapshot[];
  banned: BannedEntry[];
}
type GroupSnapshot = Omit<GroupEntry, 'members'> & { members: string[] };

export interface StateSnapshot {
  revision: string;
  tables: TablesSnapshot;
}

export class EmulatorState {
  readonly ipv4 = new FamilyTables('ipv4', (ref, from, to) => this.firewallPolicies.rename('ipv4', ref, from, to));
  readonly ipv6 = new FamilyTables('ipv6', (ref, from, to) => this.firewallPolicies.rename('ipv6', ref, from, to));
  readonly firewallPolicies = new FirewallPolicies(this.ipv4, this.ipv6);
  readonly feeds: FeedStore;
  readonly banned: BannedList;
  revision = newRevision();
  counters = emptyCounters();

  constructor(private readonly config: EmulatorConfig) {
    this.banned = new BannedList(() => Math.floor(config.now() / 1000));
    this.feeds = new FeedStore(
      { scope: config.feedLimitScope, perFeed: config.feedEntryLimit, global: config.feedGlobalLimit },
      parseFeedEntry,
    );
    this.seed();
  }

  /** How many policies refer to a feed (feeds can be used in both families' policies). */
  feedUsage(name: string): number {
    return this.ipv4.usage(name) + this.ipv6.usage(name);
  }

  family(f: AddressFamily): FamilyTables {
    return f === 'ipv4' ? this.ipv4 : this.ipv6;
  }

  /** Starts a new config revision and returns the previous one. */
  commit(): string {
    const old = this.revision;
    this.revision = newRevision();
    return old;
  }

  /** Authorised requests counted so far: reads (GET), writes, or both. */
  requests(kind?: 'reads' | 'writes'): number {
    const sum = (bucket: Record<string, number>) => Object.values(bucket).reduce((a, b) => a + b, 0);
    return kind ? sum(this.counters[kind]) : sum(this.counters.reads) + sum(this.counters.writes);
  }

  count(kind: keyof Counters, what: string): void {
    const bucket = this.counters[kind];
    bucket[what] = (bucket[what] ?? 0) + 1;
  }

  /** Back to the seed: built-in addresses, the configured groups holding `none`, one deny policy each. */
  reset(): void {
    this.clearTables();
    this.counters = emptyCounters();
    this.seed();
    this.commit();
  }

  snapshot(): StateSnapshot {
    return {
      revision: this.revision,
      tables: {
        address: [...this.ipv4.addresses.values()],
        address6: [...this.ipv6.addresses.values()],
        addrgrp: [...this.ipv4.groups.values()].map(groupSnapshot),
        addrgrp6: [...this.ipv6.groups.values()].map(groupSnapshot),
        'local-in-policy': [...this.ipv4.policies.values()],
        'local-in-policy6': [...this.ipv6.policies.values()],
        policy: [...this.firewallPolicies.policies.values()],
        'external-resource': this.feeds.snapshot(),
        banned: this.banned.list(),
      },
    };
  }

  /** Replaces the tables with a snapshot (the state file); trusted as written by snapshot(). */
  restore(s: StateSnapshot): void {
    this.clearTables();
    // Feeds first: policies may refer to them.
    this.feeds.restore(s.tables['external-resource'] ?? []);
    restoreFamily(this.ipv4, s.tables.address, s.tables.addrgrp, s.tables['local-in-policy']);
    restoreFamily(this.ipv6, s.tables.address6, s.tables.addrgrp6, s.tables['local-in-policy6']);
    for (const p of s.tables.policy ?? []) this.firewallPolicies.put(p);
    this.banned.restore(s.tables.banned);
    this.revision = s.revision;
  }

  private clearTables(): void {
    this.firewallPolicies.clear();
    this.ipv4.clear();
    this.ipv6.clear();
    this.feeds.clear();
    this.banned.clear();
  }

  /**
   * Built-in addresses, the configured groups holding `none`, the configured feeds, and one deny policy
   * referencing groups and feeds: per family in local-in-policy[6], or one firewall/policy (denyPolicy).
   */
  private seed(): void {
    const { groups, feeds, denyPolicy } = this.config;
    seedFamily(this.ipv4, ['0.0.0.0 0.0.0.0', '0.0.0.0 255.255.255.255'], groups.ipv4);
    seedFamily(this.ipv6, ['::/0', '::/128'], groups.ipv6);
    for (const feed of feeds) this.seedFeed(feed);
    const feedNames = feeds.map((f) => f.name);
    if (denyPolicy === 'local-in') {
      if (feeds.length > 0 && !this.config.feedInLocalIn) {
        throw new Error(`threat feeds in a local-in policy need FortiOS 7.2.4+ (emulating ${this.config.version}); seed denyPolicy 'policy'`);
      }
      seedLocalIn(this.ipv4, [...groups.ipv4, ...feedNames]);
      seedLocalIn(this.ipv6, [...groups.ipv6, ...feedNames]);
    } else if (denyPolicy === 'policy') {
      const srcaddr = [...groups.ipv4, ...feedNames];
      const srcaddr6 = [...groups.ipv6, ...feedNames];
      if (srcaddr.length + srcaddr6.length === 0) return;
      this.firewallPolicies.put({
        policyid: 1,
        uuid: randomUUID(),
        name: 'ads-mitigator-deny',
        srcintf: ['any'],
        dstintf: ['any'],
        srcaddr,
        dstaddr: srcaddr.length > 0 ? ['all'] : [],
        srcaddr6,
        dstaddr6: srcaddr6.length > 0 ? ['all'] : [],
        action: 'deny',
        service: ['ALL'],
        schedule: 'always',
        status: 'enable',
        comments: DENY_COMMENT,
      });
    }
  }

  private seedFeed(seed: FeedSeed): void {
    const updateMethod = seed.updateMethod ?? 'push';
    if (updateMethod === 'push' && !this.config.pushFeeds) {
      throw new Error(`push feeds need FortiOS 7.2.1+ (emulating ${this.config.version}): feed ${seed.name}`);
    }
    const bad = (seed.entries ?? []).find((e) => !parseFeedEntry(e));
    if (bad !== undefined) throw new Error(`feed ${seed.name}: invalid entry ${JSON.stringify(bad)}`);
    this.feeds.put({
      name: seed.name,
      uuid: randomUUID(),
      status: 'enable',
      type: 'address',
      updateMethod,
      resource: seed.resource ?? '',
      refreshRate: seed.refreshRate ?? 5,
      username: seed.username ?? '',
      password: seed.password ?? '',
      comments: '',
      userAgent: '',
      serverIdentityCheck: 'none',
      category: 0,
    });
    if (updateMethod === 'push' && seed.entries) this.feeds.add(seed.name, seed.entries);
  }
}

const DENY_COMMENT = 'ads-mitigator: drop traffic from blocked sources';

/** `all` matches everything, `none` nothing: the conventional placeholder member (§4.1). */
function seedFamily(t: FamilyTables, [all, none]: [string, string], groups: readonly string[]): void {
  t.putAddress({ name: 'all', uuid: randomUUID(), subnet: all, comment: '', color: 0 });
  t.putAddress({ name: 'none', uuid: randomUUID(), subnet: none, comment: '', color: 0 });
  for (const name of groups) t.putGroup({ name, uuid: randomUUID(), members: new Set(['none']), comment: '', color: 0 });
}

function seedLocalIn(t: FamilyTables, srcaddr: string[]): void {
  if (srcaddr.length === 0) return;
  t.putPolicy({
    policyid: 1,
    uuid: randomUUID(),
    intf: ['any'],
    srcaddr,
    dstaddr: ['all'],
    action: 'deny',
    service: ['ALL'],
    schedule: 'always',
    status: 'enable',
    comments: DENY_COMMENT,
  });
}

function restoreFamily(
  t: FamilyTables,
  addresses: AddressEntry[],
  groups: GroupSnapshot[],
  policies: PolicyEntry[],
): void {
  for (const a of addresses) t.putAddress(a);
  for (const g of groups) t.putGroup({ ...g, members: new Set(g.members) });
  for (const p of policies) t.putPolicy(p);
}

function groupSnapshot(g: GroupEntry): GroupSnapshot {
  const { members, ...rest } = g;
  return { ...rest, members: [...members] };
}

function newRevision(): string {
  return randomBytes(16).toString('hex');
}
