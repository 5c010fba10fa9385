/**
 * Notifications end to end (issue 14.5): a real Temporal dev server, the emulator, a worker with the product's
 * activities and the notify activities merged, the API on a real socket, and local sinks (HTTP, syslog over
 * UDP and TCP). Every kind reaches the sinks, signed; a sink that is down for 30 s still gets everything; a
 * workflow that ends never waits for a notification; a sink that already has one is not sent it again.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createSocket, Socket } from 'node:dgram';
import { createServer as createHttpServer, IncomingHttpHeaders, Server } from 'node:http';
import { createServer as createTcpServer, Server as TcpServer } from 'node:net';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { createActivities } from '../../activities';
import { createAllowlistActivities } from '../../activities/allowlist';
import { createNotifyActivities } from '../../activities/notify';
import { ApiMetrics } from '../../src/api/metrics';
import { RunningApiServer, startApiServer } from '../../src/api/server';
import { BlockService } from '../../src/blocks/service';
import { FortiOSClient } from '../../src/fortios/client';
import { RunningEmulator, startEmulator } from '../../src/fortios/emulator/server';
import { freePort } from '../../src/free-port';
import { Notifications } from '../../src/notify/durable';
import { NOTIFY_KINDS, NotifyConfig, NotifyEvent, NotifyKind } from '../../src/notify/events';
import { FirewallFailureWatch } from '../../src/notify/firewall-watch';
import { formatSyslog, sendSyslog } from '../../src/notify/senders';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import { temporalCliPath } from '../../src/temporal/binaries';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/messages';
import { notifyWorkflowId } from '../../workflows/notify';
import { eventually, testTarget } from '../support/stack';
import { createBackends, createServiceWorker, ServiceWorker } from '../../src/worker/worker';
import { adsLine, call, eventId, secret, testConfig, TARGET } from '../api/harness';
import { finishSignal, transitionsWorkflow } from './workflows';

const SECRET = 'notify-test-secret';

/** An HTTP receiver that records every request; it can be stopped and started again on the same port. */
class HttpSink {
  readonly received: { headers: IncomingHttpHeaders; body: string; event: NotifyEvent; path: string }[] = [];
  port = 0;
  private server?: Server;

  async start(): Promise<void> {
    const server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.received.push({ headers: req.headers, body, event: JSON.parse(body), path: req.url ?? '' });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  events(filter: (e: NotifyEvent) => boolean): NotifyEvent[] {
    return this.received.map((r) => r.event).filter(filter);
  }
}

/** What a receiver does to trust a notification: HMAC-SHA256(secret, "<X-ADS-Timestamp>.<raw body>"). */
function signatureValid(r: { headers: IncomingHttpHeaders; body: string }): boolean {
  const ts = String(r.headers['x-ads-timestamp']);
  const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex')}`;
  return r.headers['x-ads-signature'] === expected && Math.abs(Date.now() / 1000 - Number(ts)) < 300;
}

let env: TestWorkflowEnvironment;
let emulator: RunningEmulator;
let firewall: FortiOSClient;
let workers: { worker: ServiceWorker; running: Promise<void> }[] = [];
let api: RunningApiServer;
let watch: FirewallFailureWatch;
const sink = new HttpSink();
let udp: Socket;
const udpLines: string[] = [];
let taskQueue: string;
let webhookSecret: string;
let notify: NotifyConfig;
let bundle: string;

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed by an earlier test file of this process
  }
  env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: temporalCliPath() }, searchAttributes: ALL_SEARCH_ATTRIBUTES } });
  emulator = await startEmulator({ port: 0 });
  firewall = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token, timeoutMs: 2000 });
  await sink.start();
  udp = createSocket('udp4');
  udp.on('message', (m) => udpLines.push(m.toString('utf8')));
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  notify = {
    kinds: [...NOTIFY_KINDS],
    webhook: { url: `http://127.0.0.1:${sink.port}/hook`, secret: SECRET },
    syslog: { protocol: 'udp', host: '127.0.0.1', port: udp.address().port },
    firewallFailingAfterMs: 1500,
  };
  taskQueue = `notify-${randomUUID()}`;
  ({ code: bundle } = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } }));
  const notifications = new Notifications(env.client, taskQueue, notify);
  watch = new FirewallFailureWatch({ afterMs: notify.firewallFailingAfterMs, report: (n) => notifications.send(n), checkEveryMs: 250 });
  await startWorker(taskQueue, notify, watch.observe);
  webhookSecret = secret();
  const config = { ...testConfig({ taskQueue, firewallUrl: emulator.url, firewallToken: emulator.token }, { webhook: webhookSecret, read: secret(), write: secret() }), notify };
  api = await startApiServer({
    config,
    blocks: new BlockService(env.client, config),
    temporal: env.client,
    firewalls: new Map([[TARGET, firewall]]),
    logger: pino({ level: 'silent' }),
    metrics: new ApiMetrics({ blockCountCacheMs: 0 }),
    limits: { webhookPerMinute: 100_000 },
    notifications,
  });
}, 120_000);

