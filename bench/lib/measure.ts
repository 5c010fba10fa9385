/**
 * Waiting for "enforced" the same way for every backend: on the firewall (the emulator hook), except for
 * dry-run, which has no firewall — there a block counts once it is active (visibility, polled).
 */
import type { Ours } from './stack';
import { sleep } from './stats';
import { emulatorReads, emulatorWrites } from '../baseline/harness';

/** Every IP enforced (dry-run: `expectedActive` blocks active in all), or the timeout. */
export async function waitEnforced(stack: Ours, ips: readonly string[], timeoutMs: number, expectedActive = ips.length): Promise<{ all: boolean; done: number; at: number }> {
  if (stack.enforcement !== 'dry-run') return stack.enforced.untilAllEnforced(ips, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  let active = 0;
  for (;;) {
    active = await activeBlocks(stack);
    if (active >= expectedActive || Date.now() > deadline) break;
    await sleep(250);
  }
  return { all: active >= expectedActive, done: Math.min(active, ips.length), at: Date.now() };
}

/** Running blocks in state active (visibility). */
export async function activeBlocks(stack: Ours): Promise<number> {
  const r = await stack.client.workflow.count('ExecutionStatus = "Running" AND BlockState = "active"');
  return r.count;
}

/** Every API call the emulator counted (reads + writes). */
export function emulatorCalls(stack: Pick<Ours, 'emulator'>): number {
  return emulatorReads(stack.emulator) + emulatorWrites(stack.emulator);
}

/** Waits (bounded) until `n` blocks are active: their answers have arrived, so their histories are complete. */
export async function waitActive(stack: Ours, n: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await activeBlocks(stack)) >= n) return true;
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
}
