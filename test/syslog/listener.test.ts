/**
 * The syslog listener over real sockets (UDP, TCP, TLS) on the real stack (Temporal dev server, FortiOS
 * emulator, worker): the reference's 13.0 lines become the right block requests and blocks, repeats are
 * deduplicated, the address cap applies, and hostile input or senders leave it up and start nothing.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Registry } from 'prom-client';
import { BlockRequest, BlockResult, BlockService } from '../../src/blocks/service';
import type { SyslogConfig } from '../../src/config';
import { DEFAULT_IP_POLICY, IpPolicy } from '../../src/policy/ip-policy';
import { RunningSyslog, startSyslogListener, SyslogLimits } from '../../src/syslog/listener';
import { blockWorkflowId } from '../../workflows/messages';
import { CEF_SCANS_ONE_TARGET, CEF_SCANS_REMAINING, CEF_SSHDICT_V4_LIST, CEF_SSHDICT_V6, withAddresses } from '../ads/samples';
import { TEST_CERT, TEST_KEY } from '../ads/tls-fixture';
import { captureLogger, secret, testConfig } from '../api/harness';
import { activeStatus, eventually, GROUP4, GROUP6, Stack, startStack, TARGET } from '../support/stack';

let stack: Stack;
let blocks: BlockService;
/** Every request the intake handed to the block service, with what came back. */
const handed: { req: BlockRequest; results?: BlockResult[] }[] = [];
const listeners: RunningSyslog[] = [];
const logs = captureLogger();
let main: RunningSyslog;
let tls: RunningSyslog;
let certDir: string;

// The reference's samples name private addresses (10.0.57.1 ...): this site blocks private attackers.
const ipPolicy: IpPolicy = { ...DEFAULT_IP_POLICY, allowPrivate: true };

async function listen(settings: Partial<SyslogConfig>, limits: Partial<SyslogLimits> = {}, extra: { ensureTemporal?: () => Promise<void> } = {}) {
  const l = await startSyslogListener({
    settings: { host: '127.0.0.1', allow: ['127.0.0.0/8', '::1'], ...settings },
    intake: testConfig({ taskQueue: stack.taskQueue, firewallUrl: '', firewallToken: '' }, { webhook: '', read: '', write: '' }).intake,
    blocks,
    logger: logs.logger,
    registry: new Registry(),
    limits,
    ...extra,
  });
  listeners.push(l);
  return l;
}

beforeAll(async () => {
  stack = await startStack({ server: 'dev', ipPolicy });
  const config = testConfig({ taskQueue: stack.taskQueue, firewallUrl: stack.emulator.url, firewallToken: stack.emulator.token }, { webhook: secret(), read: secret(), write: secret() }, ipPolicy);
  blocks = new BlockService(stack.client, config);
  const original = blocks.block.bind(blocks);
  jest.spyOn(blocks, 'block').mockImplementation(async (req) => {
    const entry: (typeof handed)[number] = { req };
    handed.push(entry);
    entry.results = await original(req);
    return entry.results;
  });
  certDir = mkdtempSync(path.join(os.tmpdir(), 'ads-syslog-tls-'));
  writeFileSync(path.join(certDir, 'cert.pem'), TEST_CERT);
  writeFileSync(path.join(certDir, 'key.pem'), TEST_KEY);
  main = await listen({ udpPort: 0, tcpPort: 0 });
  tls = await listen({ tcpPort: 0, tls: { certFile: path.join(certDir, 'cert.pem'), keyFile: path.join(certDir, 'key.pem') } });
});

afterAll(async () => {
  for (const l of listeners) await l.close();
  await stack?.stop();
});

// ---------------------------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------------------------

const pri = (line: string) => `<134>${line}`;

function udpSend(port: number, ...messages: (string | Buffer)[]): Promise<void> {
  const socket = createSocket('udp4');
  return new Promise<void>((resolve, reject) => {
    let left = messages.length;
    for (const m of messages) {
      socket.send(typeof m === 'string' ? Buffer.from(m) : m, port, '127.0.0.1', (err) => {
        if (err) reject(err);
        else if (--left === 0) resolve();
      });
    }
  }).finally(() => socket.close());
}

