/**
 * The pure parts of enforcement, without a server: the port's ownership comment, the factory's answers
 * (which set, which capacity — and that they agree with the backends it builds), the address-group naming
 * helpers, the enforcer's change queue, and the block rules (escalation capped by the block's maximum).
 */
import type { TargetConfig } from '../../src/config';
import { addressObjectName, cidrOf, ipOf } from '../../src/enforcement/address-group';
import { BANNED_MARGIN_MS } from '../../src/enforcement/banned-ip';
import { capacityOf, createBackend, enforcementRefFor, setsOf, startupFindings } from '../../src/enforcement';
import { COMMENT_EXPIRY_SLACK_MS, commentCurrent, commentExpiry, ENFORCEMENT_KINDS, isOurs, OWNER_MARKER, ownerComment } from '../../src/enforcement/port';
import { FortiOSClient } from '../../src/fortios/client';
import { accepts, EXPIRY_REFRESH_SLACK_MS, extend, extendProblem, freshCarry, needsExpiryRefresh, recordEvent, RESEND_FIRST_MS, RESEND_MAX_MS, resendDelayMs } from '../../workflows/block-rules';
import { answersFor, ChangeQueue } from '../../workflows/change-queue';
import type { BlockInput, SetChange } from '../../workflows/messages';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function target(over: Partial<TargetConfig>): TargetConfig {
  return { name: 'fw', url: 'http://127.0.0.1:1', token: 't', vdom: 'root', enforcement: 'address-group', groups: { ipv4: ['g1', 'g2'], ipv6: ['g6'] }, capacity: 600, feedCapacity: 131_072, tlsInsecure: false, ...over };
}

describe('port: the ownership comment', () => {
  test('carries the marker and the expiry, which reads back', () => {
    const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const c = ownerComment({ ip: '192.0.2.1', family: 'ipv4', label: 'ADS event 7 SSHDICT', expiresAtMs: at });
    expect(c).toBe(`${OWNER_MARKER} ADS event 7 SSHDICT; until 2026-01-02T03:04:05.678Z`);
    expect(commentExpiry(c)).toBe(at);
    expect(isOurs(c)).toBe(true);
  });
  test('a long label is cut so that the comment fits 255 characters with its expiry intact', () => {
    const c = ownerComment({ ip: '192.0.2.1', family: 'ipv4', label: 'x'.repeat(400), expiresAtMs: DAY });
    expect(c.length).toBeLessThanOrEqual(255);
    expect(commentExpiry(c)).toBe(DAY);
  });
  test('without expiry or marker', () => {
    expect(commentExpiry(ownerComment({ ip: '192.0.2.1', family: 'ipv4' }))).toBeUndefined();
    expect(isOurs('made by an operator')).toBe(false);
    expect(isOurs(undefined)).toBe(false);
    expect(isOurs(`x ${OWNER_MARKER}`)).toBe(false); // the marker counts only at the start
  });
});

