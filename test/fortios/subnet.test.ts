/** Subnet syntax shared by the client and the emulator. */
import { formatCidr, formatIpMask, parsePrefix, sameNetwork } from '../../src/fortios/subnet';

const cidr = (family: 'ipv4' | 'ipv6', text: string) => {
  const p = parsePrefix(family, text);
  return p.ok ? formatCidr(p.prefix) : p.problem;
};

describe('parsePrefix', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7/32'],
    ['203.0.113.7/32', '203.0.113.7/32'],
    ['203.0.113.7 255.255.255.255', '203.0.113.7/32'],
    ['10.0.0.0/255.0.0.0', '10.0.0.0/8'],
    ['  10.0.0.0   255.0.0.0 ', '10.0.0.0/8'],
    ['0.0.0.0 0.0.0.0', '0.0.0.0/0'],
    ['1.2.3', 'address'],
    ['01.2.3.4/32', 'address'],
    ['1.2.3.4/33', 'mask'],
    ['1.2.3.4 255.0.255.0', 'mask'],
    ['1.2.3.4/24/1', 'address'],
    ['', 'address'],
  ])('IPv4 %j -> %s', (text, expected) => expect(cidr('ipv4', text)).toBe(expected));

  it.each([
    ['2001:DB8:0::1', '2001:db8::1/128'],
    ['0000:0000::/120', '::/120'],
    ['2001:db8::/64', '2001:db8::/64'],
    ['fe80::1%eth0', 'address'],
    ['2001:db8::/129', 'mask'],
    ['2001:db8::/255.255.255.0', 'mask'],
    ['192.0.2.1', 'address'],
  ])('IPv6 %j -> %s', (text, expected) => expect(cidr('ipv6', text)).toBe(expected));
});

describe('formatting and comparison', () => {
  const prefix = (family: 'ipv4' | 'ipv6', text: string) => {
    const p = parsePrefix(family, text);
    if (!p.ok) throw new Error(text);
    return p.prefix;
  };

  it('writes IPv4 as "ip mask"', () => {
    expect(formatIpMask(prefix('ipv4', '10.1.0.0/16'))).toBe('10.1.0.0 255.255.0.0');
  });

  it('compares networks, not spellings', () => {
    expect(sameNetwork(prefix('ipv4', '10.0.0.5/24'), prefix('ipv4', '10.0.0.0 255.255.255.0'))).toBe(true);
    expect(sameNetwork(prefix('ipv4', '10.0.0.0/24'), prefix('ipv4', '10.0.0.0/25'))).toBe(false);
    expect(sameNetwork(prefix('ipv6', '2001:db8::1'), prefix('ipv6', '2001:db8::2/128'))).toBe(false);
  });
});
