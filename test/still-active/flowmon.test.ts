/**
 * The Flowmon adapter of the still-active port against the ADS REST emulator on a real socket: what it
 * asks, that the token is cached, and that every failure (refused login, 500, a hang, bad JSON, a revoked
 * token) is answered `unknown` — never a throw, never the password or the token in the answer.
 */
import { FlowmonStillActive, minuteIn, verdictOf } from '../../src/still-active/flowmon';
import type { StillActiveQuestion } from '../../src/still-active/port';
import { FlowmonAds, startFlowmonAds } from '../support/flowmon-ads';

let ads: FlowmonAds;
let port: FlowmonStillActive;
const AT = Date.parse('2026-03-01T12:00:30Z');
const question = (ip: string): StillActiveQuestion => ({ target: 'fw1', ip, family: ip.includes(':') ? 'ipv6' : 'ipv4', atMs: AT, windowMs: 15 * 60_000, sinceMs: AT - 3_600_000 });
const secretsIn = (text: string) => [ads.password, ...[...Array(20).keys()].map((i) => `tok-${i + 1}-`)].filter((s) => text.includes(s));

beforeAll(async () => {
  ads = await startFlowmonAds();
});
afterAll(async () => {
  await port?.close();
  await ads.close();
});
beforeEach(async () => {
  await port?.close();
  ads.fault = 'none';
  ads.active.clear();
  ads.searches.length = 0;
  ads.tokenRequests = 0;
  port = new FlowmonStillActive({ baseUrl: ads.url, user: ads.user, password: ads.password, timeoutMs: 1_000 });
});

test('seen when ADS has an event with the IP as source; the search names the source and the window', async () => {
  ads.active.add('203.0.113.9');
  const a = await port.ask(question('203.0.113.9'));
  expect(a).toMatchObject({ verdict: 'seen', source: 'flowmon' });
  expect(a.detail).toMatch(/ADS event 4179600 SSHDICT/);
  expect(ads.searches).toEqual([{ from: '2026-03-01 11:45', to: '2026-03-01 12:01', source: ['203.0.113.9'] }]);
  expect(await port.ask(question('203.0.113.10'))).toMatchObject({ verdict: 'not-seen' });
  expect(ads.tokenRequests).toBe(1); // cached across questions
});

test('the window is written in the appliance time zone (FLOWMON_TIMEZONE)', () => {
  expect(minuteIn(AT, 'UTC')).toBe('2026-03-01 12:00');
  expect(minuteIn(AT, 'Europe/Prague')).toBe('2026-03-01 13:00');
});

test('events of other sources (a search that ignored the filter) do not count; unreadable ones make it unknown', () => {
  expect(verdictOf('203.0.113.9', JSON.stringify([{ id: 1, source: { ip: '198.51.100.1' } }])).verdict).toBe('not-seen');
  expect(verdictOf('2001:db8::9', JSON.stringify([{ id: 2, source: { ip: '2001:DB8:0::9' } }])).verdict).toBe('seen');
  expect(() => verdictOf('203.0.113.9', JSON.stringify([{ id: 3, source: '203.0.113.9' }]))).toThrow(/readable source/);
  expect(() => verdictOf('203.0.113.9', JSON.stringify({ events: [] }))).toThrow(/not an array/);
});

test('a revoked token: one fresh login, then the answer', async () => {
  ads.active.add('203.0.113.9');
  await port.ask(question('203.0.113.9'));
  ads.revokeTokens();
  expect(await port.ask(question('203.0.113.9'))).toMatchObject({ verdict: 'seen' });
  expect(ads.tokenRequests).toBe(2);
});

test.each([
  ['refuse-login', /login refused \(HTTP 400\)/],
  ['search-401', /event search refused \(HTTP 401\)/],
  ['search-500', /event search failed \(HTTP 500\)/],
  ['search-bad-json', /not JSON/],
  ['search-hang', /no answer in time/],
] as const)('%s: unknown, with a reason and no secret', async (fault, reason) => {
  ads.active.add('203.0.113.9');
  ads.fault = fault;
  const started = Date.now();
  const a = await port.ask(question('203.0.113.9'));
  expect(a).toMatchObject({ verdict: 'unknown', source: 'flowmon' });
  expect(a.detail).toMatch(reason);
  expect(secretsIn(JSON.stringify(a))).toEqual([]);
  expect(Date.now() - started).toBeLessThan(5_000);
});

test('nothing listening: unknown', async () => {
  const gone = new FlowmonStillActive({ baseUrl: 'http://127.0.0.1:9', user: 'u', password: 'p', timeoutMs: 1_000 });
  try {
    expect(await gone.ask(question('203.0.113.9'))).toMatchObject({ verdict: 'unknown', detail: expect.stringMatching(/request failed|no answer in time/) });
  } finally {
    await gone.close();
  }
});
