/**
 * The enforcer's outbox (activities/messaging.ts): a group commit of the blocks' requests. A lone change leaves
 * at once; what arrives while its messages are in flight (one here, unless a test says two) leaves together in the
 * next one, at most CHANGES_PER_SIGNAL a message; a failed message fails only the changes it carried; each sender
 * gets the answers for its own changes. The message here is a stand-in that takes 20 ms (the real Update is
 * checked on the dev server in enforcer-group.test.ts).
 */
import { AnswerTo, CHANGES_PER_SIGNAL, EnforcerOutbox, UPDATES_IN_FLIGHT } from '../../activities/messaging';
import type { SetChange } from '../../workflows/messages';

const change = (i: number): SetChange => ({ op: 'add', ip: `198.51.100.${i % 250}`, family: 'ipv4' });

function recorder(fail?: (batch: SetChange[]) => boolean, inFlight = 1, answer?: (c: SetChange) => AnswerTo | undefined) {
  const signals: SetChange[][] = [];
  const done = { signals: 0 };
  const send = async (batch: SetChange[]) => {
    signals.push(batch);
    await new Promise((r) => setTimeout(r, 20));
    done.signals++;
    if (fail?.(batch)) throw new Error('signal refused');
    return batch.flatMap((c) => answer?.(c) ?? []);
  };
  return { signals, done, outbox: new EnforcerOutbox(send, inFlight) };
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
  await expect(first).resolves.toEqual([]);
  await Promise.all(carried.map((p) => expect(p).rejects.toThrow('signal refused')));
  await expect(outbox.post([change(4)])).resolves.toEqual([]);
  expect(signals.map((s) => s.length)).toEqual([1, 2, 1]);
});

test(`several in flight (${UPDATES_IN_FLIGHT} by default; two here): the next batch is with the enforcer while the one before waits`, async () => {
  expect(UPDATES_IN_FLIGHT).toBeGreaterThanOrEqual(2);
  const { signals, outbox } = recorder(undefined, 2);
  await Promise.all(Array.from({ length: 200 }, (_, i) => outbox.post([change(i)])));
  expect(signals.map((s) => s.length)).toEqual([1, 1, 198]);
  expect(signals.flat()).toEqual(Array.from({ length: 200 }, (_, i) => change(i)));
});

test('each sender gets the answers for its own changes only (block, lineage, IP, op)', async () => {
  const owned = (i: number): SetChange => ({ ...change(i), owner: { workflowId: `block:t:${change(i).ip}`, lineage: `run-${i}` } });
  const { outbox } = recorder(undefined, 1, (c) => (c.owner ? { workflowId: c.owner.workflowId, lineage: c.owner.lineage, ip: c.ip, op: c.op, ok: true } : undefined));
  const [a, b, early] = await Promise.all([outbox.post([owned(1)]), outbox.post([owned(2)]), outbox.post([change(3)])]);
  expect(a).toEqual([{ workflowId: 'block:t:198.51.100.1', lineage: 'run-1', ip: '198.51.100.1', op: 'add', ok: true }]);
  expect(b.map((x) => x.lineage)).toEqual(['run-2']);
  expect(early).toEqual([]);
});
