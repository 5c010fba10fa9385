/**
 * The ADS syslog (CEF) listener: UDP, TCP, or TCP with TLS (RFC 5426 / 6587 / 5425), off unless a port is
 * configured. Each message becomes an AdsEvent (src/ads/cef.ts) and goes through `runIntake`, the same
 * intake as the webhook's: same method policy, priority threshold, address cap, safety policy, dedup.
 *
 * Syslog has no credentials: the sender allowlist (SYSLOG_ALLOW) is the gate, checked per datagram and per
 * connection before a byte is parsed. What a sender can cost us is bounded:
 *  - a message is at most `maxMessageBytes` (longer ones are skipped by the framer, never buffered);
 *  - at most `maxConnections` TCP/TLS connections, a TLS handshake within `handshakeTimeoutMs`;
 *  - each connection queues at most `perConnectionQueue` events: beyond, its socket is paused (TCP
 *    back-pressure: the sender's syslog daemon buffers), and the UDP lane drops beyond `udpQueue` (counted);
 *  - at most `intakeConcurrency` intake calls run at once over all lanes, each of at most `maxBatch` events.
 * When Temporal is unreachable a batch is retried with back-off for as long as it takes (the sockets stay
 * paused meanwhile); a batch that fails for another reason is given up after `maxAttempts` (counted).
 * Re-running a batch is safe: the block workflow deduplicates on the event id.
 */
