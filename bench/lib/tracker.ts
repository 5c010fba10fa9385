/**
 * Watches the emulator's IPv4 tables from inside the process: every change of a group's member list and
 * every address created or deleted is timestamped the moment the emulator applies it (before it replies).
 * This wraps the methods of the emulator's own FamilyTables instance (putGroup, addMember, removeMember,
 * putAddress, deleteAddress, clear); no product code changes and no polling of GET /__emulator/state.
 * The product would do better with a first-class hook (see bench/README.md, "product suggestions").
 */
import type { RunningEmulator } from '../../src/fortios/emulator/server';
import type { AddressEntry, GroupEntry } from '../../src/fortios/emulator/state';
import { now } from './stats';

export interface MemberTimes {
  /** First time the member was seen in the group. */
  firstIn?: number;
  /** Last time it joined (after a leave, the join that counts for the end state). */
  lastIn?: number;
  /** Last time it left the group. */
  lastOut?: number;
  /** How many times it joined (more than once = it was dropped and put back). */
  joins: number;
}

export class GroupTracker {
  readonly members = new Map<string, MemberTimes>();
  readonly addressCreated = new Map<string, number>();
  readonly addressDeleted = new Map<string, number>();
  /** Group writes seen (PUTs and child-table changes that reached the state). */
  groupWrites = 0;
  /** Largest member count seen (placeholder included). */
  maxSize = 0;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly emulator: RunningEmulator,
    readonly group: string,
  ) {
    const t = emulator.state.ipv4;
    const putGroup = t.putGroup.bind(t);
    const addMember = t.addMember.bind(t);
    const removeMember = t.removeMember.bind(t);
    const putAddress = t.putAddress.bind(t);
    const deleteAddress = t.deleteAddress.bind(t);
    t.putGroup = (entry: GroupEntry) => {
      // putGroup swaps in a new entry (a new Set): the old Set is not mutated, no copy needed.
      const before = entry.name === this.group ? (t.groups.get(entry.name)?.members ?? new Set<string>()) : undefined;
      putGroup(entry);
      if (before) this.diff(before, entry.members);
    };
    t.addMember = (g: GroupEntry, member: string) => {
      const had = g.members.has(member);
      addMember(g, member);
      if (g.name === this.group && !had) this.diff(new Set(), new Set([member]), g.members.size);
    };
    t.removeMember = (g: GroupEntry, member: string) => {
      const had = g.members.has(member);
      removeMember(g, member);
      if (g.name === this.group && had) this.diff(new Set([member]), new Set(), g.members.size);
    };
    t.putAddress = (a: AddressEntry) => {
      if (!t.addresses.has(a.name)) this.addressCreated.set(a.name, now());
      putAddress(a);
    };
    t.deleteAddress = (name: string) => {
      if (t.addresses.has(name)) this.addressDeleted.set(name, now());
      deleteAddress(name);
      this.wake();
    };
  }

  /** The members on the emulator right now (placeholder excluded). */
  current(): Set<string> {
    const g = this.emulator.state.ipv4.groups.get(this.group);
    return new Set([...(g?.members ?? [])].filter((m) => m !== 'none'));
  }

  /**
   * Resolves when `done()` holds or after `timeoutMs`; returns whether it held. Checked after every change
   * of the group or the addresses, and every 250 ms besides (so a throttled predicate cannot miss the end).
   */
  until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    return untilHeld(this.waiters, done, timeoutMs);
  }

  private diff(before: Set<string>, after: Set<string>, size = after.size): void {
    const t = now();
    this.groupWrites++;
    this.maxSize = Math.max(this.maxSize, size);
    for (const m of after) {
      if (before.has(m) || m === 'none') continue;
      const e = this.members.get(m) ?? { joins: 0 };
      e.firstIn ??= t;
      e.lastIn = t;
      e.joins++;
      this.members.set(m, e);
    }
    for (const m of before) {
      if (after.has(m) || m === 'none') continue;
      const e = this.members.get(m);
      if (e) e.lastOut = t;
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** What a firewall mechanism holds per IP, as `EnforcementTracker` saw it change. */
export interface IpTimes {
  /** First time the IP was enforced (any mechanism). */
  firstIn?: number;
  lastIn?: number;
  lastOut?: number;
  joins: number;
}

/** One API request the emulator handled (after its injected latency), in the order handled. */
export interface EmulatorRequest {
  at: number;
  kind: 'reads' | 'writes';
  what: string;
}

/**
 * Backend-neutral: the first time each IP became enforced on the emulator, whatever the mechanism —
 * a member of one of `groups` (the deny policy's address groups, IPs read from the member's address object),
 * an entry of one of `feeds` (push add/remove/snapshot), or an entry of the banned list. Wraps the mutators of
 * the emulator's own FeedStore, BannedList and FamilyTables instances (no product code changes, no polling),
 * so every change is timestamped the moment the emulator applies it, before it replies. Also keeps the
 * emulator's request log (every counted read and write with its time): the firewall-call hop of the
 * per-hop breakdown. `verify()` asks the emulator's own oracle (`blocked(ip)`) for the end state.
 */
export class EnforcementTracker {
  readonly ips = new Map<string, IpTimes>();
  readonly requests: EmulatorRequest[] = [];
  /** Mechanism changes applied (group writes, feed commands, banned add/clear calls). */
  changes = 0;
  private readonly waiters = new Set<() => void>();
  private readonly inListeners = new Set<(ip: string) => void>();

  constructor(
    private readonly emulator: RunningEmulator,
    o: { groups?: string[]; feeds?: string[] } = {},
  ) {
    const s = emulator.state;
    const count = s.count.bind(s);
    s.count = (kind, what) => {
      if (kind === 'reads' || kind === 'writes') this.requests.push({ at: now(), kind, what });
      count(kind, what);
    };
    // Threat feeds: entries are the IPs as pushed. A shadow set per feed keeps each change O(entries changed)
    // (FeedStore.list() is O(feed) and recomputes overflow marks: too slow at 100,000 entries).
    const feeds = new Set(o.feeds ?? []);
    const f = s.feeds;
    const shadow = new Map<string, Set<string>>();
    const held = (name: string) => {
      let set = shadow.get(name);
      if (!set) shadow.set(name, (set = new Set(f.list(name).map((e) => bare(e.text)))));
      return set;
    };
    const fAdd = f.add.bind(f);
    const fRemove = f.remove.bind(f);
    const fReplace = f.replace.bind(f);
    f.add = (name: string, texts: string[]) => {
      if (!feeds.has(name)) return fAdd(name, texts);
      const set = held(name);
      fAdd(name, texts);
      const added = new Set(texts.map(bare).filter((ip) => !set.has(ip)));
      for (const ip of added) set.add(ip);
      this.diff(new Set(), added);
    };
    f.remove = (name: string, texts: string[]) => {
      if (!feeds.has(name)) return fRemove(name, texts);
      const set = held(name);
      fRemove(name, texts);
      const removed = new Set(texts.map(bare).filter((ip) => set.has(ip)));
      for (const ip of removed) set.delete(ip);
      this.diff(removed, new Set());
    };
    f.replace = (name: string, texts: string[]) => {
      if (!feeds.has(name)) return fReplace(name, texts);
      const before = held(name);
      fReplace(name, texts);
      const after = new Set(texts.map(bare));
      shadow.set(name, after);
      this.diff(before, after);
    };
    // The banned list (one IP per call).
    const b = s.banned;
    const add = b.add.bind(b);
    const remove = b.remove.bind(b);
    const clear = b.clear.bind(b);
    b.add = (ip, ipv6, expiry) => {
      const had = b.get(ip) !== undefined;
      add(ip, ipv6, expiry);
      if (!had) this.diff(new Set(), new Set([ip]));
    };
    b.remove = (ip) => {
      const had = b.get(ip) !== undefined;
      remove(ip);
      if (had) this.diff(new Set([ip]), new Set());
    };
    b.clear = () => {
      const before = new Set(b.list().map((e) => e.ip));
      clear();
      this.diff(before, new Set());
    };
    // Address groups (shards): members are address object names; their IP is the object's subnet.
    const groups = new Set(o.groups ?? []);
    for (const t of [s.ipv4, s.ipv6]) {
      const ipOf = (member: string) => {
        const a = t.addresses.get(member);
        return a && member !== 'none' ? bare(a.subnet.split(' ')[0]!) : undefined;
      };
      const ipsOf = (members: Iterable<string>) => new Set([...members].map(ipOf).filter((x): x is string => x !== undefined));
      const putGroup = t.putGroup.bind(t);
      const addMember = t.addMember.bind(t);
      const removeMember = t.removeMember.bind(t);
      t.putGroup = (entry: GroupEntry) => {
        if (!groups.has(entry.name)) return putGroup(entry);
        const before = ipsOf(t.groups.get(entry.name)?.members ?? []);
        putGroup(entry);
        this.diff(before, ipsOf(entry.members));
      };
      t.addMember = (g: GroupEntry, member: string) => {
        const had = g.members.has(member);
        addMember(g, member);
        const ip = ipOf(member);
        if (groups.has(g.name) && !had && ip) this.diff(new Set(), new Set([ip]));
      };
      t.removeMember = (g: GroupEntry, member: string) => {
        const had = g.members.has(member);
        const ip = ipOf(member);
        removeMember(g, member);
        if (groups.has(g.name) && had && ip) this.diff(new Set([ip]), new Set());
      };
    }
  }

  /** Enforced now according to this tracker (a shard move shows as out-then-in within one change: see diff). */
  holds(ip: string): boolean {
    const t = this.ips.get(ip);
    return t?.lastIn !== undefined && (t.lastOut === undefined || t.lastOut < t.lastIn);
  }

  /**
   * The emulator's own answer for each IP (GET /__emulator/blocked): blocked by any mechanism now. The
   * ground truth of the end state; O(feed size) per IP on a feed, so large sets pass a sample.
   */
  verify(ips: readonly string[]): { blocked: Set<string>; notBlocked: Set<string> } {
    const blocked = new Set<string>();
    const notBlocked = new Set<string>();
    for (const ip of ips) (this.emulator.blocked(ip)?.blocked ? blocked : notBlocked).add(ip);
    return { blocked, notBlocked };
  }

  /** Resolves when `done()` holds (checked after every change, and every 250 ms) or after `timeoutMs`. */
  until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    return untilHeld(this.waiters, done, timeoutMs);
  }

  /**
   * Waits until every IP of `ips` was enforced at least once; progress is checked at most every 200 ms
   * (O(pending)). Returns whether all were, and how many.
   */
  async untilAllEnforced(ips: readonly string[], timeoutMs: number): Promise<{ all: boolean; done: number; at: number }> {
    const { pending, stop } = this.pendingUntilIn(ips.filter((ip) => this.ips.get(ip)?.firstIn === undefined));
    const all = await this.until(() => pending.size === 0, timeoutMs);
    stop();
    const firsts = ips.map((ip) => this.ips.get(ip)?.firstIn).filter((x): x is number => x !== undefined);
    return { all: all || pending.size === 0, done: ips.length - pending.size, at: firsts.length ? Math.max(...firsts) : now() };
  }

  /**
   * A live set of `ips` that leaves each IP the moment it comes onto the firewall: O(1) per change. A loop over
   * the pending IPs at every check cost the `scale` scenario O(pending) per 200–500 ms of our process's CPU —
   * ~100,000 lookups a check at 100,000 blocks, counted as the product's (`stop()` when done).
   */
  pendingUntilIn(ips: Iterable<string>): { pending: Set<string>; stop(): void } {
    const pending = new Set(ips);
    const onIn = (ip: string) => void pending.delete(ip);
    this.inListeners.add(onIn);
    return { pending, stop: () => void this.inListeners.delete(onIn) };
  }

  private diff(before: Set<string>, after: Set<string>): void {
    const t = now();
    this.changes++;
    for (const ip of after) {
      if (before.has(ip)) continue;
      for (const l of this.inListeners) l(ip);
      const e = this.ips.get(ip) ?? { joins: 0 };
      e.firstIn ??= t;
      e.lastIn = t;
      e.joins++;
      this.ips.set(ip, e);
    }
    for (const ip of before) {
      if (after.has(ip)) continue;
      const e = this.ips.get(ip);
      if (e) e.lastOut = t;
    }
    for (const w of [...this.waiters]) w();
  }
}

/** "45.1.0.1/32" or "45.1.0.1" → "45.1.0.1" (host routes only: the bench blocks single addresses). */
function bare(text: string): string {
  const t = text.trim();
  return t.endsWith('/32') || t.endsWith('/128') ? t.slice(0, t.lastIndexOf('/')) : t;
}

/**
 * Resolves when `done()` holds or after `timeoutMs`; returns whether it held. Checked whenever the tracker
 * calls its `waiters` (after every change it sees), and every 250 ms besides (so a throttled predicate
 * cannot miss the end).
 */
function untilHeld(waiters: Set<() => void>, done: () => boolean, timeoutMs: number): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const check = () => {
      if (!settled && done()) finish(true);
    };
    const finish = (ok: boolean) => {
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      waiters.delete(check);
      resolve(ok);
    };
    const timer = setTimeout(() => finish(done()), timeoutMs);
    const poll = setInterval(check, 250);
    waiters.add(check);
  });
}
