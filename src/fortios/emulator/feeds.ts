/**
 * Threat feeds of the emulated device: the `system/external-resource` table and, per feed, its IP entries
 * with the entry limits of FortiOS (reference §7.2). Entries keep the order they were added in (a global
 * sequence); entries over the limit stay listed but are not "buildable", i.e. not enforced:
 * - before 7.4.4, per feed: entries after the first `feedEntryLimit` (128K) of a feed are cut, as a file
 *   truncated at 128K lines (Fortinet KB 378964);
 * - from 7.4.4, globally (model class): over `feedGlobalLimit` (300,000) IP entries across all enabled
 *   address feeds, the most recently added are cut (7.4.4 new-features 677896; log id 22224).
 *   Emulator choice: "most recently added" is the global addition order, not the order of the feed table.
 * This module enforces no REST rules: cmdb.ts and monitor.ts validate, then call these mutators.
 */
import { FeedEntryRange } from '../feed-entry';

export type FeedType = 'category' | 'address' | 'domain' | 'malware' | 'mac-address';
export type UpdateMethod = 'feed' | 'push';

export interface ExternalResource {
  name: string;
  uuid: string;
  status: 'enable' | 'disable';
  type: FeedType;
  updateMethod: UpdateMethod;
  /** URI of a pull feed; may be empty for push feeds. */
  resource: string;
  /** Minutes, 1–43200. */
  refreshRate: number;
  username: string;
  /** HTTP basic auth password; never rendered over the API nor on the admin routes. */
  password: string;
  comments: string;
  userAgent: string;
  serverIdentityCheck: 'none' | 'basic' | 'full';
  category: number;
}

export interface StoredEntry {
  /** As pushed or as the line of the file (FortiOS lists entries as given). */
  text: string;
  range: FeedEntryRange;
  /** Global addition order. */
  seq: number;
  /** Cut by the entry limit (recomputed lazily). */
  overflow: boolean;
}

/** Download state of a pull feed; field names follow the entry-list reply (7.4.2 capture). */
export interface PullStatus {
  /** Epoch seconds of the last download attempt; 0 = never. */
  connAttemptTime: number;
  /** Epoch seconds when the content last changed. */
  lastContentUpdateTime: number;
  httpStatusCode: number;
  /** 'downloaded', 'failed' or 'pending'. */
  resourceFileStatus: string;
  /** Lines of the last good file that are no valid entry. */
  invalid: string[];
  /** Why the last attempt failed (never contains credentials). */
  error?: string;
}

export interface FeedLimits {
  scope: 'per-feed' | 'global';
  perFeed: number;
  global: number;
}

export interface FeedCounts {
  valid: number;
  invalid: number;
  buildable: number;
  overflow: number;
}

export type FeedSnapshot = ExternalResource & { entries: [string, number][]; pull?: PullStatus };

export class FeedStore {
  /** Insertion-ordered: the order of the external-resource table. */
  readonly resources = new Map<string, ExternalResource>();
  private readonly entries = new Map<string, Map<string, StoredEntry>>();
  private readonly pull = new Map<string, PullStatus>();
  private seq = 0;
  /** Bumped on every change; overflow marks are recomputed when it moved. */
  private generation = 0;
  private markedAt = -1;

  constructor(
    private readonly limits: FeedLimits,
    private readonly parse: (text: string) => FeedEntryRange | undefined,
  ) {}

  /** Creates or replaces a resource; a new type or update method drops the entries (new content source). */
  put(resource: ExternalResource): void {
    const previous = this.resources.get(resource.name);
    if (!previous || previous.type !== resource.type || previous.updateMethod !== resource.updateMethod) {
      this.entries.set(resource.name, new Map());
      this.pull.delete(resource.name);
    }
    this.resources.set(resource.name, resource);
    this.changed();
  }

  delete(name: string): void {
    this.resources.delete(name);
    this.entries.delete(name);
    this.pull.delete(name);
    this.changed();
  }

  clear(): void {
    this.resources.clear();
    this.entries.clear();
    this.pull.clear();
    this.changed();
  }

  /** Entries in addition order, with current overflow marks. */
  list(name: string): StoredEntry[] {
    this.markOverflow();
    return [...(this.entries.get(name)?.values() ?? [])];
  }

  /** Adds entries not yet present (by canonical key); present ones keep their place. */
  add(name: string, texts: string[]): void {
    const map = this.entryMap(name);
    for (const text of texts) {
      const range = this.parse(text)!;
      if (!map.has(range.key)) map.set(range.key, { text: text.trim(), range, seq: ++this.seq, overflow: false });
    }
    this.changed();
  }