/** Writes the bytes, ends, and resolves when the listener has closed its side too. */
function streamSend(socket: Socket, bytes: string | Buffer): Promise<{ closedByServer: boolean }> {
  return new Promise((resolve) => {
    let ended = false;
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ closedByServer: !ended }));
    socket.write(bytes, () => {
      ended = true;
      socket.end();
    });
  });
}

const tcpSend = (port: number, bytes: string | Buffer) => streamSend(tcpConnect({ host: '127.0.0.1', port }), bytes);
const tlsSend = (port: number, bytes: string | Buffer) =>
  new Promise<{ closedByServer: boolean }>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: TEST_CERT }, () => void streamSend(socket, bytes).then(resolve));
    socket.once('error', reject);
  });

const lf = (...lines: string[]) => lines.map((l) => `${l}\n`).join('');
const octets = (...lines: string[]) => lines.map((l) => `${Buffer.byteLength(l)} ${l}`).join('');

/** The requests for `ip` once `n` of them have been answered. */
const answered = (ip: string, n = 1) =>
  eventually(() => {
    const got = handed.filter((h) => h.req.ip === ip);
    return got.length >= n && got.every((h) => h.results) && got;
  }, 30_000, `${n} answered request(s) for ${ip}`);

const outcome = (h: { results?: BlockResult[] }) => h.results?.map((r) => r.outcome).join();
const members = async (family: 'ipv4' | 'ipv6') => (await stack.firewall.getGroup(family, family === 'ipv4' ? GROUP4 : GROUP6))?.members ?? [];
const metric = async (l: RunningSyslog, name: 'messages' | 'events' | 'refused', labels: Record<string, string>) => {
  const values: { labels: Record<string, string | number | undefined>; value: number }[] = (await l.metrics[name].get()).values;
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
};
const messages = (l: RunningSyslog, transport: string, outcome: string) => metric(l, 'messages', { transport, outcome });
const events = (l: RunningSyslog, outcome: string) => metric(l, 'events', { outcome });

// ---------------------------------------------------------------------------------------------