afterAll(async () => {
  watch?.stop();
  await api?.close();
  for (const w of workers) w.worker.shutdown();
  await Promise.all(workers.map((w) => w.running.catch(() => undefined)));
  udp?.close();
  await sink.stop();
  await firewall?.close();
  await emulator?.close();
  await env?.teardown();
}, 60_000);

/** A worker as the lead will register it: the product's activities with the notify and allowlist ones merged. */
async function startWorker(queue: string, config: NotifyConfig, onFirewallCall?: FirewallFailureWatch['observe']): Promise<void> {
  const worker = await createServiceWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue: queue,
    workflowBundle: { code: bundle },
    activities: {
      ...createActivities({
        backends: createBackends([testTarget(emulator.url, emulator.token)], new Map([[TARGET, firewall]]), onFirewallCall),
        ipPolicy: DEFAULT_IP_POLICY,
        temporal: env.client,
        taskQueue: queue,
        batchWindowMs: 0,
      }),
      ...createNotifyActivities({ notify: config }),
      ...createAllowlistActivities({ temporal: env.client }),
    },
  });
  workers.push({ worker, running: worker.run() });
}

const byIp = (ip: string, kind?: NotifyKind) => (e: NotifyEvent) => e.ip === ip && (!kind || e.kind === kind);
const sendDirect = (event: NotifyEvent, queue = taskQueue) =>
  env.client.workflow.start('notifyWorkflow', { workflowId: notifyWorkflowId(event.id), taskQueue: queue, args: [event] });
const event = (kind: NotifyKind, ip: string): NotifyEvent => ({ id: randomUUID(), kind, at: new Date().toISOString(), ip, target: TARGET, summary: `${kind} ${ip}` });

