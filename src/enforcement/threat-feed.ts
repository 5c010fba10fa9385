/**
 * threat-feed backend: an external resource of type address with update method push (FortiOS 7.2.1+),
 * written with `monitor/system/external-resource/dynamic` — no address objects, one call per tick for
 * thousands of IPs, IPv4 and IPv6 in one feed. The feed is dedicated to us (its name is configured), so
 * every entry in it is ours. Large repairs go out as one `snapshot` of what the feed must hold. FortiOS
 * cuts entries over its limit silently (the most recent ones), so we never go over it: adds beyond the
 * configured capacity fail with that reason. A feed the firewall pulls (update-method feed, or a FortiOS
 * without push) is never written: the API serves the running blocks for it (GET /v1/feeds/{target}), commits
 * only acknowledge, and the firewall enforces at its next download (the feed's refresh-rate).
 */
import { FortiOSClient, FortiOSError } from '../fortios/client';
import type { AddressFamily } from '../fortios/subnet';
import type { CommitResult, EnforcementBackend, Entry, Finding, OwnedEntry, SetInfo } from './port';
import type { Batching } from '../../workflows/batch-policy';
import { floodBatching } from './port';
import type { Observe } from './firewall-checks';
import { canonicalIp } from '../policy/ip-policy';
import { feedFindings } from './firewall-checks';

/**
 * From this many changes in one commit — and only when they rewrite at least half of what the feed holds
 * (a repair of a wiped or junk-filled feed) — one snapshot of what the feed must hold replaces the add/remove
 * commands. A snapshot reads the whole feed and sends it back, so at 100,000 entries a repair of ticks of
 * 1,000 through snapshots would move the whole feed a hundred times (quadratic); add/remove commands move only
 * the tick. It must stay at or below the enforcer's tick size (1,000 changes), or no commit ever reaches it.
 */
export const SNAPSHOT_FROM = 500;

export interface ThreatFeedOptions {
  feed: string;
  /** Entries the feed may hold (128K per feed before FortiOS 7.4.4; 300,000 across feeds after). */
  maxEntries: number;
}

export class ThreatFeedBackend implements EnforcementBackend {
  readonly kind = 'threat-feed' as const;
  readonly refreshOnExtend = false;
  /** One add command takes any number of entries: in a burst the API writes ahead a batch at a time. */
  readonly earlyInBurst = 'ahead' as const;
  /**
   * One push takes the whole tick: in a flood, up to 2 s for 250 per push, as long as changes keep coming (the
   * enforcer ends the wait at a pause). It was 5 s: the blocks waiting for that commit held their workflow tasks
   * for it, and in a 5,000-IP burst hundreds of tasks passed the 10 s task timeout (calls per IP 0.01 either way).
   */
  readonly batching: Batching = floodBatching(1000, 250);
  /** Entries in the feed as last counted (re-read when a commit could reach the limit). */
  private known?: number;
  /** Whether the firewall pulls the feed itself (not a push feed): read once, again at every resync. */
  private pulled?: boolean;

  constructor(
    private readonly fw: FortiOSClient,
    private readonly o: ThreatFeedOptions,
    private readonly observe: Observe = (_op, fn) => fn(),
  ) {}

  sets(): SetInfo[] {
    return [{ name: this.o.feed, families: ['ipv4', 'ipv6'], capacity: this.o.maxEntries }];
  }

  setFor(_family: AddressFamily): string {
    return this.o.feed;
  }

  async commit(_set: string, batch: { adds: Entry[]; removes: Entry[]; resync: boolean }): Promise<CommitResult> {
    const result: CommitResult = { outcomes: {}, evicted: [], writes: 0, problems: [] };
    if (await this.isPulled(batch.resync)) {
      // The firewall downloads the list of running blocks from the API: nothing to write.
      for (const e of [...batch.adds, ...batch.removes]) result.outcomes[e.ip] = { status: 'ok', reason: 'pulled by the firewall at its next refresh' };
      return result;
    }
    let adds = batch.adds;
    const removes = batch.removes;
    // Stay under the platform's limit: FortiOS would silently drop the newest entries beyond it.
    if (this.known === undefined || this.known + adds.length > this.o.maxEntries * 0.9) {
      const c = await this.observe('feedCounts', () => this.fw.feedCounts(this.o.feed));
      this.known = c.validCount + c.invalidCount;
    }
    const known = this.known;
    const room = this.o.maxEntries - (known - removes.length);
    if (adds.length > room) {
      for (const e of adds.slice(Math.max(0, room))) result.outcomes[e.ip] = { status: 'failed', reason: `threat feed "${this.o.feed}" is full (${this.o.maxEntries} entries, FORTIGATE_FEED_CAPACITY)` };
      adds = adds.slice(0, Math.max(0, room));
    }
    const changes = adds.length + removes.length;
    if (changes > 0) {
      if (changes >= SNAPSHOT_FROM && changes * 2 >= known) await this.snapshot(adds, removes, result);
      else await this.push(adds, removes, result);
    }
    for (const e of [...adds, ...removes]) result.outcomes[e.ip] ??= { status: 'ok' };
    this.known = Math.max(0, known + adds.filter((e) => result.outcomes[e.ip]?.status === 'ok').length - removes.length);
    return result;
  }

