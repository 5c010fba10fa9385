/**
 * Address/prefix conversions between the CIDR form this project uses and the forms FortiOS speaks:
 * IPv4 `subnet` is "a.b.c.d m.m.m.m" on GET and accepts "ip mask", "ip/len", "ip/dotted-mask" or a bare
 * ip on writes; IPv6 `ip6` is "addr/len". Shared by the client and the emulator so both agree on syntax;
 * the emulator's replies are checked separately against recorded real responses.
 */
import ipaddr from 'ipaddr.js';

export type AddressFamily = 'ipv4' | 'ipv6';

export interface Prefix {
  family: AddressFamily;
  address: ipaddr.IPv4 | ipaddr.IPv6;
  length: number;
}

/** Why a subnet was refused: FortiOS distinguishes a bad address (-8) from a bad netmask (-9). */
export type PrefixProblem = 'address' | 'mask';
export type PrefixParse = { ok: true; prefix: Prefix } | { ok: false; problem: PrefixProblem };

const MAX_LENGTH: Record<AddressFamily, number> = { ipv4: 32, ipv6: 128 };

/** Parses any spelling FortiOS accepts for the family; a bare address is a host prefix. */
export function parsePrefix(family: AddressFamily, text: string): PrefixParse {
  const [addressText, maskText, extra] = text.trim().split(/\s+|\//);
  if (addressText === undefined || extra !== undefined) return { ok: false, problem: 'address' };
  const address = parseAddress(family, addressText);
  if (!address) return { ok: false, problem: 'address' };
  const length = maskText === undefined ? MAX_LENGTH[family] : parseLength(family, maskText);
  if (length === undefined) return { ok: false, problem: 'mask' };
  return { ok: true, prefix: { family, address, length } };
}

/** Parses one address of the family; undefined when invalid (IPv6 zone ids are refused). */
export function parseAddress(family: AddressFamily, text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (family === 'ipv4') {
    return ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : undefined;
  }
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  const address = ipaddr.IPv6.parse(text);
  return address.zoneId === undefined ? address : undefined;
}

function parseLength(family: AddressFamily, text: string): number | undefined {
  if (/^\d{1,3}$/.test(text)) {
    const length = Number(text);
    return length <= MAX_LENGTH[family] ? length : undefined;
  }
  // Dotted masks only exist for IPv4 and must be contiguous.
  if (family !== 'ipv4' || !ipaddr.IPv4.isValidFourPartDecimal(text)) return undefined;
  return ipaddr.IPv4.parse(text).prefixLengthFromSubnetMask() ?? undefined;
}

/** "addr/len" with the address in canonical text (RFC 5952 for IPv6). */
export function formatCidr(p: Prefix): string {
  return `${p.address.toString()}/${p.length}`;
}

/** IPv4 "a.b.c.d m.m.m.m" as FortiOS stores and returns it. */
export function formatIpMask(p: Prefix): string {
  return `${p.address.toString()} ${ipaddr.IPv4.subnetMaskFromPrefixLength(p.length).toString()}`;
}

/** The prefix with host bits cleared. */
export function networkOf(p: Prefix): Prefix {
  const cidr = formatCidr(p);
  const address =
    p.family === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  return { family: p.family, address, length: p.length };
}

/** Same network and length: "10.0.0.5/24" and "10.0.0.0/24" match the same traffic. */
export function sameNetwork(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && formatCidr(networkOf(a)) === formatCidr(networkOf(b));
}

/** True when the address lies inside one of the ranges (both of the same family). */
export function inRanges(address: ipaddr.IPv4 | ipaddr.IPv6, ranges: readonly Prefix[]): boolean {
  return ranges.some((r) => r.address.kind() === address.kind() && address.match(r.address, r.length));
}