describe('the reference 13.0 lines become the right blocks', () => {
  test('UDP: SSHDICT with an IPv4 target list blocks its source, end to end, and never a target', async () => {
    await udpSend(main.udp!.port, pri(CEF_SSHDICT_V4_LIST));
    const [h] = await answered('10.0.57.1');
    expect(h.req).toEqual({
      ip: '10.0.57.1',
      actor: 'ads',
      reason: expect.stringContaining('SSHDICT event cef-'),
      event: { id: expect.stringMatching(/^cef-[0-9a-f]{24}$/), method: 'SSHDICT', severity: 'high' },
    });
    expect(h.results).toEqual([expect.objectContaining({ target: TARGET, outcome: 'started' })]);
    const status = await activeStatus(stack.client.workflow.getHandle(blockWorkflowId(TARGET, '10.0.57.1')), 30_000);
    expect(status).toMatchObject({ state: 'active', ip: '10.0.57.1' });
    expect(await members('ipv4')).toContain('ads-10.0.57.1');
    expect(handed.some((x) => x.req.ip.startsWith('192.168.57.'))).toBe(false);
  });

  test('UDP: the same message again is deduplicated (same content id: duplicate, nothing new)', async () => {
    await udpSend(main.udp!.port, pri(CEF_SSHDICT_V4_LIST));
    const got = await answered('10.0.57.1', 2);
    expect(got[1].req.event!.id).toBe(got[0].req.event!.id);
    expect(outcome(got[1])).toBe('duplicate');
    expect((await blocks.get('10.0.57.1')).eventCount).toBe(1);
  });

  test('TCP (LF and octet-counted frames): one message per target plus the remaining-targets message are one event', async () => {
    const second = CEF_SCANS_ONE_TARGET.replace('dst=192.168.21.2', 'dst=192.168.21.3');
    expect((await tcpSend(main.tcp!.port, lf(pri(CEF_SCANS_ONE_TARGET)) + octets(pri(second)) + lf(pri(CEF_SCANS_REMAINING)))).closedByServer).toBe(false);
    const got = await answered('10.0.21.1', 3);
    expect(new Set(got.map((h) => h.req.event!.id)).size).toBe(1);
    expect(got.map(outcome).sort()).toEqual(['duplicate', 'duplicate', 'started']);
    expect(got[0].req.event).toMatchObject({ method: 'SCANS', severity: 'medium' });
    expect((await blocks.get('10.0.21.1')).eventCount).toBe(1); // not counted as repeats (no escalation)
  });

  test('TLS: the IPv6 sample names a link-local source, which the safety policy refuses: nothing is handed on', async () => {
    const before = handed.length;
    await tlsSend(tls.tcp!.port, lf(pri(CEF_SSHDICT_V6)));
    await eventually(async () => (await events(tls, 'rejected')) >= 1, 30_000, 'rejected event');
    expect(handed.length).toBe(before);
  });

  test('TLS: the same line with global IPv6 addresses blocks the IPv6 source into the IPv6 group', async () => {
    const line = withAddresses(CEF_SSHDICT_V6, { 'fe80::a1': '2001:db8:bad::a1', 'fe80::2': '2001:db8:1::2' });
    await tlsSend(tls.tcp!.port, octets(pri(line)));
    const [h] = await answered('2001:db8:bad::a1');
    expect(h.req.event).toMatchObject({ method: 'SSHDICT', severity: 'high' });
    expect(outcome(h)).toBe('started');
    await eventually(async () => (await members('ipv6')).includes('ads-2001:db8:bad::a1'), 30_000, 'IPv6 member');
  });

  test('DOS, one message per target: the attackers (targets) of every message are blocked, never the victim', async () => {
    const victim = '198.51.100.30';
    const dos = (targets: string) =>
      pri(withAddresses(CEF_SCANS_ONE_TARGET, { '10.0.21.1': victim }).replace('|SCANS|Port scanning|6|', '|DOS|Denial of service attack|10|').replace('dst=192.168.21.2', targets));
    await udpSend(main.udp!.port, dos('dst=203.0.113.61'), dos('dst=203.0.113.62'), dos('cs4=203.0.113.63, 203.0.113.64 cs4Label=dstIPv4list'));
    for (const ip of ['203.0.113.61', '203.0.113.62', '203.0.113.63', '203.0.113.64']) {
      const [h] = await answered(ip);
      expect(h.req.event).toMatchObject({ method: 'DOS', severity: 'critical' });
      expect(h.req.reason).toContain('named as a target');
      expect(outcome(h)).toBe('started');
    }
    expect(handed.some((h) => h.req.ip === victim)).toBe(false);
  });

  test('MAX_TARGETS_PER_EVENT: a DOS message naming 101 attackers is ignored with that reason, nothing handed on', async () => {
    const before = handed.length;
    const ignoredBefore = await events(main, 'ignored');
    const list = Array.from({ length: 101 }, (_, i) => `198.18.1.${i + 1}`).join(', ');
    const line = CEF_SCANS_ONE_TARGET.replace('|SCANS|Port scanning|6|', '|DOS|Denial of service attack|10|').replace('dst=192.168.21.2', `cs4=${list} cs4Label=dstIPv4list`);
    await tcpSend(main.tcp!.port, lf(pri(line)));
    await eventually(async () => (await events(main, 'ignored')) > ignoredBefore, 30_000, 'ignored event');
    expect(logs.lines.map((l) => JSON.parse(l)).some((l) => l.rule === 'too-many-targets' && /MAX_TARGETS_PER_EVENT \(100\)/.test(l.reason))).toBe(true);
    expect(handed.length).toBe(before);
  });
});