describe('factory: sets and capacity', () => {
  const fw = new FortiOSClient({ baseUrl: 'http://127.0.0.1:1', token: 't' });
  afterAll(() => fw.close());
  const targets: TargetConfig[] = [
    target({ enforcement: 'address-group' }),
    target({ enforcement: 'threat-feed', feed: 'ads-feed', feedCapacity: 1000 }),
    target({ enforcement: 'banned-ip' }),
    target({ enforcement: 'dry-run' }),
  ];

  test('every kind has a backend, and the pure answers agree with it (set per family, expiry refresh)', () => {
    expect(targets.map((t) => t.enforcement)).toEqual([...ENFORCEMENT_KINDS]);
    for (const t of targets) {
      const b = createBackend(t, { fw });
      expect(b.kind).toBe(t.enforcement);
      for (const family of ['ipv4', 'ipv6'] as const) {
        expect(enforcementRefFor(t, family)).toEqual({ set: b.setFor(family), refreshOnExtend: b.refreshOnExtend });
      }
      expect(setsOf(t)).toEqual([...new Set(b.sets().map((s) => s.name))]);
    }
  });

  test('sets: the first shard per family; one feed; one banned list', () => {
    expect(setsOf(targets[0])).toEqual(['g1', 'g6']);
    expect(setsOf(targets[1])).toEqual(['ads-feed']);
    expect(setsOf(targets[2])).toEqual(['banned']);
    expect(setsOf(targets[3])).toEqual(['dry-run']);
  });

  test('capacity: shards × members; the feed capacity; unbounded lists', () => {
    expect(capacityOf(targets[0])).toBe(1200);
    expect(capacityOf(targets[1])).toBe(1000);
    expect(capacityOf(targets[2])).toBe(Number.MAX_SAFE_INTEGER);
  });

  test('start-up findings never throw: a firewall that does not answer is a finding', async () => {
    const all = await startupFindings([targets[2], targets[3], target({ name: 'other' })], new Map([['fw', fw]]));
    expect(all.map((a) => [a.target, a.findings.every((f) => f.ok)])).toEqual([['fw', false], ['fw', true], ['other', false]]);
  });

  test('the banned list keeps entries past the block by more than the refresh slack', () => {
    expect(BANNED_MARGIN_MS).toBeGreaterThan(EXPIRY_REFRESH_SLACK_MS);
  });
});

describe('address-group naming', () => {
  test('object names carry the canonical IP; only such names map back', () => {
    expect(addressObjectName('203.0.113.7')).toBe('ads-203.0.113.7');
    expect(ipOf('ads-203.0.113.7')).toBe('203.0.113.7');
    expect(ipOf('ads-2001:db8::1')).toBe('2001:db8::1');
    expect(ipOf('ads-2001:DB8:0::1')).toBeUndefined(); // not canonical: not a name we write
    expect(ipOf('ads-blocked')).toBeUndefined();
    expect(ipOf('none')).toBeUndefined();
    expect(cidrOf('203.0.113.7')).toBe('203.0.113.7/32');
    expect(cidrOf('2001:db8::1')).toBe('2001:db8::1/128');
    expect(cidrOf('203.0.113.0/24')).toBe('203.0.113.0/24');
  });
});

describe('change queue', () => {
  const owner = (lineage: string) => ({ workflowId: `block:fw:${lineage}`, lineage });
  const change = (ip: string, op: 'add' | 'remove', lineage?: string): SetChange => ({ op, ip, family: 'ipv4', ...(lineage ? { owner: owner(lineage) } : {}) });

  test('keeps the latest change per IP in arrival order, with every waiter once', () => {
    const q = new ChangeQueue();
    q.push(change('192.0.2.1', 'add', 'a'));
    q.push(change('192.0.2.2', 'add', 'b'));
    q.push(change('192.0.2.1', 'add', 'a')); // a re-send
    q.push(change('192.0.2.1', 'remove', 'a'));
    q.push(change('192.0.2.1', 'remove')); // reconciliation's, no owner
    expect(q.size).toBe(2);
    const [first, second] = q.take(10);
    expect(first.change).toMatchObject({ ip: '192.0.2.1', op: 'remove' });
    expect(first.waiters.map((w) => `${w.lineage}:${w.op}`)).toEqual(['a:add', 'a:remove']);
    expect(second.change.ip).toBe('192.0.2.2');
    expect(q.size).toBe(0);
  });

  test('take is bounded and oldest first; putBack lets a newer change win and keeps the waiters', () => {
    const q = new ChangeQueue();
    for (let i = 1; i <= 5; i++) q.push(change(`192.0.2.${i}`, 'add', `l${i}`));
    const batch = q.take(2);
    expect(batch.map((b) => b.change.ip)).toEqual(['192.0.2.1', '192.0.2.2']);
    q.push(change('192.0.2.1', 'remove', 'l1'));
    q.putBack(batch);
    expect(q.get('192.0.2.1')!.change.op).toBe('remove');
    expect(q.get('192.0.2.1')!.waiters.map((w) => w.op)).toEqual(['remove', 'add']);
    expect(q.get('192.0.2.2')!.change.op).toBe('add');
    const carried = q.carry(3);
    expect(carried.queue).toHaveLength(3);
    expect(carried.truncated).toBe(true);
    expect(new ChangeQueue(carried.queue).size).toBe(3);
  });

  test('answers: a waiter whose change was superseded hears ok; the current one hears the outcome', () => {
    const q = new ChangeQueue();
    q.push(change('192.0.2.1', 'add', 'a'));
    q.push(change('192.0.2.1', 'remove', 'a'));
    const answers = answersFor(q.take(1)[0], { ok: false, reason: 'refused' });
    expect(answers).toEqual([
      { workflowId: 'block:fw:a', op: 'add', ip: '192.0.2.1', lineage: 'a', ok: true, reason: undefined },
      { workflowId: 'block:fw:a', op: 'remove', ip: '192.0.2.1', lineage: 'a', ok: false, reason: 'refused' },
    ]);
  });
});

