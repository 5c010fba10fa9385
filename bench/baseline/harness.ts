/**
 * BASELINE side of a scenario: a fresh emulator (same settings as OURS gets: HTTPS with the bench's private
 * CA, which the seed's client trusts) and the seed's scripts.
 */
import { FortiOSClient } from '../../src/fortios/client';
import { startEmulator, type RunningEmulator } from '../../src/fortios/emulator/server';
import { EnforcementTracker, GroupTracker } from '../lib/tracker';
import { benchTls } from '../lib/tls';
import { SeedMitigation } from './seed';

export const SEED_GROUP = 'ads-blocked';

export interface BaselineOptions {
  writeLatencyMs: number;
  /** The emulator's member limit (the seed has no capacity handling of its own). */
  capacity?: number;
  ttlMs: number;
  /** The timeout script's period; 1 h (the seed's cron) keeps it out of a scenario's measured window. */
  sweepPeriodMs: number;
  /** Script runs that can be in flight at once (HTTP connections to the firewall). */
  connections?: number;
}

export interface Baseline {
  seed: SeedMitigation;
  emulator: RunningEmulator;
  tracker: GroupTracker;
  /** The same IPs, enforced on the firewall (backend-neutral view, as for OURS). */
  enforced: EnforcementTracker;
  errors: Map<string, number>;
  stop(): Promise<void>;
}

export async function startBaseline(o: BaselineOptions): Promise<Baseline> {
  const tls = benchTls();
  const emulator = await startEmulator({
    tls: { cert: tls.cert, key: tls.key },
    port: 0,
    groupMemberLimit: o.capacity ?? 600,
    groups: { ipv4: [SEED_GROUP], ipv6: ['ads-blocked6'] },
    faults: { latencyMs: { POST: o.writeLatencyMs, PUT: o.writeLatencyMs, DELETE: o.writeLatencyMs } },
  });
  const tracker = new GroupTracker(emulator, SEED_GROUP);
  const enforced = new EnforcementTracker(emulator, { groups: [SEED_GROUP] });
  // Each seed run is its own process with its own connection: allow as many as there are runs in flight.
  const firewall = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token, connections: o.connections ?? 64, caFile: tls.caFile });
  const errors = new Map<string, number>();
  const seed = await SeedMitigation.open({
    firewall,
    group: SEED_GROUP,
    ttlMs: o.ttlMs,
    sweepPeriodMs: o.sweepPeriodMs,
    onError: (what, err) => {
      const key = `${what}: ${((err as { fortiError?: number }).fortiError ?? (err as Error).message ?? '').toString().slice(0, 60)}`;
      errors.set(key, (errors.get(key) ?? 0) + 1);
    },
  });
  seed.startSweeps();
  return {
    seed,
    emulator,
    tracker,
    enforced,
    errors,
    async stop() {
      seed.close();
      await firewall.close();
      await emulator.close();
    },
  };
}

/** Firewall writes (POST/PUT/DELETE of any table) the emulator received. */
export function emulatorWrites(e: RunningEmulator): number {
  return e.state.requests('writes');
}
export function emulatorReads(e: RunningEmulator): number {
  return e.state.requests('reads');
}
