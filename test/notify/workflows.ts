/**
 * The workflow bundle of the notification tests: every product workflow, plus a stand-in for a block that
 * notifies at its transitions the way the block workflow is meant to (Notifier: fire-and-forget, then
 * beforeEnd() right before it returns), so the hand-off can be tested before the lead wires the real one.
 */
import * as wf from '@temporalio/workflow';
import type { NotifyKind } from '../../src/notify/events';
import { Notifier } from '../../workflows/notify';

export * from '../../workflows';

export const finishSignal = wf.defineSignal('finish');

export async function transitionsWorkflow(input: { ip: string; kinds: NotifyKind[]; enabled?: NotifyKind[] }): Promise<{ undeliveredAtEnd: number }> {
  const notifier = new Notifier(input.enabled);
  let finish = false;
  wf.setHandler(finishSignal, () => void (finish = true));
  const [first, ...rest] = input.kinds;
  notifier.notify({ kind: first, ip: input.ip, target: 'fw1', summary: `${first} ${input.ip}` });
  await wf.condition(() => finish);
  for (const kind of rest) notifier.notify({ kind, ip: input.ip, target: 'fw1', summary: `${kind} ${input.ip}` });
  const undeliveredAtEnd = notifier.undelivered;
  await notifier.beforeEnd();
  return { undeliveredAtEnd };
}
