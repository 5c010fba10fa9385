/**
 * REST API admin authentication as FortiOS does it (reference §1): a Bearer token, a trusted-hosts check on
 * the source address, and a per-source-IP lock-out after repeated failures (admin-lockout-threshold and
 * -duration). A failure from an untrusted source counts like a wrong token: both are 401 on the wire.
 */
import ipaddr from 'ipaddr.js';
import { inRanges } from '../subnet';
import { EmulatorConfig } from './options';

export type Role = 'read-write' | 'read-only';
export type AuthResult = { ok: true; role: Role } | { ok: false; reason: 'unauthorized' | 'locked-out' };

interface SourceRecord {
  failures: number;
  lockedUntil: number;
}

export class AuthGuard {
  private readonly roles: ReadonlyMap<string, Role>;
  private readonly sources = new Map<string, SourceRecord>();

  constructor(private readonly config: EmulatorConfig) {
    this.roles = new Map<string, Role>([
      ...config.readOnlyTokens.map((t): [string, Role] => [t, 'read-only']),
      [config.token, 'read-write'],
    ]);
  }

  /** `queryToken` is `?access_token=`, honoured only when restApiKeyUrlQuery is on (off since 7.4.5). */
  check(source: string, authorization: string | undefined, queryToken: string | null): AuthResult {
    const now = this.config.now();
    const record = this.sources.get(source);
    if (record && record.lockedUntil > now) return { ok: false, reason: 'locked-out' };
    const token = bearerToken(authorization) ?? (this.config.restApiKeyUrlQuery ? queryToken : null);
    const role = token === null ? undefined : this.roles.get(token);
    if (role && isTrusted(source, this.config)) {
      this.sources.delete(source);
      return { ok: true, role };
    }
    this.recordFailure(source, record, now);
    return { ok: false, reason: 'unauthorized' };
  }

  /** Trusted sources may also use the admin routes, which carry no token. */
  isTrustedSource(source: string): boolean {
    return isTrusted(source, this.config);
  }

  reset(): void {
    this.sources.clear();
  }

  private recordFailure(source: string, record: SourceRecord | undefined, now: number): void {
    // An expired lock-out starts a fresh count.
    const failures = (record && record.lockedUntil === 0 ? record.failures : 0) + 1;
    const locked = failures >= this.config.lockoutThreshold;
    this.sources.set(source, {
      failures: locked ? 0 : failures,
      lockedUntil: locked ? now + this.config.lockoutDurationMs : 0,
    });
  }
}

function bearerToken(header: string | undefined): string | null {
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

function isTrusted(source: string, config: EmulatorConfig): boolean {
  if (!ipaddr.isValid(source)) return false;
  // ipaddr.process() turns "::ffff:127.0.0.1" (dual-stack sockets) back into IPv4.
  return inRanges(ipaddr.process(source), config.trustedHosts);
}
