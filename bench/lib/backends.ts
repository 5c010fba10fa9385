/**
 * The enforcement backends side by side (issue 11 part 5, issue 13 part 1): which backends the bench runs,
 * their targets, what the latency and burst scenarios found for each (filled in as they run), and the two
 * tables run.ts prints after the main one — one line per backend with pass/fail columns, and the critical
 * path hop by hop. Targets are reported, never asserted.
 */
import type { EnforcementKind } from '../../src/enforcement';
import { HOPS, hopCell, HopReport } from './hops';
import { r2, table } from './stats';

/** In run order. dry-run is the no-firewall reference. */
export const BACKENDS: EnforcementKind[] = ['address-group', 'threat-feed', 'banned-ip', 'dry-run'];

export interface BackendTargets {
  /** event → enforced p99 at 20/s, 50 ms writes. */
  p99Ms?: number;
  /** Firewall calls (reads + writes) per IP in the 5,000-IP burst. */
  callsPerIp?: number;
}

/**
 * From the issues: the feed ≤ 250 ms p99 and ≤ 0.01 calls/IP; groups ≤ 300 ms and ≤ 1.05. The banned list,
 * like the feed, takes a whole tick in one call, so it is held to the feed's targets. dry-run: none.
 */
export const TARGETS: Record<EnforcementKind, BackendTargets> = {
  'address-group': { p99Ms: 300, callsPerIp: 1.05 },
  'threat-feed': { p99Ms: 250, callsPerIp: 0.01 },
  'banned-ip': { p99Ms: 250, callsPerIp: 0.01 },
  'dry-run': {},
};
/** The product's burst time over the floor's, at most. */
export const BURST_VS_FLOOR = 1.15;

export interface LatencyResult {
  p50: number;
  p95: number;
  p99: number;
  n: number;
  notEnforced: number;
  callsPerIp: number;
  cpu?: { devServerS?: number; nodeS: number };
  hops?: HopReport;
}

export interface BurstResult {
  ips: number;
  /** Seconds from the first webhook request until every IP was enforced; undefined when not all were. */
  allEnforcedS?: number;
  enforced: number;
  callsPerIp: number;
  writesPerIp: number;
  lostBlocks?: number;
  lostUnblocks?: number;
  unblocked?: number;
  cpu: { devServerS?: number; nodeS: number };
  hops?: HopReport;
}

export const results = {
  latency: new Map<string, LatencyResult>(),
  burst: new Map<string, BurstResult>(),
  /** The seed's event → enforced p99 at 50 ms (the yardstick). */
  seedP99Ms: undefined as number | undefined,
  floorLatency: undefined as LatencyResult | undefined,
  floorBurst: undefined as BurstResult | undefined,
};

const pass = (ok: boolean | undefined) => (ok === undefined ? '-' : ok ? 'pass' : 'FAIL');

