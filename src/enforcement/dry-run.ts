/**
 * dry-run backend: the reference implementation of the port (like fail2ban's dummy action). It logs what it
 * would do and keeps the set in memory, so a rollout can watch decisions without touching a firewall, and
 * workflow tests run without one. One set per target holds both families.
 */
import type { AddressFamily } from '../fortios/subnet';
import type { CommitResult, EnforcementBackend, Entry, Finding, OwnedEntry, SetInfo } from './port';
import type { Batching } from '../../workflows/batch-policy';

export const DRY_RUN_SET = 'dry-run';

export class DryRunBackend implements EnforcementBackend {
  readonly kind = 'dry-run' as const;
  readonly refreshOnExtend = false;
  /** No firewall to spare: ticks as they come (dry-run measures what the workflows cost alone). */
  readonly batching: Batching = { maxPerTick: 1000 };
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly log: (msg: string, data: Record<string, unknown>) => void = () => undefined) {}

  sets(): SetInfo[] {
    return [{ name: DRY_RUN_SET, families: ['ipv4', 'ipv6'], capacity: Number.MAX_SAFE_INTEGER }];
  }

  setFor(_family: AddressFamily): string {
    return DRY_RUN_SET;
  }

  async commit(set: string, batch: { adds: Entry[]; removes: Entry[] }): Promise<CommitResult> {
    const result: CommitResult = { outcomes: {}, evicted: [], writes: 0, problems: [] };
    for (const e of batch.removes) {
      this.entries.delete(e.ip);
      result.outcomes[e.ip] = { status: 'ok' };
    }
    for (const e of batch.adds) {
      this.entries.set(e.ip, e);
      result.outcomes[e.ip] = { status: 'ok' };
    }
    if (batch.adds.length || batch.removes.length) {
      result.writes = 1;
      this.log('dry run: would commit', { set, add: batch.adds.map((e) => e.ip), remove: batch.removes.map((e) => e.ip) });
    }
    return result;
  }

  async list(_set: string): Promise<OwnedEntry[]> {
    return [...this.entries.values()].map((e) => ({ ip: e.ip, family: e.family, enforced: true, proof: 'dedicated' as const }));
  }

  async check(): Promise<Finding[]> {
    return [{ ok: true, what: 'dry run: nothing is sent to the firewall' }];
  }

  /** For tests and the emulator-less rollout view. */
  has(ip: string): boolean {
    return this.entries.has(ip);
  }
}
