/**
 * Where the Temporal server spends its time over a phase, from its own Prometheus /metrics (the production
 * topology's server exposes them; the dev server does not here): every latency histogram's sum and count read
 * before and after, and the series that took the most time in between, with their mean. The hop breakdown
 * (hops.ts) shows which of our hops waits; this shows which of the server's operations it waits on.
 */
import { request } from 'undici';

/** One scrape: series (name with its labels, as printed) → value. */
export type Scrape = Map<string, number>;

export async function scrape(url: string): Promise<Scrape> {
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  const out: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    const value = Number(line.slice(cut + 1));
    if (Number.isFinite(value)) out.set(line.slice(0, cut), value);
  }
  return out;
}

export interface ServerTime {
  /** The histogram and the labels that tell operations apart (operation, task type, namespace-free). */
  series: string;
  /** Seconds spent in it over the phase (the histograms are in seconds). */
  totalS: number;
  count: number;
  meanMs: number;
}

/** Labels that only repeat what the series already says, or say which process: left out of the name. */
const NOISE = /^(namespace|service_name|exported_job|instance|job|taskqueue|task_queue|otel_scope_name|otel_scope_version|namespace_state)$/;

/** The `top` latency histogram series by time spent between two scrapes (series summed over the labels in NOISE). */
export function serverTime(before: Scrape, after: Scrape, top = 25): ServerTime[] {
  const sums = new Map<string, { s: number; n: number }>();
  for (const [key, v] of after) {
    const m = /^([a-z_:][\w:]*)_sum(?:\{(.*)\})?$/.exec(key);
    // Latencies only (sizes in bytes are histograms too), without long polls (idle waits, not work) and without
    // the series that repeat another (`_nouserlatency`, `_attempt`).
    if (!m || !m[1]!.includes('latency') || /poll|long_request/i.test(key) || /_(nouserlatency|attempt)$/.test(m[1]!)) continue;
    const countKey = `${m[1]}_count${m[2] !== undefined ? `{${m[2]}}` : ''}`;
    const ds = v - (before.get(key) ?? 0);
    const dn = (after.get(countKey) ?? 0) - (before.get(countKey) ?? 0);
    if (ds <= 0 || dn <= 0) continue;
    const labels = (m[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter((l) => l && !NOISE.test(l.split('=')[0]!))
      .join(',');
    const name = labels ? `${m[1]}{${labels}}` : m[1]!;
    const acc = sums.get(name) ?? { s: 0, n: 0 };
    acc.s += ds;
    acc.n += dn;
    sums.set(name, acc);
  }
  return [...sums]
    .map(([series, { s, n }]) => ({ series, totalS: Math.round(s * 1000) / 1000, count: n, meanMs: Math.round((s / n) * 10_000) / 10 }))
    .sort((a, b) => b.totalS - a.totalS)
    .slice(0, top);
}
