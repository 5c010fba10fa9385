/**
 * The runtime allowlist end to end (issue 14.4): Temporal dev server, emulator, worker, API on a real socket.
 * Adding an entry lifts the blocks it covers; an allowlisted address's event is answered `ignored` naming the
 * entry; entries expire on their durable timer; unblock --allow-for; the CLI; the entity's limits and
 * continue-as-new; the hot-path cache and the worker's check.
 */
import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { createAllowlistActivities } from '../../activities/allowlist';
import { AllowlistCache, AllowlistService } from '../../src/allowlist';
import { runCli } from '../../src/cli/main';
import { addAllowUpdate, allowlistQuery, allowlistWorkflow } from '../../workflows/allowlist';
import { eventually } from '../support/stack';
import { adsLine, ApiStack, call, eventId, GROUP4, startApiStack } from '../api/harness';

let s: ApiStack;

beforeAll(async () => {
  s = await startApiStack();
});
afterAll(async () => {
  await s?.stop();
});

const read = (path: string) => call(s.url, path, { token: s.secrets.read });
const write = (method: string, path: string, body?: unknown) => call(s.url, path, { method, token: s.secrets.write, body });
const allow = (body: Record<string, unknown>) => write('POST', '/v1/allowlist', body);
const postEvent = (ip: string) => call(s.url, '/v1/events', { token: s.secrets.webhook, body: adsLine({ id: eventId(), source: ip }), headers: { 'content-type': 'text/plain' } });
const members = async () => (await s.stack.firewall.getGroup('ipv4', GROUP4))?.members ?? [];
const activeBlock = (ip: string) => eventually(async () => (await read(`/v1/blocks/${ip}`)).body.state === 'active', 30_000, `${ip} active`);
const entries = async () => (await read('/v1/allowlist')).body.entries as { cidr: string }[];

describe('adding an entry', () => {
  it('lifts the running blocks it covers, and the webhook then answers "ignored" naming the entry', async () => {
    const ip = '203.0.113.21';
    expect((await postEvent(ip)).body.events[0].outcome).toBe('started');
    await activeBlock(ip);
    // Visibility lags a moment behind the start: the block must be listed before the entry can find it.
    await eventually(async () => (await read('/v1/blocks?ip=203.0.113.0%2F24')).body.blocks.length > 0, 20_000, 'listed');

    const added = await allow({ cidr: '203.0.113.0/24', for: '1h', reason: 'false positive: partner scanner' });
    expect(added.status).toBe(201);
    expect(added.body.entry).toMatchObject({ cidr: '203.0.113.0/24', reason: 'false positive: partner scanner', actor: 'api:write' });
    expect(Date.parse(added.body.entry.expiresAt) - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(added.body.lifted).toEqual([expect.objectContaining({ ip, found: true })]);
    await eventually(async () => (await read(`/v1/blocks/${ip}`)).body.state === 'cancelled', 30_000, 'cancelled');
    expect((await read(`/v1/blocks/${ip}`)).body.cancelledBy).toMatchObject({ reason: 'allowlisted: false positive: partner scanner' });
    expect(await members()).not.toContain(`ads-${ip}`);

    const again = await postEvent(ip);
    expect(again.status).toBe(200);
    expect(again.body.events[0]).toMatchObject({ outcome: 'ignored', rule: 'allowlisted', allowlist: { cidr: '203.0.113.0/24' } });
    expect(again.body.events[0].reason).toContain('203.0.113.0/24 (false positive: partner scanner; by api:write; until ');
    expect(again.body.events[0].ips[0]).toMatchObject({ ip, outcome: 'ignored', code: 'allowlisted' });
    expect(again.body.summary).toEqual({ ignored: 1 });
    // Not blocked again: the run that was lifted is the last one.
    expect((await read(`/v1/blocks/${ip}`)).body.state).toBe('cancelled');

    const other = '203.0.113.22';
    expect((await postEvent(other)).body.events[0]).toMatchObject({ outcome: 'ignored', rule: 'allowlisted' });
    expect((await read(`/v1/blocks/${other}`)).status).toBe(404);
    const manual = await write('POST', '/v1/blocks', { ip: other });
    expect(manual.status).toBe(422);
    expect(manual.body.error).toMatchObject({ code: 'ip-allowlisted', details: { allowlist: { cidr: '203.0.113.0/24' } } });
  });

  it('with liftExisting: false only prevents new blocks', async () => {
    const ip = '198.51.100.31';
    await postEvent(ip);
    await activeBlock(ip);
    const added = await allow({ cidr: ip, reason: 'keep the current one', liftExisting: false });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ lifted: [], entry: { cidr: ip } });
    expect(added.body.entry.expiresAt).toBeUndefined(); // neither for nor until: until removed
    expect((await read(`/v1/blocks/${ip}`)).body.state).toBe('active');
    const removed = await write('DELETE', `/v1/allowlist/${ip}`);
    expect(removed.body).toMatchObject({ cidr: ip, removed: true });
    expect((await write('DELETE', `/v1/allowlist/${ip}`)).body).toEqual({ cidr: ip, removed: false });
    await write('DELETE', `/v1/blocks/${ip}`);
  });

  it('replacing an entry answers 200 with replaced: true', async () => {
    await allow({ cidr: '198.51.100.32', for: '1h', reason: 'first' });
    const r = await allow({ cidr: '198.51.100.32', for: '2h', reason: 'second' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ replaced: true, entry: { reason: 'second' } });
    await write('DELETE', '/v1/allowlist/198.51.100.32');
  });
});

