/**
 * The worker's last look at the runtime allowlist before a block is applied: `checkAllowlist(ip)` answers
 * the entry that covers the address (or CIDR block), or null. Read through a short-lived cache, so a burst
 * of blocks costs one query of the allowlist workflow per second, not one per block.
 *
 * Register beside the other activities: `{ ...createActivities(…), ...createAllowlistActivities({ temporal: client }) }`.
 */
import type { Client } from '@temporalio/client';
import { AllowlistCache } from '../src/allowlist/cache';
import type { AllowEntry } from '../workflows/allowlist';

export interface AllowlistActivityDeps {
  temporal: Client;
  /** How old a list the check may use. Default 1 s. */
  maxAgeMs?: number;
  workflowId?: string;
}

export function createAllowlistActivities(deps: AllowlistActivityDeps) {
  const cache = new AllowlistCache(deps.temporal, { workflowId: deps.workflowId, maxAgeMs: deps.maxAgeMs ?? 1_000 });
  return {
    async checkAllowlist(ip: string): Promise<AllowEntry | null> {
      return (await cache.covers(ip)) ?? null;
    },
  };
}

export type AllowlistActivities = ReturnType<typeof createAllowlistActivities>;
