/**
 * Notices a firewall target that keeps failing: it observes every firewall call the worker makes (the
 * activities' onFirewallCall hook) and reports `firewall-failing` once a target has had no successful call
 * for NOTIFY_FIREWALL_FAILING_AFTER since its first failure, then `firewall-recovered` at its next success.
 * A target that fails briefly (a retry fixes it) is never reported.
 */
import type { NotifyInput } from './events';

interface TargetState {
  firstFailureMs?: number;
  failures: number;
  lastError?: string;
  reported?: string; // the id of the firewall-failing notification, once sent
}

export interface FirewallWatchOptions {
  afterMs: number;
  report(n: NotifyInput): Promise<unknown>;
  /** Errors of `report` (Temporal unreachable...): logged by the caller; the watch tries again at the next check. */
  onReportError?(err: unknown): void;
  now?: () => number;
  /** How often a failing target is re-evaluated without a call to observe. Default: afterMs / 4, 1 s..15 s. */
  checkEveryMs?: number;
}

export class FirewallFailureWatch {
  private readonly targets = new Map<string, TargetState>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly o: FirewallWatchOptions) {
    this.now = o.now ?? Date.now;
    this.timer = setInterval(() => this.check(), o.checkEveryMs ?? Math.min(15_000, Math.max(1_000, o.afterMs / 4)));
    this.timer.unref();
  }

  /** Same signature as the activities' onFirewallCall: (target, op, ms, error?). */
  readonly observe = (target: string, _op: string, _ms: number, error?: { kind?: string; message?: string }): void => {
    const s = this.targets.get(target) ?? { failures: 0 };
    this.targets.set(target, s);
    if (!error) {
      if (s.reported) void this.emit({ kind: 'firewall-recovered', target, summary: `firewall ${target} answers again after ${s.failures} failed calls`, details: { failingSinceMs: s.firstFailureMs, failingFor: this.now() - (s.firstFailureMs ?? this.now()) } });
      this.targets.set(target, { failures: 0 });
      return;
    }
    s.firstFailureMs ??= this.now();
    s.failures++;
    s.lastError = `${error.kind ?? 'error'}: ${error.message ?? ''}`.slice(0, 300);
    this.checkOne(target, s);
  };

  check(): void {
    for (const [target, s] of this.targets) this.checkOne(target, s);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private checkOne(target: string, s: TargetState): void {
    if (s.firstFailureMs === undefined || s.reported || this.now() - s.firstFailureMs < this.o.afterMs) return;
    s.reported = `firewall-failing:${target}:${s.firstFailureMs}`;
    const since = new Date(s.firstFailureMs).toISOString();
    void this.emit(
      {
        id: s.reported,
        kind: 'firewall-failing',
        target,
        summary: `firewall ${target} has been failing since ${since} (${s.failures} failed calls): ${s.lastError}`,
        details: { since, failures: s.failures, lastError: s.lastError },
      },
      () => (s.reported = undefined), // not handed over: try again at the next check
    );
  }

  private async emit(n: NotifyInput, onFailure?: () => void): Promise<void> {
    try {
      await this.o.report(n);
    } catch (err) {
      onFailure?.();
      this.o.onReportError?.(err);
    }
  }
}
