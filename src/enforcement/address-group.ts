/**
 * address-group backend (the default, the seed's way): one address object per IP, members of address groups
 * that a deny policy references — several groups ("shards") per family when one is not enough, filled in
 * order before anything is rotated out.
 *
 * A commit is a delta against what the groups hold now (GET, then PUT of the changed shards, or for a small change
 * child-table appends and deletions, which keep a member appended meanwhile by the API's early adds): members we did
 * not add — an operator's, another tool's — are kept and counted against the capacity, and a fresh writer
 * can never drop what it did not create. Per-entry isolation: an object the firewall refuses fails alone; a
 * group write refused because of one member is narrowed down by bisection; a platform member limit lower
 * than configured is learned and respected; a member whose object vanished is repaired. Objects are ours
 * only when their comment carries OWNER_MARKER: nothing else is ever deleted.
 */
import { FortiAddress, FortiOSClient, FortiOSError } from '../fortios/client';
import { type AddressFamily, parsePrefix, sameNetwork } from '../fortios/subnet';
import { canonicalIp } from '../policy/ip-policy';
import { inPool } from '../pool';
import { CommitResult, EnforcementBackend, Entry, Finding, floodBatching, commentCurrent, commentExpiry, isOurs, OwnedEntry, Outcome, OWNER_MARKER, ownerComment, SetInfo } from './port';
import type { Batching } from '../../workflows/batch-policy';
import { groupPolicyFindings, Observe } from './firewall-checks';

/** Built-in FortiOS address 0.0.0.0/32 (::/128 for IPv6) that matches nothing: keeps a group non-empty (older FortiOS rejects empty groups). */
export const PLACEHOLDER_MEMBER = 'none';
export const ADDRESS_NAME_PREFIX = 'ads-';
/** Address object name for an IP: carries the IP so an operator can read the group. */
export const addressObjectName = (ip: string): string => `${ADDRESS_NAME_PREFIX}${ip}`;
/** Concurrent object creations/deletions towards one firewall. */
const OBJECT_CALLS_IN_FLIGHT = 8;
/**
 * From this many adds a tick first lists our objects: the adds whose object exists cost no object call. Such
 * a tick is a flood's, and when it runs again (a local activity retried or re-executed after a lost workflow
 * task) every object exists already: one read instead of a POST and a GET per IP. Small ticks skip the read
 * (it would sit on the critical path of a trickle).
 */
const PRE_READ_MIN_ADDS = 50;
/** A shard change of at most this many members is written as child-table appends and deletions, not a PUT. */
const CHILD_OPS_MAX = 8;
/**
 * The API's early adds (addAhead) go to the first shard this process believes has room: the shards' member
 * counts read at most this often (a stale count is refreshed behind the write, never in front of it) and
 * counted up by its own appends.
 */
const AHEAD_READ_MS = 5_000;
/** Early adds leave this share of every shard to the enforcer, whose counts are exact: 1/20 (30 of 600). */
const AHEAD_HEADROOM = 1 / 20;

export interface AddressGroupOptions {
  groups: { ipv4: string[]; ipv6: string[] };
  /** Members per group, the placeholder included. */
  capacity: number;
}

interface Shard {
  name: string;
  /** What the firewall holds (placeholder included). */
  before: string[];
  /** What this commit wants it to hold. */
  members: string[];
  /** This commit's removals, applied again whenever a refused write sends us back to `before`. */
  removing: Set<string>;
}

export class AddressGroupBackend implements EnforcementBackend {
  readonly kind = 'address-group' as const;
  readonly refreshOnExtend = true;
  /**
   * A tick creates one address object per new entry (8 in flight): 200 keep a tick to ~1.5 s at 50 ms per
   * write; the shards cost one read and one write per tick, so a flood's ticks fill up to those 200.
   */
  readonly batching: Batching = floodBatching(200, 200);
  /**
   * In a burst the API's early adds go through the enforcer (an append per IP from the API would be a call per IP
   * on top): its flood ticks create the objects and write each shard once, and the blocks' own adds that follow in
   * big ticks find object and member in place (one object list read per tick, no group write).
   */
  readonly earlyInBurst = 'enforcer' as const;
  /** Per-group member limits learned from the firewall (-4), lower than the configured capacity. */
  private readonly learnedLimit = new Map<string, number>();
  /** Early adds: the shards' member counts as this process last read them, plus its own appends since. */
  private readonly aheadCounts = new Map<AddressFamily, { readAtMs: number; counts: Map<string, number>; reading?: Promise<void> }>();

