/**
 * enforcer: one entity per (target, enforcement set), the only writer of that set on the firewall.
 *
 * FortiOS has no optimistic locking, so two read-modify-write updates of one group (or one feed) lose
 * updates. Blocks send their changes here; one tick hands the coalesced batch to the set's backend (one
 * commit: a handful of firewall calls for thousands of IPs) and answers every waiting block. The entity
 * remembers nothing that the blocks and the firewall do not also hold: every commit is a delta against what
 * the firewall holds now, so a fresh run (after Terminate or Reset) never drops an entry it did not create,
 * and it nudges the blocks whose requests it may have lost to send them again. What it does remember — which
 * IPs it removed lately (release-log.ts) — only ever spares a check: where that memory is missing, the check runs.
 *
 * Failure isolation is the backend's: an entry that no retry can fix fails alone, with the firewall's
 * reason, and the rest of the batch lands. When the firewall is down as a whole, the entity backs off
 * between ticks and keeps taking messages; it continues as new on a budget of signals and of history (a replay
 * of a whole run must stay short on a busy worker), carrying its queue.
 */
import * as wf from '@temporalio/workflow';
import { answering, repairing, setWriter } from './activity-options';
import { ChangeQueue, tickAnswers } from './change-queue';
import { ArrivalLog, Batching, burstWaitMs, DEFAULT_BATCHING, floodBatchSize } from './batch-policy';
import { CHECK_BATCH_MS, CLAIM_MS, EarlyAdds } from './early-adds';
import { ReleaseLog } from './release-log';
import { InlineAnswers, waiterKey } from './inline-answers';
import {
  changesSignal,
  EnforcerInput,
  EnforcerStats,
  enforcerStatusQuery,
  enforcerTaskQueue,
  resyncSignal,
  SetChange,
  submitChangesUpdate,
} from './messages';

/** Continue as new after this many signals in one run (the server refuses signals past 10,000 per run). */
const SIGNALS_PER_RUN = 2000;
/**
 * ...or, once its history is this long, at the first quiet moment. Any task that misses the worker's cache (a
 * failed task, a restart, a continue-as-new the server refused) replays the whole run, and that replay must fit in
 * the 10 s task timeout on a busy worker. Signals alone did not bound it: an outbox signal carries up to 500
 * changes. Measured at 58,000 blocks on PostgreSQL: a run of 3,350 events (6 MB) replays in 2.4 s on an idle
 * worker and took longer than 10 s on the loaded one, every retry again, while the run grew. 1,000 events replay
 * in 0.8 s idle.
 *
 * Quiet, because the server refuses a continue-as-new when a signal came in during that task (UNHANDLED_COMMAND)
 * and the retry replays the whole run: while signals keep coming faster than a replay takes, no retry ever
 * finishes (temporalio/temporal#1289). At 20 events/s (~40 signals/s) an enforcer that continued as new at 1,000
 * events held every block for seconds, until the events stopped. So it continues on this budget only when nothing
 * arrived for QUIET_MS, when a retry is likely to finish too; under a steady stream the run goes on to the signal
 * budget or the server's suggestion, as before.
 */
export const EVENTS_PER_RUN = 1000;
export const BYTES_PER_RUN = 1 << 20;
export const QUIET_MS = 1000;
/** What continue-as-new carries at most (payload size); the rest is recovered by nudging the waiting blocks. */
export const MAX_CARRIED = 5000;
/**
 * Runs that start from now on (histories of before keep their rules; decided once, at a run's start):
 * - the byte budget counts the run's own history, not its input. A run carrying a queue of 3,000–5,000 changes
 *   (0.8–1.1 MB) was born past BYTES_PER_RUN and continued again at its first quiet second, tick after tick;
 * - the run budgets wait while more than MAX_CARRIED changes are queued: the queue drains (1,000 a tick) before it
 *   is carried, rather than being cut and recovered by nudging every waiting block;
 * - a recovering run's nudge goes out beside its ticks' answers, not before them. The answers waited for it, and
 *   a nudge of 35,000 waiting blocks takes minutes: no block was answered meanwhile, the run's history passed
 *   twice its budget on the nudged blocks' resends, and it continued as new with its queue cut again — a new nudge
 *   of the same blocks, every ~4 minutes (`scale` to 50,000 on PostgreSQL, 2026-11-28: 35,213 blocks pending for
 *   good). A block answered before its nudge lands sends its add once more: coalesced, harmless.
 */
