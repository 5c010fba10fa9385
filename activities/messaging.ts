/**
 * Messages between blocks and their set's enforcer, sent through the Temporal client from activities rather
 * than as a workflow's external signals: the sender's history holds one marker instead of two events and the
 * extra workflow task an acknowledgement wakes. Every message is idempotent on the receiving side.
 */
import { Context } from '@temporalio/activity';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { inPool } from '../src/pool';
import { runningBlocks } from '../src/temporal/visibility';
import { changesSignal, enforcerWorkflowId, reassertSignal, resyncSignal, SA, SetAnswer, setAnswerSignal, SetChange, WORKFLOW_TYPES } from '../workflows/messages';

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
 * through this process's outbox for that enforcer (EnforcerOutbox): what arrives while a signal to it is in
 * flight leaves with the next one. Resolves once the signal that carries them was accepted.
 */
export async function sendToEnforcer(d: MessagingDeps, target: string, set: string, changes: SetChange[] | 'resync'): Promise<void> {
  if (changes === 'resync') return signalEnforcer(d, target, set, 'resync');
  let byEnforcer = outboxes.get(d.temporal);
  if (!byEnforcer) outboxes.set(d.temporal, (byEnforcer = new Map()));
  const id = enforcerWorkflowId(target, set);
  let outbox = byEnforcer.get(id);
  if (!outbox) byEnforcer.set(id, (outbox = new EnforcerOutbox((batch) => signalEnforcer(d, target, set, batch))));
  await outbox.post(changes);
}

/** Changes in one signal at most: a change is a few hundred bytes, a signal's payload may be 2 MB. */
export const CHANGES_PER_SIGNAL = 500;

/** This process's outbox per enforcer, per client (a test or the bench runs several stacks in one process). */
const outboxes = new WeakMap<Client, Map<string, EnforcerOutbox>>();

/**
 * One enforcer's outbox in this process, a group commit: a change handed over while no signal to the enforcer
 * is in flight leaves at once (no timer: a trickle waits for nothing); those handed over while one is in flight
 * leave together in the next (at most CHANGES_PER_SIGNAL each). In a burst, hundreds of blocks' requests make a
 * few signals instead of one each. Why it matters: the server buffers the signals that arrive while a workflow
 * task of the enforcer runs, and force-closes the task once more than 100 are buffered
 * (`history.maximumBufferedEventsBatch`, cause FORCE_CLOSE_COMMAND). One signal per change let a fill of
 * 22 blocks/s on a loaded worker (5 s tasks) do that; each retry replayed the whole history and was slower
 * still, and the run reached the server's 10,000 signals per run with thousands of blocks unanswered.
 * A failed signal fails every change it carried (their senders retry); the next batch is tried anyway.
 */
export class EnforcerOutbox {
  private queue: { changes: SetChange[]; done: (err?: unknown) => void }[] = [];
  private sending = false;

  constructor(private readonly send: (changes: SetChange[]) => Promise<void>) {}

  post(changes: SetChange[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ changes, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (!this.sending) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length) {
      let n = this.queue[0]!.changes.length;
      let take = 1;
      while (take < this.queue.length && n + this.queue[take]!.changes.length <= CHANGES_PER_SIGNAL) n += this.queue[take++]!.changes.length;
      const batch = this.queue.splice(0, take);
      let failure: unknown;
      try {
        await this.send(batch.flatMap((p) => p.changes));
      } catch (err) {
        failure = err ?? new Error('signal failed');
      }
      for (const p of batch) p.done(failure);
    }
    this.sending = false;
  }
}

async function signalEnforcer(d: MessagingDeps, target: string, set: string, changes: SetChange[] | 'resync'): Promise<void> {
  await d.temporal.workflow.signalWithStart(WORKFLOW_TYPES.enforcer, {
    workflowId: enforcerWorkflowId(target, set),
    taskQueue: d.taskQueue,
    args: [{ target, set }],
    ...(changes === 'resync' ? { signal: resyncSignal, signalArgs: [] as [] } : { signal: changesSignal, signalArgs: [changes] as [SetChange[]] }),
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

export function createMessagingActivities(d: MessagingDeps) {
  return {
    /** A block's add or remove. */
    async askEnforcer(input: { target: string; set: string; change: SetChange }): Promise<void> {
      await sendToEnforcer(d, input.target, input.set, [input.change]);
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
