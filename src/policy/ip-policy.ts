/**
 * IP safety policy: decides whether an address or CIDR block may be blocked on the firewall.
 *
 * PURE module: it is imported by Temporal workflow code (validation in depth, design.md decision 7),
 * so it must not use node builtins, I/O, clocks or randomness. Its only dependency is `ipaddr.js`.
 *
 * Check order (the first failing rule names the rejection):
 *   invalid → host-bits-set → policy-invalid → prefix-too-wide → reserved → private → allowlisted.
 */
import ipaddr from 'ipaddr.js';

export type AddressFamily = 'ipv4' | 'ipv6';

export interface IpPolicy {
  /** CIDRs/IPs never to block (our infrastructure, the firewall itself, DNS resolvers...). */
  allowlist: readonly string[];
  /** Permit RFC 1918 / ULA / CGNAT / benchmarking targets. */
  allowPrivate: boolean;
  /** Widest IPv4 block allowed: 24 means /24../32 are allowed; 32 allows hosts only. */
  maxPrefixV4: number;
  /** Widest IPv6 block allowed, e.g. 64; 128 allows hosts only. */
  maxPrefixV6: number;
}

export const DEFAULT_IP_POLICY: Readonly<IpPolicy> = Object.freeze({
  allowlist: Object.freeze([]) as readonly string[],
  allowPrivate: false,
  maxPrefixV4: 32,
  maxPrefixV6: 128,
});

/**
 * Syntax and the always-reserved ranges only, nothing configurable: for code that has no configuration
 * (the block workflow's own check; the worker applies the full policy right before the firewall call).
 */
export const RESERVED_ONLY_POLICY: Readonly<IpPolicy> = Object.freeze({
  allowlist: Object.freeze([]) as readonly string[],
  allowPrivate: true,
  maxPrefixV4: 0,
  maxPrefixV6: 0,
});

export type IpRejectCode =
  | 'invalid'
  | 'reserved'
  | 'private'
  | 'allowlisted'
  | 'prefix-too-wide'
  | 'host-bits-set'
  /** The policy itself is unusable (bad allowlist entry or prefix limit): fail closed, block nothing. */
  | 'policy-invalid';

export type IpCheck =
  | {
      ok: true;
      /** Canonical: IPv4 dotted, IPv6 RFC 5952; a block is "net/len", a single host has no suffix. */
      ip: string;
      family: AddressFamily;
      prefix: number;
      /** Always "net/len". */
      cidr: string;
    }
  | { ok: false; code: IpRejectCode; reason: string };

/** A parsed, canonical CIDR block (a host is a /32 or /128). */
export interface Cidr {
  readonly address: ipaddr.IPv4 | ipaddr.IPv6;
  readonly family: AddressFamily;
  readonly prefix: number;
  /** Canonical "net/len". */
  readonly cidr: string;
}

type Rejection = { ok: false; code: IpRejectCode; reason: string };
type Parsed<T> = { ok: true; value: T } | Rejection;

const BITS: Record<AddressFamily, number> = { ipv4: 32, ipv6: 128 };
/** Messages name the setting as operators write it (the environment variable), not the field. */
const SETTING = { allowPrivate: 'ALLOW_PRIVATE', maxPrefixV4: 'MAX_PREFIX_V4', maxPrefixV6: 'MAX_PREFIX_V6' } as const;
/** Longest legal text is "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" (49 chars). */
const MAX_INPUT_LENGTH = 64;
/** Dotted quad without leading zeros: "010.1.1.1" is octal to some parsers and decimal to others. */
const STRICT_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const PREFIX_TEXT = /^(?:0|[1-9]\d{0,2})$/;
const IPV6_TEXT = /^[0-9a-fA-F:]+$/;

// ---------------------------------------------------------------------------------------------
// Special ranges.
//
// We keep our own table instead of calling ipaddr.js `range()` because:
//  1. `range()` classifies one address, but a CIDR block must be rejected when it merely OVERLAPS
//     a forbidden range (126.0.0.0/7 starts outside loopback yet contains it);
//  2. ipaddr.js's IPv4 'reserved' lumps the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
//     203.0.113.0/24), which our tests and demos use as attackers and which we treat as public,
//     together with 240.0.0.0/4; the same goes for IPv6 2001:db8::/32 and 3fff::/20 (RFC 9637).
// Entry names reuse ipaddr.js range names wherever they mean the same thing (a test checks this);
// other names are ours.
// ---------------------------------------------------------------------------------------------

export interface SpecialRange {
  readonly name: string;
  readonly block: Cidr;
  /** 'reserved' is never blockable; 'private' is blockable only with allowPrivate. */
  readonly verdict: 'reserved' | 'private';
  readonly label: string;
}

