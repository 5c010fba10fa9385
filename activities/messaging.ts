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

/** Hands changes to a set's enforcer, starting it if it is not running (after a Terminate, too). */
export async function sendToEnforcer(d: MessagingDeps, target: string, set: string, changes: SetChange[] | 'resync'): Promise<void> {
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
