/**
 * CMDB semantics of the firewall tables and of system/external-resource (reference §4–§7.2, §10.3–§10.5):
 * one TableOps per kind of table, behind a dispatcher that maps method and URL shape to
 * list/get/create/update/remove. Handlers validate fully before mutating, so a refused write leaves the
 * state untouched.
 */
import { randomUUID } from 'node:crypto';
import { FortiErrorCode } from '../error-codes';
import { AddressFamily } from '../subnet';
import { ExternalResource, FeedType } from './feeds';
import { applyListQuery } from './list-query';
import { EmulatorConfig } from './options';
import { ListInfo } from './replies';
import {
  Row,
  memberRow,
  renderAddress,
  renderAddress6,
  renderExternalResource,
  renderFirewallPolicy,
  renderGroup,
  renderGroup6,
  renderPolicy,
} from './render';
import { EmulatorState, FamilyTables, FirewallPolicyEntry, GroupEntry, PolicyEntry } from './state';
import {
  CmdbFailure,
  httpFailure,
  nameTable,
  refuse,
  storedSubnet,
  validColor,
  validEnum,
  validInt,
  validName,
  validText,
} from './validate';

export type TableKind = 'address' | 'group' | 'policy' | 'firewall-policy' | 'external-resource';

export interface TableSpec {
  /** The family of address tables, groups and local-in policies; 'ipv4' for the two-family tables. */
  family: AddressFamily;
  kind: TableKind;
}

/** `/api/v2/cmdb/<path>/<name>` tables the emulator models, keyed "path/name". */
const CMDB_TABLES: ReadonlyMap<string, TableSpec> = new Map([
  ['firewall/address', { family: 'ipv4', kind: 'address' }],
  ['firewall/address6', { family: 'ipv6', kind: 'address' }],
  ['firewall/addrgrp', { family: 'ipv4', kind: 'group' }],
  ['firewall/addrgrp6', { family: 'ipv6', kind: 'group' }],
  ['firewall/local-in-policy', { family: 'ipv4', kind: 'policy' }],
  ['firewall/local-in-policy6', { family: 'ipv6', kind: 'policy' }],
  ['firewall/policy', { family: 'ipv4', kind: 'firewall-policy' }],
  ['system/external-resource', { family: 'ipv4', kind: 'external-resource' }],
]);

export function cmdbTable(path: string, name: string): TableSpec | undefined {
  return CMDB_TABLES.get(`${path}/${name}`);
}

export interface CmdbRequest {
  method: string;
  spec: TableSpec;
  /** Decoded path segments after the table name: [mkey, child table, child key]. */
  keys: string[];
  query: URLSearchParams;
  body: Row;
}

export interface CmdbResult {
  results?: Row[];
  list?: ListInfo;
  mkey?: string | number;
}

interface TableOps {
  rows(): Row[];
  get(mkey: string): Row | undefined;
  create(body: Row): string | number;
  update(mkey: string, body: Row): void;
  remove(mkey: string): void;
  /** Removes every entry nothing refers to (the "purge" answer to a DELETE on the table path). */
  purge(): void;
}

export class Cmdb {
  constructor(
    private readonly config: EmulatorConfig,
    private readonly state: EmulatorState,
  ) {}

  handle(req: CmdbRequest): CmdbResult {
    const t = this.state.family(req.spec.family);
    const [mkey, child, childKey, ...rest] = req.keys;
    if (rest.length > 0) throw this.notFound();
    if (child !== undefined) {
      if (req.spec.kind !== 'group' || child !== 'member') throw this.notFound();
      return new MemberOps(t, this.config, () => this.notFound()).handle(req.method, mkey!, childKey, req.body);
    }
    const ops = this.ops(req.spec.kind, t);
    return mkey === undefined ? this.onTable(ops, req) : this.onObject(ops, req, mkey);
  }

