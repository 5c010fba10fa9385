/**
 * The runtime allowlist (POST /v1/allowlist…): entries live in the `allowlist` entity workflow; read them on
 * a hot path with `covers(ip)` (cached), change them through AllowlistService.
 *
 *   const allowlist = new AllowlistCache(client);      // syslog intake, webhook
 *   const entry = await allowlist.covers('203.0.113.7'); // undefined, or the entry to name in the answer
 */
export { AllowlistCache, coveringEntry, describeEntry } from './cache';
export { AllowlistError, AllowlistService } from './service';
export type { AddRequest, AddResult, LiftedBlock } from './service';
export type { AllowEntry } from '../../workflows/allowlist';
