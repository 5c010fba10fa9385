import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import {
  assertValidIpPolicy,
  canonicalIp,
  checkIp,
  DEFAULT_IP_POLICY,
  IpCheck,
  IpPolicy,
  IpRejectCode,
  parseCidrList,
  SPECIAL_RANGES,
} from '../../src/policy/ip-policy';

const HOSTS_ONLY = DEFAULT_IP_POLICY;
const WIDE: IpPolicy = { ...DEFAULT_IP_POLICY, maxPrefixV4: 0, maxPrefixV6: 0 };
const PRIVATE_OK: IpPolicy = { ...DEFAULT_IP_POLICY, allowPrivate: true };

function rejection(input: string, policy: IpPolicy = HOSTS_ONLY): { code: IpRejectCode; reason: string } {
  const result = checkIp(input, policy);
  if (result.ok) throw new Error(`${input} was accepted as ${result.ip}`);
  return result;
}

describe('DEFAULT_IP_POLICY', () => {
  test('hosts only, no private targets, empty allowlist, frozen', () => {
    expect(DEFAULT_IP_POLICY).toEqual({ allowlist: [], allowPrivate: false, maxPrefixV4: 32, maxPrefixV6: 128 });
    expect(Object.isFrozen(DEFAULT_IP_POLICY)).toBe(true);
    expect(Object.isFrozen(DEFAULT_IP_POLICY.allowlist)).toBe(true);
  });
});

describe('checkIp: accepted, in canonical form', () => {
  test.each<[string, IpPolicy, Omit<Extract<IpCheck, { ok: true }>, 'ok'>]>([
    ['203.0.113.5', HOSTS_ONLY, { ip: '203.0.113.5', family: 'ipv4', prefix: 32, cidr: '203.0.113.5/32' }],
    ['8.8.8.8', HOSTS_ONLY, { ip: '8.8.8.8', family: 'ipv4', prefix: 32, cidr: '8.8.8.8/32' }],
    ['1.0.0.1', HOSTS_ONLY, { ip: '1.0.0.1', family: 'ipv4', prefix: 32, cidr: '1.0.0.1/32' }],
    ['198.51.100.10/32', HOSTS_ONLY, { ip: '198.51.100.10', family: 'ipv4', prefix: 32, cidr: '198.51.100.10/32' }],
    // Documentation ranges are public for us (tests and demos use them as attackers).
    ['192.0.2.1', HOSTS_ONLY, { ip: '192.0.2.1', family: 'ipv4', prefix: 32, cidr: '192.0.2.1/32' }],
    ['::ffff:203.0.113.5', HOSTS_ONLY, { ip: '203.0.113.5', family: 'ipv4', prefix: 32, cidr: '203.0.113.5/32' }],
    ['::FFFF:cb00:7105', HOSTS_ONLY, { ip: '203.0.113.5', family: 'ipv4', prefix: 32, cidr: '203.0.113.5/32' }],
    ['0:0:0:0:0:ffff:203.0.113.5/128', HOSTS_ONLY, { ip: '203.0.113.5', family: 'ipv4', prefix: 32, cidr: '203.0.113.5/32' }],
    ['2001:DB8::1', HOSTS_ONLY, { ip: '2001:db8::1', family: 'ipv6', prefix: 128, cidr: '2001:db8::1/128' }],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', HOSTS_ONLY, { ip: '2001:db8::1', family: 'ipv6', prefix: 128, cidr: '2001:db8::1/128' }],
    // RFC 5952: the longest run of zeros is compressed; on a tie, the first one.
    ['2001:db8:0:0:1:0:0:1', HOSTS_ONLY, { ip: '2001:db8::1:0:0:1', family: 'ipv6', prefix: 128, cidr: '2001:db8::1:0:0:1/128' }],
    ['2001:db8:0:1:0:0:0:1', HOSTS_ONLY, { ip: '2001:db8:0:1::1', family: 'ipv6', prefix: 128, cidr: '2001:db8:0:1::1/128' }],
    ['2001:db8::1/128', HOSTS_ONLY, { ip: '2001:db8::1', family: 'ipv6', prefix: 128, cidr: '2001:db8::1/128' }],
    ['3fff::1', HOSTS_ONLY, { ip: '3fff::1', family: 'ipv6', prefix: 128, cidr: '3fff::1/128' }],
    ['2002:cb00:7105::1', HOSTS_ONLY, { ip: '2002:cb00:7105::1', family: 'ipv6', prefix: 128, cidr: '2002:cb00:7105::1/128' }],
    ['203.0.113.0/24', { ...HOSTS_ONLY, maxPrefixV4: 24 }, { ip: '203.0.113.0/24', family: 'ipv4', prefix: 24, cidr: '203.0.113.0/24' }],
    ['203.0.113.128/25', { ...HOSTS_ONLY, maxPrefixV4: 24 }, { ip: '203.0.113.128/25', family: 'ipv4', prefix: 25, cidr: '203.0.113.128/25' }],
    ['2001:DB8:1::/64', { ...HOSTS_ONLY, maxPrefixV6: 64 }, { ip: '2001:db8:1::/64', family: 'ipv6', prefix: 64, cidr: '2001:db8:1::/64' }],
    ['::ffff:203.0.113.0/120', { ...HOSTS_ONLY, maxPrefixV4: 24 }, { ip: '203.0.113.0/24', family: 'ipv4', prefix: 24, cidr: '203.0.113.0/24' }],
    // Next to the private ranges, but outside them.
    ['172.32.0.1', HOSTS_ONLY, { ip: '172.32.0.1', family: 'ipv4', prefix: 32, cidr: '172.32.0.1/32' }],
    ['172.15.255.255', HOSTS_ONLY, { ip: '172.15.255.255', family: 'ipv4', prefix: 32, cidr: '172.15.255.255/32' }],
    ['100.128.0.1', HOSTS_ONLY, { ip: '100.128.0.1', family: 'ipv4', prefix: 32, cidr: '100.128.0.1/32' }],
    ['198.20.0.1', HOSTS_ONLY, { ip: '198.20.0.1', family: 'ipv4', prefix: 32, cidr: '198.20.0.1/32' }],
    ['223.255.255.255', HOSTS_ONLY, { ip: '223.255.255.255', family: 'ipv4', prefix: 32, cidr: '223.255.255.255/32' }],
    ['2001:db8::/32', WIDE, { ip: '2001:db8::/32', family: 'ipv6', prefix: 32, cidr: '2001:db8::/32' }],
  ])('%s', (input, policy, expected) => {
    expect(checkIp(input, policy)).toStrictEqual({ ok: true, ...expected });
  });
});