  private onTable(ops: TableOps, req: CmdbRequest): CmdbResult {
    switch (req.method) {
      case 'GET':
        return this.list(ops.rows(), req.query);
      case 'POST':
        return { mkey: ops.create(req.body) };
      case 'DELETE':
        if (this.config.tableDelete === 'reject') throw httpFailure(405);
        ops.purge();
        return {};
      default:
        throw httpFailure(405);
    }
  }

  private onObject(ops: TableOps, req: CmdbRequest, mkey: string): CmdbResult {
    switch (req.method) {
      case 'GET': {
        const row = ops.get(mkey);
        if (!row) throw this.notFound();
        return { results: [row], mkey };
      }
      case 'PUT':
        ops.update(mkey, req.body);
        return { mkey };
      case 'DELETE':
        ops.remove(mkey);
        return { mkey };
      default:
        throw httpFailure(405);
    }
  }

  private list(rows: Row[], query: URLSearchParams): CmdbResult {
    const matched = applyListQuery(rows, query);
    if (!matched) throw httpFailure(400);
    return { results: matched, list: { size: rows.length, matched: matched.length } };
  }

  private ops(kind: TableKind, t: FamilyTables): TableOps {
    const notFound = () => this.notFound();
    const ctx: OpsContext = { t, config: this.config, state: this.state, notFound };
    switch (kind) {
      case 'address':
        return new AddressOps(ctx);
      case 'group':
        return new GroupOps(ctx);
      case 'policy':
        return new PolicyOps(ctx);
      case 'firewall-policy':
        return new FirewallPolicyOps(ctx);
      case 'external-resource':
        return new ExternalResourceOps(ctx);
    }
  }

  /** 404; whether the body carries error -3 depends on the version (UNCERTAIN, `notFoundErrorCode`). */
  private notFound(): CmdbFailure {
    return httpFailure(404, this.config.notFoundErrorCode ? FortiErrorCode.NotFound : undefined);
  }
}

type NotFound = () => CmdbFailure;

interface OpsContext {
  /** The family's tables (address, group and local-in tables). */
  t: FamilyTables;
  config: EmulatorConfig;
  state: EmulatorState;
  notFound: NotFound;
}

/**
 * Addresses and groups share one namespace: the same kind is a duplicate (-5), the other a clash. A name
 * taken by a threat feed is refused as a duplicate too (emulator choice, UNCERTAIN: policies name both
 * in the same srcaddr table, so one name must mean one object).
 */
function requireFreeName(ctx: OpsContext, name: string, sameKind: ReadonlyMap<string, unknown>, clash: number): void {
  if (sameKind.has(name) || ctx.state.feeds.resources.has(name)) throw refuse(FortiErrorCode.Duplicate);
  if (ctx.t.hasName(name)) throw refuse(clash);
}

/** A threat feed that policies can use as an address (type address). */
function isAddressFeed(state: EmulatorState, name: string): boolean {
  return state.feeds.resources.get(name)?.type === 'address';
}

function refuseIfUsed(t: FamilyTables, name: string): void {
  const users = t.usage(name);
  if (users > 0) throw refuse(FortiErrorCode.EntryUsed, `The entry is used by other ${users} entries`);
}

/** Per family: renderer, the field holding the prefix, its type, and the default when omitted ("any"!). */
const ADDRESS_SHAPE = {
  ipv4: { render: renderAddress, field: 'subnet', type: 'ipmask', anySubnet: '0.0.0.0 0.0.0.0' },
  ipv6: { render: renderAddress6, field: 'ip6', type: 'ipprefix', anySubnet: '::/0' },
} as const;

class AddressOps implements TableOps {
  private readonly shape: (typeof ADDRESS_SHAPE)[AddressFamily];
  private readonly t: FamilyTables;
  private readonly config: EmulatorConfig;
  private readonly notFound: NotFound;

  constructor(private readonly ctx: OpsContext) {
    ({ t: this.t, config: this.config, notFound: this.notFound } = ctx);
    this.shape = ADDRESS_SHAPE[this.t.family];
  }

  rows(): Row[] {
    return [...this.t.addresses.values()].map(this.shape.render);
  }

