/**
 * A FortiOS REST API emulator on a real socket (node:http / node:https), faithful to the behaviours in
 * reference/fortios-rest-api.md §10 and checked against the recorded replies of §12.
 *
 * Served: /api/v2/cmdb/firewall/{address,address6,addrgrp,addrgrp6,local-in-policy,local-in-policy6,policy},
 * /api/v2/cmdb/system/external-resource (table GET with filter/format, POST; object GET/PUT/DELETE;
 * addrgrp[6]/<g>/member child table), /api/v2/monitor/system/status,
 * /api/v2/monitor/user/banned[/select|/add_users|/clear_users|/clear_all|/check],
 * /api/v2/monitor/system/external-resource/dynamic (push, 7.2.1+) and .../entry-list; pull feeds are
 * downloaded from their resource URL (feed-fetch.ts).
 * Not modelled: other tables, address types other than ipmask/ipprefix (refused with -651),
 * transactions and every `?action=` (400), paging (start/count) and with_meta/datasource (ignored),
 * session login (/logincheck). One VDOM (`vdom` option, default root); any other ?vdom= gets 403, the
 * permission error FortiOS gives for a VDOM the admin cannot access.
 *
 * Admin routes live outside /api/v2 on the same port and need no token; they answer only to trusted
 * sources (default loopback): GET /__emulator/state, GET|POST /__emulator/faults (JSON patch, merged),
 * POST /__emulator/reset (tables back to the seed, faults, counters and lock-outs cleared),
 * GET /__emulator/blocked?ip=<ip>[&policy=<table>/<id>] (which enforced mechanisms match the IP now:
 * enforcement.ts), POST /__emulator/external-resource/refresh {"name"?} (download pull feeds now; answers
 * once done).
 *
 * Seed: built-in addresses `all` and `none` (0.0.0.0/32; ::/128 for IPv6), the configured groups holding
 * `none`, the configured threat feeds, and one deny policy (id 1) whose srcaddr are those groups and
 * feeds: per family in local-in-policy[6] (feeds there need 7.2.4+) or in firewall/policy (`denyPolicy`).
 * A state file, when present, replaces the seed: after changing the groups, delete it or POST
 * /__emulator/reset.
 *
 * Behaviours the reference marks UNCERTAIN, as switches (EmulatorOptions) with their defaults:
 * | behaviour                                   | switch                | default                          |
 * |---------------------------------------------|-----------------------|----------------------------------|
 * | `"error": -3` in 404 bodies                 | notFoundErrorCode     | true from v7.0 (6.2.3 had none)  |
 * | empty address group accepted                | allowEmptyGroup       | true from v7.2.0, else 500/-56   |
 * | member limit (error -4 when exceeded)       | groupMemberLimit      | 600, also for addrgrp6           |
 * | same member twice in one write              | duplicateMembers      | 'reject' (500/-5); or 'dedupe'   |
 * | address named like a group (and vice versa) | sharedNamespaceError  | -163                             |
 * | host bits of "10.0.0.5/24" cleared          | zeroHostBits          | false (stored as given)          |
 * | DELETE on a table path                      | tableDelete           | 'reject' (405); or 'purge'       |
 * | ?access_token= accepted                     | restApiKeyUrlQuery    | false (as since 7.4.5)           |
 * | local-in `intf` as a [{name}] table         | intfAsList            | true from v7.4.2, else string    |
 * | addrgrp6 member limit                       | group6MemberLimit     | groupMemberLimit                 |
 * | feed entries per feed (before 7.4.4)        | feedEntryLimit        | 131072 ("128K")                  |
 * | feed IP entries in all (7.4.4+)             | feedGlobalLimit       | 300000                           |
 * | which feed limit applies                    | feedLimitScope        | 'global' from v7.4.4, 'per-feed' |
 * Fixed choices where the reference is silent or UNCERTAIN:
 * - unknown member or policy address: 500/-3 with cli_error "entry not found in datasource";
 *   a group nested into itself: 500/-651; POST of a member already present: 500/-5;
 * - name rules: empty or control characters -651, over 79 characters -72, any of "'<> -173; comment over
 *   255 characters -72; every 500 with an error number carries cli_error "<text>\nCommand fail. Return
 *   code <n>\n" (the -23 text names the number of referring entries, as real captures show);
 * - child-table replies are CMDB envelopes with path firewall, name addrgrp and the member as mkey;
 * - banned add/clear reply `results: {}`; invalid IPs there get 500/-8; re-adding an IP restarts its
 *   entry; both list URLs answer with action "select"; IPv6 entries are shown zero-padded in full;
 * - an unparsable JSON body is 400; the legacy {"json": {...}} wrapper is accepted; unknown fields ignored;
 * - lock-out: failures from untrusted sources count too; a success resets the count; a lock-out blocks
 *   valid tokens from that source as well (the real lock-out is per source IP);
 * - 401 page titled "Unauthorized" from v7, "Authorization Required" before;
 * - an empty trustedHosts list trusts nothing.
 */
