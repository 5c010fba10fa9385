/**
 * STILL_ACTIVE on the time-skipping test server: before a block lapses it asks whether its attacker is still
 * active — the Flowmon ADS REST API (an emulator on a real socket) or our own intake — and extends by the
 * repeat-event rules while the answer is yes, up to STILL_ACTIVE_MAX_TOTAL; a "no" or a source that cannot
 * answer (refused login, 500, a hang, bad JSON) leaves the block to lift on time, counted.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { ApiMetrics } from '../../src/api/metrics';
import { BlockService } from '../../src/blocks/service';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import { FlowmonStillActive, IntakeStillActive, StillActiveAnswer } from '../../src/still-active';
import { BlockStatus, statusQuery } from '../../workflows/messages';
import { FlowmonAds, FlowmonFault, startFlowmonAds } from '../support/flowmon-ads';
import { activeStatus, blockInput, blockOutcome, eventually, Stack, startBlock, startStack, testTarget } from '../support/stack';

const MIN = 60_000;
const HOUR = 60 * MIN;
const WINDOW = 10 * MIN;
const ADS_EVENT = { id: '4179523', method: 'SSHDICT', severity: 'high', receivedAtMs: 0 };

/**
 * `RECORD_HISTORIES=1`: also saves the history of a still-active block into the replay fixtures
 * (test/workflows/replay.test.ts replays every file there), so later workflow changes keep replaying it.
 */
async function maybeRecord(stack: Stack, workflowId: string, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  writeFileSync(path.join(__dirname, '..', 'fixtures', 'histories', `${name}.pb`), temporal.api.history.v1.History.encode(history).finish());
}

/** Whole minutes (the test server's clock also runs in real time while activities run: seconds of drift). */
const mins = (ms: number) => Math.round(ms / MIN);
/** Block time from start to the final expiry (minutes), and how late it really ended after that expiry (ms). */
function timing(r: BlockStatus): { held: number; lateMs: number } {
  const expires = Date.parse(r.expiresAt);
  return { held: mins(expires - Date.parse(r.createdAt)), lateMs: Date.parse(r.endedAt!) - expires };
}

describe('STILL_ACTIVE=flowmon', () => {
  let stack: Stack;
  let ads: FlowmonAds;
  let port: FlowmonStillActive;
  const answers: StillActiveAnswer[] = [];
  const metrics = new ApiMetrics();

  beforeAll(async () => {
    ads = await startFlowmonAds();
    port = new FlowmonStillActive({ baseUrl: ads.url, user: ads.user, password: ads.password, timeoutMs: 1_000 });
    stack = await startStack({
      server: 'time-skipping',
      stillActive: { port, settings: { source: 'flowmon', windowMs: WINDOW, maxTotalMs: 6 * HOUR } },
      onStillActive: (a) => {
        answers.push(a);
        metrics.stillActiveChecks.inc({ source: a.source, verdict: a.verdict });
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await port?.close();
    await ads?.close();
  });
  beforeEach(() => {
    ads.fault = 'none';
    ads.active.clear();
    answers.length = 0;
  });

  test('an attacker ADS still sees is extended before lapsing (escalated), until STILL_ACTIVE_MAX_TOTAL', async () => {
    const ip = '203.0.113.60';
    ads.active.add(ip);
    const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR, event: ADS_EVENT, escalation: { factor: 2, maxTtlMs: 4 * HOUR } }));
    const r = await blockOutcome(stack, handle);
    expect(r.state).toBe('expired');
    const created = Date.parse(r.createdAt);
    // asked 10 min before each expiry: at 50 min → now + 2 h (escalated), at 2 h 40 → now + 4 h, capped at 6 h.
    expect(r.extensions.map((x) => [x.cause, x.actor, mins(x.atMs - created), mins(x.toMs - created)])).toEqual([
      ['still-active', 'still-active:flowmon', 50, 170],
      ['still-active', 'still-active:flowmon', 160, 360],
    ]);
    expect(timing(r).held).toBe(360);
    expect(timing(r).lateMs).toBeLessThan(MIN);
    expect(r.stillActive).toMatchObject({ source: 'flowmon', windowMs: WINDOW, maxTotalMs: 6 * HOUR, last: { verdict: 'seen', extendedToMs: created + 6 * HOUR } });
    expect(answers.map((a) => a.verdict)).toEqual(['seen', 'seen']); // none once the maximum is reached
    expect(ads.searches.every((s) => s.source.length === 1 && s.source[0] === ip)).toBe(true);
    await maybeRecord(stack, r.workflowId, `stillactive_flowmon_${ip}`);
  });

  test('extended while seen, then lifted on time once ADS no longer sees it', async () => {
    const ip = '203.0.113.61';
    ads.active.add(ip);
    const handle = await startBlock(stack, blockInput(ip, { ttlMs: HOUR, event: ADS_EVENT }));
    await activeStatus(handle);
    await stack.env.sleep('55 minutes'); // past the first question (at 50 min)
    await eventually(async () => (await handle.query(statusQuery)).stillActive?.last, 20_000, 'first question');
    ads.active.delete(ip);
    const r = await blockOutcome(stack, handle);
    expect(r.state).toBe('expired');
    expect(r.extensions.map((x) => x.actor)).toEqual(['still-active:flowmon']);
    expect(timing(r).held).toBe(110);
    expect(timing(r).lateMs).toBeLessThan(MIN);
    expect(r.stillActive?.last).toMatchObject({ verdict: 'not-seen', source: 'flowmon' });
    expect(answers.map((a) => a.verdict)).toEqual(['seen', 'not-seen']);
  });

  test('an attacker ADS does not see is lifted on time', async () => {
    const r = await blockOutcome(stack, await startBlock(stack, blockInput('203.0.113.62', { ttlMs: HOUR, event: ADS_EVENT })));
    expect(r.state).toBe('expired');
    expect(r.extensions).toEqual([]);
    expect(timing(r).held).toBe(60);
    expect(timing(r).lateMs).toBeLessThan(MIN);
    expect(r.stillActive?.last).toMatchObject({ verdict: 'not-seen' });
  });

  test.each<[FlowmonFault, RegExp]>([
    ['search-500', /HTTP 500/],
    ['search-hang', /no answer in time/],
    ['search-bad-json', /not JSON/],
    ['refuse-login', /login refused/],
  ])('ADS REST failing (%s) changes nothing: lifted on time, counted', async (fault, reason) => {
    const ip = '203.0.113.63';
    ads.active.add(ip); // it would say yes, if it answered
    ads.fault = fault;
    if (fault === 'refuse-login') ads.revokeTokens(); // the cached token stops working, and the new login is refused
    const before = (await metrics.stillActiveChecks.get()).values.find((v) => v.labels.verdict === 'unknown')?.value ?? 0;
    const r = await blockOutcome(stack, await startBlock(stack, blockInput(ip, { ttlMs: HOUR, event: ADS_EVENT })));
    expect(r.state).toBe('expired');
    expect(r.extensions).toEqual([]);
    expect(timing(r).held).toBe(60);
    expect(timing(r).lateMs).toBeLessThan(MIN);
    expect(r.stillActive?.last).toMatchObject({ verdict: 'unknown', source: 'flowmon', detail: expect.stringMatching(reason) });
    expect(answers).toEqual([expect.objectContaining({ verdict: 'unknown' })]);
    const after = (await metrics.stillActiveChecks.get()).values.find((v) => v.labels.verdict === 'unknown')?.value;
    expect(after).toBe(before + 1);
    expect(JSON.stringify(r)).not.toContain(ads.password);
    expect(JSON.stringify(await stack.client.workflow.getHandle(r.workflowId).fetchHistory())).not.toContain(ads.password);
  });

  test('a manual block (no ADS event) never asks', async () => {
    const r = await blockOutcome(stack, await startBlock(stack, blockInput('203.0.113.64', { ttlMs: HOUR })));
    expect(timing(r).held).toBe(60);
    expect(r.stillActive?.last).toBeUndefined();
    expect(answers).toEqual([]);
  });
});