describe('checkIp: invalid syntax', () => {
  test.each([
    '',
    ' 203.0.113.5',
    '203.0.113.5 ',
    '203.0.113 .5',
    '203.0.113.5\t',
    '203.0.113.5\n',
    '010.1.1.1',
    '1.2.3.04',
    '0x7f.0.0.1',
    '017700000001',
    '256.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    '1..2.3',
    '١.٢.٣.٤',
    '1.2.3.4/33',
    '1.2.3.4/',
    '1.2.3.4/024',
    '1.2.3.4/-1',
    '1.2.3.4/1/2',
    '/24',
    'fe80::1%eth0',
    '2001:db8::1%1',
    '2001:db8:::1',
    '2001:db8::1::1',
    '12345::1',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    ':1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:',
    '::ffff:010.1.1.1',
    '::ffff:1.2.3.4.5',
    '::ffff:0x1.2.3.4',
    '2001:db8::/129',
    'g::1',
    'localhost',
    '1.2.3.4,5.6.7.8',
    'x'.repeat(100),
  ])('%p', (input) => {
    expect(rejection(input).code).toBe('invalid');
  });

  test('non-strings are invalid, not a crash', () => {
    for (const input of [undefined, null, 42, {}, ['1.2.3.4']]) {
      expect(checkIp(input as unknown as string, HOSTS_ONLY)).toMatchObject({ ok: false, code: 'invalid' });
    }
  });

  test('reasons say what is wrong', () => {
    expect(rejection('fe80::1%eth0').reason).toBe('"fe80::1%eth0" has a zone id (%...), which a firewall rule cannot use');
    expect(rejection('203.0.113 .5').reason).toBe('"203.0.113 .5" contains whitespace');
    expect(rejection('010.1.1.1').reason).toBe('"010.1.1.1" is not an IPv4 or IPv6 address');
    expect(rejection('1.2.3.4/33').reason).toBe('"1.2.3.4/33" has an invalid prefix length (0..32)');
  });
});

