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
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return true;
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const check = () => {
        if (!settled && done()) finish(true);
      };
      const finish = (ok: boolean) => {
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(check);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(done()), timeoutMs);
      const poll = setInterval(check, 250);
      this.waiters.add(check);
    });
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