const special = (cidr: string, name: string, verdict: SpecialRange['verdict'], label: string): SpecialRange => {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) throw new Error(`ip-policy: bad built-in range ${cidr}: ${parsed.reason}`);
  return { name, block: parsed.value, verdict, label };
};

/** First match wins, so narrower entries precede the wider ones that contain them. */
export const SPECIAL_RANGES: readonly SpecialRange[] = [
  special('0.0.0.0/8', 'unspecified', 'reserved', '"this network", RFC 1122'),
  special('127.0.0.0/8', 'loopback', 'reserved', 'loopback, RFC 1122'),
  special('169.254.0.0/16', 'linkLocal', 'reserved', 'link-local, RFC 3927'),
  special('224.0.0.0/4', 'multicast', 'reserved', 'multicast, RFC 5771'),
  special('255.255.255.255/32', 'broadcast', 'reserved', 'limited broadcast, RFC 919'),
  // ipaddr.js calls these 'reserved' together with the documentation ranges (see above).
  special('240.0.0.0/4', 'futureUse', 'reserved', 'reserved for future use, RFC 1112'),
  special('192.0.0.0/24', 'ietfProtocolAssignments', 'reserved', 'IETF protocol assignments, RFC 6890'),
  special('192.88.99.0/24', 'sixToFourRelay', 'reserved', 'deprecated 6to4 relay anycast, RFC 7526'),
  special('10.0.0.0/8', 'private', 'private', 'private, RFC 1918'),
  special('172.16.0.0/12', 'private', 'private', 'private, RFC 1918'),
  special('192.168.0.0/16', 'private', 'private', 'private, RFC 1918'),
  special('100.64.0.0/10', 'carrierGradeNat', 'private', 'carrier-grade NAT, RFC 6598'),
  // Not routed on the Internet; used inside networks (RFC 2544 labs, proxy "fake-IP" pools), so it
  // is treated like private space rather than rejected outright. ipaddr.js files it under 'reserved'.
  special('198.18.0.0/15', 'benchmarking', 'private', 'benchmarking, RFC 2544'),

  special('::/128', 'unspecified', 'reserved', 'unspecified, RFC 4291'),
  special('::1/128', 'loopback', 'reserved', 'loopback, RFC 4291'),
  special('fe80::/10', 'linkLocal', 'reserved', 'link-local, RFC 4291'),
  special('ff00::/8', 'multicast', 'reserved', 'multicast, RFC 4291'),
  special('fc00::/7', 'uniqueLocal', 'private', 'unique local, RFC 4193'),
  special('2001:2::/48', 'benchmarking', 'private', 'benchmarking, RFC 5180'),
  special('2001:10::/28', 'orchid', 'reserved', 'ORCHID identifiers (not routable), RFC 4843'),
  special('2001:20::/28', 'orchid2', 'reserved', 'ORCHIDv2 identifiers (not routable), RFC 7343'),
];

/**
 * Everything outside global unicast is reserved for IPv6 (::/8 with the IPv4-compatible and
 * translated forms, NAT64 64:ff9b::/96, discard 100::/64, site-local fec0::/10, segment routing…):
 * listing what IS blockable is shorter and safer than listing what is not.
 */
const IPV6_GLOBAL_UNICAST = special('2000::/3', 'globalUnicast', 'reserved', 'global unicast').block;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Checks one IP or CIDR block against the policy. Never throws. */
export function checkIp(input: string, policy: IpPolicy): IpCheck {
  const parsed = parseCidr(input);
  if (!parsed.ok) return parsed;
  const block = parsed.value;
  const usable = usablePolicy(policy);
  if (!usable.ok) return usable;
  const refusal = prefixRefusal(block, policy) ?? specialRefusal(block, policy) ?? allowlistRefusal(block, usable.value);
  if (refusal) return refusal;
  return { ok: true, ip: displayForm(block), family: block.family, prefix: block.prefix, cidr: block.cidr };
}

/**
 * Validates an allowlist at configuration time. Throws an Error naming the first bad entry;
 * returns the entries in canonical form otherwise. Accepts exactly what `checkIp` accepts.
 */
export function parseCidrList(list: readonly string[]): Cidr[] {
  if (!Array.isArray(list)) throw new Error('allowlist must be an array of IP addresses or CIDR blocks');
  return list.map((entry, index) => {
    const parsed = parseCidr(entry);
    if (!parsed.ok) throw new Error(`allowlist entry #${index + 1} ${quote(entry)}: ${parsed.reason}`);
    return parsed.value;
  });
}