  get(mkey: string): Row | undefined {
    const a = this.t.addresses.get(mkey);
    return a && this.shape.render(a);
  }

  create(body: Row): string {
    const name = validName(body.name);
    this.checkType(body.type);
    const given = body[this.shape.field];
    const subnet = given === undefined ? this.shape.anySubnet : this.subnet(given);
    const comment = validText(body.comment ?? '', 255);
    const color = validColor(body.color ?? 0);
    requireFreeName(this.ctx, name, this.t.addresses, this.config.sharedNamespaceError);
    this.t.putAddress({ name, uuid: randomUUID(), subnet, comment, color });
    return name;
  }

  update(mkey: string, body: Row): void {
    const current = this.t.addresses.get(mkey);
    if (!current) throw this.notFound();
    this.checkType(body.type);
    const next = {
      ...current,
      subnet: body[this.shape.field] === undefined ? current.subnet : this.subnet(body[this.shape.field]),
      comment: body.comment === undefined ? current.comment : validText(body.comment, 255),
      color: body.color === undefined ? current.color : validColor(body.color),
    };
    const name = body.name === undefined ? mkey : validName(body.name);
    if (name !== mkey) {
      requireFreeName(this.ctx, name, this.t.addresses, this.config.sharedNamespaceError);
      this.t.rename(mkey, name);
    }
    this.t.putAddress({ ...next, name });
  }

  remove(mkey: string): void {
    if (!this.t.addresses.has(mkey)) throw this.notFound();
    refuseIfUsed(this.t, mkey);
    this.t.deleteAddress(mkey);
  }

  purge(): void {
    for (const name of [...this.t.addresses.keys()]) if (this.t.usage(name) === 0) this.t.deleteAddress(name);
  }

  /** Only subnet-typed addresses are modelled; other types are refused rather than half-emulated. */
  private checkType(type: unknown): void {
    if (type !== undefined && type !== this.shape.type) throw refuse(FortiErrorCode.InvalidValue);
  }

  private subnet(value: unknown): string {
    return storedSubnet(this.t.family, value, this.config.zeroHostBits);
  }
}

class GroupOps implements TableOps {
  private readonly render: (g: GroupEntry) => Row;
  private readonly t: FamilyTables;
  private readonly config: EmulatorConfig;
  private readonly notFound: NotFound;

  constructor(private readonly ctx: OpsContext) {
    ({ t: this.t, config: this.config, notFound: this.notFound } = ctx);
    this.render = this.t.family === 'ipv4' ? renderGroup : renderGroup6;
  }

  rows(): Row[] {
    return [...this.t.groups.values()].map(this.render);
  }

  get(mkey: string): Row | undefined {
    const g = this.t.groups.get(mkey);
    return g && this.render(g);
  }

  create(body: Row): string {
    const name = validName(body.name);
    const members = this.members(name, body.member === undefined ? [] : nameTable(body.member));
    const comment = validText(body.comment ?? '', 255);
    const color = validColor(body.color ?? 0);
    requireFreeName(this.ctx, name, this.t.groups, this.config.sharedNamespaceError);
    this.t.putGroup({ name, uuid: randomUUID(), members: new Set(members), comment, color });
    return name;
  }

  /** PUT has set semantics: a `member` table replaces the whole list (§5.2). */
  update(mkey: string, body: Row): void {
    const current = this.t.groups.get(mkey);
    if (!current) throw this.notFound();
    const next: GroupEntry = {
      ...current,
      members: body.member === undefined ? current.members : new Set(this.members(mkey, nameTable(body.member))),
      comment: body.comment === undefined ? current.comment : validText(body.comment, 255),
      color: body.color === undefined ? current.color : validColor(body.color),
    };
    const name = body.name === undefined ? mkey : validName(body.name);
    if (name !== mkey) {
      requireFreeName(this.ctx, name, this.t.groups, this.config.sharedNamespaceError);
      this.t.rename(mkey, name);
    }
    this.t.putGroup({ ...next, name });
  }

