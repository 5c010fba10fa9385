import fc from 'fast-check';
import { decide, DEFAULT_INTAKE_POLICY, IntakePolicy, validateIntakePolicy } from '../../src/ads/decision';
import { AdsEvent, PRIORITIES, Priority } from '../../src/ads/event';
import { parseAdsLine } from '../../src/ads/parse';
import { canonicalIp } from '../../src/policy/ip-policy';
import { EXTENDED_DOS, EXTENDED_SCANS, IDS_LINE, MANUAL_RUN, replaceField, STANDARD_SSHDICT } from './samples';

const P = DEFAULT_INTAKE_POLICY;
const event = (overrides: Partial<AdsEvent>): AdsEvent => ({ ...parseAdsLine(STANDARD_SSHDICT), ...overrides });

describe('DEFAULT_INTAKE_POLICY', () => {
  test('blocks the source of class A methods, the targets of DOS, IDS off, threshold medium', () => {
    expect(P).toEqual({
      minPriority: 'medium',
      blockSourceMethods: ['SCANS', 'SSHDICT', 'RDPDICT', 'DICTATTACK', 'HTTPDICT', 'TELNET', 'SIPSCAN', 'SIPFLOOD', 'HONEYPOT'],
      blockTargetsMethods: ['DOS'],
      acceptIds: false,
      maxTargetsPerEvent: 100,
    });
    expect(() => validateIntakePolicy(P)).not.toThrow();
  });

  test('cannot be mutated by a caller', () => {
    expect(Object.isFrozen(P)).toBe(true);
    expect(Object.isFrozen(P.blockSourceMethods)).toBe(true);
  });
});

describe('decide: the sample events', () => {
  test('SSHDICT (high) blocks its source', () => {
    expect(decide(parseAdsLine(STANDARD_SSHDICT), P)).toEqual({ action: 'block', ips: ['203.0.113.45'], role: 'source' });
  });

  test('SCANS (medium, at the threshold) blocks its IPv6 source, canonicalised', () => {
    expect(decide(parseAdsLine(EXTENDED_SCANS), P)).toEqual({ action: 'block', ips: ['2001:db8:bad::7'], role: 'source' });
  });

  test('DOS blocks the attackers (targets) and never the victim (source)', () => {
    const dos = parseAdsLine(EXTENDED_DOS);
    const decision = decide(dos, P);
    expect(decision).toEqual({ action: 'block', ips: ['203.0.113.1', '203.0.113.2', '203.0.113.3'], role: 'targets' });
    expect(decision.action === 'block' && decision.ips).not.toContain(dos.source);
  });

  test('IDS events are ignored by default', () => {
    expect(decide(parseAdsLine(IDS_LINE), P)).toEqual({
      action: 'ignore',
      rule: 'ids-disabled',
      reason: 'IDS event 88812 ignored: IDS events are not accepted (ACCEPT_IDS_EVENTS is off)',
    });
  });

  test('IDS events block their source when accepted', () => {
    expect(decide(parseAdsLine(IDS_LINE), { ...P, acceptIds: true })).toEqual({ action: 'block', ips: ['203.0.113.77'], role: 'source' });
  });

  test('a manual run (no priority) is ignored with its own rule', () => {
    const decision = decide(parseAdsLine(MANUAL_RUN), P);
    expect(decision).toMatchObject({ action: 'ignore', rule: 'priority-unknown' });
    expect(decision.action === 'ignore' && decision.reason).toMatch(/event 4179523 \(SSHDICT\) has no priority/);
  });
});

describe('decide: threshold', () => {
  const cases: [Priority, Priority, 'block' | 'ignore'][] = [];
  for (const min of PRIORITIES) for (const given of PRIORITIES) cases.push([min, given, PRIORITIES.indexOf(given) >= PRIORITIES.indexOf(min) ? 'block' : 'ignore']);

  test.each(cases)('minPriority %s, event %s → %s', (min, given, action) => {
    const decision = decide(event({ priority: given }), { ...P, minPriority: min });
    expect(decision.action).toBe(action);
    if (decision.action === 'ignore') expect(decision.rule).toBe('below-threshold');
  });

  test('the reason names both priorities', () => {
    expect(decide(event({ priority: 'low' }), P)).toEqual({
      action: 'ignore',
      rule: 'below-threshold',
      reason: 'event 4179523 (SSHDICT) is low, below the minimum priority medium',
    });
  });

  test('unknown priority is ignored even with the lowest threshold', () => {
    expect(decide(event({ priority: undefined }), { ...P, minPriority: 'info' })).toMatchObject({ rule: 'priority-unknown' });
  });
});