/** One line per backend (and the floor and the seed): the numbers and whether each target is met. */
export function sideBySideTable(): string | undefined {
  if (results.latency.size === 0 && results.burst.size === 0) return undefined;
  const floorS = results.floorBurst?.allEnforcedS;
  const rows: (string | number | undefined)[][] = [];
  for (const kind of BACKENDS) {
    const l = results.latency.get(kind);
    const b = results.burst.get(kind);
    if (!l && !b) continue;
    const t = TARGETS[kind];
    const ratio = b?.allEnforcedS !== undefined && floorS ? r2(b.allEnforcedS / floorS) : undefined;
    rows.push([
      kind,
      l ? `${l.p50} / ${l.p95} / ${l.p99}` : undefined,
      l && results.seedP99Ms ? r2(l.p99 / results.seedP99Ms) : undefined,
      t.p99Ms ? `≤ ${t.p99Ms}` : undefined,
      pass(l && t.p99Ms ? l.p99 <= t.p99Ms : undefined),
      b ? (b.allEnforcedS ?? `>${b.enforced} done`) : undefined,
      ratio,
      pass(ratio !== undefined && kind !== 'dry-run' ? ratio <= BURST_VS_FLOOR : undefined),
      b ? (kind === 'dry-run' ? 'n/a' : b.callsPerIp) : undefined,
      t.callsPerIp ? `≤ ${t.callsPerIp}` : undefined,
      pass(b && t.callsPerIp ? b.callsPerIp <= t.callsPerIp : undefined),
      b && b.lostBlocks !== undefined ? `${b.lostBlocks} / ${b.lostUnblocks}` : undefined,
      pass(b && b.lostBlocks !== undefined ? b.lostBlocks === 0 && b.lostUnblocks === 0 : undefined),
      b ? `${b.cpu.devServerS ?? '?'} / ${b.cpu.nodeS}` : undefined,
    ]);
  }
  if (results.floorLatency || results.floorBurst) {
    const l = results.floorLatency;
    const b = results.floorBurst;
    rows.push(['floor', l ? `${l.p50} / ${l.p95} / ${l.p99}` : undefined, l && results.seedP99Ms ? r2(l.p99 / results.seedP99Ms) : undefined, undefined, undefined, b?.allEnforcedS, 1, undefined, b?.callsPerIp, undefined, undefined, undefined, undefined, b ? `${b.cpu.devServerS ?? '?'} / ${b.cpu.nodeS}` : undefined]);
  }
  if (results.seedP99Ms !== undefined) rows.push(['seed (baseline)', `p99 ${results.seedP99Ms}`, 1]);
  return table(
    ['backend', 'lat p50/p95/p99 ms', '÷seed p99', 'p99 target', 'p99', 'burst 5k s', '÷floor', `≤${BURST_VS_FLOOR}×`, 'calls/IP', 'calls target', 'calls', 'lost blk/unblk', 'lost', 'burst CPU s dev srv / node'],
    rows,
    1,
  );
}

/** The critical path hop by hop (p50 / p95 ms), per backend, for the latency run and the burst. */
export function hopsTable(): string | undefined {
  const cols: { name: string; r: HopReport; cpu?: { devServerS?: number; nodeS: number } }[] = [];
  for (const kind of BACKENDS) {
    const l = results.latency.get(kind);
    if (l?.hops) cols.push({ name: `${kind} 20/s`, r: l.hops, cpu: l.cpu });
  }
  for (const kind of BACKENDS) {
    const b = results.burst.get(kind);
    if (b?.hops) cols.push({ name: `${kind} burst`, r: b.hops, cpu: b.cpu });
  }
  if (!cols.length) return undefined;
  const rows: (string | number | undefined)[][] = HOPS.map((h) => [h, ...cols.map((c) => hopCell(c.r.hops[h]))]);
  rows.push(['= event→enforced', ...cols.map((c) => hopCell(c.r.eventToEnforced))]);
  rows.push(['= event→active', ...cols.map((c) => hopCell(c.r.eventToActive))]);
  rows.push(['enforcer task (started→completed)', ...cols.map((c) => hopCell(c.r.enforcerTaskMs))]);
  rows.push(['ticks (IPs/tick p50)', ...cols.map((c) => `${c.r.ticks.n} (${c.r.ticks.ipsPerTick.p50})`)]);
  rows.push(['sample (complete)', ...cols.map((c) => `${c.r.sampled} (${c.r.complete})`)]);
  rows.push(['early add first (path: api → early add → queue)', ...cols.map((c) => `${c.r.earlyFirst ?? 0} of ${c.r.sampled}`)]);
  rows.push(['  of them written by the API (→ ahead write)', ...cols.map((c) => `${c.r.aheadFirst ?? 0} of ${c.r.sampled}`)]);
  rows.push(['CPU s: dev server / node', ...cols.map((c) => (c.cpu ? `${c.cpu.devServerS ?? '?'} / ${c.cpu.nodeS}` : '-'))]);
  return table(['hop (p50 / p95 ms)', ...cols.map((c) => c.name)], rows, 1);
}