  remove(mkey: string): void {
    if (!this.t.groups.has(mkey)) throw this.notFound();
    refuseIfUsed(this.t, mkey);
    this.t.deleteGroup(mkey);
  }

  purge(): void {
    for (const name of [...this.t.groups.keys()]) if (this.t.usage(name) === 0) this.t.deleteGroup(name);
  }

  /** A complete member list for `group`: existing names, no cycle, within the limit, empty only if allowed. */
  private members(group: string, names: string[]): string[] {
    const unique = [...new Set(names)];
    if (unique.length !== names.length && this.config.duplicateMembers === 'reject') {
      throw refuse(FortiErrorCode.Duplicate);
    }
    checkGroupSize(unique.length, this.t.family, this.config);
    for (const m of unique) checkMember(this.t, group, m);
    return unique;
  }
}

/** Empty lists are refused before 7.2 (-56, `allowEmptyGroup`); the member limit gives -4 (UNCERTAIN). */
function checkGroupSize(size: number, family: AddressFamily, config: EmulatorConfig): void {
  if (size === 0 && !config.allowEmptyGroup) throw refuse(FortiErrorCode.EmptyValue);
  const limit = family === 'ipv4' ? config.groupMemberLimit : config.group6MemberLimit;
  if (size > limit) throw refuse(FortiErrorCode.MaxEntries);
}

/** A member must name an existing address or group of the family, and must not nest the group in itself. */
function checkMember(t: FamilyTables, group: string, member: string): void {
  if (!t.hasName(member)) throw refuse(FortiErrorCode.NotFound, 'entry not found in datasource');
  if (t.wouldCycle(group, member)) throw refuse(FortiErrorCode.InvalidValue);
}

/** The `member` child table of a group: `/addrgrp/<g>/member[/<m>]` (§5.3). */
class MemberOps {
  constructor(
    private readonly t: FamilyTables,
    private readonly config: EmulatorConfig,
    private readonly notFound: NotFound,
  ) {}

  handle(method: string, groupName: string, member: string | undefined, body: Row): CmdbResult {
    const group = this.t.groups.get(groupName);
    if (!group) throw this.notFound();
    if (member === undefined) {
      if (method === 'GET') return { results: [...group.members].map(memberRow), mkey: groupName };
      if (method === 'POST') return { mkey: this.add(group, body) };
      throw httpFailure(405);
    }
    if (method === 'GET') {
      if (!group.members.has(member)) throw this.notFound();
      return { results: [memberRow(member)], mkey: member };
    }
    if (method === 'DELETE') return { mkey: this.remove(group, member) };
    throw httpFailure(405);
  }

  /** Appending a present member is a duplicate (-5); UNCERTAIN on real devices. */
  private add(group: GroupEntry, body: Row): string {
    const member = validName(body.name);
    if (group.members.has(member)) throw refuse(FortiErrorCode.Duplicate);
    checkMember(this.t, group.name, member);
    checkGroupSize(group.members.size + 1, this.t.family, this.config);
    this.t.addMember(group, member);
    return member;
  }

  private remove(group: GroupEntry, member: string): string {
    if (!group.members.has(member)) throw this.notFound();
    checkGroupSize(group.members.size - 1, this.t.family, this.config);
    this.t.removeMember(group, member);
    return member;
  }
}

class PolicyOps implements TableOps {
  private readonly t: FamilyTables;
  private readonly config: EmulatorConfig;
  private readonly notFound: NotFound;

  constructor(private readonly ctx: OpsContext) {
    ({ t: this.t, config: this.config, notFound: this.notFound } = ctx);
  }

  rows(): Row[] {
    return [...this.t.policies.values()].map((p) => renderPolicy(p, this.config.intfAsList));
  }

  get(mkey: string): Row | undefined {
    const p = this.t.policies.get(policyId(mkey));
    return p && renderPolicy(p, this.config.intfAsList);
  }

