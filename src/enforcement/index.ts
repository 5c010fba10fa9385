/**
 * The one factory of enforcement backends (like cs-firewall-bouncer's pkg/backend): configuration in,
 * a backend per target out. Also the pure answers the API needs without a firewall client: which set a
 * block of a family belongs to, and how many entries a target can hold. Nothing outside this folder names
 * a backend.
 */
import type { TargetConfig } from '../config';
import type { FortiOSClient } from '../fortios/client';
import type { AddressFamily } from '../fortios/subnet';
import type { EnforcementRef } from '../../workflows/messages';
import { AddressGroupBackend } from './address-group';
import { BannedIpBackend, BANNED_SET } from './banned-ip';
import { DryRunBackend, DRY_RUN_SET } from './dry-run';
import type { Observe } from './firewall-checks';
import type { EnforcementBackend, Finding } from './port';
import { ThreatFeedBackend } from './threat-feed';

export type { EnforcementBackend, EnforcementKind, Entry, CommitResult, OwnedEntry, Finding } from './port';
export { ENFORCEMENT_KINDS } from './port';

export interface BackendDeps {
  fw: FortiOSClient;
  observe?: Observe;
  log?: (msg: string, data: Record<string, unknown>) => void;
}

export function createBackend(t: TargetConfig, d: BackendDeps): EnforcementBackend {
  switch (t.enforcement) {
    case 'address-group':
      return new AddressGroupBackend(d.fw, { groups: t.groups, capacity: t.capacity }, d.observe);
    case 'threat-feed':
      return new ThreatFeedBackend(d.fw, { feed: t.feed!, maxEntries: t.feedCapacity }, d.observe);
    case 'banned-ip':
      return new BannedIpBackend(d.fw, {}, d.observe);
    case 'dry-run':
      return new DryRunBackend(d.log);
  }
}

/** The set a block of this family belongs to, and whether it refreshes its expiry there (no firewall needed). */
export function enforcementRefFor(t: TargetConfig, family: AddressFamily): EnforcementRef {
  switch (t.enforcement) {
    case 'address-group':
      return { set: t.groups[family][0], refreshOnExtend: true };
    case 'threat-feed':
      return { set: t.feed!, refreshOnExtend: false };
    case 'banned-ip':
      return { set: BANNED_SET, refreshOnExtend: true };
    case 'dry-run':
      return { set: DRY_RUN_SET, refreshOnExtend: false };
  }
}

/**
 * Whether the API may hand a new block's add to the enforcer ahead of the block (workflows/early-adds.ts):
 * where a commit is a command that adding an entry the set already holds leaves as it was — a pushed feed (and
 * the dry run). Not the banned list: its add sets the entry's expiry, and an early add (the event's TTL) could
 * shorten the ban of a block that runs longer. Not address groups: each add is an object plus a read-modify-
 * write of the group, and measured side by side (bench, 20/s) the early adds and the blocks' own adds that
 * follow them made the group's ticks bigger and slower (p99 854–1,648 ms against 742–756 ms without).
 */
// Where the backend implements `addAhead` (the feed; address groups, which take early adds only that way), the API
// writes them itself (src/blocks/ahead-writer.ts; AheadWriter.takes).
export function takesEarlyAdds(t: TargetConfig): boolean {
  return t.enforcement === 'threat-feed' || t.enforcement === 'dry-run';
}

/** Every set of a target (one enforcer each). */
export function setsOf(t: TargetConfig): string[] {
  return [...new Set((['ipv4', 'ipv6'] as const).map((f) => enforcementRefFor(t, f).set))];
}

/** Entries one event may put on this target before MAX_TARGETS_PER_EVENT matters (a group holds ~600; a feed 128K). */
export function capacityOf(t: TargetConfig): number {
  switch (t.enforcement) {
    case 'address-group':
      return t.groups.ipv4.length * t.capacity;
    case 'threat-feed':
      return t.feedCapacity;
    default:
      return Number.MAX_SAFE_INTEGER;
  }
}

/** Whether the API serves this target's list for the firewall to pull (GET /v1/feeds/{target}). */
export function servesPullFeed(t: TargetConfig): boolean {
  return t.enforcement === 'threat-feed';
}

/**
 * Start-up findings of every target's backend, for the log: what exists, and for what is missing the FortiOS
 * CLI that fixes it. Never throws: a firewall that does not answer is itself a finding.
 */
export async function startupFindings(targets: TargetConfig[], firewalls: Map<string, FortiOSClient>): Promise<{ target: string; findings: Finding[] }[]> {
  return Promise.all(
    targets.map(async (t) => {
      const fw = firewalls.get(t.name);
      if (!fw) return { target: t.name, findings: [{ ok: false, what: 'no firewall client for this target' }] };
      try {
        return { target: t.name, findings: await createBackend(t, { fw }).check() };
      } catch (err) {
        return { target: t.name, findings: [{ ok: false, what: `the start-up check could not run: ${err instanceof Error ? err.message : String(err)}` }] };
      }
    }),
  );
}