describe('decide: methods that must never block', () => {
  const srvna = parseAdsLine(replaceField(EXTENDED_DOS, { 3: 'SRVNA', 8: 'Critical' }));
  const reflect = parseAdsLine(replaceField(EXTENDED_DOS, { 3: 'REFLECTDOS', 8: 'Critical' }));
  /** A configuration that (wrongly) lists every victim method in both lists. */
  const careless: IntakePolicy = {
    ...P,
    blockSourceMethods: [...P.blockSourceMethods, 'SRVNA', 'REFLECTDOS', 'DOS'],
    blockTargetsMethods: ['DOS', 'SRVNA', 'REFLECTDOS'],
  };

  test.each([
    ['SRVNA', srvna],
    ['REFLECTDOS', reflect],
  ])('%s blocks nothing, under the default and a careless policy', (method, e) => {
    for (const policy of [P, careless]) {
      const decision = decide(e, policy);
      expect(decision).toMatchObject({ action: 'ignore', rule: 'method-not-blocking' });
      expect(decision.action === 'ignore' && decision.reason).toMatch(new RegExp(`^${method} never blocks: its source is our own server`));
    }
  });

  test('DOS listed as source-blocking still never blocks its source', () => {
    const policy: IntakePolicy = { ...P, blockSourceMethods: ['DOS'], blockTargetsMethods: [] };
    expect(decide(parseAdsLine(EXTENDED_DOS), policy)).toEqual({
      action: 'ignore',
      rule: 'method-not-blocking',
      reason: 'DOS never blocks its source, which is the victim',
    });
  });

  test('DOS never returns its source even when ADS lists it among the targets (any spelling)', () => {
    const dos = event({ method: 'DOS', source: '2001:DB8::20', targets: ['2001:db8::20', '2001:db8::666', '2001:0db8::666'] });
    expect(decide(dos, P)).toEqual({ action: 'block', ips: ['2001:db8::666'], role: 'targets' });
  });

  test('DOS without attackers has nothing to block', () => {
    expect(decide(event({ method: 'DOS', targets: [] }), P)).toEqual({
      action: 'ignore',
      rule: 'no-address',
      reason: 'event 4179523 (DOS) names no targets address to block',
    });
  });

  test.each(['BLACKLIST', 'BPATTERNS', 'RANDOMDOMAIN', 'DNSANOMALY', 'UPLOAD', 'DIRINET', 'TOR', 'ALIENDEV', 'DIVCOM', 'ICMPANOM'])(
    'class I / uncertain method %s is not blocking by default',
    (method) => {
      expect(decide(event({ method, priority: 'critical' }), P)).toEqual({
        action: 'ignore',
        rule: 'method-not-blocking',
        reason: `${method} is not a blocking method in the intake policy`,
      });
    },
  );

  test('property: whatever the policy, victims and our own servers are never blocked', () => {
    const methods = ['DOS', 'SRVNA', 'REFLECTDOS', 'SSHDICT', 'SCANS'];
    const ip = fc.oneof(fc.ipV4(), fc.ipV6());
    fc.assert(
      fc.property(
        fc.constantFrom(...methods),
        ip,
        fc.array(ip, { maxLength: 5 }),
        fc.boolean(),
        fc.subarray(methods),
        fc.subarray(methods),
        fc.constantFrom(...PRIORITIES),
        (method, source, targets, sourceInTargets, sourceList, targetList, priority) => {
          const e = event({ method, source, targets: sourceInTargets ? [...targets, source] : targets, priority });
          const decision = decide(e, { ...P, minPriority: 'info', blockSourceMethods: sourceList, blockTargetsMethods: targetList });
          if (decision.action !== 'block') return;
          expect(['SRVNA', 'REFLECTDOS']).not.toContain(method);
          if (method === 'DOS') {
            expect(decision.role).toBe('targets');
            expect(decision.ips).not.toContain(canonicalIp(source) ?? source);
          }
        },
      ),
    );
  });
});

