/**
 * The visibility queries the worker relies on, in one place: which block workflows are running for a target
 * and set, in which state. Visibility is eventually consistent, so callers use it to find candidates and
 * confirm each with a strongly consistent describe or query before acting (see activities/reconcile.ts).
 */
import { Client, WorkflowNotFoundError } from '@temporalio/client';
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
 * What the block of an IP is doing now, strongly consistent (describe, then the status query): `never` — no
 * block of ours for this IP in the namespace's history; `closed` — its last block ended; otherwise its state.
 */
export async function currentBlockState(client: Client, target: string, ip: string): Promise<BlockState | 'closed' | 'never'> {
  const handle = client.workflow.getHandle(blockWorkflowId(target, ip));
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return 'closed';
    return (await handle.query(statusQuery)).state;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'never';
    throw err;
  }
}
