/**
 * The two sinks of a notification: a signed JSON webhook (the same HMAC scheme as our inbound webhook,
 * over "<timestamp>.<body>") and RFC 5424 syslog over UDP or TCP (RFC 6587 octet counting). Each call
 * either delivers or throws an Error whose message names the sink and the cause, never a secret or the
 * webhook's URL path (chat webhooks carry their token there).
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import os from 'node:os';
import { hmacSha256 } from '../api/auth';
import type { NotifyEvent, NotifyKind, NotifySyslogSink, NotifyWebhookSink } from './events';

export const SEND_TIMEOUT_MS = 10_000;

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: what a receiver recomputes to verify. */
export function notificationSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${hmacSha256(secret, `${timestamp}.${body}`).toString('hex')}`;
}

export async function sendWebhook(sink: NotifyWebhookSink, event: NotifyEvent, fetchImpl: typeof fetch = fetch): Promise<void> {
  const body = JSON.stringify(event);
  const timestamp = String(Math.floor(Date.now() / 1000));
  let res: Response;
  try {
    res = await fetchImpl(sink.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'ads-mitigator',
        'x-ads-timestamp': timestamp,
        'x-ads-signature': notificationSignature(sink.secret, timestamp, body),
        'x-ads-event-id': event.id,
        'x-ads-event-kind': event.kind,
      },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`webhook ${new URL(sink.url).host}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  await res.arrayBuffer().catch(() => undefined); // free the connection
  if (!res.ok) throw new Error(`webhook ${new URL(sink.url).host}: HTTP ${res.status}`);
}

// ------------------------------------------------------------------------------------------- syslog

/** local0: the facility sites reserve for their own applications. */
const FACILITY_LOCAL0 = 16;
const SEVERITY: Record<NotifyKind, number> = {
  block: 5, // notice
  extend: 6, // informational
  unblock: 5,
  expiry: 6,
  eviction: 4, // warning: a block ended before its time because the group was full
  rejected: 4,
  'firewall-failing': 3, // error
  'firewall-recovered': 5,
};
/** Private enterprise number reserved for documentation (RFC 5612): our structured-data id. */
const SD_ID = 'ads@32473';
/** Receivers must take 480 octets and should take 2048 (RFC 5424 §6.1). */
const MAX_MESSAGE = 2048;

export function formatSyslog(event: NotifyEvent, hostname = os.hostname()): string {
  const pri = FACILITY_LOCAL0 * 8 + SEVERITY[event.kind];
  const params: [string, string | undefined][] = [
    ['id', event.id],
    ['kind', event.kind],
    ['ip', event.ip],
    ['target', event.target],
    ['state', event.state],
    ['expiresAt', event.expiresAt],
    ['actor', event.actor],
  ];
  const sd = `[${SD_ID}${params
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => ` ${k}="${sdEscape(String(v))}"`)
    .join('')}]`;
  const header = `<${pri}>1 ${event.at} ${token(hostname, 255)} ads-mitigator ${process.pid} ${token(event.kind, 32)} ${sd} `;
  const room = MAX_MESSAGE - Buffer.byteLength(header);
  return header + truncateBytes(event.summary, room);
}

export async function sendSyslog(sink: NotifySyslogSink, event: NotifyEvent): Promise<void> {
  const message = formatSyslog(event);
  const where = `syslog ${sink.protocol}://${sink.host}:${sink.port}`;
  try {
    await (sink.protocol === 'udp' ? sendUdp(sink, message) : sendTcp(sink, message));
  } catch (err) {
    throw new Error(`${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function sendUdp(sink: NotifySyslogSink, message: string): Promise<void> {
  const socket = createSocket(sink.host.includes(':') ? 'udp6' : 'udp4');
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.send(Buffer.from(message), sink.port, sink.host, (err) => (err ? reject(err) : resolve()));
  }).finally(() => socket.close());
}

/** One connection per message, octet-counted frame (RFC 6587 §3.4.1); done when the receiver has it all. */
function sendTcp(sink: NotifySyslogSink, message: string): Promise<void> {
  const frame = `${Buffer.byteLength(message)} ${message}`;
  return new Promise<void>((resolve, reject) => {
    const socket = connect({ host: sink.host, port: sink.port, timeout: SEND_TIMEOUT_MS });
    socket.once('timeout', () => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    socket.once('error', reject);
    socket.once('connect', () => socket.end(frame));
    socket.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}

/** PARAM-VALUE escapes (RFC 5424 §6.3.3): `"`, `\` and `]`. */
function sdEscape(v: string): string {
  return v.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** A header field: printable US-ASCII without spaces, at most `max` characters, "-" when empty. */
function token(v: string, max: number): string {
  const t = v.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return t === '' ? '-' : t;
}

function truncateBytes(text: string, maxBytes: number): string {
  const buf = Buffer.from(text);
  if (buf.length <= maxBytes) return text;
  return buf.subarray(0, Math.max(0, maxBytes)).toString('utf8').replace(/\uFFFD$/, '');
}
