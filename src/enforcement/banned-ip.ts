/**
 * banned-ip backend: the FortiOS banned (quarantine) list, `monitor/user/banned/add_users` with an expiry.
 * The firewall lifts each entry by itself a margin after its block ends — a safety net that holds even if
 * everything here is gone; the block still clears it on time (`clear_users`), and extends by re-adding.
 * The list has no owner field, so reconciliation removes an entry only when our own history shows a block
 * of that IP (see activities/reconcile.ts).
 */
import type { FortiOSClient } from '../fortios/client';
import type { AddressFamily } from '../fortios/subnet';
import { FortiOSError } from '../fortios/client';
import { canonicalIp } from '../policy/ip-policy';
import type { CommitResult, EnforcementBackend, Entry, Finding, OwnedEntry, SetInfo } from './port';
import type { Batching } from '../../workflows/batch-policy';
import { floodBatching } from './port';
import type { Observe } from './firewall-checks';
import { EXPIRY_REFRESH_SLACK_MS } from '../../workflows/block-rules';

export const BANNED_SET = 'banned';
/** The firewall's expiry runs this far past the block's: more than the blocks' refresh slack, so it never lifts early. */
export const BANNED_MARGIN_MS = 2 * EXPIRY_REFRESH_SLACK_MS;
/** Expiries are rounded up to this step, so a tick's adds share a few calls. */
const EXPIRY_STEP_S = 600;

export class BannedIpBackend implements EnforcementBackend {
  readonly kind = 'banned-ip' as const;
  readonly refreshOnExtend = true;
  /** One add_users takes any number of IPs (per expiry step): in a burst the API writes ahead a batch at a time. */
  readonly earlyInBurst = 'ahead' as const;
  /** One add_users per expiry step takes the whole tick: in a flood, up to 2 s for 250 per call (as the feed). */
  readonly batching: Batching = floodBatching(1000, 250);

  constructor(
    private readonly fw: FortiOSClient,
    _o: Record<string, never>,
    private readonly observe: Observe = (_op, fn) => fn(),
    private readonly now: () => number = Date.now,
  ) {}

  sets(): SetInfo[] {
    return [{ name: BANNED_SET, families: ['ipv4', 'ipv6'], capacity: Number.MAX_SAFE_INTEGER }];
  }

  setFor(_family: AddressFamily): string {
    return BANNED_SET;
  }

  async commit(_set: string, batch: { adds: Entry[]; removes: Entry[] }): Promise<CommitResult> {
    const result: CommitResult = { outcomes: {}, evicted: [], writes: 0, problems: [] };
    if (batch.removes.length) {
      await this.isolated(batch.removes, result, (ips) => this.observe('bannedClear', () => this.fw.bannedClear(ips)));
    }
    for (const [seconds, entries] of this.byExpiry(batch.adds)) {
      await this.isolated(entries, result, (ips) => this.observe('bannedAdd', () => this.fw.bannedAdd(ips, seconds)));
    }
    return result;
  }

  /**
   * The API's early adds (EnforcementBackend.addAhead): add_users leaves every other entry as it is, one call per
   * expiry step for any number of IPs. An add sets the entry's expiry, so an early add could shorten the ban of a
   * block that runs longer: the API writes one only for a block it has just started (its start was not refused as
   * running already), so no block of that IP runs on this target. Even orphaned, such an entry lifts itself.
   */
  async addAhead(_set: string, entries: Entry[]): Promise<void> {
    for (const [seconds, group] of this.byExpiry(entries)) await this.observe('bannedAdd', () => this.fw.bannedAdd(group.map((e) => e.ip), seconds));
  }

  /** Adds by the firewall expiry they get (the block's, plus the margin, rounded up to the step): a call each. */
  private byExpiry(adds: Entry[]): Map<number, Entry[]> {
    const byExpiry = new Map<number, Entry[]>();
    for (const e of adds) {
      const seconds = e.expiresAtMs ? Math.max(EXPIRY_STEP_S, Math.ceil((e.expiresAtMs + BANNED_MARGIN_MS - this.now()) / 1000 / EXPIRY_STEP_S) * EXPIRY_STEP_S) : 0;
      const group = byExpiry.get(seconds);
      if (group) group.push(e);
      else byExpiry.set(seconds, [e]);
    }
    return byExpiry;
  }

  /** One call for the entries; a refused call is split until the entries at fault are found. */
  private async isolated(entries: Entry[], result: CommitResult, call: (ips: string[]) => Promise<void>): Promise<void> {
    try {
      await call(entries.map((e) => e.ip));
      result.writes++;
      for (const e of entries) result.outcomes[e.ip] = { status: 'ok' };
    } catch (err) {
      if (!(err instanceof FortiOSError) || err.retryable) throw err;
      if (entries.length === 1) {
        result.outcomes[entries[0].ip] = { status: 'failed', reason: err.message };
        return;
      }
      const half = Math.ceil(entries.length / 2);
      await this.isolated(entries.slice(0, half), result, call);
      await this.isolated(entries.slice(half), result, call);
    }
  }

  async list(_set: string): Promise<OwnedEntry[]> {
    const now = this.now() / 1000;
    return (await this.observe('bannedList', () => this.fw.bannedList()))
      .filter((b) => b.expires === undefined || b.expires > now)
      .map((b) => ({ ip: canonicalIp(b.ip) ?? b.ip, family: (b.ip.includes(':') ? 'ipv6' : 'ipv4') as AddressFamily, enforced: true, proof: 'history' as const }));
  }

  async check(): Promise<Finding[]> {
    try {
      const list = await this.fw.bannedList();
      return [{ ok: true, what: `the banned-IP list answers (${list.length} entries)` }];
    } catch (err) {
      return [{ ok: false, what: `the banned-IP list does not answer: ${(err as Error).message}`, fix: 'the API user needs read-write access to the user/banned monitor (accprofile: sysgrp / utmgrp as your version requires)' }];
    }
  }
}