const DRAIN_BEFORE_CARRY = 'drain-before-carry';
const BACKOFF_MAX_MS = 60_000;
/**
 * A write the client gave up on (timeout, reset) may still land on the firewall after a newer one and undo
 * it — FortiOS has no optimistic locking. After such an uncertain tick, the changes committed in this window
 * are committed once more, when any stale request is surely past.
 */
const STALE_WRITE_RECHECK_MS = 15_000;
const RECENT_MAX = 5000;
/**
 * A tick with at most this many answers delivers them from its own commit (one wave of signals, ~10 ms):
 * no activity of their own, and the next tick does not wait for them. Bigger ticks (a flood's) answer through
 * `answering`, so a commit never holds the task open for a thousand signals.
 */
const ANSWERS_IN_TICK = 32;
/**
 * How long a submitChanges Update waits for the answers to its changes. Its sender is a block's local activity,
 * which holds that block's workflow task (and a slot of the blocks' worker) meanwhile: a commit takes ~100 ms,
 * a flood's tick waits up to 2 s for its batch (batch-policy.ts); when the firewall is slow or down, the Update
 * completes without the answers, which follow by signal. Well inside a block's workflow-task timeout (20 s,
 * BLOCK_TASK_TIMEOUT in src/blocks/service.ts; blocks of before: 10 s): at 7 s against 10 s, a 5,000-IP burst saw
 * hundreds of blocks' first tasks time out (the task is retried whole, its add sent again).
 */
export const SUBMIT_WAIT_MS = 3000;