/** Validates a whole policy at configuration time; throws an Error naming the problem. */
export function assertValidIpPolicy(policy: IpPolicy): void {
  const usable = usablePolicy(policy);
  if (!usable.ok) throw new Error(usable.reason);
}

/** Canonical form of a syntactically valid IP or CIDR (no policy applied), or undefined. */
export function canonicalIp(input: string): string | undefined {
  const parsed = parseCidr(input);
  return parsed.ok ? displayForm(parsed.value) : undefined;
}

/**
 * The first entry of `list` that overlaps `ip` (an address or CIDR block), or undefined; entries or an `ip`
 * that do not parse never match. For lists checked at run time (the runtime allowlist), where a bad
 * entry must not stop the others from applying.
 */
export function firstOverlap(ip: string, list: readonly string[]): string | undefined {
  const block = parseCidr(ip);
  if (!block.ok) return undefined;
  return list.find((entry) => {
    const e = parseCidr(entry);
    return e.ok && overlaps(block.value, e.value);
  });
}

/** Canonical "net/len" with its family and prefix, or the reason it is not a CIDR block. Never throws. */
export function parseBlock(input: string): { ok: true; cidr: string; display: string; family: AddressFamily; prefix: number } | { ok: false; reason: string } {
  const parsed = parseCidr(input);
  if (!parsed.ok) return { ok: false, reason: parsed.reason };
  return { ok: true, cidr: parsed.value.cidr, display: displayForm(parsed.value), family: parsed.value.family, prefix: parsed.value.prefix };
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/** Strict parse of "addr" or "addr/len" into a canonical block; IPv4-mapped IPv6 becomes IPv4. */
function parseCidr(input: unknown): Parsed<Cidr> {
  const shape = shapeProblem(input);
  if (shape) return reject('invalid', shape);
  const text = input as string;
  const [addressText, prefixText, ...extra] = text.split('/');
  if (extra.length > 0) return reject('invalid', `${quote(text)} has more than one "/"`);
  const address = parseAddress(addressText);
  if (!address) return reject('invalid', `${quote(text)} is not an IPv4 or IPv6 address`);
  const bits = BITS[address.kind()];
  const prefix = prefixText === undefined ? bits : parsePrefix(prefixText, bits);
  if (prefix === undefined) return reject('invalid', `${quote(text)} has an invalid prefix length (0..${bits})`);
  const network = networkAddress(address, prefix);
  if (network.toString() !== address.toString()) {
    const suggestion = unmapIpv4(makeCidr(network, prefix)).cidr;
    return reject('host-bits-set', `${quote(text)} has host bits set; did you mean ${suggestion}?`);
  }
  return { ok: true, value: unmapIpv4(makeCidr(address, prefix)) };
}

function shapeProblem(input: unknown): string | undefined {
  if (typeof input !== 'string') return 'not a string';
  if (input.length === 0) return 'empty address';
  if (input.length > MAX_INPUT_LENGTH) return `longer than ${MAX_INPUT_LENGTH} characters`;
  if (/\s/.test(input)) return `${quote(input)} contains whitespace`;
  if (input.includes('%')) return `${quote(input)} has a zone id (%...), which a firewall rule cannot use`;
  return undefined;
}

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (text.includes(':')) return parseIpv6(text);
  return STRICT_IPV4.test(text) ? ipaddr.IPv4.parse(text) : undefined;
}

/**
 * ipaddr.js is lenient with an embedded IPv4 tail ("::ffff:010.1.1.1", hex octets) and reads the
 * deprecated IPv4-compatible "::1.2.3.4" as IPv4-mapped; so we validate the tail with the strict
 * IPv4 rule and rewrite it as two hex groups before letting ipaddr.js parse plain hex.
 */
