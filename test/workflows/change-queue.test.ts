/** The enforcer's queue rules: coalescing per IP, and the block's own change always winning over a repair. */
import { answersFor, ChangeQueue } from '../../workflows/change-queue';
import type { SetChange } from '../../workflows/messages';

const owned = (op: 'add' | 'remove', ip: string, lineage = 'L1'): SetChange => ({ op, ip, family: 'ipv4', owner: { workflowId: `block:t:${ip}`, lineage } });
const repair = (op: 'add' | 'remove', ip: string): SetChange => ({ op, ip, family: 'ipv4' });

test('the latest change of an IP wins; every waiter is kept once', () => {
  const q = new ChangeQueue();
  q.push(owned('add', '192.0.2.1'));
  q.push(owned('add', '192.0.2.1'));
  q.push(owned('remove', '192.0.2.1'));
  const [e] = q.take(10);
  expect(e.change.op).toBe('remove');
  expect(e.waiters).toEqual([
    { workflowId: 'block:t:192.0.2.1', lineage: 'L1', op: 'add' },
    { workflowId: 'block:t:192.0.2.1', lineage: 'L1', op: 'remove' },
  ]);
  // The superseded add is told ok (its block no longer waits for it); the remove gets the real outcome.
  expect(answersFor(e, { ok: false, reason: 'x' }).map((a) => [a.op, a.ok])).toEqual([
    ['add', true],
    ['remove', false],
  ]);
});

test("a repair never overrides a block's queued change, not even one put back after a failed tick", () => {
  const q = new ChangeQueue();
  q.push(owned('remove', '192.0.2.2'));
  q.push(repair('add', '192.0.2.2'));
  expect(q.take(10)[0].change).toMatchObject({ op: 'remove', owner: { lineage: 'L1' } });

  q.push(owned('add', '192.0.2.3', 'L2'));
  const inFlight = q.take(10);
  q.push(repair('remove', '192.0.2.3')); // reconciliation's removal arrives while the block's add is in flight
  q.putBack(inFlight); // the tick failed
  const [e] = q.take(10);
  expect(e.change).toMatchObject({ op: 'add', owner: { lineage: 'L2' } });
  expect(e.waiters).toHaveLength(1);

  q.push(repair('add', '192.0.2.4'));
  q.push(owned('remove', '192.0.2.4')); // a block's change does override a repair
  expect(q.take(10)[0].change.op).toBe('remove');
});

test('continue-as-new carries at most the limit, and says when it cut', () => {
  const q = new ChangeQueue();
  for (let i = 1; i <= 5; i++) q.push(owned('add', `192.0.2.${i}`));
  expect(q.carry(3)).toMatchObject({ truncated: true });
  expect(q.carry(3).queue).toHaveLength(3);
  expect(new ChangeQueue(q.carry(10).queue).size).toBe(5);
});
