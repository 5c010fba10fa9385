/**
 * `covers(ip)` for hot paths (webhook, syslog intake, the worker's last check before a block): the runtime
 * allowlist read from its workflow's query and kept in process for a short while, so that a burst of events
 * costs one query, not one per event. A refresh that fails keeps the last list it had (and says so through
 * `onError`); with no list yet, the error propagates.
 */
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { firstOverlap } from '../policy/ip-policy';
import { AllowEntry, allowlistQuery, ALLOWLIST_WORKFLOW_ID } from '../../workflows/allowlist';

export interface AllowlistCacheOptions {
  workflowId?: string;
  /** How long a read list is trusted. Default 2 s. */
  maxAgeMs?: number;
  onError?(err: unknown): void;
}

export class AllowlistCache {
  private list?: { entries: AllowEntry[]; readAtMs: number };
  private inFlight?: Promise<AllowEntry[]>;
  private readonly workflowId: string;
  private readonly maxAgeMs: number;

  constructor(
    private readonly client: Client,
    private readonly o: AllowlistCacheOptions = {},
  ) {
    this.workflowId = o.workflowId ?? ALLOWLIST_WORKFLOW_ID;
    this.maxAgeMs = o.maxAgeMs ?? 2_000;
  }

  /** The entry that covers (overlaps) `ip`, an address or CIDR block; undefined when none does. */
  async covers(ip: string): Promise<AllowEntry | undefined> {
    return coveringEntry(ip, await this.entries());
  }

  /**
   * The entries in force now (expired ones filtered out here too, in case the list is a moment old). A list
   * past half its age is refreshed in the background while it still answers: under steady traffic no check
   * waits for the query (at 20 blocks/s, one in twenty did — a tail of the event→enforced latency).
   */
  async entries(): Promise<AllowEntry[]> {
    const age = this.list ? Date.now() - this.list.readAtMs : Infinity;
    if (age >= this.maxAgeMs / 2 && age < this.maxAgeMs) void this.refresh();
    const entries = age < this.maxAgeMs ? this.list!.entries : await this.refresh();
    const now = Date.now();
    return entries.filter((e) => !e.expiresAt || Date.parse(e.expiresAt) > now);
  }

  /** Forget the list: the next read asks the workflow (after this process changed it). */
  invalidate(): void {
    this.list = undefined;
  }

  private refresh(): Promise<AllowEntry[]> {
    this.inFlight ??= this.read().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async read(): Promise<AllowEntry[]> {
    try {
      const entries = await this.client.workflow.getHandle(this.workflowId).query(allowlistQuery);
      this.list = { entries, readAtMs: Date.now() };
      return entries;
    } catch (err) {
      if (isNotRunning(err)) {
        this.list = { entries: [], readAtMs: Date.now() }; // never written to: empty
        return [];
      }
      if (!this.list) throw err;
      this.o.onError?.(err);
      return this.list.entries;
    }
  }
}

/** Pure: the first entry that overlaps `ip`. */
export function coveringEntry(ip: string, entries: readonly AllowEntry[]): AllowEntry | undefined {
  const hit = firstOverlap(ip, entries.map((e) => e.cidr));
  return hit === undefined ? undefined : entries.find((e) => e.cidr === hit);
}

/** One line naming an entry, for replies and logs. */
export function describeEntry(e: AllowEntry): string {
  return `runtime allowlist entry ${e.cidr} (${e.reason}; by ${e.actor}; ${e.expiresAt ? `until ${e.expiresAt}` : 'until removed'})`;
}

/** The allowlist workflow was never started (nothing was ever allowlisted) or is gone. */
export function isNotRunning(err: unknown): boolean {
  return err instanceof WorkflowNotFoundError || /not found|already completed/i.test((err as Error)?.message ?? '');
}
