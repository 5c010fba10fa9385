/**
 * JSON shapes of table entries as FortiOS 7.x returns them: the field sets of the real captures in
 * reference §12 (F: address, I: address6, G: addrgrp, H: banned), with defaults for fields the emulator
 * does not model. Every entry and child entry carries `q_origin_key` equal to its mkey.
 */
import { AddressEntry, BannedEntry, GroupEntry, PolicyEntry } from './state';

export type Row = Record<string, unknown>;

export function memberRow(name: string): Row {
  return { name, q_origin_key: name };
}

const nameRows = (names: Iterable<string>): Row[] => [...names].map(memberRow);

export function renderAddress(a: AddressEntry): Row {
  return {
    name: a.name,
    q_origin_key: a.name,
    uuid: a.uuid,
    subnet: a.subnet,
    type: 'ipmask',
    'sub-type': 'sdn',
    'clearpass-spt': 'unknown',
    macaddr: [],
    country: '',
    'cache-ttl': 0,
    sdn: '',
    'fsso-group': [],
    interface: '',
    'obj-type': 'ip',
    'tag-detection-level': '',
    'tag-type': '',
    dirty: 'dirty',
    comment: a.comment,
    'associated-interface': '',
    color: a.color,
    filter: '',
    'sdn-addr-type': 'private',
    'node-ip-only': 'disable',
    'obj-id': '',
    list: [],
    tagging: [],
    'allow-routing': 'disable',
    'fabric-object': 'disable',
  };
}

export function renderAddress6(a: AddressEntry): Row {
  return {
    name: a.name,
    q_origin_key: a.name,
    uuid: a.uuid,
    type: 'ipprefix',
    macaddr: [],
    sdn: '',
    ip6: a.subnet,
    'end-ip': '::',
    fqdn: '',
    country: '',
    'cache-ttl': 0,
    color: a.color,
    'obj-id': '',
    list: [],
    tagging: [],
    comment: a.comment,
    template: '',
    'subnet-segment': [],
    'host-type': 'any',
    tenant: '',
    'epg-name': '',
    'sdn-tag': '',
    'fabric-object': 'disable',
  };
}

export function renderGroup(g: GroupEntry): Row {
  return {
    name: g.name,
    q_origin_key: g.name,
    type: 'default',
    category: 'default',
    uuid: g.uuid,
    member: nameRows(g.members),
    comment: g.comment,
    exclude: 'disable',
    'exclude-member': [],
    color: g.color,
    tagging: [],
    'allow-routing': 'disable',
    'fabric-object': 'disable',
  };
}

export function renderGroup6(g: GroupEntry): Row {
  return {
    name: g.name,
    q_origin_key: g.name,
    uuid: g.uuid,
    color: g.color,
    comment: g.comment,
    member: nameRows(g.members),
    exclude: 'disable',
    'exclude-member': [],
    tagging: [],
    'fabric-object': 'disable',
  };
}

/** `intf` is a string up to 7.4.1 and a [{name}] table afterwards. */
export function renderPolicy(p: PolicyEntry, intfAsList: boolean): Row {
  return {
    policyid: p.policyid,
    q_origin_key: p.policyid,
    uuid: p.uuid,
    'ha-mgmt-intf-only': 'disable',
    intf: intfAsList ? nameRows(p.intf) : p.intf.join(' '),
    srcaddr: nameRows(p.srcaddr),
    'srcaddr-negate': 'disable',
    dstaddr: nameRows(p.dstaddr),
    'dstaddr-negate': 'disable',
    action: p.action,
    service: nameRows(p.service),
    'service-negate': 'disable',
    schedule: p.schedule,
    status: p.status,
    comments: p.comments,
  };
}

/** Capture H: `expires` absent for permanent entries. */
export function renderBanned(b: BannedEntry): Row {
  return {
    ...(b.expires !== undefined ? { expires: b.expires } : {}),
    created: b.created,
    ip_address: b.ip,
    source: 'Administrative',
    ipv6: b.ipv6 ? 1 : 0,
  };
}
