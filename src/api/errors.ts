/**
 * The one error shape of the HTTP API, `{"error": {"code", "message", "details"}}`, and the mapping of
 * every failure we know (our own, BlockService's, zod's, body-parser's, Temporal's) onto it. Bad input
 * always ends as a 4xx here: only a bug or an unavailable dependency may answer 5xx.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { BlockError } from '../blocks/service';
import { requestLog } from './context';

/** Seconds a client should wait before retrying when Temporal is unavailable. */
export const RETRY_AFTER_SECONDS = 5;

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly details?: unknown,
    public readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class TemporalUnavailableError extends ApiError {
  constructor(cause?: unknown) {
    super(503, 'temporal-unavailable', 'Temporal is not reachable; nothing was started, retry later', undefined, {
      'Retry-After': String(RETRY_AFTER_SECONDS),
    });
    if (cause) this.cause = cause;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

export function sendError(res: Response, err: ApiError): void {
  res.set(err.headers).status(err.status).json(errorBody(err.code, err.message, err.details));
}

// gRPC status codes of Temporal's answers that we tell apart.
const GRPC_INVALID_ARGUMENT = 3;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

/**
 * The gRPC error in `err` or its causes: the SDK wraps it in a ServiceError whose cause carries the numeric
 * code. BlockError's `code` is a string, so a numeric code is never ours.
 */
function grpcError(err: unknown): { code: number; details?: unknown } | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'number') return e as { code: number };
  }
  return undefined;
}

/** True when `err` is a transport failure towards Temporal (not an answer from it). */
export function isTemporalUnavailable(err: unknown): boolean {
  if (err instanceof TemporalUnavailableError) return true;
  const code = grpcError(err)?.code;
  return code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED;
}

/** body-parser's error types that are the client's fault, with our code for each. */
const BODY_PARSER_CODES: Record<string, string> = {
  'entity.too.large': 'body-too-large',
  'entity.parse.failed': 'malformed-json',
  'encoding.unsupported': 'unsupported-encoding',
  'charset.unsupported': 'unsupported-charset',
  'request.aborted': 'request-aborted',
  'request.size.invalid': 'request-size-invalid',
};

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof BlockError) return new ApiError(err.status, err.code, err.message, err.details);
  if (err instanceof z.ZodError) return validationError(err);
  const http = err as { type?: unknown; status?: unknown; expose?: unknown; message?: unknown };
  if (typeof http.type === 'string' && BODY_PARSER_CODES[http.type] && typeof http.status === 'number') {
    return new ApiError(http.status, BODY_PARSER_CODES[http.type], String(http.message));
  }
  // Any other client error raised by express itself; the router marks a malformed %-escape in the path
  // with status 400 but without `expose`.
  const clientFault = http.expose === true || err instanceof URIError;
  if (typeof http.status === 'number' && http.status >= 400 && http.status < 500 && clientFault) {
    return new ApiError(http.status, 'bad-request', String(http.message));
  }
  if (isTemporalUnavailable(err)) return new TemporalUnavailableError(err);
  // What we send Temporal is validated first; a value it still refuses came from the request.
  const grpc = grpcError(err);
  if (grpc?.code === GRPC_INVALID_ARGUMENT) {
    return new ApiError(400, 'invalid-argument', `Temporal refused the request: ${String(grpc.details ?? 'invalid argument').slice(0, 200)}`);
  }
  return new ApiError(500, 'internal', 'internal error; the request id in X-Request-Id finds it in the logs');
}

export function validationError(err: z.ZodError): ApiError {
  const issues = err.issues.map((i) => ({ path: i.path.join('.'), code: i.code, message: i.message }));
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  return new ApiError(400, 'invalid-request', summary, { issues });
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new ApiError(404, 'not-found', `no route for ${req.method} ${req.path}`));
};

/** Last middleware: everything thrown or passed to next() becomes the error shape; 5xx are logged with the cause. */
export const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  const apiErr = toApiError(err);
  const log = requestLog(res);
  if (apiErr.status >= 500) log.error({ err, code: apiErr.code }, 'request failed');
  else log.debug({ code: apiErr.code, status: apiErr.status, reason: apiErr.message }, 'request refused');
  if (res.headersSent) return;
  sendError(res, apiErr);
};
