/**
 * address-group backend scenarios (IPv4 and IPv6) on the emulator: the block life with the expiry kept in
 * our comment, an outage, reconciliation (a member removed by hand re-added, leftover objects of ours
 * removed, an operator's member and object untouched), and the start-up check() findings. Shards have their
 * own file (shards.test.ts).
 */
import { AddressGroupBackend, addressObjectName } from '../../src/enforcement/address-group';
import { commentExpiry, OWNER_MARKER } from '../../src/enforcement/port';
import { FortiOSClient } from '../../src/fortios/client';
import { EmulatorOptions, startEmulator } from '../../src/fortios/emulator/server';
import { eventually, GROUP4, GROUP6, Stack, startStack } from '../support/stack';
import { BackendUnderTest, activeBlocks, cancelAll, expectEnforced, expectLifted, lifecycleScenarios, outageScenario, reconcile } from './scenarios';

const familyOf = (ip: string) => (ip.includes(':') ? 'ipv6' : 'ipv4');
const groupOf = (ip: string) => (ip.includes(':') ? GROUP6 : GROUP4);

const group: BackendUnderTest = {
  mechanism: 'address-group',
  target: { enforcement: 'address-group' },
  emulator: {},
  holds: async (stack, ip) => ((await stack.firewall.getGroup(familyOf(ip), groupOf(ip)))?.members ?? []).includes(addressObjectName(ip)),
  firewallExpiryMs: async (stack, ip) => commentExpiry((await stack.firewall.getAddress(familyOf(ip), addressObjectName(ip)))?.comment ?? ''),
};

lifecycleScenarios(group, { v4: ['203.0.113.101', '203.0.113.102'], v6: '2001:db8:101::1' });

describe('outage and reconciliation (dev server)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ server: 'dev', emulator: group.emulator, target: group.target, firewallTimeoutMs: 1000 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('the firewall down while blocks start and others are unblocked: everything converges, objects cleaned up', async () => {
    const before = ['198.51.100.101', '198.51.100.102', '2001:db8:102::1'];
    const during = ['198.51.100.104', '198.51.100.105', '2001:db8:102::2'];
    await outageScenario(stack, group, before, during);
    for (const ip of [...before, ...during]) expect(await stack.firewall.getAddress(familyOf(ip), addressObjectName(ip))).toBeUndefined();
    expect((await stack.firewall.getGroup('ipv4', GROUP4))!.members).toEqual(['none']);
    expect((await stack.firewall.getGroup('ipv6', GROUP6))!.members).toEqual(['none']);
  });

  test('reconciliation: members removed by hand re-added (IPv4 and IPv6), leftover objects of ours removed, an operator’s member left alone', async () => {
    const live = ['192.0.2.101', '192.0.2.102', '2001:db8:103::1'];
    await activeBlocks(stack, group, live);
    await stack.firewall.removeGroupMember('ipv4', GROUP4, addressObjectName(live[0]));
    await stack.firewall.setGroupMembers('ipv6', GROUP6, ['none']); // its only member (7.0 refuses an empty group)
    const alone = addressObjectName('192.0.2.108');
    const inGroup = addressObjectName('192.0.2.109');
    const operators = addressObjectName('192.0.2.110');
    await stack.firewall.createAddress('ipv4', { name: alone, subnet: '192.0.2.108/32', comment: `${OWNER_MARKER} leftover` });
    await stack.firewall.createAddress('ipv4', { name: inGroup, subnet: '192.0.2.109/32', comment: `${OWNER_MARKER} leftover` });
    await stack.firewall.createAddress('ipv4', { name: operators, subnet: '192.0.2.110/32', comment: 'an operator’s' });
    await stack.firewall.addGroupMember('ipv4', GROUP4, inGroup);
    await stack.firewall.addGroupMember('ipv4', GROUP4, operators);
    expect(stack.emulator.blocked(live[0])!.blocked).toBe(false);

    const v4 = await reconcile(stack, GROUP4);
    expect(v4.reasserted).toEqual([live[0]]);
    expect([...v4.orphansRemoved].sort()).toEqual(['192.0.2.108', '192.0.2.109']);
    // The run above reconciled the IPv6 group too; a second run finds both clean.
    for (const ip of live) await expectEnforced(stack, group, ip);
    await eventually(async () => !(await stack.firewall.getAddress('ipv4', alone)) && !(await stack.firewall.getAddress('ipv4', inGroup)), 30_000, 'leftovers deleted');
    expect(stack.emulator.blocked('192.0.2.109')!.blocked).toBe(false);
    expect(stack.emulator.blocked('192.0.2.110')).toMatchObject({ blocked: true, mechanisms: ['address-group'] });
    expect(await reconcile(stack, GROUP4)).toMatchObject({ reasserted: [], orphansRemoved: [] });
    expect(await reconcile(stack, GROUP6)).toMatchObject({ reasserted: [], orphansRemoved: [] });

    await cancelAll(stack, live);
    for (const ip of live) await expectLifted(stack, group, ip);
    expect((await stack.firewall.getGroup('ipv4', GROUP4))!.members).toEqual([operators]);
    expect(await stack.firewall.getAddress('ipv4', operators)).toBeDefined();
  });
});

async function findings(o: EmulatorOptions, groups = { ipv4: [GROUP4], ipv6: [GROUP6] }) {
  const emulator = await startEmulator({ port: 0, ...o });
  const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token });
  try {
    return await new AddressGroupBackend(fw, { groups, capacity: 600 }).check();
  } finally {
    await fw.close();
    await emulator.close();
  }
}

describe('start-up check()', () => {
  test('groups (shards too) referenced by deny policies, local-in or forward: all findings ok', async () => {
    expect((await findings({})).filter((f) => !f.ok)).toEqual([]);
    const shards = { ipv4: ['blk-1', 'blk-2'], ipv6: ['blk6-1'] };
    expect((await findings({ groups: shards }, shards)).filter((f) => !f.ok)).toEqual([]);
    expect((await findings({ denyPolicy: 'policy' })).filter((f) => !f.ok)).toEqual([]);
  });

  test('misconfigured: a missing group, a group no deny policy uses — each a finding with the fix', async () => {
    const missing = await findings({ groups: { ipv4: ['other'], ipv6: [GROUP6] } });
    expect(missing.filter((f) => !f.ok)).toEqual([{ ok: false, what: expect.stringMatching(/addrgrp "ads-blocked" does not exist/), fix: expect.stringMatching(/config firewall addrgrp\n\s+edit "ads-blocked"/) }]);
    const unused = await findings({ denyPolicy: 'none' });
    const bad = unused.filter((f) => !f.ok);
    expect(bad.map((f) => f.what)).toEqual([expect.stringMatching(/no enabled deny local-in policy references "ads-blocked"/), expect.stringMatching(/no enabled deny local-in6 policy references "ads-blocked6"/)]);
    expect(bad[1].fix).toMatch(/config firewall local-in-policy6[\s\S]*set srcaddr "ads-blocked6"[\s\S]*set action deny/);
  });
});
