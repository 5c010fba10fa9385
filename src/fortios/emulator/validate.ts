/**
 * Field validation of CMDB write bodies. A refusal is a CmdbFailure carrying the HTTP status and FortiOS
 * error number the device would answer with; numbers beyond -3/-5/-23/-56 are UNCERTAIN in the reference
 * and chosen for the closest wording of the error table (§3.3).
 */
import { FortiErrorCode } from '../error-codes';
import { AddressFamily, formatCidr, formatIpMask, networkOf, parsePrefix } from '../subnet';
import { Failure, cliError } from './replies';

export class CmdbFailure extends Error {
  constructor(readonly failure: Failure) {
    super(`HTTP ${failure.status}${failure.error === undefined ? '' : ` error ${failure.error}`}`);
  }
}

/** 500 with the error number and its CLI output, as FortiOS reports a refused change. */
export function refuse(code: number, message?: string): CmdbFailure {
  return new CmdbFailure({ status: 500, error: code, cliError: cliError(code, message) });
}

export function httpFailure(status: number, error?: number): CmdbFailure {
  return new CmdbFailure({ status, ...(error === undefined ? {} : { error }) });
}

const NAME_MAX = 79;
const FORBIDDEN_NAME_CHARS = /["'<>]/;
const CONTROL_CHARS = /\p{Cc}/u;

/** Object names: 1–79 characters (35 for some tables), none of `"'<>` (XSS filter) nor control characters. */
export function validName(value: unknown, max = NAME_MAX): string {
  if (typeof value !== 'string' || value === '' || CONTROL_CHARS.test(value)) throw refuse(FortiErrorCode.InvalidValue);
  if (value.length > max) throw refuse(FortiErrorCode.TooLong);
  if (FORBIDDEN_NAME_CHARS.test(value)) throw refuse(FortiErrorCode.XssCharacters);
  return value;
}

export function validText(value: unknown, max: number): string {
  if (typeof value !== 'string') throw refuse(FortiErrorCode.InvalidValue);
  if (value.length > max) throw refuse(FortiErrorCode.TooLong);
  return value;
}

export function validColor(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 32) {
    throw refuse(FortiErrorCode.InvalidValue);
  }
  return value;
}

/** An integer in [min, max]; out of range is -651 (the exact number is UNCERTAIN). */
export function validInt(value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw refuse(FortiErrorCode.InvalidValue);
  }
  return value;
}

export function validEnum<T extends string>(value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw refuse(FortiErrorCode.InvalidValue);
  return value as T;
}

/** A [{name}] table attribute (member, srcaddr, ...), as a list of names. */
export function nameTable(value: unknown): string[] {
  if (!Array.isArray(value)) throw refuse(FortiErrorCode.InvalidValue);
  return value.map((entry: unknown) => {
    const name = typeof entry === 'object' && entry !== null ? (entry as { name?: unknown }).name : undefined;
    if (typeof name !== 'string') throw refuse(FortiErrorCode.InvalidValue);
    return name;
  });
}

/**
 * Stored form of an address's subnet: IPv4 "ip mask" (from any accepted spelling), IPv6 "addr/len".
 * `zeroHostBits` models devices that clear host bits; whether FortiOS does is UNCERTAIN.
 */
export function storedSubnet(family: AddressFamily, value: unknown, zeroHostBits: boolean): string {
  if (typeof value !== 'string') throw refuse(FortiErrorCode.InvalidValue);
  const parsed = parsePrefix(family, value);
  if (!parsed.ok) {
    throw refuse(parsed.problem === 'address' ? FortiErrorCode.InvalidIp : FortiErrorCode.InvalidNetmask);
  }
  const prefix = zeroHostBits ? networkOf(parsed.prefix) : parsed.prefix;
  return family === 'ipv4' ? formatIpMask(prefix) : formatCidr(prefix);
}