import http, { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Api } from './api';
import { AuthGuard } from './auth';
import { BlockedAnswer, PolicyTable, whoBlocks } from './enforcement';
import { FeedPuller, RefreshOutcome } from './feed-fetch';
import {
  FaultPatch,
  FaultSettings,
  InjectedFault,
  NO_FAULTS,
  delayFor,
  drawFault,
  faultPatchSchema,
  losesReply,
  mergeFaults,
} from './faults';
import { EmulatorConfig, EmulatorOptions, resolveOptions } from './options';
import { StateFile } from './persistence';
import { Reply, json, notFoundPage, serviceUnavailablePage, tooManyRequestsPage } from './replies';
import { EmulatorState } from './state';

export type { EmulatorOptions, FeedSeed } from './options';
export type { FaultSettings } from './faults';
export type { BlockedAnswer, Mechanism, PolicyMatch, PolicyTable, Via } from './enforcement';
export type { RefreshOutcome } from './feed-fetch';
export { EmulatorState } from './state';

export interface RunningEmulator {
  url: string;
  port: number;
  token: string;
  state: EmulatorState;
  /** Merges into the current fault settings (like POST /__emulator/faults); throws on invalid values. */
  setFaults(f: Partial<FaultSettings>): void;
  /** Like POST /__emulator/reset. */
  reset(): void;
  /** Like GET /__emulator/blocked; undefined for an invalid IP. */
  blocked(ip: string, policy?: { table: PolicyTable; policyid: number }): BlockedAnswer | undefined;
  /** Like POST /__emulator/external-resource/refresh: downloads the pull feeds (or one) now. */
  refreshFeeds(name?: string): Promise<RefreshOutcome[]>;
  /** Requests held back by injected latency, not applied yet (a test waits for a late request to land). */
  delayed(): number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;

export async function startEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const emulator = new Emulator(resolveOptions(opts), faultPatchSchema.parse(opts.faults ?? {}));
  return emulator.listen();
}

class Emulator {
  private readonly state: EmulatorState;
  private readonly auth: AuthGuard;
  private readonly api: Api;
  private readonly stateFile?: StateFile;
  private readonly puller: FeedPuller;
  private readonly server: http.Server;
  private faults: FaultSettings;
  private delayedRequests = 0;

  constructor(
    private readonly config: EmulatorConfig,
    initialFaults: FaultPatch,
  ) {
    this.state = new EmulatorState(config);
    this.auth = new AuthGuard(config);
    this.faults = mergeFaults(NO_FAULTS, initialFaults);
    if (config.stateFile) {
      this.stateFile = new StateFile(config.stateFile, () => this.state.snapshot());
      const saved = this.stateFile.load();
      if (saved) this.state.restore(saved);
    }
    this.api = new Api(config, this.state, this.auth, () => this.stateFile?.scheduleSave());
    this.puller = new FeedPuller(config, this.state, () => this.stateFile?.scheduleSave());
    const listener = (req: IncomingMessage, res: ServerResponse) => void this.onRequest(req, res);
    this.server = config.tls ? https.createServer({ ...config.tls }, listener) : http.createServer(listener);
  }

