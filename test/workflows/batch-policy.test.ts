/** The enforcer's tick-size rule alone (workflows/batch-policy.ts): a trickle never waits, a flood does, bounded. */
import { ArrivalLog, Batching, burstWaitMs, DEFAULT_BATCHING } from '../../workflows/batch-policy';

const flood: Batching = { maxPerTick: 1000, burst: { arrivals: 90, windowMs: 3000, queued: 40, batch: 250, maxWaitMs: 2000 } };

function steady(log: ArrivalLog, perSecond: number, fromMs: number, toMs: number): void {
  const step = 1000 / perSecond;
  for (let t = fromMs; t < toMs; t += step) log.add(t, 1);
}

test('a steady 20/s (a long attack) never makes a tick wait', () => {
  const log = new ArrivalLog();
  steady(log, 20, 0, 60_000);
  expect(burstWaitMs(flood, log, 60_000, 5)).toBe(0);
});

test('a flood (50/s) makes a short queue wait, at most maxWaitMs', () => {
  const log = new ArrivalLog();
  steady(log, 50, 0, 5000);
  expect(burstWaitMs(flood, log, 5000, 36)).toBe(2000);
});

test('a backlog at the tick is a flood too, whatever the arrival rate (a slow, loaded box)', () => {
  const log = new ArrivalLog();
  steady(log, 15, 0, 5000);
  expect(burstWaitMs(flood, log, 5000, 39)).toBe(0);
  expect(burstWaitMs(flood, log, 5000, 40)).toBe(2000);
});

test('a queue already holding a full batch goes out at once, even in a flood', () => {
  const log = new ArrivalLog();
  steady(log, 200, 0, 3000);
  expect(burstWaitMs(flood, log, 3000, 250)).toBe(0);
  // The batch never exceeds what one tick takes.
  expect(burstWaitMs({ ...flood, maxPerTick: 100 }, log, 3000, 100)).toBe(0);
});

test('the window slides: once the flood ends, the next tick goes out at once', () => {
  const log = new ArrivalLog();
  log.add(1000, 500); // one big signal (a repair, a carried queue)
  expect(burstWaitMs(flood, log, 1500, 10)).toBe(2000);
  expect(burstWaitMs(flood, log, 4001, 10)).toBe(0);
});

test('without burst tuning (dry run, histories of before) nothing waits', () => {
  const log = new ArrivalLog();
  steady(log, 500, 0, 3000);
  expect(burstWaitMs(DEFAULT_BATCHING, log, 3000, 1)).toBe(0);
});

test('the log stays bounded by its window', () => {
  const log = new ArrivalLog(10_000);
  steady(log, 100, 0, 600_000);
  expect((log as unknown as { marks: unknown[] }).marks.length).toBeLessThanOrEqual(1001);
});
