/**
 * Per-request context: a request id (the caller's `X-Request-Id` when it is sane, else a new UUID,
 * echoed in the reply) and a child logger that stamps it on every line, plus one access-log line per
 * request. Only method, path, status and duration are logged: never headers (credentials live there)
 * and never the query string.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import pino from 'pino';
import type { Logger } from '../logger';

/** What a caller may choose as request id: short, no spaces or control characters (it lands in our logs). */
const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

interface Context {
  requestId: string;
  log: Logger;
}

export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    const log = logger.child({ reqId: requestId });
    res.locals.context = { requestId, log } satisfies Context;
    res.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // Probes are polled every few seconds: their successes would drown everything else at info.
      const level = PROBES.has(req.path) && res.statusCode < 400 ? 'debug' : 'info';
      log[level]({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  };
}

function context(res: Response): Context | undefined {
  return res.locals.context as Context | undefined;
}

/** The request's logger (falls back to a silent stub if the context middleware did not run). */
export function requestLog(res: Response): Logger {
  return context(res)?.log ?? SILENT;
}

export function requestId(res: Response): string | undefined {
  return context(res)?.requestId;
}

const SILENT: Logger = pino({ level: 'silent' });