describe('hostile input and senders', () => {
  const valid = withAddresses(CEF_SCANS_ONE_TARGET, { '10.0.21.1': '203.0.113.80' });
  const hostile = (i: number): string => {
    const kinds = [
      () => `garbage ${i} \u0000\u0001\u00ff<<>>|||===`,
      () => valid.replace('msg=ARP scan', `msg=ARP scan src=203.0.113.${100 + (i % 100)}`), // injected second source
      () => valid.replace(' dst=', ` c6a2=2001:db8::${i.toString(16)} c6a2Label=srcIPv6 dst=`), // injected IPv6 source
      () => valid.replace('dst=192.168.21.2', `dst=$(rm -rf /)${i}`),
      () => valid.replace('Flowmon ADS Ultimate', 'Other Product'),
      () => valid.replace('|SCANS|', `|SCANS${'\\|'}x${i}|`),
      () => `<134>CEF:0|${'|'.repeat(i % 20)}`,
      () => `CEF:0|Flowmon Networks|Flowmon ADS|13|SCANS|x|6|src=203.0.113.${i % 250} src=203.0.113.1`,
      () => '\u{1F4A5}'.repeat(100) + 'CEF:',
      () => `<999>${'A'.repeat(i % 500)}`,
    ];
    return pri(kinds[i % kinds.length]());
  };

  test('10,000 hostile or malformed messages over TCP and UDP leave the listener up and start nothing', async () => {
    const before = handed.length;
    const malformedBefore = await messages(main, 'tcp', 'malformed');
    const warnLinesBefore = logs.lines.length;
    const tcpBody = Array.from({ length: 9000 }, (_, i) => (i % 2 ? octets(hostile(i)) : lf(hostile(i)))).join('');
    // Oversized: a declared length far over the limit, and a 70 KB line without a terminator for a while.
    const oversized = `999999999 ${'x'.repeat(1000)}` + `\n${'y'.repeat(70 * 1024)}\n`;
    await Promise.all([tcpSend(main.tcp!.port, tcpBody), tcpSend(main.tcp!.port, '\n' + lf('z'.repeat(70 * 1024)) + oversized)]);
    const udpMessages = Array.from({ length: 990 }, (_, i) => hostile(i));
    // Paced (a few at a time, then until they are counted): a datagram that overflows the receive buffer is lost on loopback too.
    const udpBefore = await messages(main, 'udp', 'malformed');
    for (let i = 0; i < udpMessages.length; i += 10) {
      await udpSend(main.udp!.port, ...udpMessages.slice(i, i + 10));
      await eventually(async () => (await messages(main, 'udp', 'malformed')) - udpBefore >= Math.floor((i + 10) * 0.9), 10_000, 'UDP datagrams counted');
    }
    await tlsSend(tls.tcp!.port, Array.from({ length: 10 }, (_, i) => lf(hostile(i))).join(''));

    await eventually(async () => (await messages(main, 'tcp', 'malformed')) - malformedBefore >= 9000, 30_000, '9000 malformed counted');
    expect(await messages(main, 'tcp', 'oversized')).toBeGreaterThanOrEqual(2);
    expect((await messages(main, 'udp', 'malformed')) - udpBefore).toBeGreaterThanOrEqual(900);
    await eventually(async () => (await messages(tls, 'tls', 'malformed')) >= 10, 30_000, 'TLS malformed counted');
    // Rate-limited logging: a handful of lines per kind, not thousands.
    expect(logs.lines.length - warnLinesBefore).toBeLessThan(50);

    // Still up on every transport: a valid message afterwards is handed on.
    await udpSend(main.udp!.port, pri(valid));
    expect(outcome((await answered('203.0.113.80'))[0])).toBe('started');
    expect(handed.slice(before).map((h) => h.req.ip)).toEqual(['203.0.113.80']);
    await tcpSend(main.tcp!.port, lf(pri(valid.replace('15:13:04', '15:13:05'))));
    await tlsSend(tls.tcp!.port, lf(pri(valid.replace('15:13:04', '15:13:06'))));
    await answered('203.0.113.80', 3);
    expect(handed.slice(before).map((h) => h.req.ip)).toEqual(['203.0.113.80', '203.0.113.80', '203.0.113.80']);
  });

  test('a sender outside SYSLOG_ALLOW is refused on every transport, counted and logged, and starts nothing', async () => {
    const strict = await listen({ udpPort: 0, tcpPort: 0, allow: ['192.0.2.0/24'] });
    const strictTls = await listen({ tcpPort: 0, allow: ['192.0.2.0/24'], tls: { certFile: path.join(certDir, 'cert.pem'), keyFile: path.join(certDir, 'key.pem') } });
    const before = handed.length;
    const line = lf(pri(withAddresses(CEF_SCANS_ONE_TARGET, { '10.0.21.1': '203.0.113.90' })));
    await udpSend(strict.udp!.port, line);
    const closed = await new Promise<boolean>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port: strict.tcp!.port });
      s.on('error', () => undefined);
      s.on('close', () => resolve(true));
    });
    expect(closed).toBe(true);
    await expect(tlsSend(strictTls.tcp!.port, line)).rejects.toThrow();
    await eventually(async () => (await messages(strict, 'udp', 'unauthorized')) === 1 && (await messages(strict, 'tcp', 'unauthorized')) === 1, 10_000, 'counted');
    expect(await metric(strictTls, 'refused', { transport: 'tls', reason: 'unauthorized' })).toBe(1);
    expect(logs.lines.map((l) => JSON.parse(l)).some((l) => l.kind === 'unauthorized' && l.sender === '127.0.0.1')).toBe(true);
    expect(handed.length).toBe(before);
    await expect(stack.client.workflow.getHandle(blockWorkflowId(TARGET, '203.0.113.90')).describe()).rejects.toThrow();
  });

  test('connections beyond the limit are closed at once and counted', async () => {
    const small = await listen({ tcpPort: 0 }, { maxConnections: 2 });
    const open = await Promise.all([0, 1].map(() => new Promise<Socket>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port: small.tcp!.port }, () => resolve(s));
    })));
    await eventually(async () => (await small.metrics.connections.get()).values[0]?.value === 2, 10_000, 'two connections');
    const third = await new Promise<boolean>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port: small.tcp!.port });
      s.on('error', () => undefined);
      s.on('close', () => resolve(true));
    });
    expect(third).toBe(true);
    expect(await metric(small, 'refused', { transport: 'tcp', reason: 'too-many' })).toBe(1);
    for (const s of open) s.destroy();
  });
});

