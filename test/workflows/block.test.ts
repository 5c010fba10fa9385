/**
 * The block lifecycle on the time-skipping test server: hours of TTL pass in milliseconds, and every
 * firewall effect is checked on the FortiOS emulator over a real socket.
 */
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { BlockService } from '../../src/blocks/service';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import { cancelSignal, cancelUpdate, extendSignal, extendUpdate, statusQuery } from '../../workflows/messages';
import { addressObjectName } from '../../src/enforcement/address-group';
import { activeStatus, blockInput, eventually, GROUP4, GROUP6, resultAfter, Stack, startBlock, startStack, testTarget } from '../support/stack';

const HOUR = 3_600_000;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ server: 'time-skipping' });
});
afterAll(async () => {
  await stack?.stop();
});

async function members(group = GROUP4): Promise<string[]> {
  return (await stack.firewall.getGroup(group.endsWith('6') ? 'ipv6' : 'ipv4', group))?.members ?? [];
}
const isMember = (ip: string, group = GROUP4) => async () => (await members(group)).includes(addressObjectName(ip));

function service(): BlockService {
  return new BlockService(stack.client, {
    targets: [testTarget(stack.emulator.url, stack.emulator.token)],
    block: { ttlMs: HOUR, maxTtlMs: 30 * 24 * HOUR, batchWindowMs: 0, earlyAdd: true },
    ipPolicy: DEFAULT_IP_POLICY,
    temporal: { namespace: 'default', taskQueue: stack.taskQueue, uiPort: 0, port: 0 },
  });
}

test('a 1-hour block is applied, then lifted after the TTL: member removed, address deleted, placeholder back', async () => {
  const ip = '203.0.113.7';
  const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR }));
  await eventually(isMember(ip), 20_000, 'member on the firewall');
  const addr = await stack.firewall.getAddress('ipv4', addressObjectName(ip));
  expect(addr).toMatchObject({ subnet: '203.0.113.7/32' });
  expect(addr!.comment).toMatch(/ads-mitigator/);
  expect(await members()).not.toContain('none'); // placeholder leaves once a real member is there
  const active = await activeStatus(handle);
  expect(Date.parse(active.expiresAt) - Date.parse(active.createdAt)).toBe(HOUR);

  const result = await resultAfter(stack, handle, Date.parse(active.expiresAt)); // the hour skipped, then real time
  expect(result.state).toBe('expired');
  expect(await members()).toEqual(['none']);
  expect(await stack.firewall.getAddress('ipv4', addressObjectName(ip))).toBeUndefined();
});

test('IPv6 blocks use address6 and the IPv6 group', async () => {
  const ip = '2001:db8:bad::7';
  const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR }));
  await eventually(isMember(ip, GROUP6), 20_000, 'IPv6 member');
  expect(await stack.firewall.getAddress('ipv6', addressObjectName(ip))).toMatchObject({ subnet: '2001:db8:bad::7/128' });
  const active = await activeStatus(handle);
  expect((await resultAfter(stack, handle, Date.parse(active.expiresAt))).state).toBe('expired');
  expect(await members(GROUP6)).toEqual(['none']);
});

test('50 events for one IP: one workflow, expiry = latest event + TTL', async () => {
  const ip = '198.51.100.50';
  const blocks = service();
  const results = [];
  for (let i = 0; i < 50; i++) {
    results.push((await blocks.block({ ip, reason: 'ads', actor: 'ads', event: { id: String(1000 + i), method: 'SSHDICT', severity: 'high' } }))[0]);
    if (i === 24) await stack.env.sleep('10 minutes'); // later events must push the expiry out
  }
  expect(results[0].outcome).toBe('started');
  expect(new Set(results.map((r) => r.workflowId)).size).toBe(1);
  expect(results.slice(1).every((r) => r.outcome === 'extended' || r.outcome === 'unchanged')).toBe(true);
  // A re-delivered event id is refused by the Update's validator: tested on the dev server (test/api/webhook.test.ts),
  // as the time-skipping test server mishandles a workflow after a rejected Update.

  const handle = stack.client.workflow.getHandle(results[0].workflowId);
  const s = await handle.query(statusQuery);
  expect(s.eventCount).toBe(50);
  const lastEventExpiry = Math.max(...s.extensions.map((e) => e.toMs));
  expect(Date.parse(s.expiresAt)).toBe(lastEventExpiry);
  expect(Date.parse(s.expiresAt) - Date.parse(s.createdAt)).toBeGreaterThanOrEqual(HOUR + 10 * 60_000);
  const count = await stack.client.workflow.count(`WorkflowId = "${results[0].workflowId}"`).catch(() => undefined);
  if (count) expect(count.count).toBe(1);
  await handle.signal(cancelSignal, { reason: 'test done', actor: 'test' });
  expect((await resultAfter(stack, handle)).state).toBe('cancelled');
});