  constructor(
    private readonly fw: FortiOSClient,
    private readonly o: AddressGroupOptions,
    private readonly observe: Observe = (_op, fn) => fn(),
  ) {}

  sets(): SetInfo[] {
    return (['ipv4', 'ipv6'] as const).map((f) => ({ name: this.o.groups[f][0], families: [f], capacity: this.o.groups[f].length * this.o.capacity }));
  }

  setFor(family: AddressFamily): string {
    return this.o.groups[family][0];
  }

  private familyOf(set: string): AddressFamily {
    if (set === this.o.groups.ipv4[0]) return 'ipv4';
    if (set === this.o.groups.ipv6[0]) return 'ipv6';
    throw new Error(`"${set}" is not an enforcement set of this target (groups ${[...this.o.groups.ipv4, ...this.o.groups.ipv6].join(', ')})`);
  }

  async commit(set: string, batch: { adds: Entry[]; removes: Entry[]; resync: boolean }): Promise<CommitResult> {
    const family = this.familyOf(set);
    const result: CommitResult = { outcomes: {}, evicted: [], writes: 0, problems: [] };
    const out = (ip: string, o: Outcome) => void (result.outcomes[ip] = o);

    // 0. Re-checks, and every add of a big tick, whose object exists already for that IP's network cost no
    //    object call: one list read, only in a tick that carries re-checks or is big.
    const ready: Entry[] = [];
    let adds = batch.adds;
    const big = adds.length >= PRE_READ_MIN_ADDS;
    const candidates = adds.filter((e) => big || !!e.recheck);
    if (candidates.length) {
      const verified = await this.existingObjects(family, candidates, result);
      ready.push(...candidates.filter((e) => verified.has(e.ip)));
      adds = adds.filter((e) => !verified.has(e.ip));
    }

    // 1. The objects of the new entries (in parallel; each one's failure is its own).
    await inPool(adds, OBJECT_CALLS_IN_FLIGHT, async (e) => {
      try {
        const name = addressObjectName(e.ip);
        const seen: { existing?: FortiAddress } = {};
        await this.observe('ensureAddress', () => this.fw.ensureAddress(family, { name, subnet: cidrOf(e.ip), comment: ownerComment(e) }, (a) => (seen.existing = a)));
        // Ours: bring its comment (expiry) up to date. Someone else's with the same network: use it, never own it.
        const comment = seen.existing?.comment;
        if (seen.existing && isOurs(comment) && !commentCurrent(comment, e)) {
          await this.observe('setAddressComment', () => this.fw.setAddressComment(family, name, ownerComment(e)));
        }
        ready.push(e);
      } catch (err) {
        out(e.ip, classify(err));
      }
    });

    // 2. The groups as they are now, and the delta.
    const shards = await this.readShards(family);
    const removeNames = new Set(batch.removes.map((e) => addressObjectName(e.ip)));
    for (const s of shards) {
      s.removing = removeNames;
      s.members = s.members.filter((m) => !removeNames.has(m));
    }
    const present = new Set(shards.flatMap((s) => s.members));
    const newcomers = ready.filter((e) => {
      if (!present.has(addressObjectName(e.ip))) return true;
      out(e.ip, { status: 'ok' });
      return false;
    });
    const expiries = new Map<string, number>(ready.map((e) => [addressObjectName(e.ip), e.expiresAtMs ?? Infinity]));
    // Read at most once per commit, and only after this commit's objects exist (eviction order, ownership).
    let comments: Map<string, string> | undefined;
    const readComments = async () => (comments ??= await this.addressComments(family));

    // 3. Place, rotate, write; a refused write is narrowed down and retried (bounded).
    let pending = newcomers;
    for (let round = 0; round < 6; round++) {
      if (round > 0) {
        // A refused round may still have landed some (earlier shards, a probe, a bisection): never place those twice.
        const landed = new Set(shards.flatMap((s) => s.members));
        for (const e of pending) if (landed.has(addressObjectName(e.ip))) out(e.ip, { status: 'ok' });
        pending = pending.filter((e) => !landed.has(addressObjectName(e.ip)));
      }
      const placed = await this.place(shards, pending, batch.resync || round > 0, expiries, readComments, result);
      const refused = await this.writeShards(family, shards, placed, result);
      if (!refused) {
        for (const e of placed) out(e.ip, { status: 'ok' });
        break;
      }
      pending = refused.retry;
      for (const f of refused.failed) out(f.ip, { status: 'failed', reason: f.reason });
      if (round === 5) for (const e of pending) out(e.ip, { status: 'retry', reason: 'group write kept failing' });
    }

    // 4. Objects that no longer hold anything: removed entries, evicted ones, refused newcomers — ours only.
    const drop = [
      ...batch.removes.map((e) => e.ip),
      ...result.evicted.map((e) => e.ip),
      ...batch.adds.filter((e) => result.outcomes[e.ip]?.status === 'failed').map((e) => e.ip),
    ];
    const stillIn = new Set(shards.flatMap((s) => s.before));
    for (const e of batch.removes) out(e.ip, stillIn.has(addressObjectName(e.ip)) ? { status: 'retry', reason: 'group write kept failing' } : { status: 'ok' });
    if (drop.length) await this.deleteOurObjects(family, drop, await readComments(), result);
    return result;
  }

