/**
 * Probes (load balancers and orchestrators call them without credentials):
 *   GET /healthz  the process is up and serving;
 *   GET /readyz   Temporal answers and every firewall target answers its status call. Anonymous callers
 *                 hear only ready (200) or not ready (503); with a read or write token the reply names each
 *                 check (firmware, hostname, errors). Every check runs in parallel under its own deadline,
 *                 and one result serves every probe for a few seconds, so a flood of probes does not reach
 *                 the firewall.
 */
import { Router } from 'express';
import type { Config } from '../config';
import type { FortiOSClient } from '../fortios/client';
import { bearerToken, roleOf, unauthorized } from './auth';
import { ApiError } from './errors';
import type { TemporalGate } from './temporal-gate';

export interface HealthDeps {
  gate: TemporalGate;
  firewalls: Map<string, FortiOSClient>;
  firewallProbeMs: number;
  /** How long one readiness result answers every probe (0 = check on every call). */
  readinessCacheMs: number;
  /** The tokens that may see the details. */
  api: Pick<Config['api'], 'readToken' | 'writeToken'>;
}

export interface Check {
  ok: boolean;
  error?: string;
  version?: string;
  hostname?: string;
}

export interface Readiness {
  ready: boolean;
  checks: { temporal: Check; firewalls: Record<string, Check> };
}

export function healthRouter(d: HealthDeps): Router {
  const router = Router();
  const cached = cachedReadiness(d);
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (req, res) => {
    // A token that is given must be right: a typo should not look like "no details".
    const token = bearerToken(req);
    if (req.get('authorization') !== undefined && !(token && roleOf(token, d.api))) throw unauthorized('invalid API token', 'api');
    const r = await cached();
    if (!token) {
      if (!r.ready) throw new ApiError(503, 'not-ready', 'not ready (send a read token for the details)');
      res.json({ status: 'ready' });
      return;
    }
    if (!r.ready) throw new ApiError(503, 'not-ready', `not ready: ${failing(r).join('; ')}`, { checks: r.checks });
    res.json({ status: 'ready', checks: r.checks });
  });
  return router;
}

/** readiness() shared by concurrent callers and reused for `readinessCacheMs` after it completes. */
export function cachedReadiness(d: HealthDeps): () => Promise<Readiness> {
  let current: { promise: Promise<Readiness>; until: number } | undefined;
  return () => {
    if (current && Date.now() < current.until) return current.promise;
    const entry = { promise: readiness(d), until: Number.POSITIVE_INFINITY };
    current = entry;
    void entry.promise.finally(() => (entry.until = Date.now() + d.readinessCacheMs));
    return entry.promise;
  };
}

export async function readiness(d: HealthDeps): Promise<Readiness> {
  const [temporal, ...firewalls] = await Promise.all([
    check(() => d.gate.probe()),
    ...[...d.firewalls].map(([name, fw]) =>
      check(async () => {
        const s = await withTimeout(fw.systemStatus(), d.firewallProbeMs, `no answer within ${d.firewallProbeMs} ms`);
        return { version: s.version, hostname: s.hostname };
      }).then((c) => [name, c] as const),
    ),
  ]);
  const fwChecks = Object.fromEntries(firewalls);
  const ready = temporal.ok && Object.values(fwChecks).every((c) => c.ok);
  return { ready, checks: { temporal, firewalls: fwChecks } };
}

function failing(r: Readiness): string[] {
  const names: string[] = [];
  if (!r.checks.temporal.ok) names.push(`temporal: ${r.checks.temporal.error}`);
  for (const [name, c] of Object.entries(r.checks.firewalls)) if (!c.ok) names.push(`firewall ${name}: ${c.error}`);
  return names;
}

async function check(probe: () => Promise<void | Omit<Check, 'ok'>>): Promise<Check> {
  try {
    return { ok: true, ...((await probe()) ?? {}) };
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}

/** The innermost message (the SDK's ServiceError wraps the gRPC error that says what happened). */
function describe(err: unknown): string {
  let e = err as { message?: string; cause?: unknown };
  while (e?.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  return (e?.message ?? String(err)).slice(0, 300);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
