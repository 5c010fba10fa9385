/**
 * The runtime allowlist's operations for the API and the CLI: add (and lift the blocks the entry covers),
 * remove, list. The entries live in the `allowlist` entity workflow (workflows/allowlist.ts); this is the
 * client side, plus the in-process cache every hot path reads through (`covers`).
 */
import { Client, WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import type { BlockService } from '../blocks/service';
import { canonicalIp } from '../policy/ip-policy';
import { inPool } from '../pool';
import {
  AddAllowRequest,
  addAllowProblem,
  addAllowUpdate,
  AllowEntry,
  allowlistQuery,
  allowlistWorkflow,
  ALLOWLIST_WORKFLOW_ID,
  removeAllowUpdate,
} from '../../workflows/allowlist';
import { AllowlistCache, isNotRunning } from './cache';

export type AllowlistErrorCode = 'invalid' | 'refused';

/** A request the allowlist cannot take: `invalid` (bad input, nothing asked), `refused` (the workflow said no: full…). */
export class AllowlistError extends Error {
  constructor(
    public readonly code: AllowlistErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface AddRequest extends AddAllowRequest {
  /** Lift the running blocks the entry covers (default); false only prevents new ones. */
  liftExisting?: boolean;
}

export interface LiftedBlock {
  ip: string;
  target: string;
  /** False when the block had ended meanwhile. */
  found: boolean;
}

export interface AddResult {
  entry: AllowEntry;
  replaced: boolean;
  lifted: LiftedBlock[];
}

/** Blocks one add lifts at most (one page of visibility); more are left to expire and reported. */
const MAX_LIFT = 1000;
const LIFTS_IN_FLIGHT = 8;

export class AllowlistService {
  readonly cache: AllowlistCache;
  private readonly workflowId: string;

  constructor(
    private readonly client: Client,
    private readonly o: { taskQueue: string; blocks?: BlockService; workflowId?: string; cacheMs?: number; onCacheError?(err: unknown): void },
  ) {
    this.workflowId = o.workflowId ?? ALLOWLIST_WORKFLOW_ID;
    this.cache = new AllowlistCache(client, { workflowId: this.workflowId, maxAgeMs: o.cacheMs, onError: o.onCacheError });
  }

  /** Hot path: the entry covering `ip`, from the short-lived cache. */
  covers(ip: string): Promise<AllowEntry | undefined> {
    return this.cache.covers(ip);
  }

  async add(req: AddRequest): Promise<AddResult> {
    const { liftExisting = true, ...request } = req;
    const problem = addAllowProblem(request, Date.now());
    if (problem) throw new AllowlistError('invalid', problem);
    const start = new WithStartWorkflowOperation<typeof allowlistWorkflow>('allowlistWorkflow', {
      workflowId: this.workflowId,
      taskQueue: this.o.taskQueue,
      args: [{}],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    let result: { entry: AllowEntry; replaced: boolean };
    try {
      result = await this.client.workflow.executeUpdateWithStart(addAllowUpdate, { args: [request], startWorkflowOperation: start });
    } catch (err) {
      throw refusal(err);
    }
    this.cache.invalidate();
    const lifted = liftExisting ? await this.lift(result.entry) : [];
    return { ...result, lifted };
  }

  /** Idempotent: removing an entry that is not there answers null. */
  async remove(cidr: string, actor: string): Promise<AllowEntry | null> {
    if (!canonicalIp(cidr)) throw new AllowlistError('invalid', `"${cidr}" is not an IP address or CIDR block`);
    try {
      const removed = await this.client.workflow.getHandle(this.workflowId).executeUpdate(removeAllowUpdate, { args: [{ cidr, actor }] });
      this.cache.invalidate();
      return removed;
    } catch (err) {
      if (isNotRunning(err)) return null;
      throw refusal(err);
    }
  }

  /** The entries in force, read from the workflow now (not from the cache). */
  async list(): Promise<AllowEntry[]> {
    try {
      return await this.client.workflow.getHandle(this.workflowId).query(allowlistQuery);
    } catch (err) {
      if (isNotRunning(err)) return [];
      throw err;
    }
  }

  /**
   * Cancels the running blocks inside the entry (BlockService.list by CIDR, then BlockService.cancel each).
   * Visibility lags by a moment: a block started in the same second may be missed here, which is why the
   * worker checks the allowlist once more before it applies a block.
   */
  private async lift(entry: AllowEntry): Promise<LiftedBlock[]> {
    const blocks = this.o.blocks;
    if (!blocks) return [];
    const found: { ip: string; target: string }[] = [];
    let pageToken: string | undefined;
    do {
      const page = await blocks.list({ ip: entry.cidr, pageSize: MAX_LIFT, pageToken });
      found.push(...page.blocks.map((b) => ({ ip: b.ip, target: b.target })));
      pageToken = page.nextPageToken;
    } while (pageToken && found.length < MAX_LIFT);
    const lifted: LiftedBlock[] = [];
    const reason = `allowlisted: ${entry.reason}`.slice(0, 500);
    await inPool(found.slice(0, MAX_LIFT), LIFTS_IN_FLIGHT, async (b) => {
      const results = await blocks.cancel(b.ip, b.target, { reason, actor: entry.actor });
      lifted.push({ ...b, found: results.some((r) => r.found) });
    });
    return lifted;
  }
}

function refusal(err: unknown): Error {
  if (err instanceof WorkflowUpdateFailedError) return new AllowlistError('refused', (err.cause as Error | undefined)?.message ?? err.message);
  return err as Error;
}
