/**
 * Every reply body the emulator sends is built here, so that the FortiOS envelope (reference §3.1) has one
 * definition: CMDB replies carry `http_status`, monitor replies do not, and auth failures are the HTML
 * pages of the embedded web server rather than JSON.
 */
import { fortiErrorText } from '../error-codes';

export interface Reply {
  status: number;
  contentType: string;
  body: string;
}

/** Who answers: identity fields closing every envelope. */
export interface Device {
  serial: string;
  version: string;
  build: number;
}

/** What a CMDB request addressed: `path`/`name` are the URL's two table segments. */
export interface CmdbTarget {
  method: string;
  vdom: string;
  path: string;
  name: string;
  mkey?: string | number;
}

export interface Revision {
  current: string;
  /** Set on a committed write: the revision before it. */
  old?: string;
}

export interface ListInfo {
  size: number;
  matched: number;
}

export interface Failure {
  status: number;
  error?: number;
  cliError?: string;
}

const JSON_TYPE = 'application/json';

export function json(status: number, value: unknown): Reply {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(value) };
}

/** Successful CMDB reply; field order follows real captures (§12 A–F). */
export function cmdbSuccess(
  t: CmdbTarget,
  device: Device,
  rev: Revision,
  results?: unknown[],
  list?: ListInfo,
): Reply {
  const isWrite = t.method !== 'GET';
  return json(200, {
    http_method: t.method,
    ...(list ? { size: list.size, matched_count: list.matched, next_idx: Math.max(list.matched - 1, 0) } : {}),
    revision: rev.current,
    ...(isWrite ? { revision_changed: rev.old !== undefined, old_revision: rev.old ?? rev.current } : {}),
    ...(t.mkey !== undefined && isWrite ? { mkey: t.mkey } : {}),
    ...(results ? { results } : {}),
    vdom: t.vdom,
    path: t.path,
    name: t.name,
    ...(t.mkey !== undefined && !isWrite ? { mkey: t.mkey } : {}),
    status: 'success',
    http_status: 200,
    ...device,
  });
}

/** Failed CMDB reply: writes say `revision_changed:false` (§3.4, capture L); 404s may omit `error`. */
export function cmdbFailure(t: CmdbTarget, device: Device, revision: string, f: Failure): Reply {
  return json(f.status, {
    http_method: t.method,
    revision,
    ...(t.method === 'GET' ? {} : { revision_changed: false }),
    status: 'error',
    http_status: f.status,
    vdom: t.vdom,
    path: t.path,
    name: t.name,
    ...(t.mkey !== undefined ? { mkey: t.mkey } : {}),
    ...(f.error !== undefined ? { error: f.error } : {}),
    ...(f.cliError !== undefined ? { cli_error: f.cliError } : {}),
    ...device,
  });
}

export interface MonitorTarget {
  method: string;
  vdom: string;
  path: string;
  name: string;
  action?: string;
}

/** Monitor reply (§3.5, capture K/H): no `http_status`, optional `action`. */
export function monitorReply(t: MonitorTarget, device: Device, status: number, results?: unknown, f?: Failure): Reply {
  return json(status, {
    http_method: t.method,
    ...(results !== undefined ? { results } : {}),
    vdom: t.vdom,
    path: t.path,
    name: t.name,
    ...(t.action ? { action: t.action } : {}),
    status: f ? 'error' : 'success',
    ...(f?.error !== undefined ? { error: f.error } : {}),
    ...device,
  });
}

/** The CLI output FortiOS puts in `cli_error`: the message, then the return code line. */
export function cliError(code: number, message = fortiErrorText(code)): string {
  return `${message}\nCommand fail. Return code ${code}\n`;
}

function htmlPage(status: number, title: string, heading: string, text: string): Reply {
  const body =
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n' +
    `<title>${status} ${title}</title>\n</head><body>\n<h1>${heading}</h1>\n<p>${text}</p>\n</body></html>\n`;
  return { status, contentType: 'text/html; charset=iso-8859-1', body };
}

const UNAUTHORIZED_TEXT =
  'This server could not verify that you\nare authorized to access the document\nrequested.  Either you supplied the wrong\n' +
  "credentials (e.g., bad password), or your\nbrowser doesn't understand how to supply\nthe credentials required.";

/** 401 page: builds before 7.x titled it "Authorization Required" (§1.1). */
export function unauthorizedPage(majorVersion: number): Reply {
  const title = majorVersion >= 7 ? 'Unauthorized' : 'Authorization Required';
  return htmlPage(401, title, title, UNAUTHORIZED_TEXT);
}

export function tooManyRequestsPage(): Reply {
  return htmlPage(
    429,
    'Too Many Requests',
    'Too Many Requests',
    'The user has sent too many requests\nin a given amount of time.',
  );
}

export function serviceUnavailablePage(): Reply {
  return htmlPage(
    503,
    'Service Unavailable',
    'Service Unavailable',
    'The server is temporarily unable to service your\nrequest due to maintenance downtime or capacity\nproblems. Please try again later.',
  );
}

export function notFoundPage(): Reply {
  return htmlPage(404, 'Not Found', 'Not Found', 'The requested URL was not found on this server.');
}
