/**
 * The enforcer's outbox (activities/messaging.ts): a group commit of the blocks' requests. A lone change leaves
 * at once; what arrives while a signal is in flight leaves together in the next one, at most CHANGES_PER_SIGNAL
 * a signal; a failed signal fails only the changes it carried. The signal here is a stand-in that takes 20 ms
 * (the real one is checked on the dev server in enforcer-group.test.ts).
 */
import { CHANGES_PER_SIGNAL, EnforcerOutbox } from '../../activities/messaging';
import type { SetChange } from '../../workflows/messages';

const change = (i: number): SetChange => ({ op: 'add', ip: `198.51.100.${i % 250}`, family: 'ipv4' });

function recorder(fail?: (batch: SetChange[]) => boolean) {
  const signals: SetChange[][] = [];
  const done = { signals: 0 };
  const send = async (batch: SetChange[]) => {
    signals.push(batch);
    await new Promise((r) => setTimeout(r, 20));
    done.signals++;
    if (fail?.(batch)) throw new Error('signal refused');
  };
  return { signals, done, outbox: new EnforcerOutbox(send) };
}

test('a lone change leaves at once, alone', async () => {
  const { signals, outbox } = recorder();
  const t0 = Date.now();
  await outbox.post([change(1)]);
  expect(signals).toEqual([[change(1)]]);
  expect(Date.now() - t0).toBeLessThan(1000); // no timer of its own: the signal's own 20 ms
});

test('200 requests at once: the first alone, the other 199 in the next signal; every sender resolves after its own signal', async () => {
  const { signals, done, outbox } = recorder();
  const resolved: number[] = [];
  await Promise.all(Array.from({ length: 200 }, (_, i) => outbox.post([change(i)]).then(() => (resolved[i] = done.signals))));
  expect(signals.map((s) => s.length)).toEqual([1, 199]);
  expect(signals.flat()).toEqual(Array.from({ length: 200 }, (_, i) => change(i))); // in order, none twice
  expect(resolved[0]).toBe(1);
  expect(resolved.slice(1).every((n) => n === 2)).toBe(true);
});

test(`at most ${CHANGES_PER_SIGNAL} changes a signal; a request bigger than that still goes whole`, async () => {
  const { signals, outbox } = recorder();
  const big = Array.from({ length: CHANGES_PER_SIGNAL + 10 }, (_, i) => change(i));
  await Promise.all([outbox.post([change(0)]), ...Array.from({ length: 2 * CHANGES_PER_SIGNAL }, (_, i) => outbox.post([change(i)])), outbox.post(big)]);
  expect(signals.map((s) => s.length)).toEqual([1, CHANGES_PER_SIGNAL, CHANGES_PER_SIGNAL, CHANGES_PER_SIGNAL + 10]);
});

test('a refused signal fails the changes it carried, and only those; the next batch still goes', async () => {
  const { signals, outbox } = recorder((batch) => batch.length > 1);
  const first = outbox.post([change(1)]);
  const carried = [outbox.post([change(2)]), outbox.post([change(3)])];
  await expect(first).resolves.toBeUndefined();
  await Promise.all(carried.map((p) => expect(p).rejects.toThrow('signal refused')));
  await expect(outbox.post([change(4)])).resolves.toBeUndefined();
  expect(signals.map((s) => s.length)).toEqual([1, 2, 1]);
});