describe('expiry', () => {
  it('an entry ends on its durable timer and the address can be blocked again', async () => {
    const ip = '198.51.100.40';
    const until = new Date(Date.now() + 3_000).toISOString();
    expect((await allow({ cidr: ip, until, reason: 'short' })).status).toBe(201);
    expect((await entries()).map((e) => e.cidr)).toContain(ip);
    expect((await postEvent(ip)).body.events[0].outcome).toBe('ignored');
    // The query filters with workflow time, which only moves when the workflow runs: the entry leaves the
    // list because its timer fired.
    await eventually(async () => !(await entries()).some((e) => e.cidr === ip), 20_000, 'entry expired');
    await eventually(async () => (await postEvent(ip)).body.events[0].outcome === 'started', 10_000, 'blocked again');
    await write('DELETE', `/v1/blocks/${ip}`);
  });
});

describe('DELETE /v1/blocks/{ip}?allowFor=', () => {
  it('unblocks and allowlists the address, so the next event does not block it again', async () => {
    const ip = '198.51.100.50';
    await postEvent(ip);
    await activeBlock(ip);
    const r = await write('DELETE', `/v1/blocks/${ip}?allowFor=24h&reason=false%20positive`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ip, found: true, allowlisted: { cidr: ip, reason: 'false positive' } });
    expect(Date.parse(r.body.allowlisted.expiresAt) - Date.now()).toBeGreaterThan(23.9 * 3_600_000);
    expect((await postEvent(ip)).body.events[0]).toMatchObject({ outcome: 'ignored', allowlist: { cidr: ip } });
    expect((await write('DELETE', `/v1/blocks/${ip}?allowFor=forever`)).status).toBe(400);
    await write('DELETE', `/v1/allowlist/${ip}`);
  });
});

describe('validation and authorisation', () => {
  it.each([
    ['a bad address', { cidr: '203.0.113.300', reason: 'x' }, 'cidr'],
    ['host bits set', { cidr: '203.0.113.1/24', reason: 'x' }, 'host bits'],
    ['a network wider than /8', { cidr: '8.0.0.0/6', reason: 'x' }, 'wider than /8'],
    ['both for and until', { cidr: '203.0.113.9', for: '1h', until: '2099-01-01T00:00:00Z', reason: 'x' }, 'at most one'],
    ['until in the past', { cidr: '203.0.113.9', until: '2001-01-01T00:00:00Z', reason: 'x' }, 'not in the future'],
    ['no reason', { cidr: '203.0.113.9', for: '1h' }, 'reason'],
    ['a misspelt field', { cidr: '203.0.113.9', fro: '1h', reason: 'x' }, 'fro'],
    ['a year and more', { cidr: '203.0.113.9', for: '400d', reason: 'x' }, 'at most 366d'],
  ])('refuses %s with 400 and adds nothing', async (_what, body, text) => {
    const before = await entries();
    const r = await allow(body);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain(text);
    expect(await entries()).toEqual(before);
  });

  it('reads with the read token, writes only with the write token', async () => {
    expect((await read('/v1/allowlist')).status).toBe(200);
    expect((await call(s.url, '/v1/allowlist', { token: s.secrets.read, body: { cidr: '203.0.113.9', reason: 'x' } })).status).toBe(403);
    expect((await call(s.url, '/v1/allowlist/203.0.113.9', { method: 'DELETE', token: s.secrets.read })).status).toBe(403);
    expect((await call(s.url, '/v1/allowlist')).status).toBe(401);
  });
});

describe('the CLI', () => {
  const cli = async (args: string[]) => {
    let stdout = '';
    let stderr = '';
    const env = { API_URL: s.url, API_WRITE_TOKEN: s.secrets.write, DATA_DIR: '/nonexistent' };
    const code = await runCli(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env });
    return { code, stdout, stderr };
  };

  it('allow add | list | remove, and unblock --allow-for', async () => {
    const add = await cli(['allow', 'add', '198.51.100.64/28', '--for', '2h', '--reason', 'cli test']);
    expect(add).toMatchObject({ code: 0, stderr: '' });
    expect(add.stdout).toMatch(/^198\.51\.100\.64\/28 allowlisted until \S+Z \(in (1h 59m|2h)\)$/m);
    const list = await cli(['allow', 'list']);
    expect(list.stdout.split('\n')[0].split(/\s+/)).toEqual(['CIDR', 'EXPIRES', 'REASON', 'ACTOR']);
    expect(list.stdout).toMatch(/^198\.51\.100\.64\/28\s+\S+Z \(in (1h 59m|2h)\)\s+cli test\s+api:write/m);
    expect(JSON.parse((await cli(['--json', 'allow', 'list'])).stdout).entries).toContainEqual(expect.objectContaining({ cidr: '198.51.100.64/28' }));
    expect((await cli(['allow', 'remove', '198.51.100.64/28'])).stdout).toBe('198.51.100.64/28 removed from the allowlist\n');
    expect((await cli(['allow', 'remove', '198.51.100.64/28'])).stdout).toBe('198.51.100.64/28 was not on the allowlist\n');
    expect((await cli(['allow', 'add', '198.51.100.65'])).code).toBe(2); // --reason is required

    const ip = '198.51.100.70';
    await postEvent(ip);
    await activeBlock(ip);
    const unblock = await cli(['unblock', ip, '--allow-for', '24h', '--reason', 'false positive']);
    expect(unblock.code).toBe(0);
    expect(unblock.stdout).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')} allowlisted until \\S+Z \\(in (23h 59m|1d)\\)$`, 'm'));
    expect((await postEvent(ip)).body.events[0].outcome).toBe('ignored');
    await cli(['allow', 'remove', ip]);
  });
});