import { createSocket, RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { AddressInfo, createServer as createTcpServer, Server, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer as createTlsServer } from 'node:tls';
import type { Client } from '@temporalio/client';
import type { Registry } from 'prom-client';
import { parseAdsCef } from '../ads/cef';
import type { CanHold, IntakePolicy } from '../ads/decision';
import type { AdsEvent } from '../ads/event';
import { AdsParseError, MAX_LINE_BYTES } from '../ads/parse';
import { EventResult, runIntake } from '../api/intake';
import { DEFAULT_LIMITS } from '../api/limits';
import { sharedMetrics } from '../api/metrics';
import { TemporalGate } from '../api/temporal-gate';
import type { BlockService } from '../blocks/service';
import type { Config, SyslogConfig } from '../config';
import type { Logger } from '../logger';
import { Cidr, parseCidrList } from '../policy/ip-policy';
import { SyslogFramer } from './framing';
import { LogLimiter } from './log-limiter';
import { parseSyslogMessage } from './message';
import { MessageOutcome, SyslogMetrics, Transport } from './metrics';

export interface SyslogLimits {
  maxMessageBytes: number;
  maxConnections: number;
  perConnectionQueue: number;
  udpQueue: number;
  maxBatch: number;
  intakeConcurrency: number;
  /** Block operations in flight per intake call. */
  blockConcurrency: number;
  handshakeTimeoutMs: number;
  /** A connection that sends nothing for this long is closed (its sender reconnects with the next message). */
  idleTimeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Attempts for a batch that fails while Temporal answers (a bug, not an outage). */
  maxAttempts: number;
  /** How long close() lets queued events drain. */
  closeGraceMs: number;
}

export const DEFAULT_SYSLOG_LIMITS: Readonly<SyslogLimits> = Object.freeze({
  maxMessageBytes: MAX_LINE_BYTES,
  maxConnections: 64,
  perConnectionQueue: 200,
  udpQueue: 2000,
  maxBatch: 50,
  intakeConcurrency: 4,
  blockConcurrency: DEFAULT_LIMITS.blockConcurrency,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 3_600_000,
  retryMinMs: 250,
  retryMaxMs: 10_000,
  maxAttempts: 5,
  closeGraceMs: 5_000,
});

export interface SyslogListenerDeps {
  settings: SyslogConfig;
  intake: IntakePolicy;
  blocks: BlockService;
  logger: Logger;
  /** Where the metrics go; default: the process-wide registry that GET /metrics serves. */
  registry?: Registry;
  /** Throws when Temporal is unreachable (e.g. TemporalGate.ensure): the batch waits and is retried. */
  ensureTemporal?: () => Promise<void>;
  /** See IntakeOptions.canHold. */
  canHold?: CanHold;
  limits?: Partial<SyslogLimits>;
}

export interface RunningSyslog {
  udp?: AddressInfo;
  /** TCP, or TLS when `tls`. */
  tcp?: AddressInfo;
  tls: boolean;
  metrics: SyslogMetrics;
  close(): Promise<void>;
}

/** Everything the production processes need, from the configuration; undefined when syslog is off. */
export async function startSyslogIntake(d: {
  config: Pick<Config, 'syslog' | 'intake'>;
  blocks: BlockService;
  temporal: Client;
  logger: Logger;
  canHold?: CanHold;
}): Promise<RunningSyslog | undefined> {
  if (!d.config.syslog) return undefined;
  const gate = new TemporalGate(d.temporal, DEFAULT_LIMITS.temporalProbeMs, DEFAULT_LIMITS.temporalProbeCacheMs);
  return startSyslogListener({
    settings: d.config.syslog,
    intake: d.config.intake,
    blocks: d.blocks,
    logger: d.logger,
    canHold: d.canHold,
    ensureTemporal: () => gate.ensure(),
  });
}

class TemporalDown extends Error {}

const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;

export async function startSyslogListener(d: SyslogListenerDeps): Promise<RunningSyslog> {
  const limits: SyslogLimits = { ...DEFAULT_SYSLOG_LIMITS, ...d.limits };
  const log = d.logger.child({ component: 'syslog' });
  const complain = new LogLimiter(log);
  const metrics = SyslogMetrics.on(d.registry ?? sharedMetrics().registry);
  const allowed = parseCidrList(d.settings.allow);
  const abort = new AbortController();
  let closing = false;
  let running = 0;
  const waiting: (() => void)[] = [];
  const lanes = new Set<Lane>();

  const count = (transport: Transport, outcome: MessageOutcome, n = 1) => metrics.messages.inc({ transport, outcome }, n);

  /** One intake call at a time per lane, `intakeConcurrency` over all lanes. */
  const slot = async (): Promise<() => void> => {
    while (running >= limits.intakeConcurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    return () => {
      running--;
      waiting.shift()?.();
    };
  };

  /** runIntake until it succeeds, Temporal outages waited out; undefined when given up or closing. */
  const deliver = async (events: AdsEvent[], transport: Transport): Promise<EventResult[] | undefined> => {
    let delay = limits.retryMinMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await runIntake(events, {
          blocks: d.blocks,
          policy: d.intake,
          concurrency: limits.blockConcurrency,
          canHold: d.canHold,
          beforeExecute: async () => {
            try {
              await d.ensureTemporal?.();
            } catch (err) {
              throw new TemporalDown((err as Error).message);
            }
          },
        });
      } catch (err) {
        const outage = err instanceof TemporalDown;
        if (!outage && attempt >= limits.maxAttempts) {
          log.error({ err, transport, events: events.length, eventIds: events.slice(0, 5).map((e) => e.id) }, 'syslog events given up after repeated intake failures');
          count(transport, 'failed', events.length);
          return undefined;
        }
        if (abort.signal.aborted) return undefined;
        complain.warn(outage ? 'temporal-unavailable' : 'intake-failed', { transport, events: events.length, attempt, error: (err as Error).message, retryInMs: delay }, 'syslog intake waits and retries');
        metrics.retries.inc();
        await sleep(delay, undefined, { signal: abort.signal }).catch(() => undefined);
        if (abort.signal.aborted) return undefined;
        delay = Math.min(delay * 2, limits.retryMaxMs);
      }
    }
  };

  const report = (results: EventResult[], transport: Transport, sender: string) => {
    for (const r of results) {
      metrics.events.inc({ outcome: r.outcome });
      const ev = { transport, sender, eventId: r.eventId, method: r.method, priority: r.priority };
      if (!r.ips) log.info({ ...ev, outcome: r.outcome, rule: r.rule, reason: r.reason }, 'syslog event ignored');
      for (const ip of r.ips ?? []) {
        const level = ip.outcome === 'rejected' ? 'warn' : ip.outcome === 'duplicate' || ip.outcome === 'unchanged' ? 'debug' : 'info';
        log[level]({ ...ev, ip: ip.ip, outcome: ip.outcome, code: ip.code, reason: ip.reason }, 'syslog event ip');
      }
    }
  };

  /** A source of events with its own queue, drained in order: a TCP connection, or the UDP socket. */
  class Lane {
    readonly queue: { event: AdsEvent; sender: string }[] = [];
    private draining?: Promise<void>;

    constructor(
      readonly transport: Transport,
      private readonly limit: number,
      private readonly onLow: () => void = () => undefined,
    ) {
      lanes.add(this);
    }

    get full(): boolean {
      return this.queue.length >= this.limit;
    }

    /** Parses one message and queues its event; a full UDP lane drops it (TCP lanes pause their socket instead). */
    offer(bytes: Buffer, sender: string): void {
      const text = bytes.toString('utf8');
      if (text.trim() === '') return;
      let event: AdsEvent;
      try {
        const message = parseSyslogMessage(text);
        if (!message.cef) throw new AdsParseError('not an ADS CEF message (no "CEF:" after the syslog header)');
        event = parseAdsCef(message.cef);
      } catch (err) {
        if (!(err instanceof AdsParseError)) throw err;
        count(this.transport, 'malformed');
        complain.warn('malformed', { transport: this.transport, sender, reason: err.message }, 'syslog message refused');
        return;
      }
      if (this.transport === 'udp' && this.full) {
        count(this.transport, 'dropped');
        complain.warn('overload', { transport: this.transport, sender, queued: this.queue.length }, 'syslog datagram dropped: the intake is behind');
        return;
      }
      count(this.transport, 'accepted');
      this.queue.push({ event, sender });
      metrics.queued.inc();
      this.draining ??= this.drain().finally(() => (this.draining = undefined));
    }

    private async drain(): Promise<void> {
      while (this.queue.length > 0 && !abort.signal.aborted) {
        const release = await slot();
        try {
          const batch = this.queue.splice(0, limits.maxBatch);
          metrics.queued.dec(batch.length);
          if (this.queue.length < this.limit / 2) this.onLow();
          const results = await deliver(batch.map((b) => b.event), this.transport);
          if (results) report(results, this.transport, batch[0].sender);
        } finally {
          release();
        }
      }
      this.onLow();
    }

    /** Resolves when the queue is empty (or the listener gave up on it). */
    settled(): Promise<void> {
      return this.draining ?? Promise.resolve();
    }

    discard(): void {
      metrics.queued.dec(this.queue.length);
      this.queue.length = 0;
      lanes.delete(this);
    }
  }

  const isAllowed = (address: string | undefined): boolean => {
    if (!address) return false;
    try {
      const [a] = parseCidrList([address]);
      return allowed.some((c: Cidr) => c.family === a.family && a.address.match(c.address, c.prefix));
    } catch {
      return false;
    }
  };

  const refuse = (transport: Transport, sender: string | undefined, reason: 'unauthorized' | 'too-many' | 'tls-failed', detail?: string) => {
    metrics.refused.inc({ transport, reason });
    if (reason === 'unauthorized') count(transport, 'unauthorized');
    complain.warn(`connection-${reason}`, { transport, sender, detail }, reason === 'unauthorized' ? 'syslog sender not in SYSLOG_ALLOW: refused' : 'syslog connection refused');
  };

  // --- UDP -----------------------------------------------------------------------------------------
  let udp: UdpSocket | undefined;
  let udpAddress: AddressInfo | undefined;
  if (d.settings.udpPort !== undefined) {
    const lane = new Lane('udp', limits.udpQueue);
    udp = createSocket({ type: d.settings.host.includes(':') ? 'udp6' : 'udp4' });
    udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (closing) return;
      if (!isAllowed(rinfo.address)) {
        count('udp', 'unauthorized');
        complain.warn('unauthorized', { transport: 'udp', sender: rinfo.address }, 'syslog sender not in SYSLOG_ALLOW: datagram dropped');
        return;
      }
      if (msg.length > limits.maxMessageBytes) {
        count('udp', 'oversized');
        complain.warn('oversized', { transport: 'udp', sender: rinfo.address, bytes: msg.length }, 'syslog datagram over the size limit dropped');
        return;
      }
      lane.offer(msg, rinfo.address);
    });
    udp.on('error', (err) => log.error({ err }, 'syslog UDP socket error'));
    const socket = udp;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(d.settings.udpPort, d.settings.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    udpAddress = udp.address();
    try {
      socket.setRecvBufferSize(UDP_RECEIVE_BUFFER); // a burst of datagrams waits in the kernel, not lost (capped by net.core.rmem_max)
    } catch {
      // the default buffer it is
    }
  }

  // --- TCP / TLS -----------------------------------------------------------------------------------
  let tcp: Server | undefined;
  let tcpAddress: AddressInfo | undefined;
  const sockets = new Set<Socket>();
  const tlsOptions = d.settings.tls ? { cert: readFileSync(d.settings.tls.certFile), key: readFileSync(d.settings.tls.keyFile) } : undefined;
  const transport: Transport = tlsOptions ? 'tls' : 'tcp';

  /** A connection that passed the gate: frames → events, paused while its queue is full. */
  const serve = (socket: Socket, sender: string) => {
    const framer = new SyslogFramer(limits.maxMessageBytes);
    const lane = new Lane(transport, limits.perConnectionQueue, () => {
      if (socket.isPaused() && !socket.destroyed) socket.resume();
    });
    socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      const { frames, oversized } = framer.push(chunk);
      if (oversized > 0) {
        count(transport, 'oversized', oversized);
        complain.warn('oversized', { transport, sender, frames: oversized }, 'syslog message over the size limit skipped');
      }
      for (const frame of frames) lane.offer(frame, sender);
      if (lane.full) socket.pause();
    });
    socket.on('close', () => {
      // What is queued is still delivered; the lane goes once it is empty.
      void lane.settled().then(() => lanes.delete(lane));
    });
  };

  /** The gate, on the raw socket before any byte (or TLS handshake) is read. */
  const admit = (socket: Socket): boolean => {
    const sender = socket.remoteAddress;
    if (closing) {
      socket.destroy();
      return false;
    }
    if (!isAllowed(sender)) {
      refuse(transport, sender, 'unauthorized');
      socket.destroy();
      return false;
    }
    if (sockets.size >= limits.maxConnections) {
      refuse(transport, sender, 'too-many', `at most ${limits.maxConnections} connections`);
      socket.destroy();
      return false;
    }
    sockets.add(socket);
    metrics.connections.inc({ transport });
    socket.on('close', () => {
      sockets.delete(socket);
      metrics.connections.dec({ transport });
    });
    socket.on('error', () => undefined); // resets from the peer end in 'close'
    return true;
  };

  if (d.settings.tcpPort !== undefined) {
    if (tlsOptions) {
      const server = createTlsServer({ ...tlsOptions, handshakeTimeout: limits.handshakeTimeoutMs, minVersion: 'TLSv1.2' });
      server.on('connection', (raw: Socket) => void admit(raw));
      server.on('secureConnection', (socket) => serve(socket, socket.remoteAddress ?? ''));
      server.on('tlsClientError', (err, socket) => {
        refuse('tls', socket.remoteAddress, 'tls-failed', err.message);
        socket.destroy();
      });
      tcp = server;
    } else {
      tcp = createTcpServer((socket) => {
        if (admit(socket)) serve(socket, socket.remoteAddress ?? '');
      });
    }
    const server = tcp;
    server.on('error', (err) => log.error({ err }, 'syslog TCP server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(d.settings.tcpPort, d.settings.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch(async (err) => {
      udp?.close();
      throw err;
    });
    tcpAddress = server.address() as AddressInfo;
  }

  log.info({ host: d.settings.host, udp: udpAddress?.port, tcp: tcpAddress?.port, tls: !!tlsOptions, allow: d.settings.allow }, 'syslog listener up');

  return {
    udp: udpAddress,
    tcp: tcpAddress,
    tls: !!tlsOptions,
    metrics,
    async close() {
      if (closing) return;
      closing = true;
      udp?.close();
      const serverClosed = tcp ? new Promise<void>((resolve) => tcp!.close(() => resolve())) : Promise.resolve();
      for (const socket of sockets) socket.end();
      // Queued events get a grace period to reach the intake; then retries are cut short, and a call still
      // in flight after a second grace is left behind (it cannot be cancelled; close() must return).
      const settled = () => Promise.all([...lanes].map((l) => l.settled()));
      await Promise.race([settled(), sleep(limits.closeGraceMs, undefined, { ref: false })]);
      abort.abort();
      await Promise.race([settled(), sleep(limits.closeGraceMs, undefined, { ref: false })]);
      for (const lane of lanes) lane.discard();
      for (const socket of sockets) socket.destroy();
      await serverClosed;
      log.info('syslog listener stopped');
    },
  };
}
