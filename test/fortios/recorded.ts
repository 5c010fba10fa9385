/**
 * Real FortiOS replies recorded by public projects, copied from reference/fortios-rest-api.md §12 (letters
 * as there). The emulator's replies must have the same field names and JSON types.
 */

/** A. POST address success — 6.2.3 (rapid7/insightconnect-plugins). */
export const POST_ADDRESS = {
  http_method: 'POST', revision: '7740a1424b9e690e459c37fa209ab309', revision_changed: true,
  old_revision: '99faf4ed01eaa2e9ea2a0939b468c1df', mkey: '1.1.1.1', status: 'success', http_status: 200,
  vdom: 'root', path: 'firewall', name: 'address', serial: 'FGVM02TM20001791', version: 'v6.2.3', build: 1066,
};

/** B. DELETE address success — 6.2.3. */
export const DELETE_ADDRESS = { ...POST_ADDRESS, http_method: 'DELETE' };

/** C. PUT addrgrp success — 6.2.3. */
export const PUT_ADDRGRP = {
  build: 1066, http_method: 'PUT', http_status: 200, mkey: 'Address Object Group', name: 'addrgrp',
  old_revision: '24672d1fabce76df50acf6442f2109c0', path: 'firewall',
  revision: '30b53592bb7296648e9dd4b2233e9ff3', revision_changed: true, serial: 'FGVM02TM20001791',
  status: 'success', vdom: 'root', version: 'v6.2.3',
};

/** D. GET single address — 6.2.3 (envelope; the 6.2 object carried since-removed fields). */
export const GET_ADDRESS = {
  http_method: 'GET', revision: '22effeb59b5d7e5dee1601af974f8144',
  results: [{ name: '1.1.1.1', q_origin_key: '1.1.1.1', subnet: '1.1.1.1 255.255.255.255', type: 'ipmask' }],
  vdom: 'root', path: 'firewall', name: 'address', mkey: '1.1.1.1', status: 'success', http_status: 200,
  serial: 'FGVM02TM20001791', version: 'v6.2.3', build: 1066,
};

/** E. GET 404 — 6.2.3 (no `error` field on that build). */
export const GET_404 = {
  http_method: 'GET', revision: '9de5069c5afe602b2ea0a04b66beb2c0', status: 'error', http_status: 404,
  vdom: 'root', path: 'firewall', name: 'address6', mkey: 'Example', serial: 'FGVM02TM20001791',
  version: 'v6.2.3', build: 1066,
};

/** F. GET address list — 7.2.5 (demisto/content, anonymised); the envelope and the first entry. */
export const LIST_ADDRESS = {
  http_method: 'GET', size: 6, matched_count: 6, next_idx: 5, revision: '12345',
  results: [
    {
      name: 'Pokemon Blue', q_origin_key: 'Pokemon Blue', uuid: '00000000-0000-0000-0000-000000000000',
      subnet: '0.0.0.0 0.0.0.0', type: 'ipmask', 'sub-type': 'sdn', 'clearpass-spt': 'unknown', macaddr: [],
      country: '', 'cache-ttl': 0, sdn: '', 'fsso-group': [], interface: '', 'obj-type': 'ip',
      'tag-detection-level': '', 'tag-type': '', dirty: 'dirty', comment: "Gotta Catch'em All",
      'associated-interface': '', color: 0, filter: '', 'sdn-addr-type': 'private', 'node-ip-only': 'disable',
      'obj-id': '', list: [], tagging: [], 'allow-routing': 'disable', 'fabric-object': 'disable',
    },
  ],
  vdom: 'root', path: 'firewall', name: 'address', status: 'success', http_status: 200,
  serial: '12345', version: 'v7.2.5', build: 1517,
};

/** G. addrgrp entry — 7.2.5. */
export const ADDRGRP_ENTRY = {
  name: 'Blastoise', q_origin_key: 'Blastoise', type: 'default', category: 'default',
  uuid: '00000000-0000-0000-0000-000000000000',
  member: [{ name: 'b', q_origin_key: 'b' }], comment: 'Hello', exclude: 'enable',
  'exclude-member': [{ name: 'c', q_origin_key: 'c' }], color: 0, tagging: [], 'allow-routing': 'disable',
  'fabric-object': 'disable',
};

/** H. GET banned list — 7.2.5. */
export const BANNED_LIST = {
  http_method: 'GET',
  results: [
    { expires: 1969642305, created: 1693195074, ip_address: '0.0.0.0', source: 'Administrative', ipv6: 0 },
    { created: 1700507213, ip_address: '0.0.0.0', source: 'Administrative', ipv6: 0 },
    { created: 1700507213, ip_address: '0000:0000:0000:0000:0000:0000:0000:0000', source: 'Administrative', ipv6: 1 },
  ],
  vdom: 'root', path: 'user', name: 'banned', action: 'select', status: 'success',
  serial: '12345', version: 'v7.2.5', build: 1517,
};

/** I. address6 entry — 7.2.5. */
export const ADDRESS6_ENTRY = {
  name: 'Lucario', q_origin_key: 'Lucario', uuid: '00000000-0000-0000-0000-000000000000', type: 'ipprefix',
  macaddr: [], sdn: '', ip6: '0000:0000::/120', 'end-ip': '::', fqdn: '', country: '', 'cache-ttl': 0, color: 0,
  'obj-id': '', list: [], tagging: [], comment: '', template: '', 'subnet-segment': [], 'host-type': 'any',
  tenant: '', 'epg-name': '', 'sdn-tag': '', 'fabric-object': 'disable',
};

/** K. Monitor system/status — 6.2.4 (prometheus-community/fortigate_exporter). */
export const SYSTEM_STATUS = {
  http_method: 'GET',
  results: { model_name: 'FortiGate', model_number: '800D', model: 'FG800D', hostname: 'Firewall1', log_disk_status: 'not_available' },
  vdom: 'root', path: 'system', name: 'status', status: 'success', serial: 'FGVMEVZFNTS3OAC8', version: 'v6.2.4', build: 1112,
};

/** L. Duplicate error with cli_error — 6.4.8 (Ansible masked `http_status`). */
export const DUPLICATE_ERROR = {
  build: 1914,
  cli_error: 'current vf=***-DEV:6\nDuplicated entry.\nobject set operator error, -15 discard the setting\nCommand fail. Return code -15\nCommand fail. Return code 1\n',
  error: -15, http_method: 'POST', name: 'static', path: 'router', revision: 'e32f4', revision_changed: false,
  serial: 'FG2', status: 'error', vdom: '***-DEV', version: 'v6.4.8',
};
