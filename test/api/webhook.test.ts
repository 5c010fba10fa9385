/**
 * POST /v1/events against the real stack: authentication, every rejection reason, the intake policy
 * (DOS blocks the targets, never the source), idempotent re-delivery, repeats, limits and logs.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import pino from 'pino';
import { BlockError } from '../../src/blocks/service';
import { signedHmac } from '../../src/api/auth';
import { startApiServer } from '../../src/api/server';
import { canonicalIp } from '../../src/policy/ip-policy';
import { blockWorkflowId, enforcerStatusQuery, enforcerWorkflowId } from '../../workflows/messages';
import { eventually } from '../support/stack';
import { adsLine, ApiStack, call, eventId, GROUP4, GROUP6, secret, startApiStack, TARGET } from './harness';

let s: ApiStack;
const ALLOWLISTED = '192.0.2.0/24';

beforeAll(async () => {
  s = await startApiStack({ ipPolicy: { allowlist: [ALLOWLISTED] } });
});
afterAll(async () => {
  await s?.stop();
});

/** Posts a body to the webhook, authenticated with the shared secret unless `o` says otherwise. */
const post = (body: unknown, o: { token?: string; headers?: Record<string, string> } = { token: undefined }) =>
  call(s.url, '/v1/events', { body, token: 'token' in o ? o.token : s.secrets.webhook, headers: o.headers });
const postAuth = (body: unknown, headers?: Record<string, string>) => call(s.url, '/v1/events', { body, token: s.secrets.webhook, headers });