test('extend by signal and by Update moves the expiry; the block ends at the new time', async () => {
  const ip = '203.0.113.20';
  const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR }));
  await eventually(isMember(ip), 20_000, 'member');
  const before = await handle.query(statusQuery);

  const byUpdate = await handle.executeUpdate(extendUpdate, { args: [{ byMs: HOUR, actor: 'op' }] });
  expect(Date.parse(byUpdate.expiresAt)).toBe(Date.parse(before.expiresAt) + HOUR);
  const until = Date.parse(byUpdate.expiresAt) + 2 * HOUR;
  await handle.signal(extendSignal, { untilMs: until, actor: 'op' });
  await eventually(async () => Date.parse((await handle.query(statusQuery)).expiresAt) === until, 10_000, 'signal extend');

  // Validator rejections are tested on the dev server (group.test.ts): the time-skipping test server
  // 1.40 loses its time lock after a rejected Update and then times out every later workflow task.

  const t0 = await stack.env.currentTimeMs();
  const result = await resultAfter(stack, handle, until);
  expect(result.state).toBe('expired');
  expect(Date.parse(result.endedAt!)).toBeGreaterThanOrEqual(until);
  expect(Date.parse(result.endedAt!) - t0).toBeGreaterThanOrEqual(4 * HOUR - 60_000);
  expect(result.extensions.map((e) => e.cause)).toEqual(['extend', 'extend']);
});

test('cancel by Update lifts the block at once and is idempotent; cancel by signal too', async () => {
  const a = '203.0.113.30';
  const b = '203.0.113.31';
  const ha = await startBlock(stack, blockInput(a, { ttlMs: 24 * HOUR }));
  const hb = await startBlock(stack, blockInput(b, { ttlMs: 24 * HOUR }));
  await eventually(async () => (await isMember(a)()) && (await isMember(b)()), 20_000, 'both members');

  const first = await ha.executeUpdate(cancelUpdate, { args: [{ reason: 'false positive', actor: 'alice' }] });
  expect(first.cancelledBy).toMatchObject({ actor: 'alice', reason: 'false positive' });
  // The enforcer answers the remove within the block's task that took the cancel, so the block may have ended
  // already (an Update to an ended block: not found); if not, the first cancel wins.
  const second = await ha.executeUpdate(cancelUpdate, { args: [{ reason: 'again', actor: 'bob' }] }).catch((err) => {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  });
  if (second) expect(second.cancelledBy).toMatchObject({ actor: 'alice' });
  await hb.signal(cancelSignal, { reason: 'done', actor: 'carol' });

  // Wait in real time (no time skipping: a cancel needs none), then read the results of the ended runs.
  await eventually(async () => (await ha.describe()).status.name === 'COMPLETED' && (await hb.describe()).status.name === 'COMPLETED', 30_000, 'both lifted');
  const [ra, rb] = await Promise.all([resultAfter(stack, ha), resultAfter(stack, hb)]);
  expect([ra.state, rb.state]).toEqual(['cancelled', 'cancelled']);
  expect(ra.cancelledBy?.actor).toBe('alice');
  expect(rb.cancelledBy?.actor).toBe('carol');
  expect(await members()).toEqual(['none']);
  expect(await stack.firewall.getAddress('ipv4', addressObjectName(a))).toBeUndefined();
});

test('cancelling the workflow itself (Web UI / CLI) still removes the block', async () => {
  const ip = '203.0.113.40';
  const handle = await startBlock(stack, blockInput(ip, { ttlMs: 24 * HOUR }));
  await eventually(isMember(ip), 20_000, 'member');
  await handle.cancel();
  await expect(resultAfter(stack, handle)).rejects.toThrow(WorkflowFailedError);
  await eventually(async () => !(await isMember(ip)()), 20_000, 'member removed');
  expect(await stack.firewall.getAddress('ipv4', addressObjectName(ip))).toBeUndefined();
  expect((await handle.describe()).status.name).toBe('CANCELLED');
});

test('invalid or reserved addresses are rejected before anything touches the firewall', async () => {
  const writesBefore = JSON.stringify((await stack.firewall.getGroup('ipv4', GROUP4))?.members);
  for (const [ip, why] of [
    ['127.0.0.1', /loopback/i],
    ['not-an-ip', /invalid|not an ip/i],
    ['10.1.2.3', /private/i],
  ] as const) {
    const handle = await startBlock(stack, blockInput(ip));
    const result = await resultAfter(stack, handle);
    expect(result.state).toBe('rejected');
    expect(result.lastError).toMatch(why);
    expect(await stack.firewall.getAddress('ipv4', addressObjectName(ip))).toBeUndefined();
  }
  expect(JSON.stringify((await stack.firewall.getGroup('ipv4', GROUP4))?.members)).toBe(writesBefore);
});
