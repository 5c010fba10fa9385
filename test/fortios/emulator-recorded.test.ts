/**
 * The emulator's replies, read raw off the socket, against real FortiOS replies recorded by public
 * projects (reference §12): same field names, same JSON types, same conventions.
 */
import { RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { RawReply, raw, shapeOf } from './helpers';
import {
  ADDRESS6_ENTRY,
  ADDRGRP_ENTRY,
  BANNED_LIST,
  DELETE_ADDRESS,
  DUPLICATE_ERROR,
  GET_404,
  GET_ADDRESS,
  LIST_ADDRESS,
  POST_ADDRESS,
  PUT_ADDRGRP,
  SYSTEM_STATUS,
} from './recorded';

let emu: RunningEmulator;
let call: (method: string, path: string, body?: unknown) => Promise<RawReply>;

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
  call = (method, path, body) => raw(emu.url, method, path, { token: emu.token, body });
});
afterAll(() => emu.close());
beforeEach(() => emu.reset());

const HEX32 = /^[0-9a-f]{32}$/;
const createAddress = (name: string, subnet = '192.0.2.1/32') => call('POST', '/api/v2/cmdb/firewall/address', { name, subnet });

describe('CMDB writes', () => {
  it('POST success has the recorded shape and a new 32-hex revision', async () => {
    const before = (await call('GET', '/api/v2/cmdb/firewall/address')).json.revision;
    const reply = await createAddress('1.1.1.1');
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe('application/json');
    expect(shapeOf(reply.json)).toEqual(shapeOf(POST_ADDRESS));
    expect(reply.json).toMatchObject({ http_method: 'POST', mkey: '1.1.1.1', revision_changed: true, old_revision: before });
    expect(reply.json.revision).toMatch(HEX32);
    expect(reply.json.revision).not.toBe(before);
  });

  it('DELETE success has the recorded shape', async () => {
    await createAddress('1.1.1.1');
    const reply = await call('DELETE', '/api/v2/cmdb/firewall/address/1.1.1.1');
    expect(shapeOf(reply.json)).toEqual(shapeOf(DELETE_ADDRESS));
    expect(reply.json).toMatchObject({ http_method: 'DELETE', mkey: '1.1.1.1', status: 'success' });
  });

  it('PUT addrgrp success has the recorded shape', async () => {
    const reply = await call('PUT', '/api/v2/cmdb/firewall/addrgrp/ads-blocked', { member: [{ name: 'all' }] });
    expect(shapeOf(reply.json)).toEqual(shapeOf(PUT_ADDRGRP));
    expect(reply.json).toMatchObject({ mkey: 'ads-blocked', name: 'addrgrp', path: 'firewall' });
  });

  it('a duplicate has the fields of the recorded error (plus http_status) and keeps the revision', async () => {
    await createAddress('dup');
    const before = (await call('GET', '/api/v2/cmdb/firewall/address')).json.revision;
    const reply = await createAddress('dup');
    expect(reply.status).toBe(500);
    const recorded = shapeOf(DUPLICATE_ERROR);
    expect(shapeOf(reply.json)).toEqual({ ...recorded, http_status: 'number' });
    expect(reply.json).toMatchObject({
      status: 'error',
      http_status: 500,
      error: -5,
      revision: before,
      revision_changed: false,
      cli_error: 'A duplicate entry already exists\nCommand fail. Return code -5\n',
    });
  });
});

