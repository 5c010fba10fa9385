/**
 * Notifications raised outside workflow code (the API's rejected events, the worker's failing firewall):
 * each becomes a `notifyWorkflow`, so it is delivered durably like the ones the workflows send. Nothing is
 * started when no sink is configured or the kind is not wanted.
 */
import { randomUUID } from 'node:crypto';
import { Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { notifyWorkflow } from '../../workflows/notify';
import { notifyWorkflowId } from '../../workflows/notify';
import { NOTIFY_DISABLED, NotifyConfig, NotifyEvent, NotifyInput } from './events';

export class Notifications {
  private readonly config: NotifyConfig;

  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
    config: NotifyConfig | undefined,
  ) {
    this.config = config ?? NOTIFY_DISABLED;
  }

  wants(kind: NotifyEvent['kind']): boolean {
    return this.config.kinds.includes(kind);
  }

  /** Starts the delivery (returns once Temporal has it, not once it is delivered); undefined when not wanted. */
  async send(input: NotifyInput): Promise<NotifyEvent | undefined> {
    if (!this.wants(input.kind)) return undefined;
    const event: NotifyEvent = { ...input, id: input.id ?? randomUUID(), at: input.at ?? new Date().toISOString() };
    try {
      await this.client.workflow.start<typeof notifyWorkflow>('notifyWorkflow', {
        workflowId: notifyWorkflowId(event.id),
        taskQueue: this.taskQueue,
        args: [event],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err; // the same id: already on its way
    }
    return event;
  }
}
