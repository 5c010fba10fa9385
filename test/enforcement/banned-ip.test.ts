/**
 * banned-ip backend scenarios on the emulator: add_users with an expiry past the block's (refreshed when a
 * block is extended), clear_users on unblock, convergence through an outage, and reconciliation on a list
 * with no owner field — only our own history makes an entry ours, so an operator's ban stays.
 */
import { BANNED_MARGIN_MS, BANNED_SET, BannedIpBackend } from '../../src/enforcement/banned-ip';
import { FortiOSClient } from '../../src/fortios/client';
import { startEmulator } from '../../src/fortios/emulator/server';
import { statusQuery } from '../../workflows/messages';
import { blockInput, Stack, startBlock, startStack } from '../support/stack';
import { BackendUnderTest, activeBlocks, cancelAll, DAY, expectEnforced, expectLifted, lifecycleScenarios, outageScenario, reconcile } from './scenarios';

const banned: BackendUnderTest = {
  mechanism: 'banned-ip',
  target: { enforcement: 'banned-ip' },
  emulator: { version: 'v7.4.5' },
  holds: async (stack, ip) => (await stack.firewall.bannedList()).some((e) => e.ip === ip),
  firewallExpiryMs: async (stack, ip) => {
    const e = (await stack.firewall.bannedList()).find((x) => x.ip === ip);
    return e?.expires === undefined ? undefined : e.expires * 1000;
  },
};

lifecycleScenarios(banned, { v4: ['203.0.113.81', '203.0.113.82'], v6: '2001:db8:81::1' });

describe('outage and reconciliation (dev server)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ server: 'dev', emulator: banned.emulator, target: banned.target, firewallTimeoutMs: 1000 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('the firewall down while blocks start and others are unblocked: everything converges', async () => {
    await outageScenario(stack, banned, ['198.51.100.81', '198.51.100.82', '198.51.100.83'], ['198.51.100.84', '198.51.100.85', '2001:db8:82::1']);
  });

  test('the firewall lifts an entry by itself only after the block ends (expiry with margin)', async () => {
    const ip = '198.51.100.86';
    await activeBlocks(stack, banned, [ip], DAY);
    const expiresAt = Date.parse((await stack.client.workflow.getHandle(`block:fw1:${ip}`).query(statusQuery)).expiresAt);
    const fw = (await banned.firewallExpiryMs!(stack, ip))!;
    // The device keeps whole seconds from its own clock: within 2 s of the promised margin, never less.
    expect(fw).toBeGreaterThanOrEqual(expiresAt + BANNED_MARGIN_MS - 2000);
    expect(fw).toBeLessThanOrEqual(expiresAt + BANNED_MARGIN_MS + 10 * 60_000); // rounded up to 10 min
    await cancelAll(stack, [ip]);
    await expectLifted(stack, banned, ip);
  });

  test('reconciliation: an entry cleared by hand is re-added, a stale entry of an ended block of ours removed, an operator’s own ban left alone', async () => {
    const live = ['192.0.2.81', '192.0.2.82'];
    const ended = '192.0.2.83';
    const operators = '192.0.2.84';
    await activeBlocks(stack, banned, live);
    // A block of ours that ended: its entry is gone.
    const h = await startBlock(stack, blockInput(ended, { ttlMs: DAY }));
    await expectEnforced(stack, banned, ended);
    expect((await cancelAll(stack, [ended]))[0].state).toBe('cancelled');
    await expectLifted(stack, banned, ended);
    expect((await h.describe()).status.name).toBe('COMPLETED');

    // Drift by hand: one active block's entry cleared; the ended block's IP banned again (stale); an operator's own ban.
    await stack.firewall.bannedClear([live[0]]);
    await stack.firewall.bannedAdd([ended], 3600);
    await stack.firewall.bannedAdd([operators], 0);
    expect(stack.emulator.blocked(live[0])!.blocked).toBe(false);

    const report = await reconcile(stack, BANNED_SET);
    expect(report.reasserted).toEqual([live[0]]);
    expect(report.orphansRemoved).toEqual([ended]);
    await expectEnforced(stack, banned, live[0]);
    await expectLifted(stack, banned, ended);
    // The operator's ban (no block of ours ever held that IP) is untouched.
    expect(stack.emulator.blocked(operators)).toMatchObject({ blocked: true, mechanisms: ['banned-ip'] });
    expect((await stack.firewall.bannedList()).find((e) => e.ip === operators)?.expires).toBeUndefined();
    expect(await reconcile(stack, BANNED_SET)).toMatchObject({ reasserted: [], orphansRemoved: [] });

    await cancelAll(stack, live);
    for (const ip of live) await expectLifted(stack, banned, ip);
    expect(stack.emulator.blocked(operators)!.blocked).toBe(true);
  });
});

test("the API's early adds (addAhead): one add_users per expiry step for many IPs, with the block's expiry and margin; an operator's ban stays", async () => {
  const emulator = await startEmulator({ port: 0, version: 'v7.4.5' });
  const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token });
  try {
    await fw.bannedAdd(['192.0.2.200'], 0);
    const backend = new BannedIpBackend(fw, {});
    expect(backend.earlyInBurst).toBe('ahead');
    const expiresAtMs = Date.now() + DAY;
    const ips = Array.from({ length: 30 }, (_, i) => `198.51.100.${i + 120}`);
    const before = emulator.state.requests();
    await backend.addAhead(BANNED_SET, [...ips.map((ip) => ({ ip, family: 'ipv4' as const, expiresAtMs })), { ip: '2001:db8:8a::1', family: 'ipv6', expiresAtMs }]);
    expect(emulator.state.requests() - before).toBe(1);
    const list = await fw.bannedList();
    for (const ip of [...ips, '2001:db8:8a::1']) {
      const e = list.find((x) => x.ip === ip);
      expect(e).toBeDefined();
      expect(e!.expires! * 1000).toBeGreaterThanOrEqual(expiresAtMs + BANNED_MARGIN_MS - 1000);
    }
    expect(list.some((x) => x.ip === '192.0.2.200')).toBe(true);
  } finally {
    await fw.close();
    await emulator.close();
  }
});

describe('start-up check()', () => {
  test('a firewall whose banned list answers: all findings ok', async () => {
    const emulator = await startEmulator({ port: 0, version: 'v7.4.5' });
    const fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token });
    try {
      const findings = await new BannedIpBackend(fw, {}).check();
      expect(findings.length).toBeGreaterThan(0);
      expect(findings.filter((f) => !f.ok)).toEqual([]);
    } finally {
      await fw.close();
      await emulator.close();
    }
  });

  test('an API user the banned list refuses: a finding with the fix', async () => {
    const emulator = await startEmulator({ port: 0, version: 'v7.4.5', lockoutThreshold: 100 });
    const fw = new FortiOSClient({ baseUrl: emulator.url, token: 'not-the-token' });
    try {
      const findings = await new BannedIpBackend(fw, {}).check();
      const bad = findings.filter((f) => !f.ok);
      expect(bad).toHaveLength(1);
      expect(bad[0].fix).toMatch(/user\/banned|accprofile/);
    } finally {
      await fw.close();
      await emulator.close();
    }
  });
});