export async function enforcer(input: EnforcerInput): Promise<void> {
  const { target, set } = input;
  const queue = new ChangeQueue(input.carried?.queue);
  const stats: EnforcerStats = input.carried?.stats ?? { ticks: 0, writes: 0, adds: 0, removes: 0, evictions: 0, failures: 0 };
  // A fresh run re-checks the whole set once (capacity, placeholder, shards), and — since a terminated or reset
  // predecessor may have held requests — asks the blocks that still wait to send them again.
  let resync = !input.carried;
  const recover = !input.carried || !!input.carried.truncated;
  const drainFirst = wf.patched(DRAIN_BEFORE_CARRY);
  const budget: RunBudget = { baseBytes: drainFirst ? wf.workflowInfo().historySize : 0, drainFirst };
  let signals = 0;
  // The answers submitChanges Updates wait for (inline-answers.ts); on the way to continue-as-new they stop waiting.
  const inline = new InlineAnswers();
  let closing = false;
  let lastArrivalMs = Date.now();
  /** Messages taken so far (workflow time does not move within a task: a count tells arrivals apart). */
  let arrived = 0;
  let batchWindowMs = 0;
  // Ticks are bounded (answers flow, the continue-as-new check runs during a burst of thousands) and, in a
  // flood, made bigger (batch-policy.ts); the backend's numbers come back with every commit.
  let batching: Batching = input.carried?.batching ?? DEFAULT_BATCHING;
  const arrivals = new ArrivalLog();
  // Adds the API sent ahead of their blocks (early-adds.ts): each applied one is checked once its claim time is over.
  // Checks in batches, never for a claimed entry: a timer and a task per entry slowed everything else (patched:
  // the histories of before woke per entry).
  const early = new EarlyAdds(input.carried?.earlyWithdrawals, wf.patched('early-check-batching'));
  let withdrawing = false;
  let withdrawDue = false;
  const withdrawLater = () => {
    // Nothing to check (none pending, or only claimed ones): no timer. Unbatched (histories of before): an empty set.
    if (withdrawing || early.nextDueMs() === undefined || !wf.patched('early-adds')) return;
    withdrawing = true;
    void (async () => {
      // In steps of at most CLAIM_MS + CHECK_BATCH_MS (no entry of a calm claim time is due later than that): a burst's
      // entries wait BURST_CLAIM_MS, and a calm one that comes meanwhile is then checked at most a step late. The
      // step is never shorter than a sleep of before, so histories of before take the same timers.
      for (let next = early.nextDueMs(); next !== undefined && next > Date.now(); next = early.nextDueMs()) await wf.sleep(Math.min(next - Date.now(), CLAIM_MS + CHECK_BATCH_MS));
      withdrawing = false;
      withdrawDue = true;
    })();
  };
  withdrawLater();
  // What this set removed lately: reconciliation's re-adds it vouches for need no check at commit time (release-log.ts).
  const releases = new ReleaseLog(Date.now(), input.carried?.releases);
  let backoffMs = 0;
  let retryingSinceMs: number | undefined;

  // What was committed lately (per IP, latest wins): re-committed after an uncertain write.
  const recent = new ChangeQueue();
  let uncertain = false;
  let lastUncertainMs = 0;
  // At the re-check, each recently changed IP's latest committed change is what the firewall must reflect:
  // the stale request may undo changes committed before it or after it.
  // The re-commit happens between ticks (never while a commit is in flight, whose outcome `recent` does not
  // hold yet): the timer only marks it due.
  // Every uncertain write moves the re-check to 15 s after it: a re-check already pending would otherwise run
  // before this write's stale request lands, and nothing would look again (one timer at a time; it sleeps on).
  let recheckPending = false;
  let recheckDue = false;
  let recheckAtMs = 0;
  const recheckLater = () => {
    recheckAtMs = Date.now() + STALE_WRITE_RECHECK_MS;
    if (recheckPending) return;
    recheckPending = true;
    void (async () => {
      await wf.sleep(STALE_WRITE_RECHECK_MS);
      // Histories of before re-checked once, at the first write's 15 s.
      while (Date.now() < recheckAtMs && wf.patched('recheck-after-last-uncertain')) await wf.sleep(recheckAtMs - Date.now());
      recheckPending = false;
      recheckDue = true;
    })();
  };

  // Every change arrives here, by Update (submitChanges) or, from senders of before, by signal.
  const intake = (changes: SetChange[]) => {
    lastArrivalMs = Date.now();
    arrived++;
    // Early adds are not arrivals of their own (each is followed by its block's add): counted, they would turn a
    // 20/s trickle into a flood. They are dropped in a flood or behind a backlog.
    // One the API writes itself (`ahead`) is never dropped: only its check is scheduled here.
    const own = changes.filter((c) => !c.early);
    // A burst's early adds for this enforcer to write (`claimMs`, not `ahead`): sent once their blocks started, in
    // a burst only, and written in its flood ticks. They are arrivals: the flood they make is what batches them.
    let burstEarly = 0;
    if (own.length < changes.length) {
      let flood: boolean | undefined;
      for (const c of changes) {
        if (!c.early) continue;
        if (c.ahead) {
          early.ahead(c, Date.now());
          withdrawLater();
          continue;
        }
        if (c.claimMs !== undefined) {
          burstEarly++;
          if (early.acceptBurst(queue.size)) queue.push(c);
          continue;
        }
        flood ??= burstWaitMs(batching, arrivals, Date.now(), queue.size) > 0;
        if (early.accept(queue.size, flood)) queue.push(c);
      }
    }
    arrivals.add(Date.now(), own.length + burstEarly);
    for (const c of own) queue.push(c);
  };
  wf.setHandler(changesSignal, (changes) => {
    signals++;
    intake(changes);
  });
  // An Update waits (briefly) for the answers to the changes it carries and returns them: the sender's block
  // takes its answer from its own local activity. What is answered this way is not signalled (inline.route).
  wf.setHandler(submitChangesUpdate, async (changes) => {
    intake(changes);
    const slots = inline.open(changes);
    if (!slots.length) return { answers: [] };
    try {
      await wf.condition(() => closing || inline.settled(slots), SUBMIT_WAIT_MS);
    } finally {
      inline.close(slots);
    }
    return { answers: inline.answers(slots) };
  });
  wf.setHandler(resyncSignal, () => {
    signals++;
    resync = true;
  });
  // The previous tick's answers travel while the next commit is in flight: one round trip less per tick.
  // A fresh run's nudge: in runs of before, answers waited for it (a block answered before its nudge lands sends its
  // add once more); with DRAIN_BEFORE_CARRY they go beside it, and only continue-as-new waits for it (answered()).
  let nudging = recover;
  wf.setHandler(enforcerStatusQuery, () => ({ target, set, queued: queue.size, stats, retryingSinceMs, ...(nudging ? { nudging } : {}) }));
  const nudge: Promise<unknown> = recover ? repairing.nudgeWaitingBlocks({ target, set }).catch(() => undefined).finally(() => void (nudging = false)) : Promise.resolve();
  let replying: Promise<unknown> = drainFirst ? Promise.resolve() : nudge;
  // What continue-as-new waits for: the last answers, and the nudge (already part of them in histories of before).
  const answered = () => Promise.all([replying, nudge]);
  // Continuing as new: the Updates stop waiting (their changes travel in the carried queue, answered by signal).
  const close = () => void (closing = true);
  const work = () => queue.size > 0 || resync || recheckDue || withdrawDue;
  // Quiet also means no stale-write re-check pending: `recent` is not carried, so a new run would skip it.
  const quiet = () => !recheckPending && Date.now() - lastArrivalMs >= QUIET_MS;
  for (;;) {
    // Over the history budget: wake up once nothing arrived for QUIET_MS, and continue as new then.
    if (overHistoryBudget(budget) && wf.patched(RUN_BUDGET)) {
      if (!work() && !(await wf.condition(work, QUIET_MS))) {
        if (quiet()) await continueAsNew(input, queue, stats, answered(), batching, early, releases, close);
        continue;
      }
    } else await wf.condition(work);
    if (withdrawDue) {
      withdrawDue = false;
      for (const c of early.due(Date.now())) queue.push(c);
      withdrawLater();
      if (queue.size === 0 && !resync && !recheckDue) continue;
    }
    if (recheckDue) {
      recheckDue = false;
      for (const ip of recent.ips()) queue.push({ ...recent.get(ip)!.change, owner: undefined });
      if (queue.size === 0 && !resync) continue;
    }
    // A trickle needs no timer: while one commit is in flight the next changes pile up and go out together
    // (group commit). An optional debounce (GROUP_BATCH_WINDOW) trades latency for even fewer writes.
    if (batchWindowMs > 0) await wf.sleep(batchWindowMs);
    // In a flood, wait (bounded) for a bigger tick: a timer, so only where the history expects one.
    const waitMs = burstWaitMs(batching, arrivals, Date.now(), queue.size);
    if (waitMs > 0 && wf.patched('burst-batching')) {
      const enough = floodBatchSize(batching);
      stats.floodWaits = (stats.floodWaits ?? 0) + 1;
      if (wf.patched(FLOOD_IDLE)) {
        // Only while changes keep coming: the senders' Updates wait for this very commit (each process has a few in
        // flight), so when they stopped arriving, what is queued is all that will come before the commit.
        const until = Date.now() + waitMs;
        for (let seen = arrived; queue.size < enough && !resync && Date.now() < until; seen = arrived) {
          if (!(await wf.condition(() => queue.size >= enough || resync || arrived !== seen, Math.min(FLOOD_IDLE_MS, until - Date.now())))) {
            if (Date.now() < until) stats.floodWaitsCutShort = (stats.floodWaitsCutShort ?? 0) + 1;
            break;
          }
        }
      } else await wf.condition(() => queue.size >= enough || resync, waitMs);
    }
    const batch = queue.take(batching.maxPerTick);
    const doResync = resync;
    resync = false;
    stats.ticks++;
    let result;
    // Whose answers this commit delivers itself (when it does): the others are sent below.
    let delegated: Set<string> | undefined;
    try {
      // Histories of before: the answers always went out in an activity of their own.
      const inTick = wf.patched('answers-in-tick') && !nudging ? { waiters: batch.map((q) => inline.unrouted(q.waiters)), answerUpTo: ANSWERS_IN_TICK } : {};
      delegated = inTick.waiters && new Set(inTick.waiters.flat().map(waiterKey));
      result = await setWriter.applyChanges({ target, set, changes: batch.map((q) => releases.vouch(q.change)), resync: doResync, ...inTick });
    } catch (err) {
      // The firewall (or the set as a whole) is unavailable: keep everything, back off, keep taking messages.
      uncertain = true;
      queue.putBack(batch);
      resync ||= doResync;
      stats.failures++;
      stats.lastError = rootMessage(err);
      retryingSinceMs ??= Date.now();
      backoffMs = Math.min(Math.max(1000, backoffMs * 2), BACKOFF_MAX_MS);
      await wf.sleep(backoffMs);
      if (shouldContinueAsNew(budget, queue.size, signals, quiet(), recheckPending)) await continueAsNew(input, queue, stats, answered(), batching, early, releases, close);
      continue;
    }
    backoffMs = 0;
    retryingSinceMs = undefined;
    batchWindowMs = result.batchWindowMs;
    batching = result.batching ?? batching;
    const settled = batch.filter((q) => result.outcomes[q.change.ip]?.status === 'ok').map((q) => q.change);
    const now = Date.now();
    for (const c of settled) {
      recent.push({ ...c, owner: undefined, early: undefined });
      if (c.op === 'remove') releases.record(c.ip, now);
    }
    early.committed(settled, result.evicted.map((e) => e.ip), now);
    withdrawLater();
    for (const e of result.evicted) {
      releases.record(e.ip, now);
      recent.push({ op: 'remove', ip: e.ip, family: e.ip.includes(':') ? 'ipv6' : 'ipv4' });
    }
    if (recent.size > RECENT_MAX) recent.take(recent.size - RECENT_MAX); // the oldest go
    if (uncertain || result.attempt > 1) {
      lastUncertainMs = Date.now();
      recheckLater();
      uncertain = false;
    }
    if (!recheckPending && recent.size > 0 && Date.now() - lastUncertainMs > 4 * STALE_WRITE_RECHECK_MS) recent.take(recent.size);
    stats.writes += result.writes;
    stats.lastApplyAtMs = Date.now();
    stats.lastError = result.problems.length ? result.problems[result.problems.length - 1] : stats.lastError;

    const { answers, retry } = tickAnswers(target, batch, result);
    const retrying = new Set(retry);
    for (const entry of batch) if (!retrying.has(entry)) stats[entry.change.op === 'add' ? 'adds' : 'removes']++;
    stats.evictions += result.evicted.length;
    if (retry.length) queue.putBack(retry);
    // A tick that answered in its commit leaves only what that could not deliver; the others (and histories of
    // before) wait for the previous tick's answers even when they have none: one tick of answers at a time.
    // Those an Update waits for go back with it (whatever the commit delivered itself, it delivered to the others).
    // An Update that stopped waiting while the commit ran left its answers to signals, which the commit was not
    // given (it was asked to leave them to the Update): those go out here too. Evictions the commit delivered.
    const signalled = inline.route(answers);
    const toSend = result.undelivered === undefined ? signalled : [...result.undelivered, ...signalled.filter((a) => a.op !== 'evict' && !delegated?.has(waiterKey(a)))];
    if (result.undelivered === undefined || toSend.length) {
      await replying;
      replying = toSend.length ? answering.answerSetChanges({ answers: toSend }) : Promise.resolve();
    }
    // Entries that only a later try can fix (a transient error on one object): do not spin on them.
    if (retry.length === batch.length && batch.length > 0) await wf.sleep(Math.min(1000 * 2 ** Math.min(stats.failures, 6), BACKOFF_MAX_MS));
    if (shouldContinueAsNew(budget, queue.size, signals, quiet(), recheckPending)) await continueAsNew(input, queue, stats, answered(), batching, early, releases, close);
  }
}