const members = async (family: 'ipv4' | 'ipv6' = 'ipv4') => (await s.stack.firewall.getGroup(family, family === 'ipv4' ? GROUP4 : GROUP6))?.members ?? [];
const isMember = (ip: string, family: 'ipv4' | 'ipv6' = 'ipv4') => async () => (await members(family)).includes(`ads-${ip}`);
/** No block workflow exists for this IP (deterministic: the workflow id is derived from the IP). */
const neverStarted = async (ip: string) => {
  const handle = s.stack.client.workflow.getHandle(blockWorkflowId(TARGET, canonicalIp(ip) ?? ip));
  await expect(handle.describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
};

let ipCounter = 20;
/** A fresh public (documentation-range) IPv4 address per call. */
const freshIp = () => `203.0.113.${ipCounter++}`;

describe('authentication', () => {
  it('refuses a request without credentials with 401 and starts nothing', async () => {
    const ip = freshIp();
    const r = await call(s.url, '/v1/events', { body: { lines: [adsLine({ id: eventId(), source: ip })] } });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('unauthorized');
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
    await neverStarted(ip);
  });

  it.each([
    ['a wrong secret', () => secret()],
    ['the secret with one character changed', () => s.secrets.webhook.slice(0, -1) + (s.secrets.webhook.endsWith('A') ? 'B' : 'A')],
    ['the API write token', () => s.secrets.write],
  ])('refuses %s with 401', async (_what, token) => {
    const ip = freshIp();
    const r = await post({ lines: [adsLine({ id: eventId(), source: ip })] }, { token: token() });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('unauthorized');
    await neverStarted(ip);
  });

  const now = () => String(Math.floor(Date.now() / 1000));

  it('accepts an HMAC-SHA256 signature of timestamp and raw body instead of the secret', async () => {
    const ip = freshIp();
    const raw = JSON.stringify({ lines: [adsLine({ id: eventId(), source: ip })] });
    const ts = now();
    const sig = `sha256=${signedHmac(s.secrets.webhook, ts, raw).toString('hex')}`;
    const r = await call(s.url, '/v1/events', { body: raw, headers: { 'content-type': 'application/json', 'x-ads-timestamp': ts, 'x-ads-signature': sig } });
    expect(r.status).toBe(200);
    expect(r.body.events[0].ips[0]).toMatchObject({ ip, outcome: 'started' });
  });

  it('refuses a signature of another body, or of the right body with another key', async () => {
    const ip = freshIp();
    const raw = JSON.stringify({ lines: [adsLine({ id: eventId(), source: ip })] });
    const ts = now();
    const signatures = [
      signedHmac(s.secrets.webhook, ts, raw + ' ').toString('hex'),
      signedHmac(secret(), ts, raw).toString('hex'),
      'not-hex',
    ];
    for (const sig of signatures) {
      const r = await call(s.url, '/v1/events', { body: raw, headers: { 'content-type': 'application/json', 'x-ads-timestamp': ts, 'x-ads-signature': `sha256=${sig}` } });
      expect(r.status).toBe(401);
    }
    await neverStarted(ip);
  });
});

describe('malformed input is a 4xx with a reason', () => {
  it.each([
    ['invalid JSON', '{"lines": [', 'application/json', 400, 'malformed-json'],
    ['a JSON number', '42', 'application/json', 400, 'malformed'],
    ['"lines" that is not an array', '{"lines": 5}', 'application/json', 400, 'malformed'],
    ['only garbage lines', 'not an event\nneither\tis\tthis', 'text/plain', 400, 'malformed'],
    ['an empty body', '', 'text/plain', 400, 'no-events'],
    ['an unsupported media type', 'a=1', 'application/x-www-form-urlencoded', 415, 'unsupported-media-type'],
    ['an unsupported charset', 'x', 'text/plain; charset=latin1', 415, 'unsupported-charset'],
  ])('%s → %i %s', async (_what, body, type, status, code) => {
    const r = await postAuth(body, { 'content-type': type });
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(typeof r.body.error.message).toBe('string');
  });

  it('refuses bytes that are not UTF-8 with 400 invalid-utf8', async () => {
    const r = await postAuth(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid-utf8');
  });

  it('lists the bad lines of an all-bad batch in details', async () => {
    const r = await postAuth({ lines: ['garbage', 'more\tgarbage'] });
    expect(r.status).toBe(400);
    expect(r.body.error.details.errors.map((e: { index: number }) => e.index)).toEqual([0, 1]);
  });

  it('processes the good events of a mixed batch and reports the bad lines', async () => {
    const ip = freshIp();
    const r = await postAuth({ lines: ['garbage', adsLine({ id: eventId(), source: ip })] });
    expect(r.status).toBe(200);
    expect(r.body.errors).toEqual([{ index: 0, message: expect.stringContaining('field count') }]);
    expect(r.body.events).toHaveLength(1);
    expect(r.body.events[0].ips[0]).toMatchObject({ ip, outcome: 'started' });
    expect(r.body.summary).toEqual({ started: 1, malformed: 1 });
  });
});

describe('limits', () => {
  it('refuses a body over 1 MiB with 413 body-too-large', async () => {
    const r = await postAuth('x'.repeat(1024 * 1024 + 1), { 'content-type': 'text/plain' });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('body-too-large');
  });

  it('accepts 500 events and refuses 501 with 413 too-many-events', async () => {
    const low = (n: number) => Array.from({ length: n }, () => adsLine({ id: eventId(), source: '203.0.113.250', priority: 'Low' }));
    const ok = await postAuth({ lines: low(500) });
    expect(ok.status).toBe(200);
    expect(ok.body.summary).toEqual({ ignored: 500 });
    const tooMany = await postAuth({ lines: low(501) });
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error.code).toBe('too-many-events');
  });

  it('limits requests per source IP per minute with 429 and Retry-After', async () => {
    const limited = await startApiServer({
      config: s.config,
      blocks: s.blocks,
      temporal: s.stack.client,
      firewalls: new Map([[TARGET, s.stack.firewall]]),
      logger: pino({ level: 'silent' }),
      metrics: s.metrics,
      limits: { webhookPerMinute: 3 },
    });
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await call(limited.url, '/v1/events', { body: 'x' })).status);
      expect(statuses).toEqual([401, 401, 401, 429]);
      const r = await call(limited.url, '/v1/events', { body: 'x' });
      expect(r.body.error.code).toBe('rate-limited');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });
});

