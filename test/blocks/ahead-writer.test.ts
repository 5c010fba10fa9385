/**
 * AheadWriter (src/blocks/ahead-writer.ts): the API's own early-add writes. A few per set at once; adds that
 * arrive while those are out go together in the next write; a failure reaches its callers only; a target whose
 * backend cannot take adds beside its writer takes none. In a burst (a backend that writes many in one call),
 * adds linger for one write per BURST_LINGER_MS, and at most EARLY_BURST_MAX per set go ahead within
 * BURST_CLAIM_MS. A fake backend (the port's optional `addAhead`).
 */
import { AheadWriter, BURST_LINGER_MS } from '../../src/blocks/ahead-writer';
import { BURST_CLAIM_MS, EARLY_BURST_MAX } from '../../workflows/early-adds';
import type { EnforcementBackend, Entry } from '../../src/enforcement';
import { DryRunBackend } from '../../src/enforcement/dry-run';

function fakeFeed() {
  const writes: string[][] = [];
  const gates: (() => void)[] = [];
  let fail = false;
  const backend = {
    earlyInBurst: 'ahead',
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

test('in a burst, adds linger: one write carries what came within the linger, the next waits for its own', async () => {
  jest.useFakeTimers();
  try {
    const f = fakeFeed();
    const w = new AheadWriter(new Map([['fw1', f.backend]]));
    const first = Array.from({ length: 50 }, (_, i) => w.write('fw1', 'feed', entry(i), BURST_LINGER_MS));
    await jest.advanceTimersByTimeAsync(BURST_LINGER_MS - 1);
    expect(f.writes).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(f.writes).toHaveLength(1);
    expect(f.writes[0]).toHaveLength(50);
    // Adds during that write, and a calm one, wait for the next linger: not a write each.
    const second = [...Array.from({ length: 20 }, (_, i) => w.write('fw1', 'feed', entry(100 + i), BURST_LINGER_MS)), w.write('fw1', 'feed', entry(200))];
    f.open();
    await Promise.all(first);
    expect(f.writes).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(BURST_LINGER_MS);
    expect(f.writes).toHaveLength(2);
    expect(f.writes[1]).toHaveLength(21);
    f.open();
    await Promise.all(second);
  } finally {
    jest.useRealTimers();
  }
});

test('in a burst, at most EARLY_BURST_MAX early adds per set go within BURST_CLAIM_MS; only a backend that says how takes any', () => {
  const f = fakeFeed();
  const w = new AheadWriter(new Map([['fw1', f.backend], ['dry', new DryRunBackend()]]));
  for (let i = 0; i < EARLY_BURST_MAX; i++) expect(w.admitBurstAdd('fw1', 'feed', 1_000)).toBe(true);
  expect(w.admitBurstAdd('fw1', 'feed', 1_000 + BURST_CLAIM_MS - 1)).toBe(false);
  expect(w.admitBurstAdd('fw1', 'other-feed', 1_000)).toBe(true);
  expect(w.admitBurstAdd('fw1', 'feed', 1_000 + BURST_CLAIM_MS)).toBe(true);
  expect(w.earlyInBurst('fw1')).toBe('ahead');
  expect(w.earlyInBurst('dry')).toBeUndefined();
  expect(w.admitBurstAdd('dry', 'dry-run', 0)).toBe(false);
  // A backend whose enforcer writes a burst's early adds (an address group): counted the same, nothing written here.
  const group = new AheadWriter(new Map([['fw2', { earlyInBurst: 'enforcer', addAhead: async () => undefined } as unknown as EnforcementBackend]]));
  expect(group.earlyInBurst('fw2')).toBe('enforcer');
  expect(group.admitBurstAdd('fw2', 'ads-blocked', 0)).toBe(true);
});
