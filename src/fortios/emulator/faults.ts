/**
 * Fault injection settings of the emulator: latency per method, random failures of several shapes and a
 * timed outage. Rates are fractions in [0, 1] drawn once per API request, so they are exclusive and their
 * sum is the probability that a request fails.
 */
import { z } from 'zod';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface FaultSettings {
  /** Added before answering, per method, in ms. */
  latencyMs: Partial<Record<HttpMethod, number>>;
  /** Uniform random extra delay in [0, jitterMs). */
  jitterMs: number;
  /** HTTP 500 with an empty body. */
  error500Rate: number;
  /** TCP reset (socket destroyed) instead of an answer. */
  resetRate: number;
  /** No answer at all: the client must time out. */
  hangRate: number;
  /** HTTP 503 (HTML page). */
  unavailableRate: number;
  /** HTTP 429 (HTML page), as under a parallel-apply storm. */
  rateLimitedRate: number;
  /** Epoch ms (emulator clock): every API request fails until then. */
  outageUntil: number;
  outageMode: 'unavailable' | 'reset';
  /**
   * Apply 500/reset/hang faults after the request took effect, so that a write happens but its reply is
   * lost: the case idempotent retries exist for.
   */
  failAfterCommit: boolean;
}

export type InjectedFault = 'hang' | 'reset' | 'unavailable' | 'rate-limited' | 'error500';

export const NO_FAULTS: Readonly<FaultSettings> = Object.freeze({
  latencyMs: {},
  jitterMs: 0,
  error500Rate: 0,
  resetRate: 0,
  hangRate: 0,
  unavailableRate: 0,
  rateLimitedRate: 0,
  outageUntil: 0,
  outageMode: 'unavailable',
  failAfterCommit: false,
});

const rate = z.number().min(0).max(1);
const ms = z.number().min(0).max(600_000);

/** A partial update as accepted by POST /__emulator/faults and EmulatorOptions.faults. */
export const faultPatchSchema = z
  .strictObject({
    latencyMs: z.strictObject({ GET: ms, POST: ms, PUT: ms, DELETE: ms }).partial(),
    jitterMs: ms,
    error500Rate: rate,
    resetRate: rate,
    hangRate: rate,
    unavailableRate: rate,
    rateLimitedRate: rate,
    outageUntil: z.number().min(0),
    outageMode: z.enum(['unavailable', 'reset']),
    failAfterCommit: z.boolean(),
  })
  .partial();

export type FaultPatch = z.infer<typeof faultPatchSchema>;

/** Merges a patch; latencies merge per method so that one method can be tuned alone. */
export function mergeFaults(current: FaultSettings, patch: FaultPatch): FaultSettings {
  return { ...current, ...patch, latencyMs: { ...current.latencyMs, ...patch.latencyMs } };
}

export function delayFor(f: FaultSettings, method: string, random: () => number): number {
  const base = f.latencyMs[method as HttpMethod] ?? 0;
  return base + (f.jitterMs > 0 ? random() * f.jitterMs : 0);
}

/** The fault for this request, if any: an outage first, then one draw over the configured rates. */
export function drawFault(f: FaultSettings, nowMs: number, random: () => number): InjectedFault | undefined {
  if (nowMs < f.outageUntil) return f.outageMode;
  const r = random();
  const ladder: [InjectedFault, number][] = [
    ['hang', f.hangRate],
    ['reset', f.resetRate],
    ['unavailable', f.unavailableRate],
    ['rate-limited', f.rateLimitedRate],
    ['error500', f.error500Rate],
  ];
  let threshold = 0;
  for (const [fault, p] of ladder) {
    threshold += p;
    if (r < threshold) return fault;
  }
  return undefined;
}

/** Faults that `failAfterCommit` moves after the handler: the ones where the client cannot tell. */
export function losesReply(fault: InjectedFault): boolean {
  return fault === 'hang' || fault === 'reset' || fault === 'error500';
}