describe('intake and safety policy', () => {
  it.each([
    ['a private source', '10.1.2.3', 'ip-private'],
    ['an allowlisted source', '192.0.2.5', 'ip-allowlisted'],
    ['a loopback source', '127.0.0.1', 'ip-reserved'],
    ['a link-local IPv6 source', 'fe80::1', 'ip-reserved'],
  ])('rejects %s in the per-event reply (%s), starting nothing', async (_what, ip, code) => {
    const id = eventId();
    const r = await postAuth({ lines: [adsLine({ id, source: ip })] });
    expect(r.status).toBe(200);
    expect(r.body.events[0]).toMatchObject({ eventId: id, outcome: 'rejected', ips: [{ ip, outcome: 'rejected', code }] });
    expect(r.body.events[0].ips[0].reason).toEqual(expect.any(String));
    await neverStarted(ip);
  });

  it.each([
    ['below the priority threshold', { priority: 'Low' }, 'below-threshold'],
    ['without a priority (manual run)', { priority: ' ' }, 'priority-unknown'],
    ['of an excluded method (SRVNA: the source is our server)', { method: 'SRVNA', priority: 'Critical' }, 'method-not-blocking'],
    ['of a method outside the policy', { method: 'TOR', priority: 'Critical' }, 'method-not-blocking'],
  ])('ignores an event %s, naming the rule', async (_what, fields, rule) => {
    const ip = freshIp();
    const id = eventId();
    const r = await postAuth({ lines: [adsLine({ id, source: ip, ...fields })] });
    expect(r.status).toBe(200);
    expect(r.body.events[0]).toMatchObject({ eventId: id, outcome: 'ignored', rule });
    expect(r.body.events[0].reason).toEqual(expect.any(String));
    expect(r.body.events[0].ips).toBeUndefined();
    await neverStarted(ip);
  });

  it('ignores an event naming more addresses than MAX_TARGETS_PER_EVENT (default 100), starting nothing', async () => {
    const id = eventId();
    const attackers = Array.from({ length: 101 }, (_, i) => `198.18.${Math.floor(i / 200)}.${(i % 200) + 1}`);
    const r = await postAuth({ lines: [adsLine({ id, method: 'DOS', priority: 'Critical', source: '198.51.100.99', targets: attackers })] });
    expect(r.status).toBe(200);
    expect(r.body.events[0]).toMatchObject({ eventId: id, outcome: 'ignored', rule: 'too-many-targets' });
    expect(r.body.events[0].reason).toContain('MAX_TARGETS_PER_EVENT (100)');
    await neverStarted(attackers[0]);
  });

  it('reports each IP of a multi-target event separately', async () => {
    const good = freshIp();
    const r = await postAuth({ lines: [adsLine({ id: eventId(), method: 'DOS', priority: 'Critical', source: '198.51.100.99', targets: [good, '10.9.9.9'] })] });
    expect(r.status).toBe(200);
    expect(r.body.events[0].outcome).toBe('started');
    expect(r.body.events[0].ips).toEqual([
      expect.objectContaining({ ip: good, outcome: 'started' }),
      expect.objectContaining({ ip: '10.9.9.9', outcome: 'rejected', code: 'ip-private' }),
    ]);
  });
});

