/**
 * The HTTP app: probes, metrics and the OpenAPI document (no auth), the ADS webhook (shared secret) and
 * the operators' REST API (bearer tokens). Everything that touches Temporal for blocks goes through
 * BlockService; the raw client is only used to ask whether Temporal is there and to count blocks.
 */
import type { Client } from '@temporalio/client';
import express from 'express';
import { AllowlistService } from '../allowlist/service';
import type { CanHold } from '../ads/decision';
import type { BlockService } from '../blocks/service';
import { Notifications } from '../notify/durable';
import type { Config } from '../config';
import type { FortiOSClient } from '../fortios/client';
import type { Logger } from '../logger';
import { allowlistRouter } from './allowlist';
import { blocksRouter } from './blocks';
import { requestContext } from './context';
import { errorHandler, notFound } from './errors';
import { feedsRouter } from './feeds';
import { healthRouter } from './health';
import { ApiLimits, DEFAULT_LIMITS } from './limits';
import { ApiMetrics, sharedMetrics, visibilityBlockCounter } from './metrics';
import { openApiDocument } from './openapi';
import { TemporalGate } from './temporal-gate';
import { webhookRouter } from './webhook';

export interface ApiDeps {
  config: Config;
  blocks: BlockService;
  temporal: Client;
  firewalls: Map<string, FortiOSClient>;
  logger: Logger;
  /** Default: the process-wide instance (the one the worker's activities feed). */
  metrics?: ApiMetrics;
  /** Default: DEFAULT_LIMITS with WEBHOOK_RATE_LIMIT from the environment. */
  limits?: Partial<ApiLimits>;
  /** Default: the `allowlist` workflow on the configured task queue, lifting blocks through `blocks`. */
  allowlist?: AllowlistService;
  /** Default: per config.notify, as notifyWorkflows on the configured task queue. */
  notifications?: Notifications;
  /** Whether the enforcement backends can hold an event's addresses beyond MAX_TARGETS_PER_EVENT (default: no). */
  canHold?: CanHold;
}

export function createApp(deps: ApiDeps): express.Express {
  const limits: ApiLimits = { ...DEFAULT_LIMITS, webhookPerMinute: deps.config.api.webhookRateLimit, ...deps.limits };
  const metrics = deps.metrics ?? sharedMetrics();
  const gate = new TemporalGate(deps.temporal, limits.temporalProbeMs, limits.temporalProbeCacheMs);
  metrics.watchBlocks(visibilityBlockCounter(deps.temporal, deps.config.targets, limits.temporalProbeMs));
  const openApi = openApiDocument();
  const taskQueue = deps.config.temporal.taskQueue;
  const allowlist =
    deps.allowlist ??
    new AllowlistService(deps.temporal, { taskQueue, blocks: deps.blocks, onCacheError: (err) => deps.logger.warn({ err }, 'allowlist not refreshed; using the last list read') });
  const notifications = deps.notifications ?? new Notifications(deps.temporal, taskQueue, deps.config.notify);

  const app = express();
  app.disable('x-powered-by');
  app.use(requestContext(deps.logger));
  app.use(httpMetrics(metrics));

  app.use(healthRouter({ gate, firewalls: deps.firewalls, firewallProbeMs: limits.firewallProbeMs, readinessCacheMs: limits.readinessCacheMs, api: deps.config.api }));
  app.get('/metrics', async (_req, res) => {
    const { contentType, body } = await metrics.render();
    res.type(contentType).send(body);
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.use(webhookRouter({ config: deps.config, blocks: deps.blocks, allowlist, notifications, gate, metrics, limits, canHold: deps.canHold }));
  app.use(blocksRouter({ config: deps.config, blocks: deps.blocks, allowlist, gate, limits }));
  app.use(allowlistRouter({ config: deps.config, allowlist, gate, limits }));
  app.use(feedsRouter({ config: deps.config, temporal: deps.temporal, gate }));

  app.use(notFound);
  app.use(errorHandler);
  return app;
}

/** Request durations labelled by route template (`/v1/blocks/:ip`), never by the concrete path. */
function httpMetrics(metrics: ApiMetrics): express.RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpRequests.startTimer();
    res.on('finish', () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}
