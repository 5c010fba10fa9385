/**
 * BASELINE: the seed's fgt-mitigation scripts (Flowmon's FortiGate integration, reference/flowmon-ads.md
 * §6.1), redone small in Node against the same emulator, as the yardstick for OURS. Not for production.
 *
 *   mitigate(id, ip) = one run of ag-mitigation.py for one event line (ADS spawns one process per event, so
 *     concurrent calls = concurrent events): INSERT the IP into the SQLite table; on a primary-key conflict
 *     refresh the TTL and stop; else POST the address `Event ID <id>` ("<ip> 255.255.255.255"), GET the
 *     group, append the member, PUT the whole member list.
 *   sweep() = one run of ag-timeout.py (cron, hourly in the seed; a `setInterval` of `sweepPeriodMs`
 *     here): every row's ttl -= period, rows at or below one period are deleted; PUT the group rebuilt from
 *     the table (`none` when empty); DELETE the expired addresses one by one.
 *
 * Defects of the seed reproduced ON PURPOSE (they are what the product is measured against):
 *   - GET-modify-PUT of the whole group with no locking: concurrent runs overwrite each other's appends
 *     (lost updates), and a run can PUT a member that a sweep has just deleted (the PUT then fails);
 *   - the row is written before the firewall calls and failures are only logged: a failed POST/PUT is
 *     never retried, the IP stays unblocked until a sweep happens to rebuild the group from the table;
 *   - expiry only at sweep granularity (a block ends up to one period early, and the sweep rewrites the
 *     whole group, dropping members other tools or an operator added);
 *   - two writes per new IP (POST + PUT) and a full member list in every PUT; no capacity handling (the
 *     PUT fails once the group is full: later IPs are simply not blocked).
 * Not reproduced: the swapped parameters of update_ip (the seed's TTL refresh never works; here it does),
 * the IPv6 crash, form-encoded bodies (we send JSON through the product's FortiOSClient), and the file
 * behind the SQLite table (sql.js keeps it in memory: no fsync per event, which flatters the baseline).
 */
import initSqlJs from 'sql.js';
import type { Database } from 'sql.js';
import { FortiOSClient } from '../../src/fortios/client';

export interface SeedOptions {
  firewall: FortiOSClient;
  group: string;
  /** TTL given to a new or refreshed row (the seed's TTL = 360 min). */
  ttlMs: number;
  /** Period of the timeout script; also its `decrease` (the seed: cron hourly, decrease = 60 min). */
  sweepPeriodMs: number;
  /** Called when a run or a sweep logs an error (the seed prints it and carries on). */
  onError?: (what: string, err: unknown) => void;
}

export type RunOutcome = 'blocked' | 'refreshed' | 'failed';

const PLACEHOLDER = 'none';
export const seedMemberName = (eventId: string | number): string => `Event ID ${eventId}`;

export class SeedMitigation {
  private timer?: NodeJS.Timeout;
  /** Counts of what the runs and sweeps did. */
  readonly stats = { runs: 0, blocked: 0, refreshed: 0, failed: 0, sweeps: 0, sweepErrors: 0, expired: 0 };

  private constructor(
    private readonly db: Database,
    private readonly o: SeedOptions,
  ) {}

  static async open(o: SeedOptions): Promise<SeedMitigation> {
    const SQL = await initSqlJs();
    const db = new SQL.Database();
    db.run('CREATE TABLE IF NOT EXISTS data (ip integer PRIMARY KEY, event integer NOT NULL, ttl integer NOT NULL)');
    return new SeedMitigation(db, o);
  }

  /** ag-mitigation.py for one event. */
  async mitigate(eventId: string, ip: string): Promise<RunOutcome> {
    this.stats.runs++;
    try {
      this.db.run('INSERT INTO data(ip, event, ttl) VALUES (?, ?, ?)', [ipToInt(ip), Number(eventId), this.o.ttlMs]);
    } catch {
      // sqlite3.IntegrityError: the IP is already in the table -> update_ip, and nothing else.
      this.db.run('UPDATE data SET ttl = ? WHERE ip = ?', [this.o.ttlMs, ipToInt(ip)]);
      this.stats.refreshed++;
      return 'refreshed';
    }
    const name = seedMemberName(eventId);
    let ok = true;
    try {
      await this.o.firewall.createAddress('ipv4', { name, subnet: `${ip} 255.255.255.255` });
    } catch (err) {
      ok = false; // logged only; the script goes on to the group update
      this.o.onError?.('POST address', err);
    }
    try {
      const group = await this.o.firewall.getGroup('ipv4', this.o.group);
      const members = [...(group?.members ?? []), name];
      await this.o.firewall.setGroupMembers('ipv4', this.o.group, members);
    } catch (err) {
      ok = false;
      this.o.onError?.('GET/PUT group', err);
    }
    this.stats[ok ? 'blocked' : 'failed']++;
    return ok ? 'blocked' : 'failed';
  }

  /** ag-timeout.py: one sweep. */
  async sweep(): Promise<void> {
    this.stats.sweeps++;
    const decrease = this.o.sweepPeriodMs;
    const expired: number[] = [];
    const rows = this.db.exec('SELECT ip, event, ttl FROM data')[0]?.values ?? [];
    for (const [ip, event, ttl] of rows as number[][]) {
      if (ttl! > decrease) this.db.run('UPDATE data SET ttl = ? WHERE ip = ?', [ttl! - decrease, ip!]);
      else {
        this.db.run('DELETE FROM data WHERE ip = ?', [ip!]);
        expired.push(event!);
      }
    }
    const remaining = (this.db.exec('SELECT event FROM data')[0]?.values ?? []).map(([e]) => seedMemberName(Number(e)));
    try {
      await this.o.firewall.setGroupMembers('ipv4', this.o.group, remaining.length > 0 ? remaining : [PLACEHOLDER]);
    } catch (err) {
      this.stats.sweepErrors++;
      this.o.onError?.('sweep PUT group', err);
    }
    for (const event of expired) {
      try {
        await this.o.firewall.deleteAddress('ipv4', seedMemberName(event));
      } catch (err) {
        this.stats.sweepErrors++;
        this.o.onError?.('sweep DELETE address', err);
      }
    }
    this.stats.expired += expired.length;
  }

  /** Starts the "cron": a sweep every period; overlapping runs are allowed, as cron allows them. */
  startSweeps(): void {
    this.timer ??= setInterval(() => void this.sweep(), this.o.sweepPeriodMs);
  }

  /** Rows in the table (what the seed believes is blocked). */
  rows(): { ip: number; event: number; ttl: number }[] {
    return (this.db.exec('SELECT ip, event, ttl FROM data')[0]?.values ?? []).map(([ip, event, ttl]) => ({ ip: Number(ip), event: Number(event), ttl: Number(ttl) }));
  }

  close(): void {
    clearInterval(this.timer);
    this.db.close();
  }
}

/** int(ipaddress.IPv4Address(ip)), as the seed stores the key. */
export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}
