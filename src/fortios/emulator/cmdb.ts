/**
 * CMDB semantics of the firewall tables (reference §4–§6, §10.3–§10.5): one TableOps per kind of table,
 * behind a dispatcher that maps method and URL shape to list/get/create/update/remove. Handlers validate
 * fully before mutating, so a refused write leaves the state untouched.
 */
import { randomUUID } from 'node:crypto';
import { FortiErrorCode } from '../error-codes';
import { AddressFamily } from '../subnet';
import { applyListQuery } from './list-query';
import { EmulatorConfig } from './options';
import { ListInfo } from './replies';
import { Row, memberRow, renderAddress, renderAddress6, renderGroup, renderGroup6, renderPolicy } from './render';
import { FamilyTables, GroupEntry, PolicyEntry } from './state';
import { CmdbFailure, httpFailure, nameTable, refuse, storedSubnet, validColor, validEnum, validName, validText } from './validate';

export type TableKind = 'address' | 'group' | 'policy';

export interface TableSpec {
  family: AddressFamily;
  kind: TableKind;
}

/** `/api/v2/cmdb/firewall/<table>` tables the emulator models. */
export const FIREWALL_TABLES: ReadonlyMap<string, TableSpec> = new Map([
  ['address', { family: 'ipv4', kind: 'address' }],
  ['address6', { family: 'ipv6', kind: 'address' }],
  ['addrgrp', { family: 'ipv4', kind: 'group' }],
  ['addrgrp6', { family: 'ipv6', kind: 'group' }],
  ['local-in-policy', { family: 'ipv4', kind: 'policy' }],
  ['local-in-policy6', { family: 'ipv6', kind: 'policy' }],
]);

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
    private readonly family: (f: AddressFamily) => FamilyTables,
  ) {}

  handle(req: CmdbRequest): CmdbResult {
    const t = this.family(req.spec.family);
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
    if (kind === 'address') return new AddressOps(t, this.config, notFound);
    if (kind === 'group') return new GroupOps(t, this.config, notFound);
    return new PolicyOps(t, this.config, notFound);
  }

  /** 404; whether the body carries error -3 depends on the version (UNCERTAIN, `notFoundErrorCode`). */
  private notFound(): CmdbFailure {
    return httpFailure(404, this.config.notFoundErrorCode ? FortiErrorCode.NotFound : undefined);
  }
}

type NotFound = () => CmdbFailure;

/** Addresses and groups share one namespace: the same kind is a duplicate (-5), the other a clash. */
function requireFreeName(t: FamilyTables, name: string, sameKind: ReadonlyMap<string, unknown>, clash: number): void {
  if (sameKind.has(name)) throw refuse(FortiErrorCode.Duplicate);
  if (t.hasName(name)) throw refuse(clash);
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

  constructor(
    private readonly t: FamilyTables,
    private readonly config: EmulatorConfig,
    private readonly notFound: NotFound,
  ) {
    this.shape = ADDRESS_SHAPE[t.family];
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
    requireFreeName(this.t, name, this.t.addresses, this.config.sharedNamespaceError);
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
      requireFreeName(this.t, name, this.t.addresses, this.config.sharedNamespaceError);
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

  constructor(
    private readonly t: FamilyTables,
    private readonly config: EmulatorConfig,
    private readonly notFound: NotFound,
  ) {
    this.render = t.family === 'ipv4' ? renderGroup : renderGroup6;
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
    requireFreeName(this.t, name, this.t.groups, this.config.sharedNamespaceError);
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
      requireFreeName(this.t, name, this.t.groups, this.config.sharedNamespaceError);
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
    checkGroupSize(unique.length, this.config);
    for (const m of unique) checkMember(this.t, group, m);
    return unique;
  }
}

/** Empty lists are refused before 7.2 (-56, `allowEmptyGroup`); the member limit gives -4 (UNCERTAIN). */
function checkGroupSize(size: number, config: EmulatorConfig): void {
  if (size === 0 && !config.allowEmptyGroup) throw refuse(FortiErrorCode.EmptyValue);
  if (size > config.groupMemberLimit) throw refuse(FortiErrorCode.MaxEntries);
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
    checkGroupSize(group.members.size + 1, this.config);
    this.t.addMember(group, member);
    return member;
  }

  private remove(group: GroupEntry, member: string): string {
    if (!group.members.has(member)) throw this.notFound();
    checkGroupSize(group.members.size - 1, this.config);
    this.t.removeMember(group, member);
    return member;
  }
}

class PolicyOps implements TableOps {
  constructor(
    private readonly t: FamilyTables,
    private readonly config: EmulatorConfig,
    private readonly notFound: NotFound,
  ) {}

  rows(): Row[] {
    return [...this.t.policies.values()].map((p) => renderPolicy(p, this.config.intfAsList));
  }

  get(mkey: string): Row | undefined {
    const p = this.t.policies.get(policyId(mkey));
    return p && renderPolicy(p, this.config.intfAsList);
  }

  /** policyid is auto-assigned when omitted; POST answers it as the mkey. */
  create(body: Row): number {
    const id = body.policyid === undefined ? Math.max(0, ...this.t.policies.keys()) + 1 : body.policyid;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw refuse(FortiErrorCode.InvalidValue);
    if (this.t.policies.has(id)) throw refuse(FortiErrorCode.Duplicate);
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

  /** srcaddr/dstaddr must be non-empty and name existing addresses or groups (they drive -23). */
  private merge(current: PolicyEntry, body: Row): PolicyEntry {
    const addresses = (value: unknown, fallback: string[]) => {
      const names = value === undefined ? fallback : nameTable(value);
      if (names.length === 0) throw refuse(FortiErrorCode.EmptyValue);
      for (const n of names) if (!this.t.hasName(n)) throw refuse(FortiErrorCode.NotFound, 'entry not found in datasource');
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
