/** Shared helpers of the FortiOS tests: raw HTTP against the emulator, and a request-capturing server. */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { request } from 'undici';
import { FortiOSError } from '../../src/fortios/errors';

export interface RawReply {
  status: number;
  contentType: string;
  text: string;
  /** Parsed body, undefined when not JSON; `any` because tests check replies field by field. */
  json: any;
}

/** One raw HTTP request; `token` goes in the Bearer header unless undefined. */
export async function raw(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; bodyText?: string } = {},
): Promise<RawReply> {
  const bodyText = opts.bodyText ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const res = await request(`${baseUrl}${path}`, {
    method: method as 'GET',
    headers: {
      ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
      ...(bodyText === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: bodyText,
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, contentType: String(res.headers['content-type']), text, json };
}

export interface CapturedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface CannedReply {
  status: number;
  body: string;
  contentType?: string;
}

/** A plain HTTP server recording what the client sends and answering with `respond`'s reply. */
export async function startCaptureServer(respond: (req: CapturedRequest) => CannedReply) {
  const requests: CapturedRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const captured = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      requests.push(captured);
      const reply = respond(captured);
      res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/json' });
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The FortiOSError the promise rejects with; fails the test on success or on another error type. */
export async function fortiError(p: Promise<unknown>): Promise<FortiOSError> {
  const outcome = await p.then(
    () => 'resolved',
    (err: unknown) => err,
  );
  if (!(outcome instanceof FortiOSError)) throw new Error(`expected a FortiOSError, got ${String(outcome)}`);
  return outcome;
}

/** Every rendering of an error a logger might produce. */
export function renderings(err: unknown): string {
  return [String(err), inspect(err, { depth: 10 }), JSON.stringify(err), (err as Error).stack ?? ''].join('\n');
}

/** Key -> JSON type of each field, to compare reply shapes with recorded real replies. */
export function shapeOf(value: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v]),
  );
}
