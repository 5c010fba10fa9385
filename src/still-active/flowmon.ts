/**
 * Still active = the Flowmon ADS REST API knows an event with the IP as source in the last window.
 * Reference: /work/shared/reference/flowmon-ads.md §5.3. The token route is CONFIRMED; the event search
 * (`GET /rest/ads/events?search={"from","to","source"}`) is only seen in third-party code — UNCERTAIN, so
 * this adapter fails safe: whatever it does not understand (a status, a body, a time-out, a refused
 * login) is answered `unknown`, which never extends a block.
 *
 * The password and the token live in private fields only: they are never part of an answer (answers go
 * into workflow history), an error or a log line. One token is cached until shortly before it expires.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { canonicalIp } from '../policy/ip-policy';
import type { StillActiveAnswer, StillActivePort, StillActiveQuestion } from './port';

export interface FlowmonOptions {
  /** scheme://host[:port] of the Flowmon appliance (FLOWMON_URL). */
  baseUrl: string;
  user: string;
  password: string;
  /** PEM CA that signed the appliance's certificate (FLOWMON_CA_FILE). */
  caFile?: string;
  /** IANA zone in which the appliance reads the search's from/to (FLOWMON_TIMEZONE). */
  timeZone?: string;
  /** Bound on one whole question, token included. */
  timeoutMs?: number;
}

/** The OAuth client id of the Flowmon web UI, which Progress' own scripts use for the password grant. */
const CLIENT_ID = 'invea-tech';
/** A token is renewed this long before the expiry it was given (or after this long when it names none). */
const TOKEN_MARGIN_MS = 60_000;
const TOKEN_DEFAULT_LIFE_MS = 5 * 60_000;

class Unknown extends Error {}

export class FlowmonStillActive implements StillActivePort {
  readonly source = 'flowmon' as const;
  readonly #user: string;
  readonly #password: string;
  #token?: { value: string; renewAtMs: number };
  #fetching?: Promise<string>;
  private readonly pool: Pool;
  private readonly timeoutMs: number;
  private readonly timeZone: string;
  /** Token requests made (tests check the cache). */
  tokenRequests = 0;

  constructor(o: FlowmonOptions) {
    const url = new URL(o.baseUrl);
    if (url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '') {
      throw new Error('FLOWMON_URL must be scheme://host[:port] without path, query or credentials');
    }
    this.#user = o.user;
    this.#password = o.password;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.timeZone = o.timeZone ?? 'UTC';
    minuteIn(Date.now(), this.timeZone); // throws on an unknown zone: config reports it
    this.pool = new Pool(url.origin, {
      connections: 4,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: this.timeoutMs, ...(o.caFile ? { ca: readFileSync(o.caFile, 'utf8') } : {}) },
    });
  }

  async ask(q: StillActiveQuestion): Promise<StillActiveAnswer> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      let token = await this.token(signal);
      let reply = await this.search(q, token, signal);
      if (reply.status === 401 || reply.status === 403) {
        // The cached token may have been revoked or expired early: one fresh login, then give up.
        this.#token = undefined;
        token = await this.token(signal);
        reply = await this.search(q, token, signal);
      }
      if (reply.status === 401 || reply.status === 403) throw new Unknown(`event search refused (HTTP ${reply.status})`);
      if (reply.status < 200 || reply.status >= 300) throw new Unknown(`event search failed (HTTP ${reply.status})`);
      return verdictOf(q.ip, reply.text);
    } catch (err) {
      return { verdict: 'unknown', source: 'flowmon', detail: describe(err, signal) };
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** The cached token, or one new login (concurrent questions share it). */
  private async token(signal: AbortSignal): Promise<string> {
    if (this.#token && Date.now() < this.#token.renewAtMs) return this.#token.value;
    this.#fetching ??= this.login(signal).finally(() => (this.#fetching = undefined));
    return this.#fetching;
  }

  private async login(signal: AbortSignal): Promise<string> {
    this.tokenRequests++;
    const body = new URLSearchParams({ grant_type: 'password', client_id: CLIENT_ID, username: this.#user, password: this.#password });
    const res = await this.pool.request({
      method: 'POST',
      path: '/resources/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: body.toString(),
      signal,
    });
    const text = await res.body.text();
    if (res.statusCode === 400 || res.statusCode === 401 || res.statusCode === 403) throw new Unknown(`login refused (HTTP ${res.statusCode})`);
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Unknown(`login failed (HTTP ${res.statusCode})`);
    const reply = parseJson(text) as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (!reply || typeof reply.access_token !== 'string' || reply.access_token === '') throw new Unknown('login answered without an access token');
    const lifeMs = typeof reply.expires_in === 'number' && reply.expires_in > 0 ? reply.expires_in * 1000 : TOKEN_DEFAULT_LIFE_MS + TOKEN_MARGIN_MS;
    this.#token = { value: reply.access_token, renewAtMs: Date.now() + Math.max(0, lifeMs - TOKEN_MARGIN_MS) };
    return reply.access_token;
  }

  private async search(q: StillActiveQuestion, token: string, signal: AbortSignal): Promise<{ status: number; text: string }> {
    const search = {
      from: minuteIn(q.atMs - q.windowMs, this.timeZone),
      to: minuteIn(q.atMs + 59_999, this.timeZone), // the search has minute resolution: round "to" up
      source: [q.ip],
    };
    const res = await this.pool.request({
      method: 'GET',
      path: `/rest/ads/events?${new URLSearchParams({ search: JSON.stringify(search) }).toString()}`,
      headers: { authorization: `bearer ${token}`, accept: 'application/json' },
      signal,
    });
    return { status: res.statusCode, text: await res.body.text() };
  }
}

/**
 * Seen when an event of the answer has the IP as its source. Events of other sources are ignored (a
 * search that ignored our filter); an event whose source cannot be read makes a "no" unreliable: unknown.
 */
export function verdictOf(ip: string, text: string): StillActiveAnswer {
  const events = parseJson(text);
  if (events === undefined) throw new Unknown('event search answered a body that is not JSON');
  if (!Array.isArray(events)) throw new Unknown('event search answered JSON that is not an array of events');
  let unreadable = 0;
  for (const e of events) {
    const sourceIp = (e as { source?: { ip?: unknown } } | null)?.source?.ip;
    if (typeof sourceIp !== 'string') {
      unreadable++;
      continue;
    }
    if (canonicalIp(sourceIp) === ip) {
      const { id, type } = e as { id?: unknown; type?: unknown };
      return { verdict: 'seen', source: 'flowmon', detail: `ADS event ${safe(id)}${typeof type === 'string' ? ` ${safe(type)}` : ''} has it as source` };
    }
  }
  if (unreadable > 0) throw new Unknown(`event search answered ${unreadable} event(s) without a readable source`);
  return { verdict: 'not-seen', source: 'flowmon', detail: `no ADS event with it as source in the window${events.length ? ` (${events.length} of other sources ignored)` : ''}` };
}

/** "YYYY-MM-DD HH:MM" in the appliance's zone (the search's format). */
export function minuteIn(ms: number, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An id or method from the answer, bounded and printable (it goes into the block's history). */
function safe(v: unknown): string {
  return String(v).replace(/[^\w.:-]/g, '').slice(0, 40);
}

/** Our words for a failure: a status code, a time-out, a connection error code — never a body or a URL with secrets. */
function describe(err: unknown, signal: AbortSignal): string {
  if (err instanceof Unknown) return err.message;
  if (signal.aborted) return 'no answer in time';
  const code = (err as { code?: unknown }).code;
  return `request failed${typeof code === 'string' ? ` (${code})` : ''}`;
}
