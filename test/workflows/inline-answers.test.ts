/**
 * InlineAnswers (workflows/inline-answers.ts): which of a tick's answers go back in a waiting submitChanges
 * Update and which are signalled. Plain class, no server.
 */
import { InlineAnswers } from '../../workflows/inline-answers';
import type { SetAnswer, SetChange } from '../../workflows/messages';

const add = (n: number, lineage = `l${n}`): SetChange => ({ op: 'add', ip: `198.51.100.${n}`, family: 'ipv4', owner: { workflowId: `block:t:198.51.100.${n}`, lineage } });
const answer = (c: SetChange, ok = true): SetAnswer & { workflowId: string } => ({ workflowId: c.owner!.workflowId, lineage: c.owner!.lineage, ip: c.ip, op: c.op, ok });

test('an open slot takes its answer (not signalled); others, evictions and closed slots are signalled', () => {
  const inline = new InlineAnswers();
  const [a, b] = [add(1), add(2)];
  const slots = inline.open([a, { ...add(3), owner: undefined }, { ...add(4), early: true }]);
  expect(slots).toHaveLength(1); // only the change with an owner
  const evict = { workflowId: a.owner!.workflowId, ip: a.ip, op: 'evict' as const, ok: true };
  expect(inline.route([answer(a), answer(b), evict])).toEqual([answer(b), evict]);
  expect(inline.settled(slots)).toBe(true);
  expect(inline.answers(slots)).toEqual([answer(a)]);
  inline.close(slots);
  expect(inline.route([answer(a)])).toEqual([answer(a)]); // closed: by signal from now on
});

test('another lineage of the same IP (a newer block) is not answered by an older slot', () => {
  const inline = new InlineAnswers();
  const slots = inline.open([add(1, 'old')]);
  expect(inline.route([answer(add(1, 'new'))])).toHaveLength(1);
  expect(inline.settled(slots)).toBe(false);
});

test('a re-send shares its first send’s slot until both are done; unrouted() leaves out the waiters an Update holds', () => {
  const inline = new InlineAnswers();
  const first = inline.open([add(1)]);
  const again = inline.open([add(1)]);
  const w = { ...add(1).owner!, op: 'add' as const };
  const other = { ...add(2).owner!, op: 'add' as const };
  expect(inline.unrouted([w, other])).toEqual([other]);
  inline.route([answer(add(1))]);
  expect(inline.settled(first) && inline.settled(again)).toBe(true);
  inline.close(first);
  expect(inline.unrouted([w])).toEqual([]); // the re-send still waits
  inline.close(again);
  expect(inline.unrouted([w])).toEqual([w]);
});
