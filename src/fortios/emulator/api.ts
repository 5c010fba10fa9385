/**
 * The /api/v2 request pipeline after fault injection: authentication (401/429 HTML), VDOM and permission
 * checks (403 JSON), body parsing, then the CMDB or monitor handler, counters and the reply envelope.
 */
import { AuthGuard } from './auth';
import { Cmdb, CmdbRequest, cmdbTable } from './cmdb';
import { Monitor } from './monitor';
import { EmulatorConfig } from './options';
import {
  CmdbTarget,
  Device,
  MonitorTarget,
  Reply,
  Revision,
  cmdbFailure,
  cmdbSuccess,
  monitorReply,
  notFoundPage,
  tooManyRequestsPage,
  unauthorizedPage,
} from './replies';
import { Row } from './render';
import { EmulatorState } from './state';
import { CmdbFailure } from './validate';

export interface ApiRequest {
  method: string;
  /** Decoded path segments after /api/v2. */
  segments: string[];
  query: URLSearchParams;
  bodyText: string;
  source: string;
  authorization?: string;
}

export class Api {
  private readonly cmdb: Cmdb;
  private readonly monitor: Monitor;
  private readonly device: Device;

  constructor(
    private readonly config: EmulatorConfig,
    private readonly state: EmulatorState,
    private readonly auth: AuthGuard,
    /** Called after every successful write (persistence). */
    private readonly onWrite: () => void,
  ) {
    this.cmdb = new Cmdb(config, state);
    this.monitor = new Monitor(config, state);
    this.device = { serial: config.serial, version: config.version, build: config.build };
  }

  handle(req: ApiRequest): Reply {
    const auth = this.auth.check(req.source, req.authorization, req.query.get('access_token'));
    if (!auth.ok) {
      this.state.count('rejected', auth.reason);
      return auth.reason === 'locked-out' ? tooManyRequestsPage() : unauthorizedPage(this.config.major);
    }
    const [api, ...rest] = req.segments;
    if (api !== 'cmdb' && api !== 'monitor') return notFoundPage();
    const vdom = req.query.get('vdom') ?? this.config.vdom;
    // An admin has no access to a VDOM the device does not have: a permission error (§2.2).
    const forbidden = vdom !== this.config.vdom || (auth.role === 'read-only' && req.method !== 'GET');
    if (forbidden) this.state.count('rejected', 'forbidden');
    return api === 'cmdb' ? this.handleCmdb(req, rest, vdom, forbidden) : this.handleMonitor(req, rest, vdom, forbidden);
  }

  private handleCmdb(req: ApiRequest, segments: string[], vdom: string, forbidden: boolean): Reply {
    const [path = '', name = '', ...keys] = segments;
    const target: CmdbTarget = { method: req.method, vdom, path, name, ...(keys[0] === undefined ? {} : { mkey: keys[0] }) };
    const fail = (status: number, error?: number) =>
      cmdbFailure(target, this.device, this.state.revision, { status, ...(error === undefined ? {} : { error }) });
    const spec = cmdbTable(path, name);
    if (!spec) return fail(404);
    if (forbidden) return fail(403);
    this.countRequest(req.method, name);
    // Actions (clone, move, schema, transactions) are not modelled: FortiOS calls unknown ones invalid.
    if (req.query.has('action')) return fail(400);
    const body = this.body(req);
    if (!body) return fail(400);
    const cmdbRequest: CmdbRequest = { method: req.method, spec, keys, query: req.query, body };
    try {
      const result = this.cmdb.handle(cmdbRequest);
      const rev = req.method === 'GET' ? { current: this.state.revision } : this.commitWrite();
      return cmdbSuccess({ ...target, mkey: result.mkey }, this.device, rev, result.results, result.list);
    } catch (err) {
      if (!(err instanceof CmdbFailure)) throw err;
      return cmdbFailure(target, this.device, this.state.revision, err.failure);
    }
  }

  private handleMonitor(req: ApiRequest, segments: string[], vdom: string, forbidden: boolean): Reply {
    const [path = '', name = '', action] = segments;
    const target: MonitorTarget = { method: req.method, vdom, path, name, action };
    const body = this.body(req);
    if (forbidden) return monitorReply(target, this.device, 403, undefined, { status: 403 });
    this.countRequest(req.method, name);
    if (!body) return monitorReply(target, this.device, 400, undefined, { status: 400 });
    const result = this.monitor.handle({ method: req.method, segments, query: req.query, body });
    const answered = { ...target, action: result.action ?? action };
    if (result.failure) return monitorReply(answered, this.device, result.failure.status, undefined, result.failure);
    if (result.write) this.commitWrite();
    return monitorReply(answered, this.device, 200, result.results);
  }

  /** Counts every authorised request by table (or monitor name), whether it then succeeds or not. */
  private countRequest(method: string, kind: string): void {
    this.state.count(method === 'GET' ? 'reads' : 'writes', kind);
  }

  /** A successful write starts a new revision and is persisted. */
  private commitWrite(): Revision {
    const old = this.state.commit();
    this.onWrite();
    return { current: this.state.revision, old };
  }

  /** The JSON object body of a write ({} for reads); the legacy {"json": {...}} wrapper is unwrapped. */
  private body(req: ApiRequest): Row | undefined {
    if ((req.method !== 'POST' && req.method !== 'PUT') || req.bodyText.trim() === '') return {};
    try {
      const value: unknown = JSON.parse(req.bodyText);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
      const wrapped = (value as Row).json;
      return typeof wrapped === 'object' && wrapped !== null && !Array.isArray(wrapped) ? (wrapped as Row) : (value as Row);
    } catch {
      return undefined;
    }
  }
}
