/**
 * The activities that touch enforcement: a block's admission (the full safety policy with the worker's
 * configuration, and which set holds it) and one enforcer tick (a commit on the target's backend). Thin
 * adapters over the injected backends: which backend is in use, they do not know.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { currentBlockState } from '../src/temporal/visibility';
import { inPool } from '../src/pool';

/** Strongly consistent block checks in flight at once for one tick's repairs. */
const CHECKS_IN_FLIGHT = 16;
/**
 * How long one check waits for a block's open workflow task. A new block's first task (and a cancel's) waits for
 * its enforcer's commit inside a local activity; a check from that enforcer's own commit that waited for such a
 * task would wait for itself (seen once as a tick stuck with 500 queued after a stale-write re-check).
 */
const BLOCK_QUERY_WAIT_MS = 1000;
import type { EnforcementBackend, Entry } from '../src/enforcement';
import type { CommitResult } from '../src/enforcement/port';
import { checkIp, IpPolicy } from '../src/policy/ip-policy';
import type { EnforcementRef, SetChange, Waiter } from '../workflows/messages';
import type { Batching } from '../workflows/batch-policy';
import { tickAnswers } from '../workflows/change-queue';
import { AnswerTo, signalAnswers } from './messaging';

export interface EnforcementDeps {
  /** One backend per firewall target name. */
  backends: Map<string, EnforcementBackend>;
  ipPolicy: IpPolicy;
  temporal: Client;
  /** Optional debounce of enforcer ticks (GROUP_BATCH_WINDOW), read at every tick: a restart changes it for running enforcers. */
  batchWindowMs: number;
  /** Further admission checks (the runtime allowlist): a reason to refuse, or undefined. */
  admission?: (target: string, ip: string) => Promise<string | undefined>;
}

export type Admission = { ok: true; enforcement: EnforcementRef } | { ok: false; reason: string };

export interface ApplyResult extends CommitResult {
  batchWindowMs: number;
  /** The backend's tick sizes, read by the enforcer at every tick. */
  batching: Batching;
  /** > 1 when an earlier attempt failed: a write of it may still land late (the enforcer re-checks). */
  attempt: number;
  /**
   * Set when this commit answered its blocks itself (a small tick, `answerUpTo`): the answers it could not
   * deliver, for the enforcer to send the usual way. Absent: nothing was answered here.
   */
  undelivered?: AnswerTo[];
}

export function createEnforcementActivities(d: EnforcementDeps) {
  const backendOf = (target: string) => d.backends.get(target);

  /** Does a running block of this IP (pending or active) hold it? */
  async function blockHolds(target: string, ip: string): Promise<boolean> {
    // Bounded: this runs inside the enforcer's commit, and a block's open task may be waiting for this enforcer.
    // Past the wait, the state the block last published decides (pending or active: it holds the IP).
    const state = await currentBlockState(d.temporal, target, ip, { queryWaitMs: BLOCK_QUERY_WAIT_MS });
    return state === 'pending' || state === 'active';
  }

  return {
    /**
     * Right before a block asks for enforcement, the full safety policy (allowlist included) is checked once
     * more with the worker's current configuration: the API checked it too; this is defence in depth.
     */
    async admitBlock(input: { target: string; ip: string; family: 'ipv4' | 'ipv6' }): Promise<Admission> {
      const backend = backendOf(input.target);
      if (!backend) return { ok: false, reason: `unknown firewall target "${input.target}"` };
      const verdict = checkIp(input.ip, d.ipPolicy);
      if (!verdict.ok) return { ok: false, reason: verdict.reason };
      const refused = await d.admission?.(input.target, input.ip);
      if (refused) return { ok: false, reason: refused };
      return { ok: true, enforcement: { set: backend.setFor(input.family), refreshOnExtend: backend.refreshOnExtend } };
    },

    /**
     * One enforcer tick: the coalesced changes of one set in one commit. Reconciliation's removals (no owner)
     * are checked against the blocks once more, right now: a block that started meanwhile keeps its entry.
     */
    async applyChanges(input: {
      target: string;
      set: string;
      changes: SetChange[];
      resync: boolean;
      /**
       * Who waits for each change (parallel to `changes`) and how many answers this commit may deliver itself:
       * a small tick's answers go out right after its write, in the same local activity, instead of in an
       * activity of their own the enforcer schedules (a server round trip, and the next tick waited for it).
       */
      waiters?: Waiter[][];
      answerUpTo?: number;
    }): Promise<ApplyResult> {
      const backend = backendOf(input.target);
      if (!backend) throw ApplicationFailure.nonRetryable(`unknown firewall target "${input.target}"`, 'UnknownTarget');
      const adds: Entry[] = [];
      const removes: Entry[] = [];
      const kept: CommitResult['outcomes'] = {};
      // A repair (no owner: reconciliation, the enforcer's re-check) is applied only where the blocks agree right
      // now: an add while a block holds the IP, a removal while none does (one may have started or ended since).
      // An early add (sent by the API beside the block's start) goes out unchecked: its block may not exist yet;
      // the enforcer checks it later (workflows/early-adds.ts). Like a repair, it writes nothing where the set holds
      // the entry already. A re-add the enforcer vouches for (it removed nothing of that IP since the block was listed
      // active: workflows/release-log.ts) needs no check either.
      const holds = new Map<string, boolean>();
      await inPool(input.changes.filter((c) => !c.owner && !c.early && !c.vouched), CHECKS_IN_FLIGHT, async (c) => void holds.set(c.ip, await blockHolds(input.target, c.ip)));
      for (const c of input.changes) {
        const entry: Entry = { ip: c.ip, family: c.family, expiresAtMs: c.expiresAtMs, label: c.label, ...(c.owner ? {} : { recheck: true }) };
        const agreed = c.owner || ((c.early || c.vouched) && c.op === 'add') || holds.get(c.ip) === (c.op === 'add');
        if (!agreed) kept[c.ip] = { status: 'ok', reason: c.op === 'add' ? 'not re-added: no block holds it now' : 'kept: a block holds it again' };
        else if (c.op === 'add') adds.push(entry);
        else removes.push(entry);
      }
      let result: CommitResult;
      try {
        result = await backend.commit(input.set, { adds, removes, resync: input.resync });
      } catch (err) {
        // The set as a whole is unavailable (firewall down, group missing, credentials): the enforcer backs off.
        throw ApplicationFailure.retryable(err instanceof Error ? err.message : String(err), 'SetUnavailable');
      }
      const applied: ApplyResult = { ...result, outcomes: { ...result.outcomes, ...kept }, batchWindowMs: d.batchWindowMs, batching: backend.batching, attempt: Context.current().info.attempt };
      if (input.waiters && input.answerUpTo) {
        const { answers } = tickAnswers(input.target, input.changes.map((change, i) => ({ change, waiters: input.waiters![i] ?? [] })), applied);
        if (answers.length <= input.answerUpTo) applied.undelivered = (await signalAnswers(d.temporal, answers)).map((f) => f.answer);
      }
      return applied;
    },
  };
}
