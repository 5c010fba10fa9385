/** What a workflow costs in Temporal: its history events by type, workflow tasks, and its runs. */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

export interface HistoryShape {
  events: number;
  workflowTasks: number;
  byType: Record<string, number>;
  /** Runs of this workflow id (continue-as-new makes more than one). */
  runs?: number;
  /** When the earlier runs closed (epoch ms): the moments of continue-as-new. */
  runsClosedAtMs?: number[];
}

/** History of the latest run of `workflowId`, counted by event type. */
export async function historyShape(client: Client, workflowId: string, countRuns = false): Promise<HistoryShape> {
  const h = await client.workflow.getHandle(workflowId).fetchHistory();
  const byType: Record<string, number> = {};
  for (const e of h.events ?? []) {
    const name = (temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '');
    byType[name] = (byType[name] ?? 0) + 1;
  }
  const shape: HistoryShape = { events: h.events?.length ?? 0, workflowTasks: byType.WORKFLOW_TASK_COMPLETED ?? 0, byType };
  if (countRuns) {
    let runs = 0;
    const closed: number[] = [];
    for await (const run of client.workflow.list({ query: `WorkflowId = ${JSON.stringify(workflowId)}` })) {
      if (run.closeTime) closed.push(run.closeTime.getTime());
      if (++runs >= 1000) break;
    }
    shape.runs = runs;
    shape.runsClosedAtMs = closed.sort((a, b) => a - b);
  }
  return shape;
}
