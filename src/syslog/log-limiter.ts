/**
 * Rate-limited logging for what a sender controls: a flood of garbage must not turn into a flood of log
 * lines. Per kind of complaint, the first few lines of each window are written; the rest are counted and
 * reported in one line with the first complaint of a later window (the metrics count every one).
 */
import type { Logger } from '../logger';

export class LogLimiter {
  private readonly windows = new Map<string, { start: number; written: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly perWindow = 5,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    let w = this.windows.get(kind);
    if (!w || t - w.start >= this.windowMs) {
      if (w && w.suppressed > 0) this.logger.warn({ kind, suppressed: w.suppressed, windowMs: this.windowMs }, `${kind}: ${w.suppressed} more not logged`);
      if (this.windows.size > 100) this.windows.clear(); // kinds are a handful of constants; this is a fuse
      w = { start: t, written: 0, suppressed: 0 };
      this.windows.set(kind, w);
    }
    if (w.written < this.perWindow) {
      w.written++;
      this.logger.warn({ kind, ...fields }, message);
    } else {
      w.suppressed++;
    }
  }
}
