/**
 * One entry of an IP address threat feed (`system/external-resource` type address): an IPv4/IPv6 address,
 * a range "a-b" or a subnet "a/len" (FortiOS admin guide, "IP address threat feed": one per line). Shared by
 * the client (validates before pushing, compares for snapshot diffs) and the emulator (validates pushes and
 * pulled files, matches addresses), so both agree on what an entry is and when two entries are the same.
 */
import ipaddr from 'ipaddr.js';
import { AddressFamily, parseAddress, parsePrefix } from './subnet';

export interface FeedEntryRange {
  family: AddressFamily;
  /** First and last address covered, as integers (bigint: IPv6 needs 128 bits). */
  first: bigint;
  last: bigint;
  /** Canonical text: equal for entries FortiOS treats as the same ("2001:0db8::1" = "2001:db8::1"). */
  key: string;
}

/** Parses one entry; undefined when it is not a valid address, range or subnet (no spaces inside). */
export function parseFeedEntry(text: string): FeedEntryRange | undefined {
  const trimmed = text.trim();
  if (trimmed === '' || /\s/.test(trimmed)) return undefined;
  const dash = trimmed.indexOf('-');
  if (dash >= 0) return parseRange(trimmed.slice(0, dash), trimmed.slice(dash + 1));
  const family: AddressFamily = trimmed.includes(':') ? 'ipv6' : 'ipv4';
  if (trimmed.includes('/')) {
    const parsed = parsePrefix(family, trimmed);
    if (!parsed.ok) return undefined;
    const { address, length } = parsed.prefix;
    const bits = family === 'ipv4' ? 32 : 128;
    const hostMask = (1n << BigInt(bits - length)) - 1n;
    const first = toBigInt(address) & ~hostMask;
    // Host bits are kept in the key, as FortiOS lists "172.200.1.4/16" as given.
    return { family, first, last: first | hostMask, key: `${address.toString()}/${length}` };
  }
  const address = parseAddress(family, trimmed);
  if (!address) return undefined;
  const value = toBigInt(address);
  return { family, first: value, last: value, key: address.toString() };
}

function parseRange(startText: string, endText: string): FeedEntryRange | undefined {
  const family: AddressFamily = startText.includes(':') ? 'ipv6' : 'ipv4';
  const start = parseAddress(family, startText);
  const end = parseAddress(family, endText);
  if (!start || !end) return undefined;
  const first = toBigInt(start);
  const last = toBigInt(end);
  // FortiOS refuses ranges whose end is below the start (error -73 in the CLI).
  if (last < first) return undefined;
  return { family, first, last, key: `${start.toString()}-${end.toString()}` };
}

/** The address as an integer, for range tests. */
export function toBigInt(address: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  let value = 0n;
  for (const byte of address.toByteArray()) value = (value << 8n) | BigInt(byte);
  return value;
}

/** Parses a single address of either family (no prefix, no range) for matching; undefined if invalid. */
export function parseIp(text: string): { family: AddressFamily; value: bigint; text: string } | undefined {
  const family: AddressFamily = text.includes(':') ? 'ipv6' : 'ipv4';
  const address = parseAddress(family, text);
  return address && { family, value: toBigInt(address), text: address.toString() };
}

export function entryContains(entry: FeedEntryRange, ip: { family: AddressFamily; value: bigint }): boolean {
  return entry.family === ip.family && entry.first <= ip.value && ip.value <= entry.last;
}
