/**
 * GET /v1/feeds/{target}: the pull variant of a threat feed, for a FortiGate that downloads its external
 * resource instead of taking pushed updates (no push API before 7.2.1). The body is the list of the blocks
 * the firewall should hold — running blocks of that target, pending or active, from Temporal visibility —
 * one address per line, as FortiOS reads a feed file. HTTP basic auth with a credential of its own
 * (FEED_PULL_USER / FEED_PULL_PASSWORD): the firewall stores it in the external resource, so it must not be
 * an operator token. Off (404) until that credential is configured.
 */
import type { Client } from '@temporalio/client';
import express, { Request } from 'express';
import type { Config } from '../config';
import { servesPullFeed } from '../enforcement';
import { runningBlocks } from '../temporal/visibility';
import { safeEqual } from './auth';
import { ApiError } from './errors';
import type { TemporalGate } from './temporal-gate';

export interface FeedsDeps {
  config: Config;
  temporal: Client;
  gate: TemporalGate;
}

export function feedsRouter(d: FeedsDeps): express.Router {
  const router = express.Router();
  router.get('/v1/feeds/:target', async (req, res) => {
    const pull = d.config.api.feedPull;
    if (!pull) throw new ApiError(404, 'not-found', 'the pull feed is off: set FEED_PULL_USER and FEED_PULL_PASSWORD');
    if (!basicAuthOk(req, pull)) {
      throw new ApiError(401, 'unauthorized', 'missing or invalid credentials: HTTP basic auth with FEED_PULL_USER / FEED_PULL_PASSWORD', undefined, {
        'WWW-Authenticate': 'Basic realm="ads-mitigator-feeds", charset="UTF-8"',
      });
    }
    const target = d.config.targets.find((t) => t.name === req.params.target);
    if (!target || !servesPullFeed(target)) {
      throw new ApiError(404, 'not-found', `no threat-feed target named ${JSON.stringify(String(req.params.target)).slice(0, 60)}`);
    }
    await d.gate.ensure();
    const ips = new Set<string>();
    for await (const b of runningBlocks(d.temporal, { target: target.name, states: ['pending', 'active'] })) ips.add(b.ip);
    res.type('text/plain; charset=utf-8').set('Cache-Control', 'no-store').send([...ips].map((ip) => `${ip}\n`).join(''));
  });
  return router;
}

/** Constant-time check of `Authorization: Basic base64(user:password)`; both parts are always compared. */
function basicAuthOk(req: Request, pull: { user: string; password: string }): boolean {
  const m = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(req.get('authorization') ?? '');
  if (!m) return false;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const user = safeEqual(decoded.slice(0, colon), pull.user);
  const password = safeEqual(decoded.slice(colon + 1), pull.password);
  return user && password;
}