  /**
   * The API's early adds, pushed beside the enforcer: an add command leaves every other entry as it is. No
   * capacity check: over FortiOS's limit the most recently added entries are cut, i.e. these, and the block's
   * own add (which the enforcer checks) reports the feed full. A feed the firewall pulls takes nothing.
   */
  async addAhead(_set: string, entries: Entry[]): Promise<void> {
    if (entries.length === 0 || (await this.isPulled(false))) return;
    await this.observe('pushFeed', () => this.fw.pushFeedCommands([{ name: this.o.feed, command: 'add', entries: entries.map((e) => e.ip) }]));
  }

  private async isPulled(reread: boolean): Promise<boolean> {
    if (this.pulled === undefined || reread) {
      const r = await this.observe('externalResource', () => this.fw.externalResource(this.o.feed));
      // A missing feed makes the set unavailable: the enforcer backs off and the start-up findings say what to create.
      if (!r) throw new Error(`threat feed "${this.o.feed}" does not exist: create it (README, "Enforcement backends")`);
      this.pulled = r.updateMethod !== 'push';
    }
    return this.pulled;
  }

  /** add and remove commands in one request; a refused request is narrowed down to the entries at fault. */
  private async push(adds: Entry[], removes: Entry[], result: CommitResult): Promise<void> {
    const commands = [
      ...(removes.length ? [{ name: this.o.feed, command: 'remove' as const, entries: removes.map((e) => e.ip) }] : []),
      ...(adds.length ? [{ name: this.o.feed, command: 'add' as const, entries: adds.map((e) => e.ip) }] : []),
    ];
    try {
      await this.observe('pushFeed', () => this.fw.pushFeedCommands(commands));
      result.writes++;
    } catch (err) {
      if (!(err instanceof FortiOSError) || err.retryable) throw err;
      if (adds.length + removes.length === 1) {
        result.outcomes[(adds[0] ?? removes[0]).ip] = { status: 'failed', reason: err.message };
        return;
      }
      const all = [...adds.map((e) => ({ e, add: true })), ...removes.map((e) => ({ e, add: false }))];
      const half = Math.ceil(all.length / 2);
      for (const part of [all.slice(0, half), all.slice(half)]) {
        await this.push(part.filter((x) => x.add).map((x) => x.e), part.filter((x) => !x.add).map((x) => x.e), result);
      }
    }
  }

  /** One snapshot of what the feed must hold: cheaper than thousands of add/remove entries (repairs, bursts). */
  private async snapshot(adds: Entry[], removes: Entry[], result: CommitResult): Promise<void> {
    // Entries the device could not parse are not carried over: the client refuses a snapshot holding one.
    const current = (await this.observe('feedEntries', () => this.fw.feedEntries(this.o.feed))).entries.filter((e) => e.valid).map((e) => e.entry);
    const drop = new Set(removes.map((e) => e.ip));
    const next = new Set(current.filter((ip) => !drop.has(canonicalIp(ip) ?? ip)));
    for (const e of adds) next.add(e.ip);
    const { requests } = await this.observe('pushFeedSnapshot', () => this.fw.pushFeed(this.o.feed, 'snapshot', [...next]));
    result.writes += requests;
  }

  async list(_set: string): Promise<OwnedEntry[]> {
    const { entries } = await this.observe('feedEntries', () => this.fw.feedEntries(this.o.feed));
    this.known = entries.length;
    return entries
      .filter((e) => e.valid)
      .map((e) => {
        const ip = canonicalIp(e.entry) ?? e.entry;
        // An entry cut by the device's limit is listed but holds nothing.
        return { ip, family: (ip.includes(':') ? 'ipv6' : 'ipv4') as AddressFamily, enforced: !e.overflow, proof: 'dedicated' as const };
      });
  }

  async check(): Promise<Finding[]> {
    return feedFindings(this.fw, this.o.feed);
  }
}