describe('every kind reaches the webhook, signed, and syslog', () => {
  it('block, extend, unblock, expiry, eviction from a workflow (fire-and-forget, handed over at its end)', async () => {
    const ip = '203.0.113.10';
    const kinds: NotifyKind[] = ['block', 'extend', 'unblock', 'expiry', 'eviction'];
    const handle = await env.client.workflow.start(transitionsWorkflow, { workflowId: `transitions-${randomUUID()}`, taskQueue, args: [{ ip, kinds }] });
    await eventually(() => sink.events(byIp(ip, 'block')).length > 0, 30_000, 'block notification');
    await handle.signal(finishSignal);
    await handle.result();
    await eventually(() => kinds.every((k) => sink.events(byIp(ip, k)).length > 0), 30_000, 'every kind delivered');
    for (const r of sink.received.filter((x) => x.event.ip === ip)) {
      expect(signatureValid(r)).toBe(true);
      expect(r.headers['x-ads-event-id']).toBe(r.event.id);
      expect(r.event).toMatchObject({ target: TARGET, workflowId: handle.workflowId, summary: `${r.event.kind} ${ip}` });
    }
    await eventually(() => kinds.every((k) => udpLines.some((l) => l.includes(`kind="${k}"`) && l.includes(`ip="${ip}"`))), 10_000, 'syslog lines');
    expect(udpLines.find((l) => l.includes(`kind="eviction"`) && l.includes(ip))).toMatch(/^<132>1 \S+Z \S+ ads-mitigator \d+ eviction \[ads@32473 id="[^"]+" kind="eviction" ip="203\.0\.113\.10" target="fw1"\] eviction 203\.0\.113\.10$/);
  });

  it('a tampered body or another secret does not verify', () => {
    const r = sink.received[0];
    expect(signatureValid({ ...r, body: r.body.replace('203.0.113', '198.51.100') })).toBe(false);
    expect(r.headers['x-ads-signature']).not.toBe(`sha256=${createHmac('sha256', 'other').update(`${r.headers['x-ads-timestamp']}.${r.body}`).digest('hex')}`);
  });

  it('rejected: an ADS event whose address the policy refuses', async () => {
    const r = await call(api.url, '/v1/events', { token: webhookSecret, body: adsLine({ id: eventId(), source: '10.1.2.3' }), headers: { 'content-type': 'text/plain' } });
    expect(r.body.events[0]).toMatchObject({ outcome: 'rejected', ips: [{ ip: '10.1.2.3', code: 'ip-private' }] });
    const [n] = await eventually(() => { const e = sink.events(byIp('10.1.2.3', 'rejected')); return e.length > 0 && e; }, 30_000, 'rejected notification');
    expect(n.summary).toMatch(/10\.1\.2\.3 not blocked: .*ALLOW_PRIVATE/);
    expect(n.details).toMatchObject({ rejectedCount: 1, rejected: [expect.objectContaining({ code: 'ip-private' })] });
  });

  it('firewall-failing after the threshold, and firewall-recovered', async () => {
    emulator.setFaults({ outageUntil: Date.now() + 120_000 });
    try {
      const started = Date.now();
      await env.client.workflow.start('ipBlock', {
        workflowId: `block:${TARGET}:198.51.100.90`,
        taskQueue,
        args: [{ target: TARGET, ip: '198.51.100.90', family: 'ipv4', ttlMs: 3_600_000, maxTtlMs: 86_400_000, reason: 'test', actor: 'test' }],
      });
      const [n] = await eventually(() => { const e = sink.events((x) => x.kind === 'firewall-failing' && x.target === TARGET); return e.length > 0 && e; }, 60_000, 'firewall-failing');
      expect(Date.now() - started).toBeGreaterThanOrEqual(notify.firewallFailingAfterMs);
      expect(n.summary).toMatch(/^firewall fw1 has been failing since \S+ \(\d+ failed calls\)/);
    } finally {
      emulator.setFaults({ outageUntil: 0 });
    }
    await eventually(() => sink.events((x) => x.kind === 'firewall-recovered').length > 0, 90_000, 'firewall-recovered');
    expect(sink.events((x) => x.kind === 'firewall-failing')).toHaveLength(1); // once per failing spell
  }, 180_000);
});

describe('durability', () => {
  it('a sink that is down for 30 s gets every notification once it is back; the workflow never waits for it', async () => {
    const ip = '203.0.113.11';
    await sink.stop();
    const downAt = Date.now();
    const direct = event('expiry', ip);
    const directHandle = await sendDirect(direct);
    const handle = await env.client.workflow.start(transitionsWorkflow, { workflowId: `transitions-${randomUUID()}`, taskQueue, args: [{ ip, kinds: ['block', 'unblock'] }] });
    // Failing attempts are being retried…
    await eventually(async () => ((await directHandle.describe()).raw.pendingActivities?.[0]?.attempt ?? 0) >= 3, 30_000, 'retries');
    // …and the sender finished without waiting: both of its notifications were still undelivered.
    await handle.signal(finishSignal);
    expect(await handle.result()).toEqual({ undeliveredAtEnd: 2 });
    expect(sink.events(byIp(ip))).toEqual([]);
    await eventually(() => Date.now() - downAt >= 30_000, 40_000, '30 s of downtime'); // the scenario: 30 s down
    await sink.start(); // same port
    await eventually(() => ['block', 'unblock', 'expiry'].every((k) => sink.events(byIp(ip, k as NotifyKind)).length > 0), 60_000, 'delivered after the outage');
    await directHandle.result();
    const late = sink.received.filter((r) => r.event.ip === ip);
    expect(late.every(signatureValid)).toBe(true);
    // At least once: a repeat carries the same id.
    expect(new Set(late.map((r) => r.event.id)).size).toBe(3);
    console.log(`sink down ${Math.round((Date.now() - downAt) / 1000)} s in all; delivered ${late.length} requests for 3 notifications`);
  }, 150_000);

  it('a sink that already has a notification is not sent it again while another sink is failing', async () => {
    const tcpPort = await freePort();
    const queue = `notify-tcp-${randomUUID()}`;
    await startWorker(queue, { ...notify, syslog: { protocol: 'tcp', host: '127.0.0.1', port: tcpPort } });
    const n = event('eviction', '203.0.113.12');
    const handle = await sendDirect(n, queue);
    await eventually(async () => ((await handle.describe()).raw.pendingActivities?.[0]?.attempt ?? 0) >= 3, 30_000, 'syslog retries');
    expect(sink.events((e) => e.id === n.id)).toHaveLength(1);
    const tcpLines: string[] = [];
    const server: TcpServer = createTcpServer((sock) => {
      let data = '';
      sock.on('data', (c) => (data += c.toString('utf8')));
      sock.on('end', () => tcpLines.push(data));
    });
    await new Promise<void>((resolve) => server.listen(tcpPort, '127.0.0.1', resolve));
    try {
      await handle.result();
      await eventually(() => tcpLines.some((l) => l.includes(n.id)), 10_000, 'tcp syslog');
      const frame = tcpLines.find((l) => l.includes(n.id))!;
      const [, length, message] = /^(\d+) ([\s\S]*)$/.exec(frame)!;
      expect(Buffer.byteLength(message)).toBe(Number(length)); // RFC 6587 octet counting
      expect(sink.events((e) => e.id === n.id)).toHaveLength(1);
    } finally {
      server.close();
    }
  }, 90_000);
});

describe('syslog format', () => {
  it('RFC 5424 header, escaped structured data, bounded size', async () => {
    const line = formatSyslog({ id: 'x', kind: 'rejected', at: '2030-01-01T00:00:00.000Z', summary: 'ü'.repeat(3000), reason: 'r', actor: 'a "quoted" ] \\ actor' }, 'host name');
    expect(line).toMatch(/^<132>1 2030-01-01T00:00:00.000Z hostname ads-mitigator \d+ rejected \[ads@32473 id="x" kind="rejected" actor="a \\"quoted\\" \\] \\\\ actor"\] ü+$/);
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(2048);
    await expect(sendSyslog({ protocol: 'tcp', host: '127.0.0.1', port: await freePort() }, { id: 'y', kind: 'block', at: new Date().toISOString(), summary: 's' })).rejects.toThrow(
      /^syslog tcp:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/,
    );
  });
});