  /** policyid is auto-assigned when omitted; POST answers it as the mkey. */
  create(body: Row): number {
    const id = nextPolicyId(body, this.t.policies);
    const defaults: PolicyEntry = {
      policyid: id,
      uuid: randomUUID(),
      intf: [],
      srcaddr: [],
      dstaddr: [],
      action: 'deny',
      service: [],
      schedule: 'always',
      status: 'enable',
      comments: '',
    };
    this.t.putPolicy(this.merge(defaults, body));
    return id;
  }

  update(mkey: string, body: Row): void {
    const current = this.t.policies.get(policyId(mkey));
    if (!current) throw this.notFound();
    this.t.putPolicy(this.merge(current, body));
  }

  remove(mkey: string): void {
    const id = policyId(mkey);
    if (!this.t.policies.has(id)) throw this.notFound();
    this.t.deletePolicy(id);
  }

  purge(): void {
    for (const id of [...this.t.policies.keys()]) this.t.deletePolicy(id);
  }

  /**
   * srcaddr/dstaddr must be non-empty and name existing addresses or groups (they drive -23); threat feeds
   * are in the datasource only from 7.2.4 / 7.4.0 on (reference §7.2), before that they are unknown names.
   */
  private merge(current: PolicyEntry, body: Row): PolicyEntry {
    const known = (n: string) => this.t.hasName(n) || (this.config.feedInLocalIn && isAddressFeed(this.ctx.state, n));
    const addresses = (value: unknown, fallback: string[]) => {
      const names = value === undefined ? fallback : nameTable(value);
      if (names.length === 0) throw refuse(FortiErrorCode.EmptyValue);
      for (const n of names) if (!known(n)) throw refuse(FortiErrorCode.NotFound, 'entry not found in datasource');
      return names;
    };
    return {
      ...current,
      intf: body.intf === undefined ? current.intf : interfaces(body.intf),
      srcaddr: addresses(body.srcaddr, current.srcaddr),
      dstaddr: addresses(body.dstaddr, current.dstaddr),
      action: body.action === undefined ? current.action : validEnum(body.action, ['accept', 'deny'] as const),
      service: body.service === undefined ? current.service : nameTable(body.service),
      schedule: body.schedule === undefined ? current.schedule : validText(body.schedule, 35),
      status: body.status === undefined ? current.status : validEnum(body.status, ['enable', 'disable'] as const),
      comments: body.comments === undefined ? current.comments : validText(body.comments, 1023),
    };
  }
}

/** `intf` arrives as "port1 port2" (up to 7.4.1) or as a [{name}] table. */
function interfaces(value: unknown): string[] {
  return typeof value === 'string' ? value.split(' ').filter((n) => n !== '') : nameTable(value);
}

/** Policy mkeys are integers; anything else cannot exist. */
function policyId(mkey: string): number {
  return /^\d+$/.test(mkey) ? Number(mkey) : Number.NaN;
}

/** The next free policy id when none is given; POST answers it as the mkey. */
function nextPolicyId(body: Row, used: ReadonlyMap<number, unknown>): number {
  const id = body.policyid === undefined ? Math.max(0, ...used.keys()) + 1 : body.policyid;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw refuse(FortiErrorCode.InvalidValue);
  if (used.has(id)) throw refuse(FortiErrorCode.Duplicate);
  return id;
}

/**
 * firewall/policy (§6.2): both families in one entry (srcaddr/dstaddr and srcaddr6/dstaddr6, as since 7.0;
 * the separate policy6 table of 6.x is not modelled). Threat feeds are valid sources and destinations on
 * every emulated version (firewall policies accept them since 6.2).
 */
class FirewallPolicyOps implements TableOps {
  private readonly policies: ReadonlyMap<number, FirewallPolicyEntry>;

  constructor(private readonly ctx: OpsContext) {
    this.policies = ctx.state.firewallPolicies.policies;
  }

  rows(): Row[] {
    return [...this.policies.values()].map(renderFirewallPolicy);
  }

  get(mkey: string): Row | undefined {
    const p = this.policies.get(policyId(mkey));
    return p && renderFirewallPolicy(p);
  }

