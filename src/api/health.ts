/**
 * Probes, without authentication (load balancers and orchestrators call them):
 *   GET /healthz  the process is up and serving;
 *   GET /readyz   Temporal answers and every firewall target answers its status call; 503 names what
 *                 does not. Every check runs in parallel under its own deadline, so a dead dependency
 *                 costs seconds, not the SDK's retry budget.
 */
import { Router } from 'express';
import type { FortiOSClient } from '../fortios/client';
import { ApiError } from './errors';
import type { TemporalGate } from './temporal-gate';

export interface HealthDeps {
  gate: TemporalGate;
  firewalls: Map<string, FortiOSClient>;
  firewallProbeMs: number;
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
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const r = await readiness(d);
    if (!r.ready) throw new ApiError(503, 'not-ready', `not ready: ${failing(r).join('; ')}`, { checks: r.checks });
    res.json({ status: 'ready', checks: r.checks });
  });
  return router;
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
