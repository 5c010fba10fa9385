/**
 * Messages between blocks and their set's enforcer, sent through the Temporal client from activities rather
 * than as a workflow's external signals: the sender's history holds one marker instead of two events and the
 * extra workflow task an acknowledgement wakes. Every message is idempotent on the receiving side.
 */
import { Context } from '@temporalio/activity';
import { Client, WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import type { enforcer } from '../workflows/enforcer';
import { waiterKey } from '../workflows/inline-answers';
import { inPool } from '../src/pool';
import { runningBlocks } from '../src/temporal/visibility';
import { enforcerTaskQueue, enforcerWorkflowId, reassertSignal, resyncSignal, SA, SetAnswer, setAnswerSignal, SetChange, submitChangesUpdate, WORKFLOW_TYPES } from '../workflows/messages';

export interface MessagingDeps {
  temporal: Client;
  taskQueue: string;
}

/** An answer and the block it is for. */
export type AnswerTo = SetAnswer & { workflowId: string };

/** Signals to blocks in flight at once. */
const SIGNALS_IN_FLIGHT = 32;

function heartbeat(details?: unknown): void {
  const ctx = Context.current();
  if (!ctx.info.isLocal) ctx.heartbeat(details);
}

/**
 * Hands changes to a set's enforcer, starting it if it is not running (after a Terminate, too). Changes go
 * through this process's outbox for that enforcer (EnforcerOutbox): what arrives while its Updates are in
 * flight leaves with the next one. Resolves once the enforcer holds them, with the answers to those of them that
 * were settled within its short wait (workflows/messages.ts: submitChanges); the others are answered by signal.
 */
export async function sendToEnforcer(d: MessagingDeps, target: string, set: string, changes: SetChange[] | 'resync'): Promise<AnswerTo[]> {
  if (changes === 'resync') return resyncEnforcer(d, target, set).then(() => []);
  let byEnforcer = outboxes.get(d.temporal);
  if (!byEnforcer) outboxes.set(d.temporal, (byEnforcer = new Map()));
  const id = enforcerWorkflowId(target, set);
  let outbox = byEnforcer.get(id);
  if (!outbox) byEnforcer.set(id, (outbox = new EnforcerOutbox((batch) => submitToEnforcer(d, target, set, batch))));
  return outbox.post(changes);
}

/** Changes in one Update at most: a change is a few hundred bytes, a payload may be 2 MB. */
export const CHANGES_PER_SIGNAL = 500;
/**
 * Updates of one process to one enforcer in flight at once. An Update with a block's change stays in flight until
 * its commit (one or two ticks, ~100-200 ms): with fewer, a change — and the API's early add, whose write waits
 * for its acknowledgement — would wait in the outbox for a commit it is not part of. 8 covers a steady 20 events/s
 * (~3 in flight) with room; a burst batches behind them. The server admits 10 per workflow by default
 * (`history.maxInFlightUpdates`; the deploy files set 50): past that a sender is refused with a retryable error
 * and tries again within milliseconds (src/worker/worker.ts, grpcRetries).
 */
export const UPDATES_IN_FLIGHT = 8;

/** This process's outbox per enforcer, per client (a test or the bench runs several stacks in one process). */
const outboxes = new WeakMap<Client, Map<string, EnforcerOutbox>>();

/**
 * One enforcer's outbox in this process, a group commit: a change handed over while fewer than UPDATES_IN_FLIGHT
 * Updates to the enforcer are in flight leaves at once (no timer: a trickle waits for nothing); those handed over
 * meanwhile leave together in the next (at most CHANGES_PER_SIGNAL each). In a burst, hundreds of blocks' requests
 * make a few messages instead of one each. Why it matters: the server buffers what arrives while a workflow task
 * of the enforcer runs and force-closes the task once more than 100 events are buffered
 * (`history.maximumBufferedEventsBatch`, cause FORCE_CLOSE_COMMAND); it admits 10 Updates per workflow at once;
 * and one message per change once let the run reach the server's 10,000 signals per run with thousands of blocks
 * unanswered. A failed message fails every change it carried (their senders retry); the next batch is tried anyway.
 */
export class EnforcerOutbox {
  private queue: { changes: SetChange[]; done: (err: unknown, answers?: Map<string, AnswerTo>) => void }[] = [];
  private inFlight = 0;

  constructor(
    private readonly send: (changes: SetChange[]) => Promise<AnswerTo[] | void>,
    private readonly maxInFlight = UPDATES_IN_FLIGHT,
  ) {}

  /** Resolves with the answers (of those returned with the batch) that are for these changes. */
  post(changes: SetChange[]): Promise<AnswerTo[]> {
    return new Promise<AnswerTo[]>((resolve, reject) => {
      this.queue.push({ changes, done: (err, answers) => (err === undefined ? resolve(changes.flatMap((c) => answers!.get(changeKey(c)) ?? [])) : reject(err)) });
      if (this.inFlight < this.maxInFlight) void this.sendNext();
    });
  }

  private async sendNext(): Promise<void> {
    this.inFlight++;
    try {
      while (this.queue.length) {
        let n = this.queue[0]!.changes.length;
        let take = 1;
        while (take < this.queue.length && n + this.queue[take]!.changes.length <= CHANGES_PER_SIGNAL) n += this.queue[take++]!.changes.length;
        const batch = this.queue.splice(0, take);
        let failure: unknown;
        // Indexed once per batch: each sender takes its own (a burst's batch carries hundreds of senders).
        const answers = new Map<string, AnswerTo>();
        try {
          for (const a of (await this.send(batch.flatMap((p) => p.changes))) ?? []) answers.set(answerKey(a), a);
        } catch (err) {
          failure = err ?? new Error('message failed');
        }
        for (const p of batch) p.done(failure, answers);
      }
    } finally {
      this.inFlight--;
    }
  }
}

/** Who asked what about which IP: an answer's key is its change's (a change without an owner waits for none). */
const answerKey = (a: AnswerTo): string => `${waiterKey(a)}\n${a.ip}`;
const changeKey = (c: SetChange): string => (c.owner ? `${waiterKey({ ...c.owner, op: c.op })}\n${c.ip}` : '');

async function submitToEnforcer(d: MessagingDeps, target: string, set: string, changes: SetChange[]): Promise<AnswerTo[]> {
  const { answers } = await d.temporal.workflow.executeUpdateWithStart(submitChangesUpdate, {
    args: [changes],
    startWorkflowOperation: new WithStartWorkflowOperation<typeof enforcer>(WORKFLOW_TYPES.enforcer, {
      workflowId: enforcerWorkflowId(target, set),
      taskQueue: enforcerTaskQueue(d.taskQueue),
      args: [{ target, set }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: [
        { key: SA.firewallTarget, value: target },
        { key: SA.addressGroup, value: set },
      ],
    }),
  });
  return answers;
}

/** A resync (rare: start-up, reconciliation) stays a signal-with-start. */
async function resyncEnforcer(d: MessagingDeps, target: string, set: string): Promise<void> {
  await d.temporal.workflow.signalWithStart(WORKFLOW_TYPES.enforcer, {
    workflowId: enforcerWorkflowId(target, set),
    taskQueue: enforcerTaskQueue(d.taskQueue),
    args: [{ target, set }],
    signal: resyncSignal,
    signalArgs: [] as [],
    typedSearchAttributes: [
      { key: SA.firewallTarget, value: target },
      { key: SA.addressGroup, value: set },
    ],
  } as Parameters<Client['workflow']['signalWithStart']>[1]);
}

/**
 * One setAnswer signal per block (32 in flight). A block that has ended no longer needs its answer; any other
 * failure is returned, with the answer, for the caller to deliver again.
 */
export async function signalAnswers(temporal: Client, answers: AnswerTo[]): Promise<{ answer: AnswerTo; error: string }[]> {
  const failed: { answer: AnswerTo; error: string }[] = [];
  await inPool(answers, SIGNALS_IN_FLIGHT, async (a) => {
    const { workflowId, ...answer } = a;
    await temporal.workflow
      .getHandle(workflowId)
      .signal(setAnswerSignal, answer)
      .catch((err) => {
        if (!(err instanceof WorkflowNotFoundError)) failed.push({ answer: a, error: err instanceof Error ? err.message : String(err) });
      });
    heartbeat();
  });
  return failed;
}

/** The one answer a block's own change got back (without the block's id: the block knows it). */
export function answerOf(answers: AnswerTo[]): SetAnswer | undefined {
  const a = answers[0];
  if (!a) return undefined;
  const { workflowId: _, ...answer } = a;
  return answer;
}

export function createMessagingActivities(d: MessagingDeps) {
  return {
    /** A block's add or remove; with the answer when the enforcer settled it within its short wait. */
    async askEnforcer(input: { target: string; set: string; change: SetChange }): Promise<SetAnswer | undefined> {
      return answerOf(await sendToEnforcer(d, input.target, input.set, [input.change]));
    },

    /** The enforcer's answers to one tick, one signal per block; a block that has ended no longer needs its answer. */
    async answerSetChanges(input: { answers: AnswerTo[] }): Promise<void> {
      const failed = await signalAnswers(d.temporal, input.answers);
      // Retried as a whole (answers are idempotent: a block takes only what it waits for).
      if (failed.length) throw new Error(`${failed.length} of ${input.answers.length} answers not delivered: ${failed[0].error}`);
    },

    /**
     * A fresh enforcer (after Terminate or Reset, or a continue-as-new that could not carry its whole queue)
     * asks the blocks that wait for an answer to send their requests again.
     */
    async nudgeWaitingBlocks(input: { target: string; set: string }): Promise<number> {
      const ids: string[] = [];
      for await (const b of runningBlocks(d.temporal, { target: input.target, set: input.set, states: ['pending', 'releasing'], currentOnly: true })) ids.push(b.workflowId);
      await inPool(ids, SIGNALS_IN_FLIGHT, async (id) => {
        await d.temporal.workflow.getHandle(id).signal(reassertSignal).catch(() => undefined);
        heartbeat();
      });
      return ids.length;
    },
  };
}