describe('reliability', () => {
  test('while Temporal is unreachable the events wait and are retried, then delivered: none lost', async () => {
    let failures = 3;
    const flaky = await listen({ tcpPort: 0 }, { retryMinMs: 20, retryMaxMs: 100 }, {
      ensureTemporal: async () => {
        if (failures-- > 0) throw new Error('Temporal unreachable (test)');
      },
    });
    const line = withAddresses(CEF_SCANS_ONE_TARGET, { '10.0.21.1': '203.0.113.95' });
    await tcpSend(flaky.tcp!.port, lf(pri(line)));
    expect(outcome((await answered('203.0.113.95'))[0])).toBe('started');
    expect((await flaky.metrics.retries.get()).values[0].value).toBe(3);
  });

  test('a slow intake pauses the TCP connection (back-pressure) instead of buffering without bound', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // A block service whose block() waits for the test: the intake is stuck until release().
    const stuck: BlockService = Object.assign(Object.create(BlockService.prototype), blocks, {
      block: async (req: BlockRequest): Promise<BlockResult[]> => {
        await held;
        return [{ target: TARGET, workflowId: `stub:${req.ip}`, outcome: 'started', state: 'active', expiresAt: new Date().toISOString() }];
      },
    });
    const l = await startSyslogListener({
      settings: { host: '127.0.0.1', allow: ['127.0.0.1'], tcpPort: 0 },
      intake: testConfig({ taskQueue: '', firewallUrl: '', firewallToken: '' }, { webhook: '', read: '', write: '' }).intake,
      blocks: stuck,
      logger: logs.logger,
      registry: new Registry(),
      limits: { perConnectionQueue: 20, maxBatch: 10 },
    });
    listeners.push(l);
    const line = withAddresses(CEF_SCANS_ONE_TARGET, { '10.0.21.1': '203.0.113.99' });
    const total = 20_000; // ~6 MB: more than the kernel's socket buffers hold
    const socket = tcpConnect({ host: '127.0.0.1', port: l.tcp!.port });
    let written = false;
    socket.write(Array.from({ length: total }, (_, i) => lf(pri(line.replace('cn3=2', `cn3=${i}`)))).join(''), () => (written = true));
    const queued = async () => (await l.metrics.queued.get()).values[0]?.value ?? 0;
    try {
      await eventually(async () => (await queued()) >= 20, 30_000, 'queue at its limit');
      // While the intake is stuck, the sender is held back by TCP and our queue stays near its limit
      // (at most one socket read beyond it): sampled a few times, the sender never finishes.
      for (let i = 0; i < 10; i++) {
        expect(await queued()).toBeLessThan(20 + 400);
        expect(written).toBe(false);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      release();
    }
    await eventually(async () => (await events(l, 'started')) === total, 60_000, `all ${total} delivered`);
    expect(written).toBe(true);
    socket.end();
  });

  test('close() stops listening', async () => {
    const l = await listen({ udpPort: 0, tcpPort: 0 });
    const port = l.tcp!.port;
    await l.close();
    const refused = await new Promise<boolean>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port });
      s.on('error', () => resolve(true));
      s.on('connect', () => resolve(false));
    });
    expect(refused).toBe(true);
  });
});
