/**
 * Monitor endpoints (reference §3.5, §7.1, §7.2): system status, the banned-IP list, and the threat-feed
 * push API and entry list. Routes are matched on the path after /api/v2/monitor; replies use the monitor
 * envelope (no http_status).
 */
import type ipaddr from 'ipaddr.js';
import { FortiErrorCode } from '../error-codes';
import { FeedEntryRange, entryContains, parseFeedEntry, parseIp } from '../feed-entry';
import { parseAddress } from '../subnet';
import { EmulatorConfig } from './options';
import { Failure } from './replies';
import { Row, renderBanned, renderEntryList } from './render';
import { EmulatorState } from './state';

export interface MonitorRequest {
  method: string;
  /** Decoded segments after "monitor", e.g. ["user", "banned", "add_users"]. */
  segments: string[];
  query: URLSearchParams;
  body: Row;
}

export interface MonitorResult {
  results?: unknown;
  failure?: Failure;
  /** Whether the request changed state (banned list). */
  write: boolean;
  /** The envelope's `action` when it differs from the URL's third segment. */
  action?: string;
}

const NOT_FOUND: MonitorResult = { failure: { status: 404 }, write: false };
/** A named object (feed) that does not exist: 404 with -3 (UNCERTAIN for monitor routes). */
const NO_SUCH_OBJECT: MonitorResult = { failure: { status: 404, error: FortiErrorCode.NotFound }, write: false };
const DONE: MonitorResult = { results: {}, write: true };
/** Invalid parameters: 500 with error -8 (the exact monitor error shape is UNCERTAIN). */
const INVALID: MonitorResult = { failure: { status: 500, error: FortiErrorCode.InvalidIp }, write: false };
/** A malformed request or one the object does not support: 500 with -651 (UNCERTAIN). */
const INVALID_VALUE: MonitorResult = { failure: { status: 500, error: FortiErrorCode.InvalidValue }, write: false };
const MISSING_PARAMETER: MonitorResult = { failure: { status: 400 }, write: false };

const PUSH_COMMANDS = ['add', 'remove', 'snapshot'] as const;
type PushCommand = (typeof PUSH_COMMANDS)[number];

const STATUS: Row = {
  model_name: 'FortiGate',
  model_number: 'VM64',
  model: 'FGVM64',
  hostname: 'FGVM-EMULATOR',
  log_disk_status: 'available',
};

export class Monitor {
  constructor(
    private readonly config: EmulatorConfig,
    private readonly state: EmulatorState,
  ) {}

  private get banned() {
    return this.state.banned;
  }

  handle(req: MonitorRequest): MonitorResult {
    switch (`${req.method} ${req.segments.join('/')}`) {
      case 'GET system/status':
        return { results: STATUS, write: false };
      case 'POST system/external-resource/dynamic':
        // The push API exists from 7.2.1 on: before, the route is unknown.
        return this.config.pushFeeds ? this.pushFeed(req.body) : NOT_FOUND;
      case 'GET system/external-resource/entry-list':
        return this.entryList(req.query);
      case 'GET user/banned/check':
        return this.checkBanned(req.query);
      // 7.x serves the list at user/banned, older builds at user/banned/select; both answer as "select".
      case 'GET user/banned':
      case 'GET user/banned/select':
        return { action: 'select', results: this.banned.list().map(renderBanned), write: false };
      case 'POST user/banned/add_users':
        return this.addUsers(req.body);
      case 'POST user/banned/clear_users':
        return this.clearUsers(req.body);
      case 'POST user/banned/clear_all':
        this.banned.clear();
        return DONE;
      default:
        return NOT_FOUND;
    }
  }

  /** `expiry` seconds, 0 or absent = until cleared; re-adding an IP restarts its entry. */
  private addUsers(body: Row): MonitorResult {
    const ips = bannedIps(body.ip_addresses);
    const expiry = body.expiry ?? 0;
    if (!ips || typeof expiry !== 'number' || !Number.isInteger(expiry) || expiry < 0) return INVALID;
    for (const ip of ips) this.banned.add(ip.text, ip.ipv6, expiry);
    return DONE;
  }

  /**
   * `check?ip_address=`: whether the IP is banned now. The reply shape is UNCERTAIN (no capture):
   * `{ ip_address, is_banned, created?, expires? }`.
   */
  private checkBanned(query: URLSearchParams): MonitorResult {
    const ip = bannedIp(query.get('ip_address'));
    if (!ip) return INVALID;
    const entry = this.banned.get(ip.text);
    const results = { ip_address: ip.text, is_banned: entry !== undefined, ...(entry ? renderBanned(entry) : {}) };
    return { results, write: false };
  }