  create(body: Row): number {
    const id = nextPolicyId(body, this.policies);
    const defaults: FirewallPolicyEntry = {
      policyid: id,
      uuid: randomUUID(),
      name: '',
      srcintf: [],
      dstintf: [],
      srcaddr: [],
      dstaddr: [],
      srcaddr6: [],
      dstaddr6: [],
      action: 'deny',
      service: [],
      schedule: 'always',
      status: 'enable',
      comments: '',
    };
    this.ctx.state.firewallPolicies.put(this.merge(defaults, body));
    return id;
  }

  update(mkey: string, body: Row): void {
    const current = this.policies.get(policyId(mkey));
    if (!current) throw this.ctx.notFound();
    this.ctx.state.firewallPolicies.put(this.merge(current, body));
  }

  remove(mkey: string): void {
    const id = policyId(mkey);
    if (!this.policies.has(id)) throw this.ctx.notFound();
    this.ctx.state.firewallPolicies.delete(id);
  }

  purge(): void {
    this.ctx.state.firewallPolicies.clear();
  }

  /** Interfaces and, per family present, sources and destinations must be set (-56); names must exist (-3). */
  private merge(current: FirewallPolicyEntry, body: Row): FirewallPolicyEntry {
    const { state } = this.ctx;
    const names = (field: string, fallback: string[], family?: AddressFamily) => {
      const list = body[field] === undefined ? fallback : nameTable(body[field]);
      if (family) {
        for (const n of list) {
          if (!state.family(family).hasName(n) && !isAddressFeed(state, n)) {
            throw refuse(FortiErrorCode.NotFound, 'entry not found in datasource');
          }
        }
      }
      return list;
    };
    const next: FirewallPolicyEntry = {
      ...current,
      name: body.name === undefined ? current.name : validText(body.name, 35),
      srcintf: names('srcintf', current.srcintf),
      dstintf: names('dstintf', current.dstintf),
      srcaddr: names('srcaddr', current.srcaddr, 'ipv4'),
      dstaddr: names('dstaddr', current.dstaddr, 'ipv4'),
      srcaddr6: names('srcaddr6', current.srcaddr6, 'ipv6'),
      dstaddr6: names('dstaddr6', current.dstaddr6, 'ipv6'),
      action: body.action === undefined ? current.action : validEnum(body.action, ['accept', 'deny'] as const),
      service: names('service', current.service),
      schedule: body.schedule === undefined ? current.schedule : validText(body.schedule, 35),
      status: body.status === undefined ? current.status : validEnum(body.status, ['enable', 'disable'] as const),
      comments: body.comments === undefined ? current.comments : validText(body.comments, 1023),
    };
    const v4 = next.srcaddr.length + next.dstaddr.length;
    const v6 = next.srcaddr6.length + next.dstaddr6.length;
    const halfFamily = (src: string[], dst: string[]) => (src.length === 0) !== (dst.length === 0);
    if (next.srcintf.length === 0 || next.dstintf.length === 0 || v4 + v6 === 0) throw refuse(FortiErrorCode.EmptyValue);
    if (halfFamily(next.srcaddr, next.dstaddr) || halfFamily(next.srcaddr6, next.dstaddr6)) {
      throw refuse(FortiErrorCode.EmptyValue);
    }
    return next;
  }
}

const FEED_TYPES: readonly FeedType[] = ['category', 'address', 'domain', 'malware'];

/**
 * system/external-resource (§7.2; CLI reference 7.2.4): threat feeds. Name at most 35 characters, type
 * (`mac-address` from 7.4.0), `update-method` feed|push only from 7.2.1 (before, the attribute does not
 * exist: refused with -651, emulator choice), refresh-rate 1–43200 minutes (default 5). A pull feed needs a
 * `resource` (-56, UNCERTAIN), which must be an http(s) URI (-651, UNCERTAIN). Renames are not modelled
 * (a `name` differing from the mkey is refused with -651). Deleting a feed a policy uses is -23.
 */
class ExternalResourceOps implements TableOps {
  private readonly feeds;

