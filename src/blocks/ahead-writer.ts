/**
 * The API's own firewall writes for early adds (workflows/early-adds.ts), on backends that can take adds beside
 * the set's writer (EnforcementBackend.addAhead: a pushed feed). Writing from here takes every Temporal round
 * trip off the way to the firewall: the webhook's event is one push away from enforced. The enforcer has been
 * told first (BlockService.earlyAdd), so every write here has a durable check scheduled before it is made.
 *
 * Per set, a few writes run at once; adds that arrive while they are all out go together in the next one (group
 * commit), so a busy trickle does not turn into a request per IP. Nothing here retries: a failed write costs only
 * the head start, and the block's own add, through the enforcer, is what the promise rests on.
 */
import type { EnforcementBackend, Entry } from '../enforcement';

/** Writes in flight per set from one API process; more adds wait for the next write and go together. */
const IN_FLIGHT_PER_SET = 4;

interface SetLane {
  inFlight: number;
  waiting: { entry: Entry; done: (err?: unknown) => void }[];
}

export class AheadWriter {
  private readonly lanes = new Map<string, SetLane>();

  constructor(private readonly backends: Map<string, EnforcementBackend>) {}

  /** Whether this target's backend takes adds beside its writer. */
  takes(target: string): boolean {
    return typeof this.backends.get(target)?.addAhead === 'function';
  }

  /** Resolves once the entry's write is done; rejects with the write's error. */
  write(target: string, set: string, entry: Entry): Promise<void> {
    const backend = this.backends.get(target);
    if (!backend?.addAhead) return Promise.reject(new Error(`target "${target}" takes no adds ahead of its enforcer`));
    const key = `${target}\u0000${set}`;
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { inFlight: 0, waiting: [] }));
    const l = lane;
    return new Promise<void>((resolve, reject) => {
      l.waiting.push({ entry, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (l.inFlight < IN_FLIGHT_PER_SET) void this.flush(backend, set, l);
    });
  }

  private async flush(backend: EnforcementBackend, set: string, lane: SetLane): Promise<void> {
    while (lane.waiting.length > 0) {
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