describe('CMDB reads', () => {
  it('a single GET has the recorded envelope, a one-element results array and the 7.x entry fields', async () => {
    await call('POST', '/api/v2/cmdb/firewall/address', { name: '1.1.1.1', subnet: '1.1.1.1/32', comment: 'c' });
    const reply = await call('GET', '/api/v2/cmdb/firewall/address/1.1.1.1');
    expect(shapeOf(reply.json)).toEqual(shapeOf(GET_ADDRESS));
    expect(reply.json.results).toHaveLength(1);
    expect(shapeOf(reply.json.results[0])).toEqual(shapeOf(LIST_ADDRESS.results[0]!));
    expect(reply.json.results[0]).toMatchObject({ name: '1.1.1.1', q_origin_key: '1.1.1.1', subnet: '1.1.1.1 255.255.255.255', type: 'ipmask', comment: 'c' });
  });

  it('a list GET has the recorded 7.2.5 envelope with size, matched_count and next_idx', async () => {
    const reply = await call('GET', '/api/v2/cmdb/firewall/address');
    expect(shapeOf(reply.json)).toEqual(shapeOf(LIST_ADDRESS));
    expect(reply.json).toMatchObject({ size: 2, matched_count: 2, next_idx: 1 });
    expect(reply.json.results.map((r: { name: string }) => r.name)).toEqual(['all', 'none']);
  });

  it('addrgrp and address6 entries have the recorded field sets', async () => {
    const group = await call('GET', '/api/v2/cmdb/firewall/addrgrp/ads-blocked');
    expect(shapeOf(group.json.results[0])).toEqual(shapeOf(ADDRGRP_ENTRY));
    expect(group.json.results[0].member).toEqual([{ name: 'none', q_origin_key: 'none' }]);
    await call('POST', '/api/v2/cmdb/firewall/address6', { name: 'Lucario', ip6: '2001:db8::/120' });
    const v6 = await call('GET', '/api/v2/cmdb/firewall/address6/Lucario');
    expect(shapeOf(v6.json.results[0])).toEqual(shapeOf(ADDRESS6_ENTRY));
    expect(v6.json.results[0]).toMatchObject({ ip6: '2001:db8::/120', type: 'ipprefix' });
  });

  it('a 404 on 7.x is the recorded 6.2.3 body plus error -3', async () => {
    const reply = await call('GET', '/api/v2/cmdb/firewall/address6/Example');
    expect(reply.status).toBe(404);
    expect(shapeOf(reply.json)).toEqual({ ...shapeOf(GET_404), error: 'number' });
    expect(reply.json).toMatchObject({ http_status: 404, error: -3, mkey: 'Example', name: 'address6' });
  });

  it('a 404 on 6.2.3 is exactly the recorded shape (no error field)', async () => {
    const old = await startEmulator({ port: 0, version: 'v6.2.3' });
    try {
      const reply = await raw(old.url, 'GET', '/api/v2/cmdb/firewall/address6/Example', { token: old.token });
      expect(shapeOf(reply.json)).toEqual(shapeOf(GET_404));
      expect(reply.json).toMatchObject({ version: 'v6.2.3', build: 1066 });
    } finally {
      await old.close();
    }
  });

  it('reads do not change the revision', async () => {
    const first = (await call('GET', '/api/v2/cmdb/firewall/addrgrp')).json.revision;
    const second = (await call('GET', '/api/v2/cmdb/firewall/address')).json.revision;
    expect(second).toBe(first);
  });
});

describe('monitor replies', () => {
  it('system/status has the recorded envelope without http_status', async () => {
    const reply = await call('GET', '/api/v2/monitor/system/status');
    expect(shapeOf(reply.json)).toEqual(shapeOf(SYSTEM_STATUS));
    expect(shapeOf(reply.json.results)).toEqual(shapeOf(SYSTEM_STATUS.results));
  });

  it('the banned list has the recorded envelope and entry shapes on both URLs', async () => {
    await call('POST', '/api/v2/monitor/user/banned/add_users', { ip_addresses: ['192.0.2.1'], expiry: 60 });
    await call('POST', '/api/v2/monitor/user/banned/add_users', { ip_addresses: ['192.0.2.2', '2001:db8::2'], expiry: 0 });
    for (const path of ['/api/v2/monitor/user/banned', '/api/v2/monitor/user/banned/select']) {
      const reply = await call('GET', path);
      expect(shapeOf(reply.json)).toEqual(shapeOf(BANNED_LIST));
      expect(reply.json.results.map(shapeOf)).toEqual(BANNED_LIST.results.map(shapeOf));
      expect(reply.json.results[2]).toMatchObject({ ip_address: '2001:0db8:0000:0000:0000:0000:0000:0002', ipv6: 1 });
    }
  });
});