/**
 * A flood's tick waits for its batch only while changes keep arriving: a gap of FLOOD_IDLE_MS ends the wait. Its
 * senders are blocks whose local activities wait, through a few Updates in flight per process, for this commit:
 * once those are in, nothing more comes until it is done, and waiting out the rest of `maxWaitMs` stalled the
 * pipeline (measured in a 5,000-IP burst: ticks every 6-12 s, 500 blocks' workflow tasks held, 223 of them past
 * the 10 s task timeout). Histories of before waited the whole `maxWaitMs`.
 */
const FLOOD_IDLE = 'flood-idle-commit';
export const FLOOD_IDLE_MS = 300;

/** Histories of before continued on signals alone (the patch is asked only where the budget applies). */
const RUN_BUDGET = 'run-budget-when-quiet';

/** How a run measures its budgets (DRAIN_BEFORE_CARRY): its history size at its start, and whether it drains first. */
interface RunBudget {
  baseBytes: number;
  drainFirst: boolean;
}

function overHistoryBudget(budget: RunBudget, times = 1): boolean {
  const info = wf.workflowInfo();
  return info.historyLength >= times * EVENTS_PER_RUN || info.historySize - budget.baseBytes >= times * BYTES_PER_RUN;
}

/**
 * A stream that never pauses for QUIET_MS: at twice the budget, continue as new anyway (once no stale-write
 * re-check is pending). Changes come as Updates
 * now, which a continue-as-new does not refuse (it aborts them, and their senders retry on the new run); only a
 * signal of an old sender or a resync could still make the server refuse it. Before, such a run grew to the
 * signal budget (2,000) with its replay past the task timeout.
 */
