/**
 * `POST /v1/events`: the ADS webhook. Order matters:
 *   rate limit (per source IP) → raw body with a size limit → authenticate (HMAC of timestamp and raw
 *   bytes inside the replay window; the bearer secret unless turned off) → decode → parse (src/ads) → plan (intake + safety policy, nothing started) → is Temporal
 *   there? → start/record the blocks → one reply saying per event, and per IP, what happened.
 * Bad input of any kind ends as a 4xx before anything is started.
 */
import express, { Request, Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { CanHold } from '../ads/decision';
import { AdsParseError, parseAdsBody } from '../ads/parse';
import type { AllowlistService } from '../allowlist/service';
import type { BlockService } from '../blocks/service';
import type { Notifications } from '../notify/durable';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { unauthorized, webhookAuth } from './auth';
import { requestLog } from './context';
import { ApiError } from './errors';
import { EventResult, runIntake } from './intake';
import type { ApiLimits } from './limits';
import type { ApiMetrics } from './metrics';
import type { TemporalGate } from './temporal-gate';

export interface WebhookDeps {
  config: Config;
  blocks: BlockService;
  allowlist: AllowlistService;
  notifications: Notifications;
  gate: TemporalGate;
  metrics: ApiMetrics;
  limits: ApiLimits;
  /** See IntakeOptions.canHold. */
  canHold?: CanHold;
}

export interface WebhookReply {
  /** Events parsed from the body. */
  received: number;
  /** Number of events per outcome. */
  summary: Record<string, number>;
  events: EventResult[];
  /** Items of the body that are not events (index: line or array position), refused with the reason. */
  errors: { index: number; message: string }[];
}

export function webhookRouter(d: WebhookDeps): Router {
  const router = Router();
  const limiter = rateLimit({
    windowMs: 60_000,
    limit: d.limits.webhookPerMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, _res, next) => next(new ApiError(429, 'rate-limited', `more than ${d.limits.webhookPerMinute} webhook requests per minute from this address`)),
  });
  // Every content type is read as bytes: the HMAC is over the exact bytes, and we decode them ourselves.
  const rawBody = express.raw({ type: () => true, limit: d.limits.maxWebhookBytes });

  router.post('/v1/events', limiter, rawBody, async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const { api } = d.config;
    const auth = webhookAuth(req, raw, { secret: api.webhookSecret, allowBearer: api.webhookAllowBearer, allowUntimedSignature: api.webhookAllowUntimedSignature });
    if (!auth.ok) throw unauthorized(`webhook authentication failed: ${auth.reason}`, 'webhook');
    if (auth.method === 'untimed-signature') requestLog(res).warn('webhook request signed without timestamp (replayable; allowed by WEBHOOK_ALLOW_UNTIMED_SIGNATURE): upgrade the forwarder');
    const { events, errors } = parseBody(decodeBody(req, raw), d.limits.maxEvents);
    const results = await runIntake(events, {
      blocks: d.blocks,
      policy: d.config.intake,
      concurrency: d.limits.blockConcurrency,
      canHold: d.canHold,
      allowlist: d.allowlist.cache,
      beforeExecute: () => d.gate.ensure(), // 503 now, before the first block is started
    });
    report(requestLog(res), d.metrics, results, errors);
    await notifyRejected(d.notifications, requestLog(res), results, errors);
    res.status(200).json(reply(results, errors));
  });
  return router;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Bytes → what parseAdsBody takes: a JSON value for JSON bodies, else the text of stdin lines. */
