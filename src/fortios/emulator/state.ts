/**
 * The emulated device's configuration: per address family the address, address-group and local-in-policy
 * tables, plus the banned-IP list, the config revision and request counters. References (group members,
 * policy addresses) are indexed by name so that "is it in use" (-23) and renames are O(referrers).
 * This module enforces no REST rules: cmdb.ts validates, then calls these mutators.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { AddressFamily } from '../subnet';
import { EmulatorConfig } from './options';

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

/** One family's tables. Addresses and groups share one namespace. */
export class FamilyTables {
  readonly addresses = new Map<string, AddressEntry>();
  readonly groups = new Map<string, GroupEntry>();
  readonly policies = new Map<number, PolicyEntry>();
  /** name -> keys of the groups/policies referring to it. */
  private readonly referrers = new Map<string, Set<string>>();

  constructor(readonly family: AddressFamily) {}

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
  }

  private link(ref: string, names: Iterable<string>): void {
    for (const name of names) {
      let set = this.referrers.get(name);
      if (!set) this.referrers.set(name, (set = new Set()));
      set.add(ref);
    }
  }

  private unlink(ref: string, names: Iterable<string>): void {
    for (const name of names) {
      const set = this.referrers.get(name);
      set?.delete(ref);
      if (set?.size === 0) this.referrers.delete(name);
    }
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
  banned: BannedEntry[];
}
type GroupSnapshot = Omit<GroupEntry, 'members'> & { members: string[] };

export interface StateSnapshot {
  revision: string;
  tables: TablesSnapshot;
}

export class EmulatorState {
  readonly ipv4 = new FamilyTables('ipv4');
  readonly ipv6 = new FamilyTables('ipv6');
  readonly banned: BannedList;
  revision = newRevision();
  counters = emptyCounters();

  constructor(private readonly config: EmulatorConfig) {
    this.banned = new BannedList(() => Math.floor(config.now() / 1000));
    this.seed();
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

  count(kind: keyof Counters, what: string): void {
    const bucket = this.counters[kind];
    bucket[what] = (bucket[what] ?? 0) + 1;
  }

  /** Back to the seed: built-in addresses, the configured groups holding `none`, one deny policy each. */
  reset(): void {
    this.ipv4.clear();
    this.ipv6.clear();
    this.banned.clear();
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
        banned: this.banned.list(),
      },
    };
  }

  /** Replaces the tables with a snapshot (the state file); trusted as written by snapshot(). */
  restore(s: StateSnapshot): void {
    this.ipv4.clear();
    this.ipv6.clear();
    this.banned.clear();
    restoreFamily(this.ipv4, s.tables.address, s.tables.addrgrp, s.tables['local-in-policy']);
    restoreFamily(this.ipv6, s.tables.address6, s.tables.addrgrp6, s.tables['local-in-policy6']);
    this.banned.restore(s.tables.banned);
    this.revision = s.revision;
  }

  private seed(): void {
    seedFamily(this.ipv4, ['0.0.0.0 0.0.0.0', '0.0.0.0 255.255.255.255'], this.config.groups.ipv4);
    seedFamily(this.ipv6, ['::/0', '::/128'], this.config.groups.ipv6);
  }
}

/** `all` matches everything, `none` nothing: the conventional placeholder member (§4.1). */
function seedFamily(t: FamilyTables, [all, none]: [string, string], groups: readonly string[]): void {
  t.putAddress({ name: 'all', uuid: randomUUID(), subnet: all, comment: '', color: 0 });
  t.putAddress({ name: 'none', uuid: randomUUID(), subnet: none, comment: '', color: 0 });
  for (const name of groups) t.putGroup({ name, uuid: randomUUID(), members: new Set(['none']), comment: '', color: 0 });
  if (groups.length === 0) return;
  t.putPolicy({
    policyid: 1,
    uuid: randomUUID(),
    intf: ['any'],
    srcaddr: [...groups],
    dstaddr: ['all'],
    action: 'deny',
    service: ['ALL'],
    schedule: 'always',
    status: 'enable',
    comments: 'ads-mitigator: drop traffic from blocked sources',
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
