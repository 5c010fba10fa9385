/**
 * The floor (bench-only): the least a one-workflow-per-IP design can do on this Temporal server — start,
 * one local activity making one firewall call, a durable sleep for the TTL. Its burst time is what the
 * platform itself allows on this machine; the product's burst is reported as a ratio to it. Nothing here
 * is product code: no admission, no enforcer, no answers, no search attributes, no Update.
 */
import { proxyLocalActivities, sleep } from '@temporalio/workflow';
import type { FloorActivities } from './activities';

const { enforceOne } = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '30s' });

export async function floorBlock(ip: string, ttlMs: number): Promise<void> {
  await enforceOne(ip);
  await sleep(ttlMs);
}
