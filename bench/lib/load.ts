/** Load generation: attacker IPs, ADS stdin lines and the webhook sender (what the forwarder posts). */
import { Pool } from 'undici';
import { now } from './stats';

/**
 * `count` distinct public IPv4 addresses in 45.<block>.x.y (no reserved, private or documentation range,
 * so the product's safety policy lets them through). `block` keeps scenarios apart.
 */
export function attackerIps(count: number, block: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const hi = Math.floor(i / 254);
    const lo = (i % 254) + 1;
    if (hi > 255) throw new Error('attackerIps: at most 65k addresses per block');
    out.push(`45.${block}.${hi}.${lo}`);
  }
  return out;
}

/** `n` distinct public IPv4 addresses spread over blocks 100.. of attackerIps (65k per block): `scale`, `repair`. */
export function manyIps(n: number): string[] {
  const out: string[] = [];
  for (let block = 100; out.length < n; block++) out.push(...attackerIps(Math.min(65_000, n - out.length), block));
  return out;
}

let nextEventId = 4_000_000;
/** A fresh ADS event id (digits, as ADS numbers them). */
export const eventId = (): string => String(nextEventId++);

/** A standard (15-field) ADS stdin line for an SSH dictionary attack from `ip` (High priority: it blocks). */
export function adsLine(id: string, ip: string): string {
  return [
    id,
    '2025-11-03 15:15:02',
    '2025-11-03 15:10:43',
    'SSHDICT',
    'SSH attack',
    'Security Issues',
    'High',
    'Attack from a single attacker has been detected. attempts: 8',
    '22',
    'TCP',
    ip,
    ' ',
    '198.51.100.10',
    'WAN',
    ' ',
  ].join('\t');
}

export interface WebhookReplyBody {
  received: number;
  summary: Record<string, number>;
  events: { eventId: string; outcome: string; ips?: { ip: string; outcome: string; targets?: { expiresAt: string }[] }[] }[];
}

export interface Sent {
  status: number;
  startedAt: number;
  ms: number;
  body?: WebhookReplyBody;
  error?: string;
}

/** POSTs ADS lines to the webhook over a keep-alive pool, as the forwarder does (text/plain, Bearer secret). */
export class Webhook {
  private readonly pool: Pool;

  constructor(
    private readonly apiUrl: string,
    private readonly secret: string,
    connections = 64,
  ) {
    this.pool = new Pool(apiUrl, { connections, headersTimeout: 120_000, bodyTimeout: 120_000 });
  }

  async post(lines: string[]): Promise<Sent> {
    const startedAt = now();
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: '/v1/events',
        headers: { authorization: `Bearer ${this.secret}`, 'content-type': 'text/plain' },
        body: lines.join('\n') + '\n',
      });
      const text = await res.body.text();
      const ms = now() - startedAt;
      let body: WebhookReplyBody | undefined;
      try {
        body = JSON.parse(text) as WebhookReplyBody;
      } catch {
        // not JSON: the status says enough
      }
      return { status: res.statusCode, startedAt, ms, body, error: res.statusCode === 200 ? undefined : text.slice(0, 300) };
    } catch (err) {
      return { status: 0, startedAt, ms: now() - startedAt, error: (err as Error).message };
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * Open loop: calls `fire(i)` at `ratePerS` for `count` items without waiting for earlier ones (like ADS
 * spawning one script per event), then waits for all of them, at most `maxWaitMs` after the last start.
 */
export async function openLoop<T>(count: number, ratePerS: number, fire: (i: number) => Promise<T>, maxWaitMs = 120_000): Promise<(T | undefined)[]> {
  const results: (T | undefined)[] = new Array(count);
  const pending: Promise<void>[] = [];
  const t0 = now();
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / ratePerS;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(fire(i).then((v) => void (results[i] = v), () => undefined));
  }
  await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, maxWaitMs))]);
  return results;
}

/** Closed loop: `concurrency` lanes run `fire` back to back for `durationMs` (and at most `maxItems` in all). */
export async function closedLoop<T>(concurrency: number, durationMs: number, maxItems: number, fire: (i: number) => Promise<T>): Promise<{ results: T[]; elapsedMs: number }> {
  const results: T[] = [];
  const t0 = now();
  const deadline = t0 + durationMs;
  let next = 0;
  const lane = async () => {
    while (now() < deadline && next < maxItems) results.push(await fire(next++));
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { results, elapsedMs: now() - t0 };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function inPool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