  /**
   * The push API (7.2.1 new-features 144954): `{"commands":[{"name","command":"add|remove|snapshot",
   * "entries":[...]}]}`, applied in order. FortiOS validates the request, so the emulator refuses it as a
   * whole, changing nothing, when any command is bad (emulator choice): unknown feed 404/-3; a feed that is
   * not a push feed of type address, an unknown command or a missing entries list 500/-651; any entry that is
   * no IPv4/IPv6 address, range or subnet 500/-8. Entries over the limit are accepted and listed, but cut
   * (feeds.ts). The success reply's `results` is `{}` (UNCERTAIN).
   */
  private pushFeed(body: Row): MonitorResult {
    const commands = body.commands;
    if (!Array.isArray(commands) || commands.length === 0) return INVALID_VALUE;
    const plan: { name: string; command: PushCommand; entries: string[] }[] = [];
    for (const raw of commands as unknown[]) {
      const c = (typeof raw === 'object' && raw !== null ? raw : {}) as Row;
      const feed = typeof c.name === 'string' ? this.state.feeds.resources.get(c.name) : undefined;
      if (!feed) return NO_SUCH_OBJECT;
      if (feed.updateMethod !== 'push' || feed.type !== 'address') return INVALID_VALUE;
      if (!PUSH_COMMANDS.includes(c.command as PushCommand)) return INVALID_VALUE;
      const entries = c.entries ?? (c.command === 'snapshot' ? [] : undefined);
      if (!Array.isArray(entries)) return INVALID_VALUE;
      if (!entries.every((e): e is string => typeof e === 'string' && parseFeedEntry(e) !== undefined)) return INVALID;
      plan.push({ name: feed.name, command: c.command as PushCommand, entries });
    }
    const feeds = this.state.feeds;
    for (const step of plan) {
      if (step.command === 'add') feeds.add(step.name, step.entries);
      else if (step.command === 'remove') feeds.remove(step.name, step.entries);
      else feeds.replace(step.name, step.entries);
    }
    return DONE;
  }

  /**
   * `entry-list?mkey=<feed>` with `status_only`, `counts_only`, `include_notes`, `entry` (Ansible schema).
   * No paging parameters are documented: the whole list comes back (`start`/`count` are ignored; the GUI's
   * `count=0` means "all"). `entry=<ip or entry>` narrows the list to entries equal to or containing it
   * (UNCERTAIN semantics).
   */
  private entryList(query: URLSearchParams): MonitorResult {
    const name = query.get('mkey');
    if (!name) return MISSING_PARAMETER;
    const feed = this.state.feeds.resources.get(name);
    if (!feed) return NO_SUCH_OBJECT;
    const flag = (k: string) => ['1', 'true'].includes((query.get(k) ?? '').toLowerCase());
    const feeds = this.state.feeds;
    const pull = feeds.pullStatus(name);
    let entries = feeds.list(name);
    let invalid = pull?.invalid ?? [];
    const wanted = query.get('entry');
    if (wanted !== null) {
      const matches = entryMatcher(wanted);
      if (!matches) return INVALID;
      entries = entries.filter((e) => matches(e.range));
      invalid = [];
    }
    const results = renderEntryList({
      entries,
      invalid,
      counts: feeds.counts(name),
      overflow: feeds.overflowing(name),
      ...(pull ? { pull } : {}),
      push: feed.updateMethod === 'push',
      statusOnly: flag('status_only'),
      countsOnly: flag('counts_only'),
      includeNotes: flag('include_notes'),
    });
    return { results, write: false };
  }

  private clearUsers(body: Row): MonitorResult {
    const ips = bannedIps(body.ip_addresses);
    if (!ips) return INVALID;
    for (const ip of ips) this.banned.remove(ip.text);
    return DONE;
  }
}

function bannedIps(value: unknown): BannedIp[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const ips = value.map(bannedIp);
  return ips.every((ip): ip is BannedIp => ip !== undefined) ? ips : undefined;
}

interface BannedIp {
  text: string;
  ipv6: boolean;
}

/** Canonical key of an entry: dotted IPv4, or IPv6 zero-padded in full as capture H shows it. */
export function bannedIp(item: unknown): BannedIp | undefined {
  if (typeof item !== 'string') return undefined;
  const v4 = parseAddress('ipv4', item);
  if (v4) return { text: v4.toString(), ipv6: false };
  const v6 = parseAddress('ipv6', item) as ipaddr.IPv6 | undefined;
  return v6 && { text: v6.parts.map((p) => p.toString(16).padStart(4, '0')).join(':'), ipv6: true };
}

/** Entries equal to the given entry, or containing the given address. */
function entryMatcher(text: string): ((r: FeedEntryRange) => boolean) | undefined {
  const ip = parseIp(text);
  if (ip) return (r) => r.key === ip.text || entryContains(r, ip);
  const entry = parseFeedEntry(text);
  return entry && ((r) => r.key === entry.key);
}
