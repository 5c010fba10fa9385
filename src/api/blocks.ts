/**
 * The operators' REST API over BlockService (design.md "Interface contracts"). Each route: authorise,
 * validate with zod (400 with the issues), then make sure Temporal answers (503 + Retry-After), call
 * BlockService (its BlockErrors keep their status and code), reply JSON.
 *
 * `:ip` is one path segment, so a CIDR block comes percent-encoded (`203.0.113.0%2F24`); express decodes
 * it. IPv6 needs no encoding (`/v1/blocks/2001:db8::1`).
 */
import express, { Request, RequestHandler, Router } from 'express';
import type { z } from 'zod';
import type { BlockService } from '../blocks/service';
import type { Config } from '../config';
import { parseDuration } from '../duration';
import { canonicalIp } from '../policy/ip-policy';
import { actorOf, requireRole } from './auth';
import { validationError } from './errors';
import type { ApiLimits } from './limits';
import { PageTokens } from './page-token';
import { blockBodySchema, extendBodySchema, listQuerySchema, targetQuerySchema, unblockQuerySchema } from './schemas';
import type { TemporalGate } from './temporal-gate';

export interface BlocksDeps {
  config: Config;
  blocks: BlockService;
  gate: TemporalGate;
  limits: ApiLimits;
}

export function blocksRouter(d: BlocksDeps): Router {
  const router = Router();
  const pageTokens = new PageTokens();
  const read = requireRole(d.config.api, 'read');
  // Authorise before reading the body: an unauthenticated caller gets nothing parsed.
  const write: RequestHandler[] = [requireRole(d.config.api, 'write'), express.json({ limit: d.limits.maxRestBytes })];

  router.get('/v1/blocks', read, async (req, res) => {
    const q = validate(listQuerySchema, req.query);
    const pageToken = pageTokens.open(q.pageToken);
    await d.gate.ensure();
    const page = await d.blocks.list({ ...q, pageToken, expiresBefore: q.expiresBefore ? new Date(q.expiresBefore) : undefined });
    res.json({ ...page, nextPageToken: pageTokens.seal(page.nextPageToken) });
  });

  router.get('/v1/blocks/:ip', read, async (req, res) => {
    const { target } = validate(targetQuerySchema, req.query);
    await d.gate.ensure();
    res.json(await d.blocks.get(ipParam(req), target));
  });

  router.post('/v1/blocks', ...write, async (req, res) => {
    const body = validate(blockBodySchema, req.body);
    // Canonical form for the reply; also refuses a bad address before anything is started.
    const { ip } = d.blocks.checkIp(body.ip);
    await d.gate.ensure();
    const results = await d.blocks.block({
      ip,
      ttlMs: body.ttl === undefined ? undefined : parseDuration(body.ttl),
      reason: body.reason ?? 'manual block',
      actor: actorOf(res),
      targets: body.targets,
    });
    res.status(results.some((r) => r.outcome === 'started') ? 201 : 200).json({ ip, results });
  });

  router.delete('/v1/blocks/:ip', ...write, async (req, res) => {
    const q = validate(unblockQuerySchema, req.query);
    await d.gate.ensure();
    const ip = ipParam(req);
    const results = await d.blocks.cancel(ip, q.target, { reason: q.reason ?? 'manual unblock', actor: actorOf(res) });
    res.json({ ip: canonicalIp(ip) ?? ip, found: results.some((r) => r.found), results });
  });

  router.post('/v1/blocks/:ip/extend', ...write, async (req, res) => {
    const { target } = validate(targetQuerySchema, req.query);
    const body = validate(extendBodySchema, req.body);
    await d.gate.ensure();
    const change = 'by' in body ? { byMs: parseDuration(body.by) } : { untilMs: Date.parse(body.until) };
    res.json(await d.blocks.extend(ipParam(req), target, { ...change, actor: actorOf(res) }));
  });

  return router;
}

/** The `:ip` segment, percent-decoded by express (so `%2F` is the `/` of a CIDR block). */
function ipParam(req: Request): string {
  return String(req.params.ip);
}

function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw validationError(r.error);
  return r.data;
}
