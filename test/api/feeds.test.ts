/**
 * GET /v1/feeds/{target}, the pull variant of a threat feed: the target's feed is pulled by the emulated
 * FortiGate (7.4.5; update-method feed, basic auth, referenced by its deny policy), so the backend writes
 * nothing; the addresses of the running blocks end up blocked through the downloaded list, and an unblocked
 * one leaves it at the next pull.
 */
import pino from 'pino';
import { BlockService } from '../../src/blocks/service';
import { startApiServer, RunningApiServer } from '../../src/api/server';
import { ApiMetrics } from '../../src/api/metrics';
import { freePort } from '../../src/free-port';
import { cancelSignal } from '../../workflows/messages';
import { activeStatus, blockInput, eventually, Stack, startBlock, startStack, TARGET, testTarget } from '../support/stack';
import { secret, testConfig } from './harness';

const PULL_FEED = 'pulled';
const USER = 'fortigate';
const PASSWORD = secret();
let stack: Stack;
let server: RunningApiServer;
let url: string;

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  stack = await startStack({
    server: 'dev',
    emulator: {
      version: 'v7.4.5',
      feedPollMs: 0, // downloads only when the test asks
      feeds: [{ name: PULL_FEED, updateMethod: 'feed', resource: `${url}/v1/feeds/${TARGET}`, username: USER, password: PASSWORD }],
    },
    target: { enforcement: 'threat-feed', feed: PULL_FEED },
    extraTargets: [{ name: 'fw2', enforcement: 'address-group' }],
  });
  const config = testConfig({ taskQueue: stack.taskQueue, firewallUrl: stack.emulator.url, firewallToken: stack.emulator.token }, { webhook: secret(), read: secret(), write: secret() });
  config.targets = [stack.target, testTarget(stack.emulator.url, stack.emulator.token, { name: 'fw2', enforcement: 'address-group' })];
  config.api.port = port;
  config.api.feedPull = { user: USER, password: PASSWORD };
  server = await startApiServer({
    config,
    blocks: new BlockService(stack.client, config),
    temporal: stack.client,
    firewalls: new Map([[TARGET, stack.firewall]]),
    logger: pino({ level: 'silent' }),
    metrics: new ApiMetrics({ blockCountCacheMs: 0 }),
  });
});
afterAll(async () => {
  await server?.close();
  await stack?.stop();
});

const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

test('basic auth with the feed credential only; unknown or non-feed targets are 404', async () => {
  const none = await fetch(`${url}/v1/feeds/${TARGET}`);
  expect(none.status).toBe(401);
  expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  const wrong = await fetch(`${url}/v1/feeds/${TARGET}`, { headers: basic(USER, 'wrong') });
  expect(wrong.status).toBe(401);
  expect(await wrong.text()).not.toContain(PASSWORD);
  expect((await fetch(`${url}/v1/feeds/fw2`, { headers: basic(USER, PASSWORD) })).status).toBe(404);
  expect((await fetch(`${url}/v1/feeds/nope`, { headers: basic(USER, PASSWORD) })).status).toBe(404);
  const ok = await fetch(`${url}/v1/feeds/${TARGET}`, { headers: basic(USER, PASSWORD) });
  expect(ok.status).toBe(200);
  expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
});

test('the emulated FortiGate pulls the running blocks and blocks them through the pulled feed', async () => {
  const ips = ['203.0.113.121', '2001:db8:121::1'];
  const handles = await Promise.all(ips.map((ip) => startBlock(stack, blockInput(ip, { ttlMs: 3_600_000 }))));
  await Promise.all(handles.map((h) => activeStatus(h, 30_000)));
  expect(stack.firewallCalls.filter((c) => c.op.startsWith('pushFeed'))).toEqual([]); // a pulled feed is never written
  const viaPulled = (ip: string) => stack.emulator.blocked(ip)!.policies.some((p) => p.via.some((v) => v.kind === 'feed' && v.feed === PULL_FEED));

  await eventually(async () => {
    const [r] = await stack.emulator.refreshFeeds(PULL_FEED);
    return r.ok && ips.every(viaPulled);
  }, 20_000, 'both pulled and blocked');
  const body = await (await fetch(`${url}/v1/feeds/${TARGET}`, { headers: basic(USER, PASSWORD) })).text();
  expect(body.split('\n').filter(Boolean).sort()).toEqual([...ips].sort());

  const ended = (h: (typeof handles)[number]) => eventually(async () => (await h.describe()).status.name === 'COMPLETED', 60_000, `${h.workflowId} ended`);
  await handles[0].signal(cancelSignal, { reason: 'done', actor: 'test' });
  await ended(handles[0]);
  await eventually(async () => {
    const [r] = await stack.emulator.refreshFeeds(PULL_FEED);
    return r.ok && !viaPulled(ips[0]) && viaPulled(ips[1]);
  }, 20_000, 'the unblocked one leaves the pulled feed');
  await handles[1].signal(cancelSignal, { reason: 'done', actor: 'test' });
  await ended(handles[1]);
});