describe('blocking', () => {
  const victim = '198.51.100.21';
  const attackers = ['203.0.113.11', '203.0.113.12', '203.0.113.13'];
  const dosId = eventId();
  const dosBody = { lines: [adsLine({ id: dosId, method: 'DOS', priority: 'Critical', source: victim, targets: attackers })], forwarder: { name: 'test' } };

  it('blocks the targets of a DOS event and never its source (the victim)', async () => {
    const r = await postAuth(dosBody);
    expect(r.status).toBe(200);
    expect(r.body.events).toEqual([
      expect.objectContaining({ eventId: dosId, method: 'DOS', outcome: 'started', role: 'targets', ips: attackers.map((ip) => expect.objectContaining({ ip, outcome: 'started' })) }),
    ]);
    expect(r.body.events[0].ips[0].targets).toEqual([expect.objectContaining({ target: TARGET, outcome: 'started', workflowId: `block:${TARGET}:${attackers[0]}` })]);
    for (const ip of attackers) await eventually(isMember(ip), 20_000, `${ip} in the firewall group`);
    expect(await members()).not.toContain(`ads-${victim}`);
    expect(await s.stack.firewall.getAddress('ipv4', `ads-${victim}`)).toBeUndefined();
    await neverStarted(victim);
  });

  it('answers a second delivery of the same event with duplicate and changes nothing, not even the history', async () => {
    // Settled first: a block turns active (more history) a moment after its member lands on the firewall.
    // And the enforcer's fresh-run nudge over: answers go out beside it, so it may reach a block already active,
    // which then sends its add once more (a signal and a marker) — after this snapshot, on a loaded box (8 → 10).
    const enforcer = s.stack.client.workflow.getHandle(enforcerWorkflowId(TARGET, GROUP4));
    await eventually(async () => !(await enforcer.query(enforcerStatusQuery)).nudging, 20_000, "the enforcer's nudge over");
    const before = await eventually(async () => {
      const blocks = await Promise.all(attackers.map((ip) => s.blocks.get(ip)));
      if (!blocks.every((b) => b.state === 'active')) return false;
      const tasks = await Promise.all(blocks.map((b) => s.stack.client.workflow.getHandle(b.workflowId).describe()));
      return tasks.every((d) => !d.raw.pendingWorkflowTask && !d.raw.pendingActivities?.length) && blocks;
    }, 20_000, 'all active, no task open');
    // Everything but workflow-task events: a rejected Update's speculative task writes none, unless the server has to
    // persist it (it failed or timed out on a loaded box: temporalio/temporal#3898, #4069), and then only the task's
    // own three (scheduled, started, completed: one fresh-clone run saw 16 → 19). What the validator refuses records
    // nothing else.
    const WORKFLOW_TASK = /^EVENT_TYPE_WORKFLOW_TASK_/;
    const historyLength = (b: (typeof before)[number]) =>
      s.stack.client.workflow.getHandle(b.workflowId).fetchHistory().then((h) => h.events?.filter((e) => !WORKFLOW_TASK.test(String(temporal.api.enums.v1.EventType[e.eventType ?? 0]))).length);
    const lengthsBefore = await Promise.all(before.map(historyLength));
    const r = await postAuth(dosBody);
    expect(r.status).toBe(200);
    expect(r.body.events[0].outcome).toBe('duplicate');
    expect(r.body.events[0].ips.map((i: { outcome: string }) => i.outcome)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    const after = await Promise.all(attackers.map((ip) => s.blocks.get(ip)));
    const essentials = (b: (typeof before)[number]) => ({ expiresAt: b.expiresAt, events: b.events, eventCount: b.eventCount, extensions: b.extensions });
    expect(after.map(essentials)).toEqual(before.map(essentials));
    expect(await Promise.all(after.map(historyLength))).toEqual(lengthsBefore); // the validator refused it: no events
  });

  it('answers a repeat event (new id, same IP) with extended and moves the expiry later', async () => {
    const ip = attackers[0];
    const before = await s.blocks.get(ip);
    const id = eventId();
    const r = await postAuth({ lines: [adsLine({ id, method: 'DOS', priority: 'High', source: victim, targets: [ip] })] });
    expect(r.status).toBe(200);
    expect(r.body.events[0]).toMatchObject({ eventId: id, outcome: 'extended', ips: [{ ip, outcome: 'extended' }] });
    const after = await s.blocks.get(ip);
    expect(Date.parse(after.expiresAt)).toBeGreaterThan(Date.parse(before.expiresAt));
    expect(Date.parse(r.body.events[0].ips[0].targets[0].expiresAt)).toBe(Date.parse(after.expiresAt));
    expect(after.eventCount).toBe(before.eventCount + 1);
    expect(after.events.map((e) => e.id)).toContain(id);
  });

  const forms: [string, (line: string, raw: string) => { body: unknown; type?: string }][] = [
    ['the forwarder format', (line) => ({ body: { lines: [line], forwarder: { version: '1' } } })],
    ['text/plain lines', (line) => ({ body: `${line}\n`, type: 'text/plain' })],
    ['a JSON event object', (_l, ip) => ({ body: { id: eventId(), type: 'SSHDICT', severity: 'High', source: ip, targets: ['198.51.100.10'] } })],
    ['a JSON array of objects and lines', (line) => ({ body: [line] })],
  ];
  it.each(forms)('accepts %s', async (_what, make) => {
    const ip = freshIp();
    const { body, type } = make(adsLine({ id: eventId(), source: ip }), ip);
    const r = await postAuth(body, type ? { 'content-type': type } : undefined);
    expect(r.status).toBe(200);
    expect(r.body.events[0]).toMatchObject({ outcome: 'started', role: 'source', ips: [{ ip, outcome: 'started' }] });
    expect((await s.blocks.get(ip)).events[0]).toMatchObject({ method: 'SSHDICT', severity: 'high' });
  });

  it('blocks an IPv6 source into the IPv6 group', async () => {
    const ip = '2001:db8:bad::7';
    const r = await postAuth({ lines: [adsLine({ id: eventId(), method: 'SCANS', priority: 'Medium', source: ip })] });
    expect(r.body.events[0].ips[0]).toMatchObject({ ip, outcome: 'started' });
    await eventually(isMember(ip, 'ipv6'), 20_000, 'IPv6 member');
  });

  it('reports a BlockService refusal per IP, not as a failure of the request', async () => {
    // checkIp is the safety policy; a BlockError from block() itself (e.g. 409 block-ending) takes the same path.
    const ip = freshIp();
    const spy = jest.spyOn(s.blocks, 'block').mockRejectedValueOnce(new BlockError(409, 'block-ending', 'being lifted'));
    try {
      const r = await postAuth({ lines: [adsLine({ id: eventId(), source: ip })] });
      expect(r.status).toBe(200);
      expect(r.body.events[0].ips[0]).toMatchObject({ ip, outcome: 'rejected', code: 'block-ending', reason: 'being lifted' });
    } finally {
      spy.mockRestore();
    }
  });
});

describe('metrics and logs', () => {
  it('counts webhook events by outcome', async () => {
    const r = await call(s.url, '/metrics');
    expect(r.status).toBe(200);
    const count = (outcome: string) => Number(new RegExp(`^ads_mitigator_webhook_events_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(r.body)?.[1] ?? 0);
    expect(count('started')).toBeGreaterThanOrEqual(5);
    expect(count('ignored')).toBeGreaterThanOrEqual(500);
    expect(count('duplicate')).toBeGreaterThanOrEqual(1);
    expect(count('malformed')).toBeGreaterThanOrEqual(1);
  });

  it('echoes a given X-Request-Id and generates one otherwise', async () => {
    const given = await call(s.url, '/healthz', { headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers.get('x-request-id')).toBe('abc-123');
    const generated = await call(s.url, '/healthz', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.logs.some((l) => JSON.parse(l).reqId === 'abc-123')).toBe(true);
  });

  it('logs the event id and IP of each webhook decision, with the request id', async () => {
    const ip = freshIp();
    const id = eventId();
    const r = await postAuth({ lines: [adsLine({ id, source: ip })] }, { 'x-request-id': `req-${id}` });
    expect(r.status).toBe(200);
    const lines = s.logs.map((l) => JSON.parse(l)).filter((l) => l.reqId === `req-${id}`);
    expect(lines).toContainEqual(expect.objectContaining({ eventId: id, ip, outcome: 'started', method: 'SSHDICT' }));
    expect(lines).toContainEqual(expect.objectContaining({ method: 'POST', path: '/v1/events', status: 200 }));
  });

  it('never writes a secret or a presented credential to the log (runs last)', async () => {
    const nearMiss = s.secrets.webhook.slice(0, -2) + 'zz';
    await post({ lines: ['x'] }, { token: nearMiss });
    await call(s.url, '/v1/blocks', { token: nearMiss });
    await call(s.url, '/v1/blocks', { token: s.secrets.read });
    const forbidden = [s.secrets.webhook, s.secrets.read, s.secrets.write, s.stack.emulator.token, nearMiss];
    expect(s.logs.length).toBeGreaterThan(50);
    for (const line of s.logs) for (const f of forbidden) expect(line).not.toContain(f);
  });
});
