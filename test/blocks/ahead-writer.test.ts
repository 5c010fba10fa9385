/**
 * AheadWriter (src/blocks/ahead-writer.ts): the API's own early-add writes. A few per set at once; adds that
 * arrive while those are out go together in the next write; a failure reaches its callers only; a target whose
 * backend cannot take adds beside its writer takes none. A fake backend (the port's optional `addAhead`).
 */
import { AheadWriter } from '../../src/blocks/ahead-writer';
import type { EnforcementBackend, Entry } from '../../src/enforcement';
import { DryRunBackend } from '../../src/enforcement/dry-run';

function fakeFeed() {
  const writes: string[][] = [];
  const gates: (() => void)[] = [];
  let fail = false;
  const backend = {
    addAhead: (_set: string, entries: Entry[]) =>
      new Promise<void>((resolve, reject) => {
        writes.push(entries.map((e) => e.ip));
        gates.push(() => (fail ? reject(new Error('firewall said no')) : resolve()));
      }),
  } as unknown as EnforcementBackend;
  return { backend, writes, open: () => gates.splice(0).forEach((g) => g()), failNext: () => void (fail = true) };
}
const entry = (i: number): Entry => ({ ip: `192.0.2.${i}`, family: 'ipv4' });
const settle = () => new Promise((r) => setImmediate(r));

test('four writes at once per set; the adds that arrive meanwhile go together in the next one', async () => {
  const f = fakeFeed();
  const w = new AheadWriter(new Map([['fw1', f.backend]]));
  const done = Array.from({ length: 10 }, (_, i) => w.write('fw1', 'feed', entry(i)));
  await settle();
  expect(f.writes).toEqual([['192.0.2.0'], ['192.0.2.1'], ['192.0.2.2'], ['192.0.2.3']]);
  f.open();
  await settle();
  expect(f.writes.slice(4)).toEqual([['192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.7', '192.0.2.8', '192.0.2.9']]);
  f.open();
  await Promise.all(done);
});

test("a failed write rejects its own callers only; a backend without addAhead takes none", async () => {
  const f = fakeFeed();
  const w = new AheadWriter(new Map([['fw1', f.backend], ['dry', new DryRunBackend()]]));
  f.failNext();
  const failed = w.write('fw1', 'feed', entry(1));
  await settle();
  f.open();
  await expect(failed).rejects.toThrow('firewall said no');
  expect(w.takes('fw1')).toBe(true);
  expect(w.takes('dry')).toBe(false);
  expect(w.takes('nowhere')).toBe(false);
  await expect(w.write('dry', 'dry-run', entry(2))).rejects.toThrow('takes no adds ahead');
});