describe('decide: MAX_TARGETS_PER_EVENT', () => {
  const attackers = (n: number) => Array.from({ length: n }, (_, i) => `203.0.${113 + Math.floor(i / 250)}.${(i % 250) + 1}`);
  const dos = (n: number) => event({ method: 'DOS', priority: 'critical', source: '198.51.100.20', targets: attackers(n) });
  const capped: IntakePolicy = { ...P, maxTargetsPerEvent: 3 };

  test('an event at the cap blocks all its addresses', () => {
    expect(decide(dos(3), capped)).toEqual({ action: 'block', ips: attackers(3), role: 'targets' });
  });

  test('an event over the cap is ignored as a whole, with the count and the variable in the reason', () => {
    const decision = decide(dos(4), capped);
    expect(decision).toEqual({
      action: 'ignore',
      rule: 'too-many-targets',
      reason: 'event 4179523 (DOS) names 4 addresses to block, more than MAX_TARGETS_PER_EVENT (3); nothing is blocked',
    });
  });

  test('counts distinct attackers, never the victim: duplicates and the source do not push an event over', () => {
    const e = event({ method: 'DOS', priority: 'critical', source: '198.51.100.20', targets: [...attackers(3), '203.0.113.1', '198.51.100.20'] });
    expect(decide(e, capped)).toMatchObject({ action: 'block', ips: attackers(3) });
  });

  test('a source-blocking method blocks one address, however many targets it lists', () => {
    expect(decide(event({ targets: attackers(10) }), capped)).toEqual({ action: 'block', ips: ['203.0.113.45'], role: 'source' });
  });

  test('canHold lifts the cap for the count it is asked about, and is asked only over the cap', () => {
    const asked: number[] = [];
    const holdsFive = (n: number) => (asked.push(n), n <= 5);
    expect(decide(dos(3), capped, holdsFive)).toMatchObject({ action: 'block' });
    expect(decide(dos(5), capped, holdsFive)).toMatchObject({ action: 'block', ips: attackers(5) });
    expect(decide(dos(6), capped, holdsFive)).toMatchObject({ action: 'ignore', rule: 'too-many-targets' });
    expect(asked).toEqual([5, 6]);
  });

  test('the default cap is 100', () => {
    expect(decide(dos(100), P)).toMatchObject({ action: 'block' });
    expect(decide(dos(101), P)).toMatchObject({ action: 'ignore', rule: 'too-many-targets' });
  });
});

describe('validateIntakePolicy', () => {
  test.each<[string, Partial<IntakePolicy>, RegExp]>([
    ['DOS as source-blocking', { blockSourceMethods: ['SSHDICT', 'DOS'], blockTargetsMethods: [] }, /DOS cannot block its source, which is the victim/],
    ['SRVNA anywhere', { blockTargetsMethods: ['DOS', 'SRVNA'] }, /SRVNA must never block/],
    ['REFLECTDOS anywhere', { blockSourceMethods: ['REFLECTDOS'] }, /REFLECTDOS must never block/],
    ['a method in both lists', { blockSourceMethods: ['SCANS'], blockTargetsMethods: ['SCANS'] }, /SCANS is listed both as source-blocking and as targets-blocking/],
    ['a lower-case method', { blockSourceMethods: ['sshdict'] }, /"sshdict" is not an ADS method code/],
    ['an unknown minimum priority', { minPriority: 'urgent' as Priority }, /minPriority must be one of info, low, medium, high, critical/],
    ['a cap of 0 addresses per event', { maxTargetsPerEvent: 0 }, /maxTargetsPerEvent must be an integer ≥ 1/],
  ])('rejects %s', (_name, change, reason) => {
    expect(() => validateIntakePolicy({ ...P, ...change })).toThrow(reason);
  });
});