  constructor(private readonly ctx: OpsContext) {
    this.feeds = ctx.state.feeds;
  }

  rows(): Row[] {
    return [...this.feeds.resources.values()].map((r) => renderExternalResource(r, this.ctx.config.pushFeeds));
  }

  get(mkey: string): Row | undefined {
    const r = this.feeds.resources.get(mkey);
    return r && renderExternalResource(r, this.ctx.config.pushFeeds);
  }

  create(body: Row): string {
    const name = validName(body.name, 35);
    const defaults: ExternalResource = {
      name,
      uuid: randomUUID(),
      status: 'enable',
      type: 'category',
      updateMethod: 'feed',
      resource: '',
      refreshRate: 5,
      username: '',
      password: '',
      comments: '',
      userAgent: '',
      serverIdentityCheck: 'none',
      category: 0,
    };
    const next = this.merge(defaults, body);
    const { ipv4, ipv6 } = this.ctx.state;
    if (this.feeds.resources.has(name) || ipv4.hasName(name) || ipv6.hasName(name)) throw refuse(FortiErrorCode.Duplicate);
    this.feeds.put(next);
    return name;
  }

  update(mkey: string, body: Row): void {
    const current = this.feeds.resources.get(mkey);
    if (!current) throw this.ctx.notFound();
    if (body.name !== undefined && body.name !== mkey) throw refuse(FortiErrorCode.InvalidValue);
    const next = this.merge(current, body);
    if (next.type !== 'address' && this.ctx.state.feedUsage(mkey) > 0) throw refuse(FortiErrorCode.EntryUsed);
    this.feeds.put(next);
  }

  remove(mkey: string): void {
    if (!this.feeds.resources.has(mkey)) throw this.ctx.notFound();
    const users = this.ctx.state.feedUsage(mkey);
    if (users > 0) throw refuse(FortiErrorCode.EntryUsed, `The entry is used by other ${users} entries`);
    this.feeds.delete(mkey);
  }

  purge(): void {
    for (const name of [...this.feeds.resources.keys()]) if (this.ctx.state.feedUsage(name) === 0) this.feeds.delete(name);
  }

  private merge(current: ExternalResource, body: Row): ExternalResource {
    const { config } = this.ctx;
    const types = config.macAddressFeeds ? [...FEED_TYPES, 'mac-address' as const] : FEED_TYPES;
    if (body['update-method'] !== undefined && !config.pushFeeds) throw refuse(FortiErrorCode.InvalidValue);
    const pick = <T>(field: string, fallback: T, check: (v: unknown) => T): T =>
      body[field] === undefined ? fallback : check(body[field]);
    const next: ExternalResource = {
      ...current,
      status: pick('status', current.status, (v) => validEnum(v, ['enable', 'disable'] as const)),
      type: pick('type', current.type, (v) => validEnum(v, types)),
      updateMethod: pick('update-method', current.updateMethod, (v) => validEnum(v, ['feed', 'push'] as const)),
      resource: pick('resource', current.resource, (v) => validText(v, 511)),
      refreshRate: pick('refresh-rate', current.refreshRate, (v) => validInt(v, 1, 43_200)),
      username: pick('username', current.username, (v) => validText(v, 64)),
      password: pick('password', current.password, (v) => validText(v, 128)),
      comments: pick('comments', current.comments, (v) => validText(v, 255)),
      userAgent: pick('user-agent', current.userAgent, (v) => validText(v, 255)),
      serverIdentityCheck: pick('server-identity-check', current.serverIdentityCheck, (v) =>
        validEnum(v, ['none', 'basic', 'full'] as const),
      ),
      category: pick('category', current.category, (v) => (v === 0 ? 0 : validInt(v, 192, 221))),
    };
    if (next.resource !== '' && !/^https?:\/\/[^\s]+$/i.test(next.resource)) throw refuse(FortiErrorCode.InvalidValue);
    if (next.updateMethod === 'feed' && next.resource === '') throw refuse(FortiErrorCode.EmptyValue);
    return next;
  }
}
