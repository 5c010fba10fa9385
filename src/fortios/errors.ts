/**
 * Errors of the FortiOS client. Every failure is a FortiOSError whose `kind` says what happened and whose
 * `retryable` says whether repeating the same request can succeed: callers (Temporal activities) turn
 * non-retryable ones into non-retryable failures. Messages carry method and path only: never the token,
 * never the query string.
 */
import { FortiErrorCode, fortiErrorText } from './error-codes';

export type FortiOSErrorKind =
  | 'auth'
  | 'forbidden'
  | 'rate-limited'
  | 'not-found'
  | 'duplicate'
  | 'conflict'
  | 'in-use'
  | 'limit'
  | 'validation'
  | 'unavailable'
  | 'server'
  | 'timeout'
  | 'network'
  | 'bad-response';

const RETRYABLE_KINDS: ReadonlySet<FortiOSErrorKind> = new Set([
  'rate-limited',
  'unavailable',
  'server',
  'timeout',
  'network',
  'bad-response',
]);

export interface FortiOSErrorInit {
  kind: FortiOSErrorKind;
  method: string;
  path: string;
  detail: string;
  status?: number;
  fortiError?: number;
  cliError?: string;
  /** Overrides the kind's default, e.g. a TLS verification failure is 'network' yet pointless to retry. */
  retryable?: boolean;
  cause?: unknown;
}

export class FortiOSError extends Error {
  readonly kind: FortiOSErrorKind;
  readonly status?: number;
  readonly fortiError?: number;
  readonly cliError?: string;
  readonly retryable: boolean;
  readonly method: string;
  readonly path: string;

  constructor(init: FortiOSErrorInit) {
    super(`FortiOS ${init.method} ${init.path}: ${init.detail}`, { cause: init.cause });
    this.name = 'FortiOSError';
    this.kind = init.kind;
    this.status = init.status;
    this.fortiError = init.fortiError;
    this.cliError = init.cliError;
    this.retryable = init.retryable ?? RETRYABLE_KINDS.has(init.kind);
    this.method = init.method;
    this.path = init.path;
  }
}

export function isRetryable(err: unknown): boolean {
  return err instanceof FortiOSError && err.retryable;
}

/** The kind of a failure that carries a FortiOS error number; all of them are final. */
export function kindOfFortiError(code: number): FortiOSErrorKind {
  switch (code) {
    case FortiErrorCode.NotFound:
      return 'not-found';
    case FortiErrorCode.MaxEntries:
      return 'limit';
    case FortiErrorCode.Duplicate:
    case FortiErrorCode.DuplicateEntry:
      return 'duplicate';
    case FortiErrorCode.EntryUsed:
      return 'in-use';
    case FortiErrorCode.AddressGroupSameName:
    case FortiErrorCode.AddressVipSameName:
    case FortiErrorCode.GroupVipSameName:
      return 'conflict';
    case FortiErrorCode.PermissionDenied:
    case FortiErrorCode.PermissionDeniedAlt:
      return 'forbidden';
    default:
      return 'validation';
  }
}

/** The kind of an HTTP failure without a FortiOS error number. */
export function kindOfHttpStatus(status: number): FortiOSErrorKind {
  if (status === 401) return 'auth';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 408) return 'timeout';
  if (status === 429) return 'rate-limited';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'server';
  return 'validation';
}

const HINTS: Partial<Record<number, string>> = {
  401: ' (wrong token, or this source IP is not in the API user\'s trusted hosts)',
  429: ' (this source IP is locked out after repeated failed authentications)',
};

/** Human text for an HTTP failure: status, FortiOS error number and text, first line of the CLI output. */
export function describeHttpFailure(status: number, fortiError?: number, cliError?: string): string {
  const parts = [`HTTP ${status}${HINTS[status] ?? ''}`];
  if (fortiError !== undefined) parts.push(`error ${fortiError} (${fortiErrorText(fortiError)})`);
  const cliLine = cliError?.split('\n').find((line) => line.trim() !== '');
  if (cliLine) parts.push(`cli: ${cliLine.trim()}`);
  return parts.join(', ');
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
/** Certificate problems are configuration errors: retrying cannot fix them. */
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/;

/** Maps a transport-level failure (no HTTP status) to a FortiOSError. */
export function transportError(err: unknown, method: string, path: string, timedOut: boolean): FortiOSError {
  const code = errorCode(err);
  const base = { method, path, cause: err };
  if (timedOut || (code !== undefined && TIMEOUT_CODES.has(code))) {
    return new FortiOSError({ ...base, kind: 'timeout', detail: 'request timed out' });
  }
  if (code !== undefined && TLS_CODE.test(code)) {
    return new FortiOSError({ ...base, kind: 'network', retryable: false, detail: `TLS failure ${code}` });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FortiOSError({ ...base, kind: 'network', detail: `${code ?? 'network error'}: ${message}` });
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, cause } = err as { code?: unknown; cause?: unknown };
  if (typeof code === 'string') return code;
  return cause === undefined ? undefined : errorCode(cause);
}
