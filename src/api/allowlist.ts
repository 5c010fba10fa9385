/**
 * The runtime allowlist's REST routes: GET/POST /v1/allowlist, DELETE /v1/allowlist/{cidr} (a CIDR block
 * percent-encoded, 203.0.113.0%2F24). AllowlistService does the work; this maps its refusals to statuses.
 */
import express, { RequestHandler, Router } from 'express';
import { AllowlistError, AllowlistService } from '../allowlist/service';
import type { Config } from '../config';
import { parseDuration } from '../duration';
import { actorOf, requireRole } from './auth';
import { ApiError } from './errors';
import type { ApiLimits } from './limits';
import { allowBodySchema } from './schemas';
import type { TemporalGate } from './temporal-gate';
import { validate } from './validate';

export interface AllowlistDeps {
  config: Config;
  allowlist: AllowlistService;
  gate: TemporalGate;
  limits: ApiLimits;
}

/** invalid: the request itself (400); refused: the allowlist cannot take it now, e.g. full (409). */
export function allowlistApiError(err: unknown): unknown {
  if (!(err instanceof AllowlistError)) return err;
  return err.code === 'invalid' ? new ApiError(400, 'invalid-request', err.message) : new ApiError(409, 'allowlist-refused', err.message);
}

export function allowlistRouter(d: AllowlistDeps): Router {
  const router = Router();
  const read = requireRole(d.config.api, 'read');
  const write: RequestHandler[] = [requireRole(d.config.api, 'write'), express.json({ limit: d.limits.maxRestBytes })];

  router.get('/v1/allowlist', read, async (_req, res) => {
    await d.gate.ensure();
    res.json({ entries: await d.allowlist.list() });
  });

  router.post('/v1/allowlist', ...write, async (req, res) => {
    const body = validate(allowBodySchema, req.body);
    await d.gate.ensure();
    const result = await d.allowlist
      .add({
        cidr: body.cidr,
        reason: body.reason,
        actor: actorOf(res),
        forMs: body.for === undefined ? undefined : parseDuration(body.for),
        untilMs: body.until === undefined ? undefined : Date.parse(body.until),
        liftExisting: body.liftExisting,
      })
      .catch((err) => Promise.reject(allowlistApiError(err)));
    res.status(result.replaced ? 200 : 201).json(result);
  });

  router.delete('/v1/allowlist/:cidr', requireRole(d.config.api, 'write'), async (req, res) => {
    const cidr = String(req.params.cidr);
    await d.gate.ensure();
    const removed = await d.allowlist.remove(cidr, actorOf(res)).catch((err) => Promise.reject(allowlistApiError(err)));
    res.json({ cidr: removed?.cidr ?? cidr, removed: removed !== null, ...(removed ? { entry: removed } : {}) });
  });

  return router;
}
