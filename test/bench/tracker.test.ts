/**
 * The bench's measuring instrument: EnforcementTracker must see an IP become enforced — and lifted — on the
 * emulator through each mechanism (address-group shards, a push threat feed, the banned list), timestamped
 * between the request being sent and its reply, and agree with the emulator's own oracle. Over HTTPS with a
 * private CA, as the bench runs it.
 */
import { FortiOSClient } from '../../src/fortios/client';
import { startEmulator, type RunningEmulator } from '../../src/fortios/emulator/server';
import { EnforcementTracker } from '../../bench/lib/tracker';
import { makePki, type Pki } from '../support/pki';
import { readFileSync } from 'node:fs';

describe('bench EnforcementTracker', () => {
  let pki: Pki;
  let emulator: RunningEmulator;
  let fw: FortiOSClient;
  let tracker: EnforcementTracker;

  beforeAll(async () => {
    pki = makePki();
    emulator = await startEmulator({
      port: 0,
      version: 'v7.4.5',
      groups: { ipv4: ['g1', 'g2'], ipv6: ['g6'] },
      feeds: [{ name: 'feed' }],
      tls: { cert: readFileSync(pki.serverCert, 'utf8'), key: readFileSync(pki.serverKey, 'utf8') },
    });
    tracker = new EnforcementTracker(emulator, { groups: ['g1', 'g2'], feeds: ['feed'] });
    fw = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token, caFile: pki.caCert });
  });

  afterAll(async () => {
    await fw?.close();
    await emulator?.close();
    pki?.remove();
  });

  /** Runs `call` and checks that `ip` was first enforced within it, and is blocked now per the oracle. */
  async function enforcedWithin(ip: string, call: () => Promise<unknown>): Promise<void> {
    const before = performance.timeOrigin + performance.now();
    await call();
    const after = performance.timeOrigin + performance.now();
    const t = tracker.ips.get(ip)?.firstIn;
    expect(t).toBeDefined();
    expect(t!).toBeGreaterThanOrEqual(before);
    expect(t!).toBeLessThanOrEqual(after);
    expect(tracker.holds(ip)).toBe(true);
    expect(tracker.verify([ip]).blocked.has(ip)).toBe(true);
  }

  it('sees a member of a shard (the address object names the IP), and its removal', async () => {
    await fw.ensureAddress('ipv4', { name: 'ads-45.1.0.1', subnet: '45.1.0.1/32', comment: 'x' });
    await fw.ensureAddress('ipv4', { name: 'other', subnet: '45.1.0.2/32', comment: 'x' });
    expect(tracker.ips.has('45.1.0.1')).toBe(false); // an address object alone enforces nothing
    await enforcedWithin('45.1.0.1', () => fw.setGroupMembers('ipv4', 'g2', ['ads-45.1.0.1']));
    await fw.setGroupMembers('ipv4', 'g2', ['other']);
    expect(tracker.holds('45.1.0.1')).toBe(false);
    expect(tracker.holds('45.1.0.2')).toBe(true);
    expect(tracker.verify(['45.1.0.1']).notBlocked.has('45.1.0.1')).toBe(true);
  });

  it('sees entries pushed to the feed, removed, and replaced by a snapshot', async () => {
    await enforcedWithin('45.2.0.1', () => fw.pushFeedCommands([{ name: 'feed', command: 'add', entries: ['45.2.0.1', '45.2.0.2'] }]));
    await fw.pushFeedCommands([{ name: 'feed', command: 'remove', entries: ['45.2.0.1'] }]);
    expect(tracker.holds('45.2.0.1')).toBe(false);
    await fw.pushFeed('feed', 'snapshot', ['45.2.0.3']);
    expect(tracker.holds('45.2.0.2')).toBe(false);
    expect(tracker.holds('45.2.0.3')).toBe(true);
    expect(tracker.verify(['45.2.0.3', '45.2.0.2'])).toEqual({ blocked: new Set(['45.2.0.3']), notBlocked: new Set(['45.2.0.2']) });
  });

  it('sees the banned list, and counts the requests it served', async () => {
    const writes = tracker.requests.filter((r) => r.kind === 'writes').length;
    await enforcedWithin('45.3.0.1', () => fw.bannedAdd(['45.3.0.1'], 600));
    await fw.bannedClear(['45.3.0.1']);
    expect(tracker.holds('45.3.0.1')).toBe(false);
    expect(tracker.requests.filter((r) => r.kind === 'writes').length).toBe(writes + 2);
  });

  it('waits for every IP of a list, bounded', async () => {
    const waiting = tracker.untilAllEnforced(['45.3.0.9'], 10_000);
    await fw.bannedAdd(['45.3.0.9'], 600);
    await expect(waiting).resolves.toMatchObject({ all: true, done: 1 });
    await expect(tracker.untilAllEnforced(['45.3.0.10'], 300)).resolves.toMatchObject({ all: false, done: 0 });
  });
});