const RUN_BUDGET_HARD = 'run-budget-hard';

function shouldContinueAsNew(budget: RunBudget, queued: number, signals: number, quiet: boolean, recheckPending: boolean): boolean {
  if (signals >= SIGNALS_PER_RUN || wf.workflowInfo().continueAsNewSuggested) return true;
  // The server's suggestion (above) still ends a run whose queue does not drain (the firewall down under a flood).
  if (budget.drainFirst && queued > MAX_CARRIED) return false;
  if (quiet && overHistoryBudget(budget) && wf.patched(RUN_BUDGET)) return true;
  // Not while a stale-write re-check is pending (at most 15 s after the last uncertain write): it is not carried.
  return !recheckPending && overHistoryBudget(budget, 2) && wf.patched(RUN_BUDGET_HARD);
}

async function continueAsNew(input: EnforcerInput, queue: ChangeQueue, stats: EnforcerStats, replying: Promise<unknown>, batching: Batching, early: EarlyAdds, releases: ReleaseLog, close: () => void): Promise<never> {
  await replying;
  close();
  await wf.condition(wf.allHandlersFinished);
  const { queue: carriedQueue, truncated } = queue.carry(MAX_CARRIED);
  const earlyWithdrawals = early.carry();
  // A run of before on the blocks' task queue moves to the enforcers' own (messages.ts: enforcerTaskQueue).
  const taskQueue = enforcerTaskQueue(wf.workflowInfo().taskQueue);
  const next = taskQueue === wf.workflowInfo().taskQueue ? wf.continueAsNew<typeof enforcer> : wf.makeContinueAsNewFunc<typeof enforcer>({ taskQueue });
  return next({
    target: input.target,
    set: input.set,
    carried: { queue: carriedQueue, stats, truncated, batching, ...(earlyWithdrawals.length ? { earlyWithdrawals } : {}), releases: releases.carry() },
  });
}

/** The message of the innermost cause (an ActivityFailure wraps the ApplicationFailure that says why). */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e === 'object' && e.cause) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
