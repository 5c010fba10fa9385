/**
 * The allowlist cache's timing without a server: a fake client counts the queries and holds them open, the
 * clock is a variable. A fresh list answers at once; past half its age it still answers at once and is
 * refreshed behind; past its age a check waits for the query.
 */
import type { Client } from '@temporalio/client';
import { AllowlistCache } from '../../src/allowlist';
import type { AllowEntry } from '../../workflows/allowlist';

const entry = (cidr: string): AllowEntry => ({ cidr, reason: 'partner', actor: 'test', addedAt: new Date(0).toISOString() });

function fakeClient() {
  const queries: ((entries: AllowEntry[]) => void)[] = [];
  const client = { workflow: { getHandle: () => ({ query: () => new Promise<AllowEntry[]>((resolve) => queries.push(resolve)) }) } } as unknown as Client;
  return { client, queries };
}

let now = 1_000_000;
beforeEach(() => jest.spyOn(Date, 'now').mockImplementation(() => now));
afterEach(() => jest.restoreAllMocks());

const settled = async <T>(p: Promise<T>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

test('past half its age the list answers at once and is refreshed behind; past its age a check waits', async () => {
  const { client, queries } = fakeClient();
  const cache = new AllowlistCache(client, { maxAgeMs: 1000 });
  const first = cache.covers('198.51.100.7');
  queries.shift()!([entry('198.51.100.0/24')]);
  expect(await first).toMatchObject({ cidr: '198.51.100.0/24' });

  now += 400; // fresh: no query
  expect(await cache.covers('198.51.100.7')).toBeDefined();
  expect(queries).toHaveLength(0);

  now += 200; // past half: answered from the list, one refresh behind (not two)
  expect(await cache.covers('198.51.100.7')).toBeDefined();
  expect(await cache.covers('203.0.113.1')).toBeUndefined();
  expect(queries).toHaveLength(1);
  queries.shift()!([]); // the entry was removed meanwhile
  await Promise.resolve();
  await Promise.resolve();
  expect(await cache.covers('198.51.100.7')).toBeUndefined();

  now += 1000; // past its age: the check waits for the query
  const waiting = cache.covers('198.51.100.7');
  expect(await settled(waiting)).toBe(false);
  expect(queries).toHaveLength(1);
  queries.shift()!([entry('198.51.100.7/32')]);
  expect(await waiting).toMatchObject({ cidr: '198.51.100.7/32' });
});