describe('checkIp: reserved (never blocked, whatever the policy)', () => {
  test.each([
    ['0.0.0.0', /0\.0\.0\.0 is in 0\.0\.0\.0\/8 \("this network"/],
    ['0.1.2.3', /is in 0\.0\.0\.0\/8/],
    ['127.0.0.1', /is in 127\.0\.0\.0\/8 \(loopback/],
    ['169.254.1.1', /link-local/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['255.255.255.255', /limited broadcast/],
    ['240.0.0.1', /reserved for future use/],
    ['192.0.0.8', /IETF protocol assignments/],
    ['192.88.99.1', /6to4 relay anycast/],
    ['::', /is in ::\/128 \(unspecified/],
    ['::1', /is in ::1\/128 \(loopback/],
    ['fe80::1', /link-local/],
    ['febf:ffff::1', /link-local/],
    ['ff02::1', /multicast/],
    ['2001:10::1', /ORCHID/],
    ['2001:20::1', /ORCHIDv2/],
    ['::ffff:127.0.0.1', /^127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    // IPv4-compatible (deprecated), NAT64, discard, site-local, v4-translated: outside 2000::/3.
    ['::203.0.113.5', /::cb00:7105 is not inside IPv6 global unicast 2000::\/3/],
    ['64:ff9b::203.0.113.5', /not inside IPv6 global unicast/],
    ['100::1', /not inside IPv6 global unicast/],
    ['fec0::1', /not inside IPv6 global unicast/],
    ['::ffff:0:cb00:7105', /not inside IPv6 global unicast/],
    ['4000::1', /not inside IPv6 global unicast/],
  ])('%s', (input, reason) => {
    for (const policy of [HOSTS_ONLY, { ...WIDE, allowPrivate: true }]) {
      const result = rejection(input, policy);
      expect(result.code).toBe('reserved');
      expect(result.reason).toMatch(reason);
    }
  });

  test.each([
    ['126.0.0.0/7', /126\.0\.0\.0\/7 overlaps 127\.0\.0\.0\/8/],
    ['0.0.0.0/0', /overlaps 0\.0\.0\.0\/8/],
    ['224.0.0.0/3', /overlaps 224\.0\.0\.0\/4/],
    ['::/0', /overlaps ::\/128/],
    ['fe00::/7', /overlaps fe80::\/10/],
    ['4000::/2', /not inside IPv6 global unicast/],
    ['2001::/16', /overlaps 2001:10::\/28/],
  ])('a block that overlaps a reserved range is reserved: %s', (input, reason) => {
    const result = rejection(input, { ...WIDE, allowPrivate: true });
    expect(result.code).toBe('reserved');
    expect(result.reason).toMatch(reason);
  });
});

describe('checkIp: private', () => {
  test.each([
    ['10.1.2.3', '10.0.0.0/8'],
    ['172.16.0.1', '172.16.0.0/12'],
    ['172.31.255.255', '172.16.0.0/12'],
    ['192.168.1.1', '192.168.0.0/16'],
    ['100.64.0.1', '100.64.0.0/10'],
    ['100.127.255.255', '100.64.0.0/10'],
    ['198.18.0.1', '198.18.0.0/15'],
    ['198.19.255.255', '198.18.0.0/15'],
    ['fc00::1', 'fc00::/7'],
    ['fd12:3456::1', 'fc00::/7'],
    ['2001:2::1', '2001:2::/48'],
    ['::ffff:10.0.0.1', '10.0.0.0/8'],
  ])('%s is refused by default and accepted with allowPrivate', (input, range) => {
    const refused = rejection(input);
    expect(refused.code).toBe('private');
    expect(refused.reason).toContain(` is in ${range} (`);
    expect(refused.reason).toContain('ALLOW_PRIVATE');
    expect(checkIp(input, PRIVATE_OK)).toMatchObject({ ok: true, ip: canonicalIp(input) });
  });

  test('a block that contains private space is private', () => {
    expect(rejection('8.0.0.0/6', WIDE)).toMatchObject({ code: 'private', reason: expect.stringContaining('8.0.0.0/6 overlaps 10.0.0.0/8') });
    expect(checkIp('8.0.0.0/6', { ...WIDE, allowPrivate: true })).toMatchObject({ ok: true, ip: '8.0.0.0/6' });
  });
});

describe('checkIp: host bits and prefix limits', () => {
  test.each([
    ['203.0.113.5/24', '203.0.113.0/24'],
    ['2001:db8::1/64', '2001:db8::/64'],
    ['::ffff:203.0.113.5/120', '203.0.113.0/24'],
    ['10.0.0.1/8', '10.0.0.0/8'],
  ])('%s has host bits set (suggests %s)', (input, suggestion) => {
    expect(checkIp(input, WIDE)).toEqual({ ok: false, code: 'host-bits-set', reason: `"${input}" has host bits set; did you mean ${suggestion}?` });
  });

  test.each([
    ['203.0.113.0/31', HOSTS_ONLY, 'is wider than /32, the widest ipv4 block allowed (MAX_PREFIX_V4)'],
    ['203.0.113.0/24', HOSTS_ONLY, 'is wider than /32'],
    ['203.0.112.0/23', { ...HOSTS_ONLY, maxPrefixV4: 24 }, 'is wider than /24'],
    ['2001:db8::/127', HOSTS_ONLY, 'is wider than /128, the widest ipv6 block allowed (MAX_PREFIX_V6)'],
    ['2001:db8::/48', { ...HOSTS_ONLY, maxPrefixV6: 64 }, 'is wider than /64'],
    ['::ffff:203.0.113.0/120', HOSTS_ONLY, '203.0.113.0/24 is wider than /32'],
  ])('%s is too wide', (input, policy, reason) => {
    const result = rejection(input, policy);
    expect(result.code).toBe('prefix-too-wide');
    expect(result.reason).toContain(reason);
  });

  test('the limit is inclusive', () => {
    expect(checkIp('203.0.113.0/24', { ...HOSTS_ONLY, maxPrefixV4: 24 }).ok).toBe(true);
    expect(checkIp('2001:db8::/64', { ...HOSTS_ONLY, maxPrefixV6: 64 }).ok).toBe(true);
  });
});

describe('checkIp: allowlist', () => {
  const policy: IpPolicy = {
    ...DEFAULT_IP_POLICY,
    maxPrefixV4: 16,
    maxPrefixV6: 48,
    allowlist: ['203.0.113.0/28', '2001:db8:1::1', '::ffff:198.51.100.7'],
  };

  test.each([
    ['203.0.113.5', '203.0.113.0/28', 'an address inside an entry'],
    ['203.0.113.15', '203.0.113.0/28', 'the last address of an entry'],
    ['203.0.113.0/24', '203.0.113.0/28', 'a block that contains an entry'],
    ['203.0.113.8/29', '203.0.113.0/28', 'a block inside an entry'],
    ['2001:db8:1::/64', '2001:db8:1::1/128', 'an IPv6 block that contains a host entry'],
    ['2001:db8:1:0:0:0:0:1', '2001:db8:1::1/128', 'an entry written differently'],
    ['198.51.100.7', '198.51.100.7/32', 'an IPv4 address allowlisted in ::ffff: form'],
    ['::ffff:203.0.113.1', '203.0.113.0/28', 'a ::ffff: address of an allowlisted IPv4'],
  ])('%s is refused (%s, #3)', (input, entry) => {
    const result = rejection(input, policy);
    expect(result.code).toBe('allowlisted');
    expect(result.reason).toMatch(new RegExp(`overlaps allowlist entry ${entry.replace(/[./]/g, '\\$&')}$`));
  });

  test.each(['203.0.113.16', '203.0.113.16/28', '2001:db8:1::2', '2001:db8:2::/48', '198.51.100.6'])('%s, next to an entry, is accepted', (input) => {
    expect(checkIp(input, policy).ok).toBe(true);
  });

  test('allowlisted wins even when allowPrivate is set', () => {
    expect(rejection('10.0.0.5', { ...PRIVATE_OK, allowlist: ['10.0.0.0/24'] }).code).toBe('allowlisted');
  });
});

describe('policy validation', () => {
  test('parseCidrList returns canonical entries', () => {
    expect(parseCidrList(['10.0.0.0/8', '2001:DB8::1', '::ffff:192.0.2.1']).map((c) => [c.cidr, c.family, c.prefix])).toEqual([
      ['10.0.0.0/8', 'ipv4', 8],
      ['2001:db8::1/128', 'ipv6', 128],
      ['192.0.2.1/32', 'ipv4', 32],
    ]);
  });

  test.each<[unknown, RegExp]>([
    [['10.0.0.0/8', ' 192.0.2.1'], /^allowlist entry #2 " 192.0.2.1": " 192.0.2.1" contains whitespace$/],
    [['10.0.0.1/8'], /^allowlist entry #1 "10.0.0.1\/8": .*host bits set; did you mean 10.0.0.0\/8\?$/],
    [['dns.example'], /^allowlist entry #1 "dns.example": .*is not an IPv4 or IPv6 address$/],
    [[''], /^allowlist entry #1 "": empty address$/],
    ['10.0.0.0/8', /allowlist must be an array/],
  ])('parseCidrList(%p) throws naming the entry', (list, message) => {
    expect(() => parseCidrList(list as string[])).toThrow(message);
  });

  test.each<[string, Partial<IpPolicy>, RegExp]>([
    ['a bad allowlist entry', { allowlist: ['192.0.2.1', 'nope'] }, /allowlist entry #2 "nope"/],
    ['maxPrefixV4 above 32', { maxPrefixV4: 33 }, /MAX_PREFIX_V4 must be an integer 0..32, got 33/],
    ['a fractional maxPrefixV6', { maxPrefixV6: 64.5 }, /MAX_PREFIX_V6 must be an integer 0..128/],
    ['a non-boolean allowPrivate', { allowPrivate: 'yes' as unknown as boolean }, /ALLOW_PRIVATE must be true or false/],
  ])('an unusable policy (%s) fails closed: every address is refused', (_name, change, message) => {
    const policy = { ...DEFAULT_IP_POLICY, ...change };
    for (const input of ['203.0.113.5', '2001:db8::1']) {
      const result = rejection(input, policy);
      expect(result.code).toBe('policy-invalid');
      expect(result.reason).toMatch(/^invalid IP policy, nothing is blocked: /);
      expect(result.reason).toMatch(message);
    }
    expect(() => assertValidIpPolicy(policy)).toThrow(message);
  });

  test('the default policy is valid', () => {
    expect(() => assertValidIpPolicy(DEFAULT_IP_POLICY)).not.toThrow();
  });
});

describe('special-range table', () => {
  /** Our names that differ from ipaddr.js range(), and why, are documented in ip-policy.ts. */
  const IPADDR_NAME: Record<string, string> = {
    'futureUse 240.0.0.0/4': 'reserved',
    'ietfProtocolAssignments 192.0.0.0/24': 'reserved',
    'sixToFourRelay 192.88.99.0/24': 'reserved',
    'benchmarking 198.18.0.0/15': 'reserved',
    'orchid 2001:10::/28': 'deprecatedOrchid',
  };

  test.each(SPECIAL_RANGES.map((r) => [r.name, r.block.cidr] as const))('%s %s uses the ipaddr.js range() name where it fits', (name, cidr) => {
    const [network] = ipaddr.parseCIDR(cidr);
    expect(network.range()).toBe(IPADDR_NAME[`${name} ${cidr}`] ?? name);
  });

  test('documentation ranges, "reserved" to ipaddr.js, are public to us', () => {
    for (const ip of ['192.0.2.1', '198.51.100.1', '203.0.113.1', '2001:db8::1']) {
      expect(ipaddr.parse(ip).range()).toBe('reserved');
      expect(checkIp(ip, HOSTS_ONLY).ok).toBe(true);
    }
  });
});

describe('properties', () => {
  const policies = fc.constantFrom<IpPolicy>(HOSTS_ONLY, WIDE, { ...WIDE, allowPrivate: true }, { ...PRIVATE_OK, allowlist: ['203.0.113.0/24', '2001:db8::/32'] });
  const prefix = (max: number) => fc.option(fc.integer({ min: 0, max }), { nil: undefined });
  const ipLike = fc.oneof(
    fc.string(),
    fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:./% x') }),
    fc.tuple(fc.ipV4(), prefix(32)).map(([ip, len]) => (len === undefined ? ip : `${ip}/${len}`)),
    fc.tuple(fc.ipV6(), prefix(128)).map(([ip, len]) => (len === undefined ? ip : `${ip}/${len}`)),
    fc.ipV4Extended(),
    fc.ipV4().map((ip) => `::ffff:${ip}`),
  );

  test('checkIp never throws, and every accepted result re-checks to itself', () => {
    fc.assert(
      fc.property(ipLike, policies, (input, policy) => {
        const result = checkIp(input, policy);
        expect(typeof result.ok).toBe('boolean');
        if (!result.ok) return;
        expect(checkIp(result.ip, policy)).toStrictEqual(result);
        expect(checkIp(result.cidr, policy)).toStrictEqual(result);
        expect(canonicalIp(input)).toBe(result.ip);
      }),
      { numRuns: 3000 },
    );
  });

  test('a well-formed address or network is never "invalid"', () => {
    const network = (ip: string, len: number) => {
      const [address] = ipaddr.parseCIDR(`${ip}/${len}`);
      const net = address.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(`${ip}/${len}`) : ipaddr.IPv6.networkAddressFromCIDR(`${ip}/${len}`);
      return `${net.toString()}/${len}`;
    };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.ipV4(),
          fc.ipV6(),
          fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, len]) => network(ip, len)),
          fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([ip, len]) => network(ip, len)),
        ),
        (input) => {
          const result = checkIp(input, WIDE);
          expect(result.ok || result.code).not.toBe('invalid');
          expect(result.ok || result.code).not.toBe('host-bits-set');
        },
      ),
      { numRuns: 2000 },
    );
  });
});