  /**
   * Early adds written by the API (EnforcementBackend.addAhead): the object, then one child-table append
   * (`POST …/addrgrp/<g>/member`) into the first shard with room — no read-modify-write, so an operator's members
   * and the enforcer's writes are never overwritten by it. The enforcer's PUT of a shard, computed from a read
   * made before this append landed, may drop it again: the block's own add, through the enforcer, is what the
   * promise rests on, and the entry's check (workflows/early-adds.ts) removes one that lands after its block
   * ended. No room by this process's counts (every shard within AHEAD_HEADROOM of full): nothing is written —
   * rotating a member out is the enforcer's decision alone. Throws the first entry's failure after all ran.
   */
  async addAhead(set: string, entries: Entry[]): Promise<void> {
    const family = this.familyOf(set);
    const counts = await this.shardCounts(family);
    let failure: unknown;
    await inPool(entries, OBJECT_CALLS_IN_FLIGHT, async (e) => {
      const shard = this.o.groups[family].find((g) => (counts.get(g) ?? Infinity) < this.aheadLimit(g));
      if (!shard) return;
      counts.set(shard, counts.get(shard)! + 1);
      const name = addressObjectName(e.ip);
      try {
        await this.observe('ensureAddress', () => this.fw.ensureAddress(family, { name, subnet: cidrOf(e.ip), comment: ownerComment(e) }));
        await this.observe('addGroupMember', () => this.fw.addGroupMember(family, shard, name));
      } catch (err) {
        // A full shard (the platform's limit, or members added since the count): none into it until the next read.
        if (err instanceof FortiOSError && err.kind === 'limit') counts.set(shard, Infinity);
        failure ??= err ?? new Error('write failed');
      }
    });
    if (failure !== undefined) throw failure;
  }

  /** Members a shard may hold: the configured capacity, or the platform's limit where one was learned lower. */
  private limitOf(group: string): number {
    return Math.min(this.o.capacity, this.learnedLimit.get(group) ?? Infinity);
  }

  private aheadLimit(group: string): number {
    const limit = this.limitOf(group);
    return limit - Math.ceil(limit * AHEAD_HEADROOM);
  }

  /** The shards' member counts for early adds: read when there are none, refreshed behind the caller when stale. */
  private async shardCounts(family: AddressFamily): Promise<Map<string, number>> {
    let c = this.aheadCounts.get(family);
    if (!c) this.aheadCounts.set(family, (c = { readAtMs: 0, counts: new Map() }));
    const entry = c;
    const read = () =>
      (entry.reading ??= this.observe('getGroups', () => this.fw.getGroups(family, this.o.groups[family]))
        .then((groups) => {
          entry.counts = new Map([...groups].map(([name, g]) => [name, g.members.length]));
          entry.readAtMs = Date.now();
        })
        .finally(() => (entry.reading = undefined)));
    if (entry.readAtMs === 0) await read();
    else if (Date.now() - entry.readAtMs > AHEAD_READ_MS) void read().catch(() => undefined);
    return entry.counts;
  }

