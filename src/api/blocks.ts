/**
 * The operators' REST API over BlockService (design.md "Interface contracts"). Each route: authorise,
 * validate with zod (400 with the issues), then make sure Temporal answers (503 + Retry-After), call
 * BlockService (its BlockErrors keep their status and code), reply JSON.
 *
 * `:ip` is one path segment, so a CIDR block comes percent-encoded (`203.0.113.0%2F24`); express decodes
 * it. IPv6 needs no encoding (`/v1/blocks/2001:db8::1`).
 */
import express, { Request, RequestHandler, Router } from 'express';
import { describeEntry } from '../allowlist/cache';
import type { AllowlistService } from '../allowlist/service';
import type { BlockService } from '../blocks/service';
import type { Config } from '../config';
import { formatDuration, parseDuration } from '../duration';
import { canonicalIp } from '../policy/ip-policy';
import { allowlistApiError } from './allowlist';
import { actorOf, requireRole } from './auth';
import { ApiError } from './errors';
import type { ApiLimits } from './limits';
import { PageTokens } from './page-token';
import { blockBodySchema, extendBodySchema, listQuerySchema, targetQuerySchema, unblockQuerySchema } from './schemas';
import type { TemporalGate } from './temporal-gate';
import { validate } from './validate';

export interface BlocksDeps {
  config: Config;
  blocks: BlockService;
  allowlist: AllowlistService;
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
    const ttlMs = body.ttl === undefined ? undefined : parseDuration(body.ttl);
    const maxTtlMs = d.config.block.maxTtlMs;
    if (ttlMs !== undefined && ttlMs > maxTtlMs) {
      throw new ApiError(422, 'ttl-out-of-range', `ttl ${body.ttl} is longer than the longest block allowed: at most ${formatDuration(maxTtlMs)} (BLOCK_MAX_TTL)`);
    }
    await d.gate.ensure();
    const allowed = await d.allowlist.covers(ip);
    if (allowed) {
      throw new ApiError(422, 'ip-allowlisted', `${ip} is covered by ${describeEntry(allowed)}: remove the entry to block it`, { ip, allowlist: allowed });
    }
    const results = await d.blocks.block({
      ip,
      ttlMs,
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
    const reason = q.reason ?? 'manual unblock';
    // Allowlist first: an event that arrives between the two steps must not block the address again.
    const allowed = q.allowFor
      ? await d.allowlist
          .add({ cidr: ip, forMs: parseDuration(q.allowFor), reason, actor: actorOf(res), liftExisting: false })
          .catch((err) => Promise.reject(allowlistApiError(err)))
      : undefined;
    const results = await d.blocks.cancel(ip, q.target, { reason, actor: actorOf(res) });
    res.json({ ip: canonicalIp(ip) ?? ip, found: results.some((r) => r.found), results, ...(allowed ? { allowlisted: allowed.entry } : {}) });
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