  async listen(): Promise<RunningEmulator> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    this.puller.start();
    return {
      url: `${this.config.tls ? 'https' : 'http'}://${urlHost(this.config.host)}:${port}`,
      port,
      token: this.config.token,
      state: this.state,
      setFaults: (f) => this.setFaults(faultPatchSchema.parse(f)),
      reset: () => this.reset(),
      blocked: (ip, policy) => whoBlocks(this.state, ip, policy),
      refreshFeeds: (name) => this.refreshFeeds(name),
      delayed: () => this.delayedRequests,
      close: () => this.close(),
    };
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const [rawPath = '', rawQuery = ''] = (req.url ?? '').split(/\?(.*)/s);
      const segments = decodeSegments(rawPath);
      const query = new URLSearchParams(rawQuery);
      const bodyText = await readBody(req);
      if (segments === undefined) return send(res, json(400, { error: 'malformed percent-encoding' }));
      if (bodyText === undefined) return send(res, json(413, { error: 'request body too large' }));
      if (segments[0] === '__emulator') return send(res, await this.admin(req, segments.slice(1), query, bodyText));
      if (segments[0] !== 'api' || segments[1] !== 'v2') return send(res, notFoundPage());
      await this.serveApi(req, res, { segments: segments.slice(2), query, bodyText });
    } catch (err) {
      if (req.destroyed) return; // the client went away mid-request: nobody to answer
      // A bug must not take the emulator down; the client sees a 500 like from a real box.
      process.emitWarning(`emulator request failed: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) send(res, json(500, { error: 'emulator internal error' }));
    }
  }

  /** Latency, then possibly a fault (before or, with failAfterCommit, after the request took effect). */
  private async serveApi(
    req: IncomingMessage,
    res: ServerResponse,
    r: { segments: string[]; query: URLSearchParams; bodyText: string },
  ): Promise<void> {
    const method = req.method ?? 'GET';
    // Taken now: once a client gives up, its socket forgets the peer, and a late request must still land as
    // it would on a real box (a stale write), not be refused as coming from nowhere.
    const source = req.socket.remoteAddress ?? '';
    const delay = delayFor(this.faults, method, this.config.random);
    if (delay > 0) {
      this.delayedRequests++;
      await sleep(delay).finally(() => this.delayedRequests--);
    }
    const fault = drawFault(this.faults, this.config.now(), this.config.random);
    const faultAfter = fault !== undefined && this.faults.failAfterCommit && losesReply(fault);
    if (fault && !faultAfter) return this.inject(fault, req, res);
    const reply = this.api.handle({
      method,
      ...r,
      source,
      authorization: req.headers.authorization,
    });
    if (fault) return this.inject(fault, req, res);
    send(res, reply);
  }

  private inject(fault: InjectedFault, req: IncomingMessage, res: ServerResponse): void {
    this.state.count('injected', fault);
    switch (fault) {
      case 'hang':
        return; // never answer: the client's timeout must fire; close() destroys the socket
      case 'reset':
        return resetSocket(req);
      case 'unavailable':
        return send(res, serviceUnavailablePage());
      case 'rate-limited':
        return send(res, tooManyRequestsPage());
      case 'error500':
        return send(res, { status: 500, contentType: 'text/plain', body: '' });
    }
  }

  private async admin(req: IncomingMessage, route: string[], query: URLSearchParams, bodyText: string): Promise<Reply> {
    if (!this.auth.isTrustedSource(req.socket.remoteAddress ?? '')) return json(403, { error: 'source not trusted' });
    switch (`${req.method} ${route.join('/')}`) {
      case 'GET blocked':
        return this.adminBlocked(query);
      case 'POST external-resource/refresh':
        return this.adminRefresh(bodyText);
      case 'GET state':
        return json(200, this.adminState());
      case 'GET faults':
        return json(200, this.faults);
      case 'POST faults':
        return this.patchFaults(bodyText);
      case 'POST reset':
        this.reset();
        return json(200, { status: 'reset', revision: this.state.revision });
      default:
        return json(404, { error: 'unknown emulator route' });
    }
  }

  /** The tables (feed passwords redacted: the admin routes need no token), counters and faults. */
  private adminState(): unknown {
    const snapshot = this.state.snapshot();
    const feeds = snapshot.tables['external-resource']?.map((f) => ({ ...f, password: f.password === '' ? '' : '<redacted>' }));
    return {
      version: this.config.version,
      vdom: this.config.vdom,
      ...snapshot,
      tables: { ...snapshot.tables, 'external-resource': feeds },
      counters: this.state.counters,
      faults: this.faults,
    };
  }

  private adminBlocked(query: URLSearchParams): Reply {
    const policyParam = query.get('policy');
    let policy: { table: PolicyTable; policyid: number } | undefined;
    if (policyParam !== null) {
      const m = /^(local-in-policy6?|policy)\/(\d+)$/.exec(policyParam);
      if (!m) return json(400, { error: 'policy must look like local-in-policy/1, local-in-policy6/1 or policy/1' });
      policy = { table: m[1] as PolicyTable, policyid: Number(m[2]) };
    }
    const answer = whoBlocks(this.state, query.get('ip') ?? '', policy);
    return answer ? json(200, answer) : json(400, { error: 'ip must be an IPv4 or IPv6 address' });
  }

  private async adminRefresh(bodyText: string): Promise<Reply> {
    let name: unknown;
    try {
      name = (JSON.parse(bodyText || '{}') as { name?: unknown }).name;
    } catch {
      return json(400, { error: 'body is not JSON' });
    }
    if (name !== undefined && typeof name !== 'string') return json(400, { error: 'name must be a string' });
    if (name !== undefined && !this.puller.pullFeeds().includes(name)) {
      return json(404, { error: 'no enabled pull feed (update-method feed) of that name' });
    }
    return json(200, { refreshed: await this.refreshFeeds(name) });
  }

  private refreshFeeds(name?: string): Promise<RefreshOutcome[]> {
    const names = name === undefined ? this.puller.pullFeeds() : [name];
    return Promise.all(names.map((n) => this.puller.refresh(n)));
  }

  private patchFaults(bodyText: string): Reply {
    let patch: unknown;
    try {
      patch = JSON.parse(bodyText || '{}');
    } catch {
      return json(400, { error: 'body is not JSON' });
    }
    const parsed = faultPatchSchema.safeParse(patch);
    if (!parsed.success) return json(400, { error: 'invalid fault settings', issues: parsed.error.issues });
    this.setFaults(parsed.data);
    return json(200, this.faults);
  }

  private setFaults(patch: FaultPatch): void {
    this.faults = mergeFaults(this.faults, patch);
  }

  private reset(): void {
    this.state.reset();
    this.puller.reset();
    this.auth.reset();
    this.faults = NO_FAULTS;
    this.stateFile?.scheduleSave();
  }

  private async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Hung requests and idle keep-alive sockets would otherwise hold close() open.
    this.server.closeAllConnections();
    await closed;
    await this.puller.stop();
    await this.stateFile?.flush();
  }
}

/** Splits the raw path and decodes exactly one level of percent-encoding per segment (%2F stays in a key). */
function decodeSegments(rawPath: string): string[] | undefined {
  const parts = rawPath.split('/').slice(1);
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  try {
    return parts.map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** The body as text, or undefined past MAX_BODY_BYTES (read to the end to keep the connection usable). */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  return size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, {
    'content-type': reply.contentType,
    'content-length': Buffer.byteLength(reply.body),
  });
  res.end(reply.body);
}

/** A TCP RST where the socket allows it (plain TCP), otherwise a plain close. */
function resetSocket(req: IncomingMessage): void {
  try {
    req.socket.resetAndDestroy();
  } catch {
    req.socket.destroy();
  }
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
