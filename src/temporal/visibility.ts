/**
 * The visibility queries the worker relies on, in one place: which block workflows are running for a target
 * and set, in which state. Visibility is eventually consistent, so callers use it to find candidates and
 * confirm each with a strongly consistent describe or query before acting (see activities/reconcile.ts).
 */
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { BLOCK_TYPES_CLAUSE, BlockState, blockWorkflowId, SA, statusQuery, WORKFLOW_TYPES } from '../../workflows/messages';

export interface BlockRow {
  workflowId: string;
  ip: string;
  state?: BlockState;
  set?: string;
  type: string;
  startedAt?: Date;
  expiresAt?: Date;
}

export function runningBlocksQuery(f: { target: string; set?: string; states?: BlockState[]; currentOnly?: boolean }): string {
  const clauses = [f.currentOnly ? `WorkflowType = "${WORKFLOW_TYPES.block}"` : BLOCK_TYPES_CLAUSE, 'ExecutionStatus = "Running"', `FirewallTarget = ${JSON.stringify(f.target)}`];
  if (f.set) clauses.push(`AddressGroup = ${JSON.stringify(f.set)}`);
  if (f.states?.length) clauses.push(`BlockState IN (${f.states.map((s) => JSON.stringify(s)).join(', ')})`);
  return clauses.join(' AND ');
}

/** Streams the running blocks matching the filter (paged by the client). */
export async function* runningBlocks(client: Client, f: Parameters<typeof runningBlocksQuery>[0]): AsyncGenerator<BlockRow> {
  for await (const w of client.workflow.list({ query: runningBlocksQuery(f) })) {
    const ip = w.typedSearchAttributes.get(SA.blockedIp);
    if (!ip) continue;
    yield {
      workflowId: w.workflowId,
      ip,
      state: w.typedSearchAttributes.get(SA.blockState) as BlockState | undefined,
      set: w.typedSearchAttributes.get(SA.addressGroup),
      type: w.type,
      startedAt: w.startTime,
      expiresAt: w.typedSearchAttributes.get(SA.blockExpiresAt),
    };
  }
}

/**
 * What the block of an IP is doing now, strongly consistent: `never` — no block of ours for this IP in the
 * namespace's history; `closed` — its last block ended; otherwise its state.
 *
 * Describe reads the server's mutable state, so the BlockState search attribute it returns is what the
 * block's last completed workflow task published (each state change is published in the task that makes
 * it). Only while a task is open can the block be further along than that — a local activity inside that
 * task may already have told the enforcer — so then (and for blocks that publish no state) the status query
 * decides: it is answered once the open task completes. The fast path needs no worker: a repair of 100,000
 * entries does not replay 100,000 blocks. With `queryWaitMs`, the query waits that long at most, then the
 * published state decides (for a caller that an open task may be waiting for: an enforcer's commit).
 */
export async function currentBlockState(client: Client, target: string, ip: string, opts: { queryWaitMs?: number } = {}): Promise<BlockState | 'closed' | 'never'> {
  const handle = client.workflow.getHandle(blockWorkflowId(target, ip));
  try {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return 'closed';
    const published = d.typedSearchAttributes.get(SA.blockState) as BlockState | undefined;
    // A task only scheduled is not open: nothing ran past what the last completed task published. Asked, it waited
    // for a worker with a backlog (a burst's blocks, minutes before their first task): at 16 checks in flight an
    // enforcer's commit of a burst's claim checks took minutes, and its blocks' Updates waited on it (scale, 50,000).
    // A retried task (attempt > 1) counts as open: its failed attempt may have sent a change it did not publish.
    const task = d.raw.pendingWorkflowTask;
    const open = !!task && (task.state === temporal.api.enums.v1.PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED || (task.attempt ?? 1) > 1);
    if (published && d.type === WORKFLOW_TYPES.block && !open) return published;
    // A caller inside an enforcer's commit must not wait long: the open task may be a block's local activity that
    // waits for that very enforcer (its Update), and would never complete while the commit waits for it.
    if (opts.queryWaitMs !== undefined && published) {
      return await client.withDeadline(Date.now() + opts.queryWaitMs, () => handle.query(statusQuery)).then(
        (s) => s.state,
        () => published,
      );
    }
    return (await handle.query(statusQuery)).state;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'never';
    throw err;
  }
}