  remove(name: string, texts: string[]): void {
    const map = this.entryMap(name);
    for (const text of texts) map.delete(this.parse(text)!.key);
    this.changed();
  }

  /**
   * Replaces the list (push "snapshot", or a downloaded file). Entries already present keep their place and
   * addition order (emulator choice: they were not "recently added"); new ones follow in the given order.
   */
  replace(name: string, texts: string[]): void {
    const old = this.entryMap(name);
    const wanted = new Map<string, { text: string; range: FeedEntryRange }>();
    for (const text of texts) {
      const range = this.parse(text)!;
      if (!wanted.has(range.key)) wanted.set(range.key, { text: text.trim(), range });
    }
    const next = new Map<string, StoredEntry>();
    for (const [key, entry] of old) if (wanted.has(key)) next.set(key, entry);
    for (const [key, w] of wanted) if (!next.has(key)) next.set(key, { ...w, seq: ++this.seq, overflow: false });
    this.entries.set(name, next);
    this.changed();
  }

  /** Enforced entries of an enabled address feed covering the address (nothing for a disabled feed). */
  enforcedMatches(name: string, ip: { family: FeedEntryRange['family']; value: bigint }): StoredEntry[] {
    const r = this.resources.get(name);
    if (!r || r.type !== 'address' || r.status !== 'enable') return [];
    this.markOverflow();
    const found: StoredEntry[] = [];
    for (const e of this.entries.get(name)?.values() ?? []) {
      if (!e.overflow && e.range.family === ip.family && e.range.first <= ip.value && ip.value <= e.range.last) found.push(e);
    }
    return found;
  }

  pullStatus(name: string): PullStatus | undefined {
    return this.pull.get(name);
  }

  setPullStatus(name: string, status: PullStatus): void {
    if (this.resources.has(name)) this.pull.set(name, status);
  }

  counts(name: string): FeedCounts {
    const list = this.list(name);
    const overflow = list.filter((e) => e.overflow).length;
    const invalid = this.pull.get(name)?.invalid.length ?? 0;
    return { valid: list.length, invalid, buildable: list.length - overflow, overflow };
  }

  /** Whether any entry counted by the limits is cut (the `overflow` flag of entry-list). */
  overflowing(name: string): boolean {
    return this.list(name).some((e) => e.overflow);
  }

  snapshot(): FeedSnapshot[] {
    return [...this.resources.values()].map((r) => {
      const pull = this.pull.get(r.name);
      const entries = [...(this.entries.get(r.name)?.values() ?? [])].map((e): [string, number] => [e.text, e.seq]);
      return { ...r, entries, ...(pull ? { pull } : {}) };
    });
  }

  restore(feeds: FeedSnapshot[]): void {
    this.clear();
    for (const { entries, pull, ...resource } of feeds) {
      this.resources.set(resource.name, resource);
      const map = new Map<string, StoredEntry>();
      for (const [text, seq] of entries) {
        const range = this.parse(text);
        if (range) map.set(range.key, { text, range, seq, overflow: false });
        this.seq = Math.max(this.seq, seq);
      }
      this.entries.set(resource.name, map);
      if (pull) this.pull.set(resource.name, pull);
    }
    this.changed();
  }

  private entryMap(name: string): Map<string, StoredEntry> {
    let map = this.entries.get(name);
    if (!map) this.entries.set(name, (map = new Map()));
    return map;
  }

  private changed(): void {
    this.generation++;
  }

  /** Recomputes which entries the limit cuts; O(n) per feed, O(n log n) for the global limit. */
  private markOverflow(): void {
    if (this.markedAt === this.generation) return;
    this.markedAt = this.generation;
    if (this.limits.scope === 'per-feed') {
      for (const map of this.entries.values()) {
        let i = 0;
        for (const e of map.values()) e.overflow = i++ >= this.limits.perFeed;
      }
      return;
    }
    const counted: StoredEntry[][] = [];
    for (const [name, map] of this.entries) {
      const r = this.resources.get(name);
      const counts = r !== undefined && r.type === 'address' && r.status === 'enable';
      for (const e of map.values()) e.overflow = false;
      if (counts) counted.push([...map.values()]);
    }
    const total = counted.reduce((n, list) => n + list.length, 0);
    if (total <= this.limits.global) return;
    const seqs = new Float64Array(total);
    let i = 0;
    for (const list of counted) for (const e of list) seqs[i++] = e.seq;
    seqs.sort();
    const cutoff = seqs[this.limits.global - 1]!;
    for (const list of counted) for (const e of list) e.overflow = e.seq > cutoff;
  }
}
