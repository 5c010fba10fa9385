/**
 * JSON shapes of table entries as FortiOS 7.x returns them: the field sets of the real captures in
 * reference §12 (F: address, I: address6, G: addrgrp, H: banned), the CLI reference field lists for
 * firewall/policy and system/external-resource, and the 7.4.2 entry-list capture (how-to-fortimanager-api
 * "Connector Management" §5.5.2), with defaults for fields the emulator does not model. Every entry and
 * child entry carries `q_origin_key` equal to its mkey.
 */
import { createHash } from 'node:crypto';
import { ExternalResource, FeedCounts, PullStatus, StoredEntry } from './feeds';
import { AddressEntry, BannedEntry, FirewallPolicyEntry, GroupEntry, PolicyEntry } from './state';

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

export function renderFirewallPolicy(p: FirewallPolicyEntry): Row {
  return {
    policyid: p.policyid,
    q_origin_key: p.policyid,
    status: p.status,
    name: p.name,
    uuid: p.uuid,
    srcintf: nameRows(p.srcintf),
    dstintf: nameRows(p.dstintf),
    action: p.action,
    srcaddr: nameRows(p.srcaddr),
    dstaddr: nameRows(p.dstaddr),
    srcaddr6: nameRows(p.srcaddr6),
    dstaddr6: nameRows(p.dstaddr6),
    'srcaddr-negate': 'disable',
    'dstaddr-negate': 'disable',
    'srcaddr6-negate': 'disable',
    'dstaddr6-negate': 'disable',
    'internet-service': 'disable',
    schedule: p.schedule,
    service: nameRows(p.service),
    'service-negate': 'disable',
    logtraffic: 'utm',
    nat: 'disable',
    comments: p.comments,
  };
}

/**
 * A password field is never shown in clear: FortiOS answers an encrypted form (the exact text is
 * UNCERTAIN); the emulator shows "ENC " and a digest so that a change is visible but the secret is not.
 */
function encryptedPassword(password: string): string {
  return password === '' ? '' : `ENC ${createHash('sha256').update(password).digest('base64')}`;
}

/** `update-method` exists from 7.2.1 on only. */
export function renderExternalResource(r: ExternalResource, withUpdateMethod: boolean): Row {
  return {
    name: r.name,
    q_origin_key: r.name,
    uuid: r.uuid,
    status: r.status,
    type: r.type,
    ...(withUpdateMethod ? { 'update-method': r.updateMethod } : {}),
    category: r.category,
    username: r.username,
    password: encryptedPassword(r.password),
    comments: r.comments,
    resource: r.resource,
    'user-agent': r.userAgent,
    'server-identity-check': r.serverIdentityCheck,
    'refresh-rate': r.refreshRate,
    'source-ip': '0.0.0.0',
    'interface-select-method': 'auto',
    interface: '',
  };
}

export interface EntryListView {
  entries: StoredEntry[];
  invalid: string[];
  counts: FeedCounts;
  overflow: boolean;
  pull?: PullStatus;
  /** Push feeds have no download; their status fields are placeholders (UNCERTAIN). */
  push: boolean;
  statusOnly: boolean;
  countsOnly: boolean;
  includeNotes: boolean;
}

/**
 * `monitor/system/external-resource/entry-list` results. Real (7.4.2 capture): conn_attempt_time, entries
 * [{entry, valid}], http_status_code, invalid_count, last_content_update_time, overflow,
 * resource_file_status, status, valid_count. Emulator additions (UNCERTAIN, no capture): entries cut by
 * the limit carry `"overflow": true`; `buildable_count` and `overflow_count` (the numbers of
 * `diagnose sys external-resource stats`); `notes` per entry with include_notes; status_only and
 * counts_only drop the entry list.
 */
export function renderEntryList(v: EntryListView): Row {
  const counts = {
    invalid_count: v.counts.invalid,
    valid_count: v.counts.valid,
    buildable_count: v.counts.buildable,
    overflow_count: v.counts.overflow,
    overflow: v.overflow,
  };
  if (v.countsOnly) return counts;
  const status: Row = {
    conn_attempt_time: v.pull?.connAttemptTime ?? 0,
    http_status_code: v.pull?.httpStatusCode ?? 0,
    last_content_update_time: v.pull?.lastContentUpdateTime ?? 0,
    resource_file_status: v.push ? 'pushed' : (v.pull?.resourceFileStatus ?? 'pending'),
    status: v.pull?.error ? 'error' : 'success',
    ...counts,
  };
  if (v.statusOnly) return status;
  const note = (text: string) => (v.includeNotes ? { notes: text } : {});
  const entries = [
    ...v.entries.map((e) => ({ entry: e.text, valid: true, ...(e.overflow ? { overflow: true } : {}), ...note(e.overflow ? 'overflow' : '') })),
    ...v.invalid.map((line) => ({ entry: line, valid: false, ...note('invalid entry') })),
  ];
  return { ...status, entries };
}
