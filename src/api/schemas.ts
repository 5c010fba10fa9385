/**
 * Request shapes of the REST API, in zod: the routes validate with them and the OpenAPI document is
 * generated from them, so the two cannot drift apart. Objects are strict: a misspelt field is a 400,
 * not a silently ignored option.
 */
import { z } from 'zod';
import { parseDuration } from '../duration';
import type { BlockState } from '../../workflows/messages';

const isDuration = (s: string): boolean => {
  try {
    parseDuration(s);
    return true;
  } catch {
    return false;
  }
};

export const durationSchema = z
  .string()
  .max(32)
  .refine(isDuration, { message: 'not a duration: use a number with a unit, e.g. 90s, 30m, 6h, 2d' })
  .meta({ description: 'a duration such as 90s, 30m, 6h, 2d', example: '6h' });

const isoTime = z.iso.datetime({ offset: true }).meta({ description: 'ISO 8601 time with a zone, e.g. 2030-01-01T00:00:00Z' });
const ipText = z.string().min(1).max(64).meta({ description: 'IPv4 or IPv6 address, or a CIDR block', example: '203.0.113.7' });
const targetName = z.string().min(1).max(64).meta({ description: 'firewall target name (see the configuration)' });

export const blockBodySchema = z
  .object({
    ip: ipText,
    ttl: durationSchema.optional().meta({ description: 'block duration; default BLOCK_TTL' }),
    reason: z.string().min(1).max(500).optional(),
    targets: z.array(targetName).min(1).max(50).optional().meta({ description: 'default: every configured target' }),
  })
  .strict();

export const extendBodySchema = z.union([
  z.object({ by: durationSchema }).strict(),
  z.object({ until: isoTime }).strict(),
]).meta({ description: 'exactly one of "by" (added to the current expiry) or "until" (the new expiry)' });

export const BLOCK_STATES = ['pending', 'active', 'releasing', 'expired', 'cancelled', 'evicted', 'rejected'] as const satisfies readonly BlockState[];

const boolText = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

export const listQuerySchema = z
  .object({
    ip: ipText.optional().meta({ description: 'an address, or a CIDR block that contains the blocked address' }),
    target: targetName.optional(),
    state: z.enum(BLOCK_STATES).optional(),
    expiresBefore: isoTime.optional(),
    includeEnded: boolText.optional().meta({ description: 'include ended blocks still retained by Temporal' }),
    pageSize: z.string().regex(/^\d{1,4}$/).transform(Number).pipe(z.number().int().min(1).max(1000)).optional(),
    pageToken: z.string().max(4096).optional(),
  })
  .strict();

export const targetQuerySchema = z.object({ target: targetName.optional() }).strict();

export const unblockQuerySchema = z
  .object({
    target: targetName.optional(),
    reason: z.string().min(1).max(500).optional(),
    allowFor: durationSchema.optional().meta({ description: 'also allowlist the address for this long (runtime allowlist), so that the next event does not block it again' }),
  })
  .strict();

export const allowBodySchema = z
  .object({
    cidr: ipText.meta({ description: 'IPv4 or IPv6 address, or a CIDR block (at most /8, IPv6 /16)', example: '203.0.113.0/24' }),
    for: durationSchema.optional().meta({ description: 'how long from now, e.g. 24h' }),
    until: isoTime.optional(),
    reason: z.string().min(1).max(500).meta({ description: 'why (shown wherever the entry is named)' }),
    liftExisting: z.boolean().optional().meta({ description: 'lift the running blocks the entry covers (default true); false only prevents new ones' }),
  })
  .strict()
  .refine((b) => b.for === undefined || b.until === undefined, { message: 'give at most one of "for" and "until" (neither: until removed)' })
  .meta({ description: 'an allowlist entry; without "for" and "until" it stays until removed' });
