/**
 * BurstGate (src/blocks/burst-gate.ts): early adds stay off while more than the mark of block requests are in
 * flight and for the hold after the last moment there were, so the dips of a burst send none; a trickle that never
 * reaches the mark always gets them.
 */
import { BURST_HOLD_MS, BurstGate } from '../../src/blocks/burst-gate';
import { EARLY_QUEUE_MAX } from '../../workflows/early-adds';

test('a trickle below the mark is always calm', () => {
  const g = new BurstGate();
  let now = 0;
  for (let i = 0; i < 1_000; i++) {
    now += 50;
    g.enter(now);
    expect(g.calm(now)).toBe(true);
    if (i >= 5) g.leave(now);
  }
});

test('past the mark, and for the hold after the last moment above it, there is a burst', () => {
  const g = new BurstGate(4, 1_000);
  for (let i = 0; i < 4; i++) g.enter(0);
  expect(g.calm(0)).toBe(true);
  g.enter(0); // the fifth
  expect(g.calm(0)).toBe(false);
  // Above the mark until t=5000: the hold counts from there, not from the last request that came in.
  g.leave(5_000); // 5 → 4
  expect(g.calm(5_000)).toBe(false);
  // A dip: answers went out, nobody new yet — still a burst.
  g.leave(5_100);
  g.leave(5_200);
  expect(g.calm(5_900)).toBe(false);
  expect(g.calm(5_999)).toBe(false);
  expect(g.calm(6_000)).toBe(true);
  // A request that comes in calm is calm; a new wave above the mark restarts the hold.
  g.enter(6_100);
  expect(g.calm(6_100)).toBe(true);
  for (let i = 0; i < 3; i++) g.enter(6_200);
  expect(g.calm(6_200)).toBe(false);
  for (let i = 0; i < 6; i++) g.leave(6_300);
  expect(g.calm(7_299)).toBe(false);
  expect(g.calm(7_300)).toBe(true);
});

test('the defaults: the enforcer\'s own mark, a hold of seconds', () => {
  const g = new BurstGate();
  for (let i = 0; i < EARLY_QUEUE_MAX + 1; i++) g.enter(0);
  for (let i = 0; i < EARLY_QUEUE_MAX + 1; i++) g.leave(1);
  expect(g.calm(BURST_HOLD_MS)).toBe(false);
  expect(g.calm(1 + BURST_HOLD_MS)).toBe(true);
  expect(BURST_HOLD_MS).toBeGreaterThanOrEqual(5_000);
});

test("a webhook request's lines announced together: past the mark before the first of them runs", () => {
  const g = new BurstGate(32, 10_000);
  g.enter(0, 50);
  g.enter(0); // its first line's block request
  expect(g.calm(0)).toBe(false);
  g.leave(100);
  g.leave(100, 50);
  expect(g.calm(10_099)).toBe(false);
  expect(g.calm(10_100)).toBe(true);
  // A request of a few lines stays below it.
  g.enter(20_000, 5);
  expect(g.calm(20_000)).toBe(true);
});