function parseIpv6(text: string): ipaddr.IPv6 | undefined {
  let hex = text;
  if (text.includes('.')) {
    const cut = text.lastIndexOf(':') + 1;
    const tail = text.slice(cut);
    if (!STRICT_IPV4.test(tail)) return undefined;
    const [a, b, c, d] = ipaddr.IPv4.parse(tail).octets;
    hex = `${text.slice(0, cut)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  if (!IPV6_TEXT.test(hex) || !ipaddr.IPv6.isValid(hex)) return undefined;
  return ipaddr.IPv6.parse(hex);
}

function parsePrefix(text: string, bits: number): number | undefined {
  if (!PREFIX_TEXT.test(text)) return undefined;
  const prefix = Number(text);
  return prefix <= bits ? prefix : undefined;
}

function networkAddress(address: ipaddr.IPv4 | ipaddr.IPv6, prefix: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = address.toByteArray().map((byte, i) => {
    const kept = Math.min(8, Math.max(0, prefix - i * 8));
    return byte & ((0xff << (8 - kept)) & 0xff);
  });
  return ipaddr.fromByteArray(bytes);
}

function makeCidr(address: ipaddr.IPv4 | ipaddr.IPv6, prefix: number): Cidr {
  return { address, family: address.kind(), prefix, cidr: `${address.toString()}/${prefix}` };
}

/** "::ffff:1.2.3.0/120" is the IPv4 block 1.2.3.0/24: check and report it as such. */
function unmapIpv4(block: Cidr): Cidr {
  const { address, prefix } = block;
  if (!(address instanceof ipaddr.IPv6) || prefix < 96 || !address.isIPv4MappedAddress()) return block;
  return makeCidr(address.toIPv4Address(), prefix - 96);
}

function displayForm(block: Cidr): string {
  return block.prefix === BITS[block.family] ? block.address.toString() : block.cidr;
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/**
 * A policy that cannot be read fails closed: every check is refused with 'policy-invalid', because
 * "block nothing" is recoverable while blocking our own infrastructure is not.
 * Returns the parsed allowlist when the policy is usable.
 */
function usablePolicy(policy: IpPolicy): Parsed<Cidr[]> {
  const problem = policyShapeProblem(policy);
  if (problem) return reject('policy-invalid', `invalid IP policy, nothing is blocked: ${problem}`);
  try {
    return { ok: true, value: parseCidrList(policy.allowlist) };
  } catch (error) {
    return reject('policy-invalid', `invalid IP policy, nothing is blocked: ${(error as Error).message}`);
  }
}

function policyShapeProblem(policy: IpPolicy): string | undefined {
  if (typeof policy !== 'object' || policy === null) return 'policy is missing';
  if (typeof policy.allowPrivate !== 'boolean') return 'ALLOW_PRIVATE must be true or false';
  for (const [key, bits] of [['maxPrefixV4', 32], ['maxPrefixV6', 128]] as const) {
    const value = policy[key];
    if (!Number.isInteger(value) || value < 0 || value > bits) return `${SETTING[key]} must be an integer 0..${bits}, got ${String(value)}`;
  }
  return undefined;
}

function prefixRefusal(block: Cidr, policy: IpPolicy): Rejection | undefined {
  const max = block.family === 'ipv4' ? policy.maxPrefixV4 : policy.maxPrefixV6;
  if (block.prefix >= max) return undefined;
  const key = block.family === 'ipv4' ? 'maxPrefixV4' : 'maxPrefixV6';
  return reject('prefix-too-wide', `${block.cidr} is wider than /${max}, the widest ${block.family} block allowed (${SETTING[key]})`);
}

function specialRefusal(block: Cidr, policy: IpPolicy): Rejection | undefined {
  const verb = block.prefix === BITS[block.family] ? 'is in' : 'overlaps';
  for (const range of SPECIAL_RANGES) {
    if (!overlaps(block, range.block)) continue;
    if (range.verdict === 'private' && policy.allowPrivate) continue;
    const what = `${displayForm(block)} ${verb} ${range.block.cidr} (${range.label})`;
    return range.verdict === 'reserved'
      ? reject('reserved', `${what}, which is never blocked`)
      : reject('private', `${what}; private targets are blocked only when ${SETTING.allowPrivate} is set`);
  }
  if (block.family === 'ipv6' && !contains(IPV6_GLOBAL_UNICAST, block) && !isAllowedPrivate(block, policy)) {
    return reject('reserved', `${displayForm(block)} is not inside IPv6 global unicast 2000::/3, which is never blocked`);
  }
  return undefined;
}

/** Unique-local space lies outside 2000::/3 but is blockable when private targets are allowed. */
function isAllowedPrivate(block: Cidr, policy: IpPolicy): boolean {
  return policy.allowPrivate && SPECIAL_RANGES.some((range) => range.verdict === 'private' && contains(range.block, block));
}

function allowlistRefusal(block: Cidr, allowlist: readonly Cidr[]): Rejection | undefined {
  const hit = allowlist.find((entry) => overlaps(block, entry));
  if (!hit) return undefined;
  return reject('allowlisted', `${displayForm(block)} overlaps allowlist entry ${hit.cidr}`);
}

/** Two CIDR blocks overlap exactly when one contains the other. */
function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.address.match(b.address, Math.min(a.prefix, b.prefix));
}

function contains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && inner.address.match(outer.address, outer.prefix);
}

function reject(code: IpRejectCode, reason: string): Rejection {
  return { ok: false, code, reason };
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
}
