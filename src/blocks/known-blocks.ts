/**
 * The blocks this API process saw running lately (by workflow id, until their expiry), so that repeat events —
 * most of what an ADS sends during an attack — send no early add (workflows/early-adds.ts): only an IP not
 * known here gets one. A miss (another replica took the first event, a restart) costs an idempotent add and a
 * later check on the enforcer, nothing else. Bounded: the entry used longest ago goes first.
 */
export class KnownBlocks {
  private readonly until = new Map<string, number>();

  constructor(private readonly max = 50_000) {}

  has(workflowId: string, nowMs: number): boolean {
    const u = this.until.get(workflowId);
    if (u === undefined) return false;
    if (u > nowMs) return true;
    this.until.delete(workflowId);
    return false;
  }

  remember(workflowId: string, untilMs: number): void {
    this.until.delete(workflowId);
    this.until.set(workflowId, untilMs);
    if (this.until.size > this.max) this.until.delete(this.until.keys().next().value!);
  }

  forget(workflowId: string): void {
    this.until.delete(workflowId);
  }
}
