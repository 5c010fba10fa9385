/**
 * The API's own firewall writes for early adds (workflows/early-adds.ts), on backends that can take adds beside
 * the set's writer (EnforcementBackend.addAhead: a pushed feed). Writing from here takes every Temporal round
 * trip off the way to the firewall: the webhook's event is one push away from enforced. The enforcer has been
 * told first (BlockService.earlyAdd), so every write here has a durable check scheduled before it is made.
 *
 * Per set, a few writes run at once; adds that arrive while they are all out go together in the next one (group
 * commit), so a busy trickle does not turn into a request per IP. Nothing here retries: a failed write costs only
 * the head start, and the block's own add, through the enforcer, is what the promise rests on.
 *
 * In a burst (BurstGate), where the backend writes any number of entries in one call (`earlyInBurst: 'ahead'`: a
 * feed's add command, the banned list's add_users), adds still go ahead, but they linger: one write per
 * BURST_LINGER_MS per set carries all that came meanwhile. Why: in a burst the blocks' first tasks wait for the
 * server, not for the firewall (5,000 new blocks: 37 s p50 from start to pick-up on the 2-core box), and the entry
 * is on the firewall once the block's start is durable. (`earlyInBurst: 'enforcer'`, an address group: the early add
 * goes to the enforcer only, which writes it in its flood ticks.) At most EARLY_BURST_MAX early adds per set within
 * BURST_CLAIM_MS, either way: each is a check its enforcer carries until claimed or due, and carries across
 * continue-as-new (~90 bytes each; a payload may be 2 MB).
 */
import type { EnforcementBackend, Entry } from '../enforcement';
import { BURST_CLAIM_MS, EARLY_BURST_MAX } from '../../workflows/early-adds';

/** Writes in flight per set from one API process; more adds wait for the next write and go together. */
const IN_FLIGHT_PER_SET = 4;
/** In a burst: how long an add waits for others to go with it (one write per this much per set). */
export const BURST_LINGER_MS = 2_000;

interface SetLane {
  inFlight: number;
  waiting: { entry: Entry; done: (err?: unknown) => void }[];
  /** A lingering write is due (a burst's adds wait for it). */
  linger?: ReturnType<typeof setTimeout>;
  /** When this process wrote the lane's burst adds of the last BURST_CLAIM_MS, oldest first. */
  burstAdds: number[];
}

export class AheadWriter {
  private readonly lanes = new Map<string, SetLane>();

  constructor(private readonly backends: Map<string, EnforcementBackend>) {}

  /** Whether this target's backend takes adds beside its writer. */
  takes(target: string): boolean {
    return typeof this.backends.get(target)?.addAhead === 'function';
  }

  /**
   * How this target's early adds go in a burst (EnforcementBackend.earlyInBurst): written here, a batch per write
   * (`ahead`), or handed to the enforcer (`enforcer`); undefined: none.
   */
  earlyInBurst(target: string): 'ahead' | 'enforcer' | undefined {
    const how = this.backends.get(target)?.earlyInBurst;
    return how === 'ahead' && !this.takes(target) ? undefined : how;
  }

  /**
   * In a burst: whether one more early add of this set may go now (EARLY_BURST_MAX within BURST_CLAIM_MS); if so,
   * it is counted. False: the block's own add, through the enforcer, is its only way.
   */
  admitBurstAdd(target: string, set: string, nowMs: number): boolean {
    if (!this.earlyInBurst(target)) return false;
    const lane = this.lane(target, set);
    while (lane.burstAdds.length && lane.burstAdds[0]! <= nowMs - BURST_CLAIM_MS) lane.burstAdds.shift();
    if (lane.burstAdds.length >= EARLY_BURST_MAX) return false;
    lane.burstAdds.push(nowMs);
    return true;
  }

  /**
   * Resolves once the entry's write is done; rejects with the write's error. `lingerMs` (a burst): the write waits
   * that long for others to go with it, unless one is due or going out already.
   */
  write(target: string, set: string, entry: Entry, lingerMs = 0): Promise<void> {
    const backend = this.backends.get(target);
    if (!backend?.addAhead) return Promise.reject(new Error(`target "${target}" takes no adds ahead of its enforcer`));
    const l = this.lane(target, set);
    return new Promise<void>((resolve, reject) => {
      l.waiting.push({ entry, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (lingerMs > 0) {
        l.linger ??= setTimeout(() => {
          l.linger = undefined;
          if (l.inFlight < IN_FLIGHT_PER_SET) void this.flush(backend, set, l);
        }, lingerMs);
        // A stopping process does not wait for it: a lost early write costs only the head start.
        l.linger.unref?.();
      } else if (l.inFlight < IN_FLIGHT_PER_SET) void this.flush(backend, set, l);
    });
  }

  private lane(target: string, set: string): SetLane {
    const key = `${target}\u0000${set}`;
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { inFlight: 0, waiting: [], burstAdds: [] }));
    return lane;
  }

  private async flush(backend: EnforcementBackend, set: string, lane: SetLane): Promise<void> {
    // Adds lingering for a burst's write wait for its timer.
    while (lane.waiting.length > 0 && !lane.linger) {
      const batch = lane.waiting.splice(0, lane.waiting.length);
      lane.inFlight++;
      let failure: unknown;
      try {
        await backend.addAhead!(set, batch.map((w) => w.entry));
      } catch (err) {
        failure = err ?? new Error('write failed');
      } finally {
        lane.inFlight--;
      }
      for (const w of batch) w.done(failure);
    }
  }
}
