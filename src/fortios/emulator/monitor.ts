/**
 * Monitor endpoints (reference §3.5, §7.1): system status and the banned-IP list. Routes are matched on
 * the path after /api/v2/monitor; replies use the monitor envelope (no http_status).
 */
import type ipaddr from 'ipaddr.js';
import { FortiErrorCode } from '../error-codes';
import { parseAddress } from '../subnet';
import { Failure } from './replies';
import { Row, renderBanned } from './render';
import { BannedList } from './state';

export interface MonitorRequest {
  method: string;
  /** Decoded segments after "monitor", e.g. ["user", "banned", "add_users"]. */
  segments: string[];
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
const DONE: MonitorResult = { results: {}, write: true };
/** Invalid parameters: 500 with error -8 (the exact monitor error shape is UNCERTAIN). */
const INVALID: MonitorResult = { failure: { status: 500, error: FortiErrorCode.InvalidIp }, write: false };

const STATUS: Row = {
  model_name: 'FortiGate',
  model_number: 'VM64',
  model: 'FGVM64',
  hostname: 'FGVM-EMULATOR',
  log_disk_status: 'available',
};

export class Monitor {
  constructor(private readonly banned: BannedList) {}

  handle(req: MonitorRequest): MonitorResult {
    switch (`${req.method} ${req.segments.join('/')}`) {
      case 'GET system/status':
        return { results: STATUS, write: false };
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
function bannedIp(item: unknown): BannedIp | undefined {
  if (typeof item !== 'string') return undefined;
  const v4 = parseAddress('ipv4', item);
  if (v4) return { text: v4.toString(), ipv6: false };
  const v6 = parseAddress('ipv6', item) as ipaddr.IPv6 | undefined;
  return v6 && { text: v6.parts.map((p) => p.toString(16).padStart(4, '0')).join(':'), ipv6: true };
}
