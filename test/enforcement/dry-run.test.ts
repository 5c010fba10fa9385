/**
 * dry-run backend scenarios: the whole block life runs with the set kept in memory and nothing ever reaches
 * the firewall (the emulator's oracle never sees the IP blocked and counts no write); reconciliation repairs
 * its in-memory set both ways; check() reports that nothing is enforced.
 */
import { DryRunBackend, DRY_RUN_SET } from '../../src/enforcement/dry-run';
import { BackendUnderTest, activeBlocks, cancelAll, expectEnforced, expectLifted, lifecycleScenarios, outageScenario, reconcile } from './scenarios';
import { Stack, startStack } from '../support/stack';

const dryRun: BackendUnderTest = {
  target: { enforcement: 'dry-run' },
  emulator: {},
  holds: async (stack, ip) => (stack.backend as DryRunBackend).has(ip),
};

lifecycleScenarios(dryRun, { v4: ['203.0.113.71', '203.0.113.72'], v6: '2001:db8:71::1' });

describe('outage and reconciliation (dev server)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ server: 'dev', emulator: dryRun.emulator, target: dryRun.target });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('a firewall outage changes nothing for a dry run: blocks and unblocks go on, the firewall is never called', async () => {
    const writesBefore = JSON.stringify(stack.emulator.state.counters.writes);
    await outageScenario(stack, dryRun, ['198.51.100.71', '198.51.100.72'], ['198.51.100.73', '2001:db8:72::1'], 2000);
    expect(stack.firewallCalls).toEqual([]);
    expect(JSON.stringify(stack.emulator.state.counters.writes)).toBe(writesBefore);
  });

  test('reconciliation re-adds an entry lost from the set and removes one no block holds', async () => {
    const backend = stack.backend as DryRunBackend;
    const live = ['192.0.2.71', '192.0.2.72'];
    await activeBlocks(stack, dryRun, live);
    // Drift: an active block's entry lost, and a leftover entry no block holds.
    await backend.commit(DRY_RUN_SET, { adds: [{ ip: '192.0.2.79', family: 'ipv4' }], removes: [{ ip: live[0], family: 'ipv4' }] });
    expect(backend.has(live[0])).toBe(false);

    const report = await reconcile(stack, DRY_RUN_SET);
    expect(report.reasserted).toEqual([live[0]]);
    expect(report.orphansRemoved).toEqual(['192.0.2.79']);
    await expectEnforced(stack, dryRun, live[0]);
    await expectLifted(stack, dryRun, '192.0.2.79');
    expect(await reconcile(stack, DRY_RUN_SET)).toMatchObject({ reasserted: [], orphansRemoved: [] });
    await cancelAll(stack, live);
    for (const ip of live) await expectLifted(stack, dryRun, ip);
  });
});

test('check(): a dry run reports that nothing is sent to the firewall', async () => {
  const findings = await new DryRunBackend().check();
  expect(findings).toEqual([{ ok: true, what: expect.stringMatching(/dry run/) }]);
});
