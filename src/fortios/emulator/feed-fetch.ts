/**
 * Pull threat feeds (`update-method feed`): the emulator downloads each enabled feed's `resource` every
 * `refresh-rate` minutes (on its own clock), with HTTP basic auth from username/password, and parses one
 * entry per line. A failed download (network error, timeout, non-2xx, file over `feedMaxBytes`) keeps the
 * last good copy, as FortiOS does (KB 192354: "an unreachable feed keeps its last good copy"). Tests
 * trigger a download at once with POST /__emulator/external-resource/refresh.
 * Emulator choices (UNCERTAIN): empty lines and lines starting with "#" are skipped; other lines that are
 * no address, range or subnet are kept as invalid entries (entry-list `valid: false`, invalid_count).
 */
import { Agent, request } from 'undici';
import { parseFeedEntry } from '../feed-entry';
import { EmulatorConfig } from './options';
import { EmulatorState } from './state';

export interface RefreshOutcome {
  name: string;
  ok: boolean;
  httpStatus: number;
  valid: number;
  invalid: number;
  /** Why the download failed; never contains the URL's credentials nor the password. */
  error?: string;
}

export class FeedPuller {
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Map<string, Promise<RefreshOutcome>>();
  /** Emulator-clock ms at which each feed is due next. */
  private readonly due = new Map<string, number>();
  private readonly verifying: Agent;
  private readonly trusting: Agent;

  constructor(
    private readonly config: EmulatorConfig,
    private readonly state: EmulatorState,
    /** Called after a download changed the feed state (persistence). */
    private readonly onChange: () => void,
  ) {
    this.verifying = new Agent({ connect: { rejectUnauthorized: true } });
    this.trusting = new Agent({ connect: { rejectUnauthorized: false } });
  }

  start(): void {
    if (this.config.feedPollMs <= 0) return;
    this.timer = setInterval(() => this.tick(), this.config.feedPollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.inFlight.values()]);
    await Promise.all([this.verifying.close(), this.trusting.close()]);
  }

  /** Forget the schedule (after a reset): every pull feed is due at the next tick. */
  reset(): void {
    this.due.clear();
  }

  /** Pull feeds that can be downloaded: enabled, with a resource. */
  pullFeeds(): string[] {
    return [...this.state.feeds.resources.values()]
      .filter((r) => r.updateMethod === 'feed' && r.status === 'enable' && r.resource !== '')
      .map((r) => r.name);
  }

  /** Downloads the feed now (joining a download already running). */
  refresh(name: string): Promise<RefreshOutcome> {
    let running = this.inFlight.get(name);
    if (!running) {
      running = this.download(name).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, running);
    }
    return running;
  }

  private tick(): void {
    const now = this.config.now();
    for (const name of this.pullFeeds()) {
      if (now >= (this.due.get(name) ?? 0) && !this.inFlight.has(name)) void this.refresh(name);
    }
  }

  private async download(name: string): Promise<RefreshOutcome> {
    const feed = this.state.feeds.resources.get(name)!;
    const attempt = this.config.now();
    this.due.set(name, attempt + feed.refreshRate * 60_000);
    const previous = this.state.feeds.pullStatus(name);
    const fetched = await this.fetch(feed.resource, feed);
    // The feed may have been deleted or changed while downloading: apply only to the same resource.
    const current = this.state.feeds.resources.get(name);
    if (!current || current.resource !== feed.resource || current.updateMethod !== 'feed') {
      return { name, ok: false, httpStatus: fetched.httpStatus, valid: 0, invalid: 0, error: 'feed changed during download' };
    }
    const seconds = Math.floor(attempt / 1000);
    if (!fetched.ok) {
      this.state.feeds.setPullStatus(name, {
        connAttemptTime: seconds,
        lastContentUpdateTime: previous?.lastContentUpdateTime ?? 0,
        httpStatusCode: fetched.httpStatus,
        resourceFileStatus: 'failed',
        invalid: previous?.invalid ?? [],
        error: fetched.error,
      });
      this.onChange();
      const kept = this.state.feeds.counts(name);
      return { name, ok: false, httpStatus: fetched.httpStatus, valid: kept.valid, invalid: kept.invalid, error: fetched.error };
    }
    const valid: string[] = [];
    const invalid: string[] = [];
    for (const raw of fetched.text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      (parseFeedEntry(line) ? valid : invalid).push(line);
    }
    const before = this.state.feeds.list(name).map((e) => e.text).join('\n');
    this.state.feeds.replace(name, valid);
    const after = this.state.feeds.list(name).map((e) => e.text).join('\n');
    const changed = before !== after || (previous?.invalid ?? []).join('\n') !== invalid.join('\n');
    this.state.feeds.setPullStatus(name, {
      connAttemptTime: seconds,
      lastContentUpdateTime: changed || !previous ? seconds : previous.lastContentUpdateTime,
      httpStatusCode: fetched.httpStatus,
      resourceFileStatus: 'downloaded',
      invalid,
    });
    this.onChange();
    return { name, ok: true, httpStatus: fetched.httpStatus, valid: valid.length, invalid: invalid.length };
  }

  private async fetch(
    resource: string,
    feed: { username: string; password: string; userAgent: string; serverIdentityCheck: string },
  ): Promise<{ ok: true; httpStatus: number; text: string } | { ok: false; httpStatus: number; error: string }> {
    const headers: Record<string, string> = {};
    if (feed.username !== '') {
      headers.authorization = `Basic ${Buffer.from(`${feed.username}:${feed.password}`).toString('base64')}`;
    }
    if (feed.userAgent !== '') headers['user-agent'] = feed.userAgent;
    const timeout = this.config.feedFetchTimeoutMs;
    try {
      const res = await request(resource, {
        method: 'GET',
        headers,
        dispatcher: feed.serverIdentityCheck === 'none' ? this.trusting : this.verifying,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      if (res.statusCode < 200 || res.statusCode >= 300) {
        await res.body.dump();
        return { ok: false, httpStatus: res.statusCode, error: `HTTP ${res.statusCode}` };
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.config.feedMaxBytes) {
          res.body.destroy();
          return { ok: false, httpStatus: res.statusCode, error: `file larger than ${this.config.feedMaxBytes} bytes` };
        }
        chunks.push(chunk);
      }
      return { ok: true, httpStatus: res.statusCode, text: Buffer.concat(chunks).toString('utf8') };
    } catch (err) {
      // Only the error code: undici messages may quote the URL, which can carry credentials.
      const code = (err as { code?: unknown; name?: unknown }).code ?? (err as { name?: unknown }).name;
      return { ok: false, httpStatus: 0, error: `download failed: ${typeof code === 'string' ? code : 'error'}` };
    }
  }
}