describe('block rules', () => {
  const input = (over: Partial<BlockInput> = {}): BlockInput => ({ target: 'fw', ip: '192.0.2.1', family: 'ipv4', ttlMs: HOUR, maxTtlMs: 30 * DAY, reason: 'r', actor: 'a', ...over });
  const ev = (id: string) => ({ id, receivedAtMs: 0 });

  test('escalation multiplies the TTL per repeat, capped by the escalation maximum and by the block maximum', () => {
    const i = input({ maxTtlMs: 5 * HOUR, escalation: { factor: 2, maxTtlMs: 7 * DAY }, event: ev('1') });
    const s = freshCarry(i, 0);
    expect(s.expiresAtMs).toBe(HOUR);
    expect(recordEvent(s, i, ev('2'), HOUR, 0)).toBe('extended');
    expect(s.expiresAtMs).toBe(2 * HOUR);
    recordEvent(s, i, ev('3'), HOUR, 0);
    expect(s.expiresAtMs).toBe(4 * HOUR);
    recordEvent(s, i, ev('4'), HOUR, 0);
    expect(s.expiresAtMs).toBe(5 * HOUR); // 8 h, capped by maxTtlMs
    expect(recordEvent(s, i, ev('5'), HOUR, 0)).toBe('unchanged');
    const j = input({ escalation: { factor: 10, maxTtlMs: 3 * HOUR }, event: ev('1') });
    const t = freshCarry(j, 0);
    recordEvent(t, j, ev('2'), HOUR, 0);
    expect(t.expiresAtMs).toBe(3 * HOUR); // capped by the escalation maximum
  });

  test('without escalation a repeat moves the expiry to now + TTL, never earlier, never past the maximum', () => {
    const i = input({ maxTtlMs: 2 * HOUR, event: ev('1') });
    const s = freshCarry(i, 0);
    expect(recordEvent(s, i, ev('2'), HOUR, 30 * 60_000)).toBe('extended');
    expect(s.expiresAtMs).toBe(HOUR + 30 * 60_000);
    expect(recordEvent(s, i, ev('3'), 10 * HOUR, 0)).toBe('extended');
    expect(s.expiresAtMs).toBe(2 * HOUR); // 10 h asked, the block's maximum is 2 h
    expect(recordEvent(s, i, ev('4'), HOUR, 0)).toBe('unchanged'); // never earlier
  });

  test('extend: one of by/until, later than now, within the maximum; refresh once the expiry moved past the slack', () => {
    const i = input({ maxTtlMs: DAY });
    const s = { ...freshCarry(i, 0), state: 'active' as const, enforcement: { set: 'g', refreshOnExtend: true }, pushedExpiryMs: HOUR };
    expect(extendProblem(s, i, { actor: 'op' }, 0)).toMatch(/exactly one/);
    expect(extendProblem(s, i, { untilMs: HOUR, actor: 'op' }, 0)).toMatch(/not after/);
    expect(extendProblem(s, i, { byMs: 2 * DAY, actor: 'op' }, 0)).toMatch(/maximum/);
    expect(extendProblem(s, i, { byMs: EXPIRY_REFRESH_SLACK_MS, actor: 'op' }, 0)).toBeUndefined();
    extend(s, { byMs: EXPIRY_REFRESH_SLACK_MS, actor: 'op' }, 0);
    expect(needsExpiryRefresh(s)).toBe(false); // moved by the slack exactly: the firewall's margin covers it
    extend(s, { byMs: 1, actor: 'op' }, 0);
    expect(needsExpiryRefresh(s)).toBe(true);
    expect(needsExpiryRefresh({ ...s, enforcement: { set: 'f', refreshOnExtend: false } })).toBe(false);
  });

  test('answers are accepted only from the block’s lineage and for the request outstanding', () => {
    const s = { ...freshCarry(input(), 0), asked: { op: 'add' as const, atMs: 0, sends: 1 } };
    expect(accepts(s, { op: 'add', ip: '192.0.2.1', ok: true, lineage: 'L' }, 'L')).toBe(true);
    expect(accepts(s, { op: 'add', ip: '192.0.2.1', ok: true, lineage: 'old' }, 'L')).toBe(false);
    expect(accepts(s, { op: 'remove', ip: '192.0.2.1', ok: true, lineage: 'L' }, 'L')).toBe(false);
    expect(accepts(s, { op: 'evict', ip: '192.0.2.1', ok: true, lineage: 'L' }, 'L')).toBe(true);
  });

  test('answers of overlapping ticks may arrive in either order: a late one for an earlier request changes nothing', () => {
    // Cancelled while its add was in flight: the add's answer, arriving after the remove was asked, is ignored.
    const releasing = { ...freshCarry(input(), 0), state: 'releasing' as const, asked: { op: 'remove' as const, atMs: 0, sends: 1 } };
    expect(accepts(releasing, { op: 'add', ip: '192.0.2.1', ok: true, lineage: 'L' }, 'L')).toBe(false);
    expect(accepts(releasing, { op: 'evict', ip: '192.0.2.1', ok: true, lineage: 'L' }, 'L')).toBe(false);
    expect(accepts(releasing, { op: 'remove', ip: '192.0.2.1', ok: true, lineage: 'L' }, 'L')).toBe(true);
    // Rotated out by a later tick before the add's answer came: evicted, and the add's answer no longer counts.
    const evicted = { ...freshCarry(input(), 0), state: 'evicted' as const, asked: undefined };
    expect(accepts(evicted, { op: 'add', ip: '192.0.2.1', ok: true, lineage: 'L' }, 'L')).toBe(false);
  });

  test('re-sends back off from 2 min, doubling to 30 min', () => {
    expect([1, 2, 3, 4, 5, 10].map((sends) => resendDelayMs({ op: 'add', atMs: 0, sends }))).toEqual([RESEND_FIRST_MS, 2 * RESEND_FIRST_MS, 4 * RESEND_FIRST_MS, 8 * RESEND_FIRST_MS, RESEND_MAX_MS, RESEND_MAX_MS]);
  });
});

test('commentCurrent: the same label with an expiry a moment off is current; an extension or another label is not', () => {
  const e = { ip: '192.0.2.1', family: 'ipv4' as const, label: 'ADS SCANS event 1', expiresAtMs: Date.UTC(2026, 10, 27, 12) };
  expect(commentCurrent(ownerComment(e), e)).toBe(true);
  expect(commentCurrent(ownerComment({ ...e, expiresAtMs: e.expiresAtMs - 40 }), e)).toBe(true);
  expect(commentCurrent(ownerComment({ ...e, expiresAtMs: e.expiresAtMs - COMMENT_EXPIRY_SLACK_MS - 1 }), e)).toBe(false);
  expect(commentCurrent(ownerComment({ ...e, label: 'ADS DOS event 2' }), e)).toBe(false);
  expect(commentCurrent(undefined, e)).toBe(false);
  expect(commentCurrent(ownerComment({ ...e, expiresAtMs: undefined }), e)).toBe(false);
});
