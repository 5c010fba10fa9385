/**
 * "Is this IP blocked right now?" — the oracle tests assert enforcement with, whatever the backend: an IP
 * is blocked when an enabled deny policy's source matches it (an address, a group's members including
 * nested groups, an enforced entry of a threat feed) or when it is on the banned list and not expired.
 * Served as GET /__emulator/blocked?ip=<ip>[&policy=<table>/<id>]. Modelled: srcaddr of local-in-policy
 * (IPv4), local-in-policy6 (IPv6) and firewall/policy (srcaddr / srcaddr6). Not modelled: policy order and
 * accept policies shadowing a deny, negation, destination, service, schedule and interfaces.
 */
import { parseIp } from '../feed-entry';
import { AddressFamily, inRanges, parseAddress, parsePrefix } from '../subnet';
import { bannedIp } from './monitor';
import { EmulatorState, FamilyTables } from './state';

export type PolicyTable = 'local-in-policy' | 'local-in-policy6' | 'policy';
export type Mechanism = 'address' | 'address-group' | 'threat-feed' | 'banned-ip';

export type Via =
  /** `path` runs from the name the policy references down to the matching address. */
  | { kind: 'address'; path: string[]; subnet: string }
  | { kind: 'feed'; feed: string; entry: string };

export interface PolicyMatch {
  table: PolicyTable;
  policyid: number;
  via: Via[];
}

export interface BlockedAnswer {
  ip: string;
  family: AddressFamily;
  blocked: boolean;
  mechanisms: Mechanism[];
  policies: PolicyMatch[];
  banned?: { created: number; expires?: number };
}

interface SourceList {
  table: PolicyTable;
  policyid: number;
  names: string[];
}

/** Undefined when `ip` is not an address; `policy` ("local-in-policy/1") narrows to one policy. */
export function whoBlocks(state: EmulatorState, ipText: string, policy?: { table: PolicyTable; policyid: number }): BlockedAnswer | undefined {
  const ip = parseIp(ipText);
  if (!ip) return undefined;
  const address = parseAddress(ip.family, ipText)!;
  const t = state.family(ip.family);
  const policies: PolicyMatch[] = [];
  for (const source of denySources(state, ip.family)) {
    if (policy && (policy.table !== source.table || policy.policyid !== source.policyid)) continue;
    const via: Via[] = [];
    for (const name of source.names) {
      for (const path of addressPaths(t, name, address, new Set())) via.push({ kind: 'address', path: path.names, subnet: path.subnet });
      for (const e of state.feeds.enforcedMatches(name, ip)) via.push({ kind: 'feed', feed: name, entry: e.text });
    }
    if (via.length > 0) policies.push({ table: source.table, policyid: source.policyid, via });
  }
  const banned = state.banned.get(bannedIp(ipText)!.text);
  const mechanisms = new Set<Mechanism>();
  for (const p of policies) {
    for (const v of p.via) mechanisms.add(v.kind === 'feed' ? 'threat-feed' : v.path.length > 1 ? 'address-group' : 'address');
  }
  if (banned) mechanisms.add('banned-ip');
  return {
    ip: ip.text,
    family: ip.family,
    blocked: mechanisms.size > 0,
    mechanisms: [...mechanisms],
    policies,
    ...(banned ? { banned: { created: banned.created, ...(banned.expires !== undefined ? { expires: banned.expires } : {}) } } : {}),
  };
}

/** The source lists of the enabled deny policies that see traffic of the family. */
function denySources(state: EmulatorState, family: AddressFamily): SourceList[] {
  const lists: SourceList[] = [];
  const localIn: PolicyTable = family === 'ipv4' ? 'local-in-policy' : 'local-in-policy6';
  for (const p of state.family(family).policies.values()) {
    if (p.action === 'deny' && p.status === 'enable') lists.push({ table: localIn, policyid: p.policyid, names: p.srcaddr });
  }
  for (const p of state.firewallPolicies.policies.values()) {
    if (p.action === 'deny' && p.status === 'enable') {
      lists.push({ table: 'policy', policyid: p.policyid, names: family === 'ipv4' ? p.srcaddr : p.srcaddr6 });
    }
  }
  return lists;
}

/** Every path from `name` (an address or a group, nested at any depth) to an address containing `ip`. */
function addressPaths(
  t: FamilyTables,
  name: string,
  ip: ReturnType<typeof parseAddress> & object,
  visiting: Set<string>,
): { names: string[]; subnet: string }[] {
  const address = t.addresses.get(name);
  if (address) {
    const parsed = parsePrefix(t.family, address.subnet);
    return parsed.ok && inRanges(ip, [parsed.prefix]) ? [{ names: [name], subnet: address.subnet }] : [];
  }
  const group = t.groups.get(name);
  if (!group || visiting.has(name)) return [];
  visiting.add(name);
  const found = [...group.members].flatMap((m) => addressPaths(t, m, ip, visiting).map((p) => ({ ...p, names: [name, ...p.names] })));
  visiting.delete(name);
  return found;
}