describe('STILL_ACTIVE=intake', () => {
  let stack: Stack;
  const answers: StillActiveAnswer[] = [];
  const service = () =>
    new BlockService(stack.client, {
      targets: [testTarget(stack.emulator.url, stack.emulator.token)],
      block: { ttlMs: HOUR, maxTtlMs: 30 * 24 * HOUR, batchWindowMs: 0, earlyAdd: true },
      ipPolicy: DEFAULT_IP_POLICY,
      temporal: { namespace: 'default', taskQueue: stack.taskQueue, uiPort: 0, port: 0 },
    });
  const event = (ip: string, id: string) => service().block({ ip, reason: 'ads', actor: 'ads', event: { id, method: 'SSHDICT', severity: 'high' } });

  beforeAll(async () => {
    stack = await startStack({ server: 'time-skipping', stillActive: { port: new IntakeStillActive(), settings: { source: 'intake', windowMs: WINDOW, maxTotalMs: 24 * HOUR } }, onStillActive: (a) => void answers.push(a) });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => {
    answers.length = 0;
  });

  test('seen again (a repeat event during the block): extended before lapsing; then lifted on time when not seen again', async () => {
    const ip = '198.51.100.70';
    const [first] = await event(ip, '5001');
    const handle = stack.client.workflow.getHandle(first.workflowId);
    await activeStatus(handle);
    await stack.env.sleep('30 minutes');
    expect((await event(ip, '5002'))[0].outcome).toBe('extended'); // the repeat event itself: 30 min + 1 h
    const r = await blockOutcome(stack, handle);
    const created = Date.parse(r.createdAt);
    expect(r.state).toBe('expired');
    // 1 h 20: a repeat event since the start → now + 1 h; 2 h 10: nothing since 1 h 20 → lifted at 2 h 20.
    expect(r.extensions.map((x) => [x.actor, mins(x.toMs - created)])).toEqual([
      ['ads:5002', 90],
      ['still-active:intake', 140],
    ]);
    expect(timing(r).held).toBe(140);
    expect(timing(r).lateMs).toBeLessThan(MIN);
    expect(answers.map((a) => a.verdict)).toEqual(['seen', 'not-seen']);
    expect(r.stillActive?.last).toMatchObject({ source: 'intake', verdict: 'not-seen' });
    await maybeRecord(stack, r.workflowId, `stillactive_intake_${ip}`);
  });

  test('not seen again: lifted on time', async () => {
    const [first] = await event('198.51.100.71', '6001');
    const r = await blockOutcome(stack, stack.client.workflow.getHandle(first.workflowId));
    expect(r.state).toBe('expired');
    expect(r.extensions).toEqual([]);
    expect(timing(r).held).toBe(60);
    expect(timing(r).lateMs).toBeLessThan(MIN);
    expect(answers.map((a) => a.verdict)).toEqual(['not-seen']);
  });
});