describe('hot path: the cache and the worker check', () => {
  it('covers(ip) reads through a cache; checkAllowlist answers the entry or null', async () => {
    await allow({ cidr: '2001:db8:77::/48', for: '1h', reason: 'v6 partner' });
    const cache = new AllowlistCache(s.stack.client, { maxAgeMs: 60_000 });
    expect(await cache.covers('2001:db8:77::5')).toMatchObject({ cidr: '2001:db8:77::/48', reason: 'v6 partner' });
    expect(await cache.covers('2001:db8:78::5')).toBeUndefined();
    const check = createAllowlistActivities({ temporal: s.stack.client, maxAgeMs: 0 });
    expect(await check.checkAllowlist('2001:db8:77::/64')).toMatchObject({ cidr: '2001:db8:77::/48' });
    await write('DELETE', `/v1/allowlist/${encodeURIComponent('2001:db8:77::/48')}`);
    // The cache keeps its list until it is stale or invalidated; the worker's check (max age 0) sees the change.
    expect(await cache.covers('2001:db8:77::5')).toBeDefined();
    cache.invalidate();
    expect(await cache.covers('2001:db8:77::5')).toBeUndefined();
    expect(await check.checkAllowlist('2001:db8:77::5')).toBeNull();
  });
});

describe('the entity workflow', () => {
  it('refuses entries beyond its limit (no history for a refused Update) and carries its entries over continue-as-new', async () => {
    const workflowId = `allowlist-test-${randomUUID()}`;
    const service = new AllowlistService(s.stack.client, { taskQueue: s.stack.taskQueue, workflowId });
    const handle = await s.stack.client.workflow.start(allowlistWorkflow, {
      workflowId,
      taskQueue: s.stack.taskQueue,
      args: [{ limits: { maxEntries: 3, updatesPerRun: 4 } }],
    });
    for (const n of [1, 2, 3]) await service.add({ cidr: `203.0.113.${n}`, reason: `n${n}`, actor: 'test', forMs: 3_600_000 });
    await expect(service.add({ cidr: '203.0.113.4', reason: 'n4', actor: 'test' })).rejects.toMatchObject({ code: 'refused', message: expect.stringContaining('holds 3 entries') });
    // Replacing an entry is not growing the list.
    await service.add({ cidr: '203.0.113.3', reason: 'n3 again', actor: 'test' });
    // The 4th accepted Update ended the first run: the entries are in the next one.
    await eventually(async () => (await handle.describe()).runId !== handle.firstExecutionRunId, 20_000, 'continued as new');
    const carried = await s.stack.client.workflow.getHandle(workflowId).query(allowlistQuery);
    expect(carried.map((e) => [e.cidr, e.reason])).toEqual([
      ['203.0.113.1', 'n1'],
      ['203.0.113.2', 'n2'],
      ['203.0.113.3', 'n3 again'],
    ]);
    expect(await service.remove('203.0.113.1', 'test')).toMatchObject({ cidr: '203.0.113.1' });
    expect((await service.list()).map((e) => e.cidr)).toEqual(['203.0.113.2', '203.0.113.3']);
    await s.stack.client.workflow.getHandle(workflowId).terminate('test over');
  });

  it('is started by the first add (update-with-start), once', async () => {
    const workflowId = `allowlist-test-${randomUUID()}`;
    const op = () =>
      new WithStartWorkflowOperation<typeof allowlistWorkflow>('allowlistWorkflow', { workflowId, taskQueue: s.stack.taskQueue, args: [{}], workflowIdConflictPolicy: 'USE_EXISTING' });
    await Promise.all(
      ['203.0.113.5', '203.0.113.6'].map((cidr) => s.stack.client.workflow.executeUpdateWithStart(addAllowUpdate, { args: [{ cidr, reason: 'r', actor: 'a' }], startWorkflowOperation: op() })),
    );
    expect((await s.stack.client.workflow.getHandle(workflowId).query(allowlistQuery)).length).toBe(2);
    await s.stack.client.workflow.getHandle(workflowId).terminate('test over');
  });
});
