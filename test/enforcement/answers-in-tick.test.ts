/**
 * A small tick answers its blocks from its own commit (applyChanges), so the enforcer schedules no activity
 * for them and its next tick does not wait: here the activity runs against the dry-run backend and a fake
 * Temporal client that records signals (one block's signal fails). What a commit cannot deliver comes back to
 * the enforcer, which sends it the usual way — an answer is never dropped; a big tick answers nothing itself.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplyResult, createEnforcementActivities } from '../../activities/enforcement';
import { DryRunBackend, DRY_RUN_SET } from '../../src/enforcement/dry-run';
import { DEFAULT_IP_POLICY } from '../../src/policy/ip-policy';
import type { SetChange, Waiter } from '../../workflows/messages';

function fakeTemporal(fail: Record<string, 'gone' | 'error'>) {
  const sent: { workflowId: string; answer: unknown }[] = [];
  const client = {
    workflow: {
      getHandle: (workflowId: string) => ({
        signal: async (_def: unknown, answer: unknown) => {
          if (fail[workflowId] === 'gone') throw new WorkflowNotFoundError('gone', workflowId, undefined);
          if (fail[workflowId] === 'error') throw new Error('frontend unavailable');
          sent.push({ workflowId, answer });
        },
      }),
    },
  } as unknown as Client;
  return { client, sent };
}

const add = (ip: string): { change: SetChange; waiters: Waiter[] } => {
  const owner = { workflowId: `block:fw1:${ip}`, lineage: `run-${ip}` };
  return { change: { op: 'add', ip, family: 'ipv4', owner }, waiters: [{ ...owner, op: 'add' }] };
};

async function tick(entries: { change: SetChange; waiters: Waiter[] }[], fail: Record<string, 'gone' | 'error'>, answerUpTo?: number) {
  const { client, sent } = fakeTemporal(fail);
  const acts = createEnforcementActivities({ backends: new Map([['fw1', new DryRunBackend()]]), ipPolicy: DEFAULT_IP_POLICY, temporal: client, batchWindowMs: 0 });
  const result: ApplyResult = await new MockActivityEnvironment().run(acts.applyChanges, {
    target: 'fw1',
    set: DRY_RUN_SET,
    changes: entries.map((e) => e.change),
    resync: false,
    ...(answerUpTo ? { waiters: entries.map((e) => e.waiters), answerUpTo } : {}),
  });
  return { result, sent };
}

test('a small tick signals its blocks itself; an ended block is skipped; a failed signal comes back undelivered', async () => {
  const entries = ['192.0.2.1', '192.0.2.2', '192.0.2.3'].map(add);
  const { result, sent } = await tick(entries, { 'block:fw1:192.0.2.2': 'gone', 'block:fw1:192.0.2.3': 'error' }, 32);
  expect(sent).toEqual([{ workflowId: 'block:fw1:192.0.2.1', answer: { op: 'add', ip: '192.0.2.1', lineage: 'run-192.0.2.1', ok: true } }]);
  expect(result.undelivered).toEqual([{ workflowId: 'block:fw1:192.0.2.3', op: 'add', ip: '192.0.2.3', lineage: 'run-192.0.2.3', ok: true }]);
});

test('a tick with more answers than answerUpTo (a flood) answers nothing itself; without answerUpTo neither (histories of before)', async () => {
  const entries = Array.from({ length: 5 }, (_, i) => add(`192.0.2.${10 + i}`));
  const big = await tick(entries, {}, 4);
  expect(big.sent).toEqual([]);
  expect(big.result.undelivered).toBeUndefined();
  const old = await tick(entries, {});
  expect(old.sent).toEqual([]);
  expect(old.result.undelivered).toBeUndefined();
});