  /**
   * Of these entries, those whose object exists and is this IP's network (one list read): they need no object
   * call — whether or not a shard holds them yet (a re-run tick whose first run created the objects, then lost
   * its group write). The others — no object, or one of that name for another network — go through
   * ensureAddress, which creates it or reports the conflict. Our objects' comments carry the block's expiry
   * (the rotation order): a block's own add brings its comment up to date.
   */
  private async existingObjects(family: AddressFamily, entries: Entry[], result: CommitResult): Promise<Set<string>> {
    const objects = new Map((await this.ourNamedObjects(family)).map((a) => [a.name, a]));
    const verified = entries.filter((e) => {
      const a = objects.get(addressObjectName(e.ip));
      const have = a && parsePrefix(family, a.subnet);
      const want = parsePrefix(family, cidrOf(e.ip));
      return !!have && have.ok && want.ok && sameNetwork(have.prefix, want.prefix);
    });
    const stale = verified.filter((e) => {
      const c = objects.get(addressObjectName(e.ip))?.comment;
      return !e.recheck && isOurs(c) && !commentCurrent(c, e);
    });
    await inPool(stale, OBJECT_CALLS_IN_FLIGHT, async (e) => {
      try {
        await this.observe('setAddressComment', () => this.fw.setAddressComment(family, addressObjectName(e.ip), ownerComment(e)));
      } catch (err) {
        // Still enforced (the member is there); only its place in the rotation order is out of date.
        result.problems.push(`comment of ${addressObjectName(e.ip)} not updated: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    return new Set(verified.map((e) => e.ip));
  }

  /**
   * Reads every shard of the family in one call; a missing group stops the commit (nothing can be enforced
   * without it).
   */
  private async readShards(family: AddressFamily): Promise<Shard[]> {
    const groups = await this.observe('getGroups', () => this.fw.getGroups(family, this.o.groups[family]));
    return this.o.groups[family].map((name) => {
      const g = groups.get(name);
      if (!g) throw new SetUnavailable(`address group "${name}" does not exist: create it and reference it from a deny policy (README, "Pointing it at a real FortiGate")`);
      const members = g.members.filter((m) => m !== PLACEHOLDER_MEMBER);
      return { name, before: g.members, members, removing: new Set<string>() };
    });
  }

  /**
   * Puts newcomers into the first shards with room. When every shard is full, the entries of ours that
   * expire first are rotated out (members not ours count against capacity but are never touched).
   */
  private async place(
    shards: Shard[],
    newcomers: Entry[],
    enforceCapacity: boolean,
    expiries: Map<string, number>,
    readComments: () => Promise<Map<string, string>>,
    result: CommitResult,
  ): Promise<Entry[]> {
    const limit = (s: Shard) => this.limitOf(s.name);
    const room = () => shards.reduce((n, s) => n + Math.max(0, limit(s) - s.members.length), 0);
    const overflow = enforceCapacity && shards.some((s) => s.members.length > limit(s));
    const placed: Entry[] = [];
    if (newcomers.length > room() || overflow) {
      const comments = await readComments();
      const expiryOf = (m: string) => expiries.get(m) ?? commentExpiry(comments.get(m) ?? '') ?? 0;
      const ours = (s: Shard) => s.members.filter((m) => isOurs(comments.get(m)) && ipOf(m)).sort((a, b) => expiryOf(a) - expiryOf(b));
      const leaving = new Set<string>();
      // A shard over its limit (capacity lowered, a limit learned): rotate out of that shard first.
      for (const s of shards) {
        const excess = s.members.length - limit(s);
        for (const m of ours(s).slice(0, Math.max(0, excess))) leaving.add(m);
      }
      for (const s of shards) s.members = s.members.filter((m) => !leaving.has(m));
      // Then make room for the newcomers: each rotation (an old member, or a newcomer that expires first) closes the gap by one.
      let deficit = newcomers.length - room();
      const candidates = [...shards.flatMap(ours), ...newcomers.map((e) => addressObjectName(e.ip))].sort((a, b) => expiryOf(a) - expiryOf(b));
      for (const c of candidates) {
        if (deficit <= 0) break;
        leaving.add(c);
        deficit--;
      }
      for (const s of shards) s.members = s.members.filter((m) => !leaving.has(m));
      for (const name of leaving) result.evicted.push({ ip: ipOf(name)!, reason: 'the address groups are full: the block expiring first was rotated out' });
      for (const e of newcomers) if (leaving.has(addressObjectName(e.ip))) result.outcomes[e.ip] = { status: 'ok' };
      newcomers = newcomers.filter((e) => !leaving.has(addressObjectName(e.ip)));
      if (deficit > 0) {
        // Every member left is someone else's: nothing of ours to rotate out.
        for (const e of newcomers.splice(newcomers.length - deficit)) {
          result.outcomes[e.ip] = { status: 'failed', reason: `the address groups ${shards.map((s) => s.name).join(', ')} are full of members that are not ours` };
        }
      }
    }
    for (const e of newcomers) {
      const s = shards.find((x) => x.members.length < limit(x));
      if (!s) break;
      s.members.push(addressObjectName(e.ip));
      placed.push(e);
    }
    return placed;
  }

  /**
   * PUTs every changed shard. Returns undefined when all landed; otherwise which newcomers to try again and
   * which the firewall refuses for good (found by bisection), with the shards rolled back to what is on the
   * firewall so the next round starts from the truth.
   */
  private async writeShards(family: AddressFamily, shards: Shard[], placed: Entry[], result: CommitResult): Promise<{ retry: Entry[]; failed: { ip: string; reason: string }[] } | undefined> {
    for (const s of shards) {
      const desired = s.members.length ? s.members : [PLACEHOLDER_MEMBER];
      if (sameSet(desired, s.before)) continue;
      if (await this.appendAndDelete(family, s, desired, result)) continue;
      try {
        await this.observe('setGroupMembers', () => this.fw.setGroupMembers(family, s.name, desired));
        result.writes++;
        s.before = desired;
      } catch (err) {
        if (!(err instanceof FortiOSError) || err.retryable) throw err;
        const mine = placed.filter((e) => s.members.includes(addressObjectName(e.ip)));
        const others = placed.filter((e) => !mine.includes(e));
        if (err.kind === 'limit') {
          // The platform holds fewer members than configured: learn its limit (not merely what the group held
          // before this write, which would rotate blocks out of a group with room left).
          const limit = await this.probeLimit(family, s, mine, result);
          this.learnedLimit.set(s.name, Math.min(limit, this.learnedLimit.get(s.name) ?? Infinity));
          result.problems.push(`group "${s.name}" refused ${desired.length} members (${err.message}): holding at most ${limit} from now on; set FORTIGATE_GROUP_CAPACITY to the platform's limit`);
          this.resetShards(shards);
          return { retry: placed, failed: [] };
        }
        if (err.kind === 'not-found') {
          // A member names an object that is gone (deleted by hand): repair ours, drop what is not ours.
          await this.repairMissing(family, s, result);
          this.resetShards(shards);
          return { retry: placed, failed: [] };
        }
        // Refused because of some member: bisect the newcomers of this shard to find which.
        const bad = await this.bisect(family, s, mine, err, result);
        this.resetShards(shards);
        return { retry: [...others, ...mine.filter((e) => !bad.some((b) => b.ip === e.ip))], failed: bad };
      }
    }
    return undefined;
  }

  /**
   * A small change of a shard (a trickle's tick) as child-table operations — appends and deletions, in an order
   * that keeps the group within its limit and never empty — instead of a PUT of the whole list: a PUT computed from this commit's read would
   * drop a member appended meanwhile (the API's early adds: addAhead), an append or a deletion leaves the rest
   * as it is. Returns false, with `before` read again, when the change is too big for it or an operation is
   * refused: the PUT, with its limit learning and bisection, takes it from there.
   */
  private async appendAndDelete(family: AddressFamily, s: Shard, desired: string[], result: CommitResult): Promise<boolean> {
    const before = new Set(s.before);
    const want = new Set(desired);
    const appends = desired.filter((m) => !before.has(m));
    const deletes = s.before.filter((m) => !want.has(m));
    if (appends.length + deletes.length > CHILD_OPS_MAX) return false;
    // Deletions first while a member stays (never over the limit, even for a moment: a rotation); when every
    // member goes (the placeholder's turn), appends first, so the group is never empty — if that fits.
    const append = (m: string) => this.observe('addGroupMember', () => this.fw.addGroupMember(family, s.name, m));
    const remove = (m: string) => this.observe('removeGroupMember', () => this.fw.removeGroupMember(family, s.name, m));
    const deletesFirst = deletes.length < s.before.length;
    if (!deletesFirst && s.before.length + appends.length > this.limitOf(s.name)) return false;
    try {
      for (const [ops, op] of deletesFirst ? ([[deletes, remove], [appends, append]] as const) : ([[appends, append], [deletes, remove]] as const)) {
        await Promise.all(
          ops.map(async (m) => {
            await op(m);
            result.writes++;
          }),
        );
      }
      s.before = desired;
      return true;
    } catch (err) {
      if (!(err instanceof FortiOSError) || err.retryable) throw err;
      s.before = (await this.readShards(family)).find((x) => x.name === s.name)!.before;
      return false;
    }
  }

  /**
   * The member limit of a group that refused a write with -4, found by binary search over how many of this
   * shard's newcomers it takes (~log2(n) writes; every accepted write is a state this commit wants anyway and
   * is kept). When even the members without the newcomers are refused, what the group holds now is the limit.
   */
  private async probeLimit(family: AddressFamily, s: Shard, mine: Entry[], result: CommitResult): Promise<number> {
    const mineNames = new Set(mine.map((e) => addressObjectName(e.ip)));
    const base = s.members.filter((m) => !mineNames.has(m));
    const held = s.before.filter((m) => m !== PLACEHOLDER_MEMBER).length;
    // lo: newcomers known to fit beside `base` (-1: not even `base` is known to); hi: known to be refused.
    let lo = base.length <= held ? 0 : -1;
    let hi = mine.length;
    while (hi - lo > 1) {
      const k = Math.floor((lo + hi) / 2);
      const list = [...base, ...mine.slice(0, k).map((e) => addressObjectName(e.ip))];
      const desired = list.length ? list : [PLACEHOLDER_MEMBER];
      try {
        await this.observe('setGroupMembers', () => this.fw.setGroupMembers(family, s.name, desired));
        result.writes++;
        s.before = desired;
        lo = k;
      } catch (err) {
        if (!(err instanceof FortiOSError) || err.retryable) throw err;
        if (err.kind !== 'limit') break; // refused for another reason: bisection's job, in the next round
        hi = k;
      }
    }
    return lo < 0 ? Math.max(1, held) : Math.max(1, base.length + lo);
  }

  /** Finds the newcomers the firewall refuses, with at most ~2·log2(n) writes. */
  private async bisect(family: AddressFamily, s: Shard, newcomers: Entry[], first: FortiOSError, result: CommitResult): Promise<{ ip: string; reason: string }[]> {
    const base = s.members.filter((m) => !newcomers.some((e) => addressObjectName(e.ip) === m));
    const tryWith = async (subset: Entry[]): Promise<FortiOSError | undefined> => {
      const list = [...base, ...subset.map((e) => addressObjectName(e.ip))];
      const desired = list.length ? list : [PLACEHOLDER_MEMBER];
      try {
        await this.observe('setGroupMembers', () => this.fw.setGroupMembers(family, s.name, desired));
        result.writes++;
        s.before = desired; // what the firewall holds now: the next round starts from it
        return undefined;
      } catch (err) {
        if (err instanceof FortiOSError && !err.retryable) return err;
        throw err;
      }
    };
    const bad: { ip: string; reason: string }[] = [];
    const search = async (subset: Entry[], err: FortiOSError): Promise<void> => {
      if (subset.length === 1) {
        bad.push({ ip: subset[0].ip, reason: err.message });
        return;
      }
      const half = subset.slice(0, Math.ceil(subset.length / 2));
      const rest = subset.slice(half.length);
      const e1 = await tryWith(half);
      if (e1) await search(half, e1);
      const e2 = rest.length ? await tryWith(rest) : undefined;
      if (e2) await search(rest, e2);
    };
    if (newcomers.length === 0) {
      // Not one of ours: the group itself is refused as it stands (an operator's member). Nothing to isolate.
      throw new SetUnavailable(`group "${s.name}" cannot be written: ${first.message}`);
    }
    await search(newcomers, first);
    return bad;
  }

  /** Back to what the firewall holds, with this commit's removals applied again. */
  private resetShards(shards: Shard[]): void {
    for (const s of shards) s.members = s.before.filter((m) => m !== PLACEHOLDER_MEMBER && !s.removing.has(m));
  }

  /** A member whose object vanished: ours are recreated from their name, others dropped from our write. */
  private async repairMissing(family: AddressFamily, s: Shard, result: CommitResult): Promise<void> {
    const existing = new Set((await this.observe('listAddresses', () => this.fw.listAddresses(family))).map((a) => a.name));
    const groups = new Set(this.o.groups[family]);
    for (const m of s.members) {
      if (existing.has(m) || groups.has(m)) continue;
      const ip = ipOf(m);
      if (ip) {
        await this.observe('ensureAddress', () => this.fw.ensureAddress(family, { name: m, subnet: cidrOf(ip), comment: ownerComment({ ip, family, label: 'repaired: its object had been deleted' }) }));
        result.problems.push(`member ${m} of "${s.name}" had lost its address object: recreated`);
      } else {
        s.before = s.before.filter((x) => x !== m);
        result.problems.push(`member ${m} of "${s.name}" names no object: left out of our write`);
      }
    }
  }

  private async addressComments(family: AddressFamily): Promise<Map<string, string>> {
    return new Map((await this.ourNamedObjects(family)).map((a) => [a.name, a.comment]));
  }

  /** Every address object named like ours (`ads-*`), in one list read. */
  private ourNamedObjects(family: AddressFamily): Promise<FortiAddress[]> {
    return this.observe('listAddresses', () => this.fw.listAddresses(family, { namePrefix: ADDRESS_NAME_PREFIX }));
  }

  /** Deletes the objects of these IPs when they carry our marker; one in use elsewhere (an operator's group) is kept. */
  private async deleteOurObjects(family: AddressFamily, ips: string[], comments: Map<string, string>, result: CommitResult): Promise<void> {
    await inPool(ips, OBJECT_CALLS_IN_FLIGHT, async (ip) => {
      const name = addressObjectName(ip);
      if (!comments.has(name)) return;
      if (!isOurs(comments.get(name))) {
        result.problems.push(`address ${name} is not ours (no "${OWNER_MARKER}" comment): left in place`);
        return;
      }
      try {
        await this.observe('deleteAddress', () => this.fw.deleteAddress(family, name));
      } catch (err) {
        if (err instanceof FortiOSError && err.kind === 'in-use') {
          result.problems.push(`address ${name} is used by another object (an operator's group or policy): left in place`);
          return;
        }
        if (err instanceof FortiOSError && !err.retryable) {
          result.problems.push(`address ${name} could not be deleted: ${err.message}`);
          return;
        }
        throw err;
      }
    });
  }

  /**
   * Ours in this set: members of its shards whose object carries our marker, plus marked objects that are in
   * no group at all (leftovers, e.g. of a block terminated between its object and its membership). A marked
   * object in some other group is another set's (another target sharing the VDOM) or an operator's.
   */
  async list(set: string): Promise<OwnedEntry[]> {
    const family = this.familyOf(set);
    const shards = await this.readShards(family);
    const comments = await this.addressComments(family);
    const members = new Set(shards.flatMap((s) => s.members));
    const inSomeGroup = new Set((await this.observe('listGroups', () => this.fw.listGroups(family))).flatMap((g) => g.members));
    const out: OwnedEntry[] = [];
    for (const [name, comment] of comments) {
      const ip = ipOf(name);
      if (!ip || !isOurs(comment)) continue;
      if (members.has(name)) out.push({ ip, family, enforced: true, proof: 'marker' });
      else if (!inSomeGroup.has(name)) out.push({ ip, family, enforced: false, proof: 'marker' });
    }
    return out;
  }

  async check(): Promise<Finding[]> {
    return groupPolicyFindings(this.fw, this.o.groups);
  }
}

/** The set as a whole cannot be written now (its group is missing…): the enforcer backs off and tries again. */
export class SetUnavailable extends Error {}

/** `ads-<canonical ip or cidr>` → the IP; undefined for any other name (not ours by structure). */
export function ipOf(name: string): string | undefined {
  if (!name.startsWith(ADDRESS_NAME_PREFIX)) return undefined;
  const ip = name.slice(ADDRESS_NAME_PREFIX.length);
  return canonicalIp(ip) === ip ? ip : undefined;
}

export function cidrOf(ip: string): string {
  return ip.includes('/') ? ip : ip.includes(':') ? `${ip}/128` : `${ip}/32`;
}

function classify(err: unknown): Outcome {
  const reason = err instanceof Error ? err.message : String(err);
  return err instanceof FortiOSError && !err.retryable ? { status: 'failed', reason } : { status: 'retry', reason };
}

function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
