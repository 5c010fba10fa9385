/**
 * The release log (workflows/release-log.ts): the enforcer vouches for reconciliation's re-adds of IPs it
 * removed nothing of since their blocks were listed, so a repair of 100,000 entries needs no describe per
 * entry; a re-add of an IP it removed since is checked at commit time, so an ended block is never re-added.
 * The rules as a plain class first, then on the time-skipping server (the margin passes in milliseconds)
 * with the real worker and emulator, on a threat feed.
 */
import type { temporal } from '@temporalio/proto';
import { sendToEnforcer } from '../../activities/messaging';
import { RELEASE_LOG_CARRIED, RELEASE_LOG_MAX, RELEASE_MARGIN_MS, ReleaseLog } from '../../workflows/release-log';
import { cancelUpdate, enforcerWorkflowId, SetChange } from '../../workflows/messages';
import { activeStatus, blockInput, eventually, Stack, startBlock, startStack, TARGET } from '../support/stack';

const HOUR = 3_600_000;
const readd = (ip: string, listedAtMs: number): SetChange => ({ op: 'add', ip, family: 'ipv4', listedAtMs, label: 'active block, re-added by reconciliation' });

describe('ReleaseLog (plain rules)', () => {
  const start = 1_000_000;
  const later = start + RELEASE_MARGIN_MS + 60_000; // a listing the log reaches back to

  test('a re-add of an IP not removed since its listing is vouched for; one removed since is left to the check', () => {
    const log = new ReleaseLog(start);
    log.record('192.0.2.2', later - 1_000); // removed within the margin before the listing: visibility may still show it
    log.record('192.0.2.3', later - RELEASE_MARGIN_MS - 1); // removed long before the listing
    expect(log.vouch(readd('192.0.2.1', later)).vouched).toBe(true);
    expect(log.vouch(readd('192.0.2.2', later)).vouched).toBeUndefined();
    expect(log.vouch(readd('192.0.2.3', later)).vouched).toBe(true);
  });

  test('nothing is vouched for where the log does not reach back (a fresh run), nor any other kind of change', () => {
    const log = new ReleaseLog(start);
    expect(log.vouch(readd('192.0.2.1', start + RELEASE_MARGIN_MS - 1)).vouched).toBeUndefined();
    const owner = { workflowId: 'block:fw1:192.0.2.1', lineage: 'l' };
    for (const c of [
      { op: 'add', ip: '192.0.2.1', family: 'ipv4', owner, listedAtMs: later },
      { op: 'add', ip: '192.0.2.1', family: 'ipv4', early: true, listedAtMs: later },
      { op: 'remove', ip: '192.0.2.1', family: 'ipv4', listedAtMs: later },
      { op: 'add', ip: '192.0.2.1', family: 'ipv4' }, // a re-check's re-add: no listing time
    ] as SetChange[]) expect(log.vouch(c).vouched).toBeUndefined();
    // A mark that came with a signal is not the enforcer's: dropped.
    expect(log.vouch({ op: 'add', ip: '192.0.2.1', family: 'ipv4', vouched: true }).vouched).toBeUndefined();
  });

  test('bounded: the oldest removals go and the log is complete only from then; continue-as-new carries the newest', () => {
    const log = new ReleaseLog(start);
    for (let i = 0; i <= RELEASE_LOG_MAX; i++) log.record(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, start + i);
    expect(log.size).toBe(RELEASE_LOG_MAX);
    expect(log.completeSinceMs).toBe(start + 1);
    const carried = log.carry();
    expect(carried.ips).toHaveLength(RELEASE_LOG_CARRIED);
    const next = new ReleaseLog(later * 10, carried);
    expect(next.completeSinceMs).toBe(start + RELEASE_LOG_MAX - RELEASE_LOG_CARRIED + 1);
    const newest = carried.ips[carried.ips.length - 1]!;
    const listed = start + RELEASE_LOG_MAX; // the newest was removed at this very time, within the margin
    expect(next.vouch(readd(newest, listed + RELEASE_MARGIN_MS)).vouched).toBeUndefined();
    expect(next.vouch(readd('192.0.2.9', listed + RELEASE_MARGIN_MS)).vouched).toBe(true);
  });
});

const FEED = 'ads-feed';

describe('re-adds on the time-skipping server (worker, emulator)', () => {
  let stack: Stack;
  const enforcerId = enforcerWorkflowId(TARGET, FEED);
  const member = async (ip: string) => (await stack.backend.list(FEED)).some((e) => e.ip === ip);
  const send = (changes: SetChange[]) => sendToEnforcer({ temporal: stack.client, taskQueue: stack.taskQueue }, TARGET, FEED, changes);
  /** The outcome the enforcer's commit recorded for `ip` (last one), from its local activity markers. */
  const outcomeOf = async (ip: string): Promise<{ status: string; reason?: string } | undefined> => {
    const { events } = await stack.client.workflow.getHandle(enforcerId).fetchHistory();
    let last: { status: string; reason?: string } | undefined;
    for (const e of (events ?? []) as temporal.api.history.v1.IHistoryEvent[]) {
      const data = e.markerRecordedEventAttributes?.details?.result?.payloads?.[0]?.data;
      if (!data) continue;
      const result = JSON.parse(Buffer.from(data).toString()) as { outcomes?: Record<string, { status: string; reason?: string }> };
      if (result.outcomes?.[ip]) last = result.outcomes[ip];
    }
    return last;
  };

  beforeAll(async () => {
    stack = await startStack({ server: 'time-skipping', target: { enforcement: 'threat-feed', feed: FEED }, emulator: { version: 'v7.4.5', feeds: [{ name: FEED }] } });
    // The enforcer's first run, and then more than the margin on its clock: its log reaches back to listings of now.
    await send([{ op: 'remove', ip: '198.51.100.250', family: 'ipv4' }]);
    await eventually(async () => (await outcomeOf('198.51.100.250')) !== undefined, 20_000, "the enforcer's first tick");
    await stack.env.sleep(RELEASE_MARGIN_MS + 60_000);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('a re-add the enforcer vouches for is written without a check (here: an IP with no block, which a check would refuse)', async () => {
    const ip = '198.51.100.241';
    await send([readd(ip, await stack.env.currentTimeMs())]);
    await eventually(() => member(ip), 20_000, 'the vouched re-add written');
    expect((await outcomeOf(ip))?.reason).toBeUndefined();
  });

  test("a re-add of an IP the enforcer removed since the listing is checked: the ended block's entry is not re-added", async () => {
    const ip = '198.51.100.242';
    const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR }));
    await activeStatus(handle);
    const listedAtMs = await stack.env.currentTimeMs(); // reconciliation saw the block active …
    await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'false positive', actor: 'op' }] });
    // … then it ended and its entry was removed. (Not `result()`: waiting on it lets the time-skipping server jump
    // ahead by years, past the test server's default run timeout, and the enforcer would start afresh.)
    await eventually(async () => (await handle.describe()).status.name === 'COMPLETED', 20_000, 'the block ended');
    expect(await member(ip)).toBe(false);
    await send([readd(ip, listedAtMs)]);
    await eventually(async () => (await outcomeOf(ip))?.reason === 'not re-added: no block holds it now', 20_000, 'the checked re-add');
    expect(await member(ip)).toBe(false);
  });
});
