/**
 * Is Temporal there? Asked before anything is started, with a short deadline: without one, a call to an
 * unreachable frontend is retried by the SDK for ~20 s before it fails, and the caller should hear
 * "503, retry later" quickly instead.
 */
import type { Client } from '@temporalio/client';
import { TemporalUnavailableError } from './errors';

export class TemporalGate {
  private okUntil = 0;

  constructor(
    private readonly client: Client,
    private readonly timeoutMs: number,
    private readonly cacheMs: number,
  ) {}

  /** Uncached probe: the namespace must answer within the deadline. Throws TemporalUnavailableError. */
  async probe(): Promise<void> {
    const namespace = this.client.options.namespace;
    try {
      await this.client.withDeadline(Date.now() + this.timeoutMs, () => this.client.workflowService.describeNamespace({ namespace }));
      this.okUntil = Date.now() + this.cacheMs;
    } catch (err) {
      this.okUntil = 0;
      throw new TemporalUnavailableError(err);
    }
  }

  /** Probe unless one succeeded moments ago. */
  async ensure(): Promise<void> {
    if (Date.now() < this.okUntil) return;
    await this.probe();
  }
}