function decodeBody(req: Request, raw: Buffer): unknown {
  const [mediaType, ...params] = (req.get('content-type') ?? '').split(';').map((s) => s.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='))?.slice(8).replace(/"/g, '');
  if (charset && !['utf-8', 'utf8', 'us-ascii'].includes(charset)) {
    throw new ApiError(415, 'unsupported-charset', `charset ${JSON.stringify(charset)} is not supported: send UTF-8`);
  }
  const isJson = mediaType === 'application/json' || mediaType.endsWith('+json');
  // ADS lines are text; an absent type is read as text too (JSON lines of ADS ≥ 12.5 parse as lines).
  const isText = mediaType === '' || mediaType.startsWith('text/') || mediaType === 'application/x-ndjson';
  if (!isJson && !isText) {
    throw new ApiError(415, 'unsupported-media-type', `content type ${JSON.stringify(mediaType)}: send application/json or text/plain`);
  }
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    throw new ApiError(400, 'invalid-utf8', 'the body is not valid UTF-8');
  }
  if (!isJson) return text;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'malformed-json', `the body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

function parseBody(body: unknown, maxEvents: number): ReturnType<typeof parseAdsBody> {
  let parsed: ReturnType<typeof parseAdsBody>;
  try {
    parsed = parseAdsBody(body);
  } catch (err) {
    if (err instanceof AdsParseError) throw new ApiError(400, 'malformed', err.message);
    throw err;
  }
  const items = parsed.events.length + parsed.errors.length;
  if (items > maxEvents) throw new ApiError(413, 'too-many-events', `${items} events in one request; at most ${maxEvents} are accepted`, { max: maxEvents });
  if (items === 0) throw new ApiError(400, 'no-events', 'the body holds no event');
  if (parsed.events.length === 0) {
    throw new ApiError(400, 'malformed', `none of the ${items} items is a valid ADS event`, { errors: parsed.errors.slice(0, 50) });
  }
  return parsed;
}

/** One log line per event (and per IP of a blocking event), with the event id and IP; one metric count per event or bad item. */
function report(log: Logger, metrics: ApiMetrics, results: EventResult[], errors: WebhookReply['errors']): void {
  for (const r of results) {
    metrics.webhookEvents.inc({ outcome: r.outcome });
    const ev = { eventId: r.eventId, kind: r.kind, method: r.method, priority: r.priority };
    if (!r.ips) log.info({ ...ev, outcome: r.outcome, rule: r.rule }, 'event ignored');
    for (const ip of r.ips ?? []) {
      const level = ip.outcome === 'rejected' ? 'warn' : 'info';
      log[level]({ ...ev, ip: ip.ip, outcome: ip.outcome, code: ip.code, reason: ip.reason, targets: ip.targets?.map((t) => t.target) }, 'event ip');
    }
  }
  if (errors.length > 0) {
    metrics.webhookEvents.inc({ outcome: 'malformed' }, errors.length);
    // One line for the lot: a batch of garbage must not turn into hundreds of log lines.
    log.warn({ malformed: errors.length, first: errors.slice(0, 3) }, 'events malformed');
  }
}

/** One `rejected` notification per request that refused an address or an item, listing them (bounded). */
async function notifyRejected(n: Notifications, log: Logger, results: EventResult[], errors: WebhookReply['errors']): Promise<void> {
  if (!n.wants('rejected')) return;
  const ips = results.flatMap((r) => (r.ips ?? []).filter((i) => i.outcome === 'rejected').map((i) => ({ eventId: r.eventId, method: r.method, ip: i.ip, code: i.code, reason: i.reason })));
  if (ips.length === 0 && errors.length === 0) return;
  const first = ips[0];
  const summary =
    ips.length === 1 && errors.length === 0
      ? `ADS event ${first.eventId} (${first.method}): ${first.ip} not blocked: ${first.reason}`
      : `${ips.length} address${ips.length === 1 ? '' : 'es'} refused${errors.length ? `, ${errors.length} malformed item${errors.length === 1 ? '' : 's'}` : ''} in one ADS delivery`;
  try {
    await n.send({
      kind: 'rejected',
      summary,
      ...(ips.length === 1 ? { ip: first.ip, reason: first.reason } : {}),
      details: { rejected: ips.slice(0, 50), rejectedCount: ips.length, malformed: errors.slice(0, 10), malformedCount: errors.length },
    });
  } catch (err) {
    log.warn({ err }, 'rejected-events notification not started');
  }
}

function reply(results: EventResult[], errors: WebhookReply['errors']): WebhookReply {
  const summary: Record<string, number> = {};
  for (const r of results) summary[r.outcome] = (summary[r.outcome] ?? 0) + 1;
  if (errors.length) summary.malformed = errors.length;
  return { received: results.length, summary, events: results, errors };
}
