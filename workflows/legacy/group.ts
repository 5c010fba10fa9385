/**
 * Address-group entity workflow: one per (target, group), the only writer of that group's member list.
 *
 * FortiOS has no optimistic locking, so two read-modify-write PUTs of the member list lose updates.
 * Here joins and leaves arrive as signals, are applied in arrival order to the member list held in this
 * workflow, and one tick writes the result to the firewall once: a burst of thousands of joins costs a
 * handful of writes. Capacity is enforced here (oldest member evicted, its block workflow told), never
 * discovered as a firewall error.
 */
import * as wf from '@temporalio/workflow';
import { answering, firewallLocal } from './activity-options';
import {
  GroupCarry,
  GroupInput,
  GroupMember,
  GroupOp as Op,
  GroupReply,
  GroupStats,
  groupStatusQuery,
  joinSignal,
  leaveSignal,
  resyncSignal,
} from './messages';

/** Bounds one tick, so that the continue-as-new check runs between ticks even during a burst of thousands of joins. */
const MAX_OPS_PER_TICK = 1000;
/** Longer than a stale request plausibly stays in flight on a slow firewall. */
const STALE_WRITE_RECHECK = '15 seconds';

export async function groupWorkflow(input: GroupInput): Promise<void> {
  const carried: GroupCarry = input.carried ?? { members: [], pending: [], stats: { writes: 0, joins: 0, leaves: 0, evictions: 0 } };
  // Insertion order of the Map is join order: the first entry is the oldest block, the one evicted first.
  const members = new Map<string, GroupMember>(carried.members.map((m) => [m.member, m]));
  const stats: GroupStats = { ...carried.stats };
  const ops: Op[] = [...carried.pending];
  // A fresh run (or one continued from a run that may have crashed mid-write) asserts the list once.
  let resync = true;

  wf.setHandler(joinSignal, (req) => void ops.push({ kind: 'join', req }));
  wf.setHandler(leaveSignal, (req) => void ops.push({ kind: 'leave', req }));
  wf.setHandler(resyncSignal, () => void (resync = true));
  wf.setHandler(groupStatusQuery, () => ({
    target: input.target,
    group: input.group,
    family: input.family,
    capacity: input.capacity,
    members: [...members.values()],
    pendingJoins: ops.filter((o) => o.kind === 'join').length,
    pendingLeaves: ops.filter((o) => o.kind === 'leave').length,
    stats,
  }));

  // The previous tick's replies travel while the next write is in flight: one round trip less per tick.
  let replying: Promise<void> = Promise.resolve();
  for (;;) {
    await wf.condition(() => ops.length > 0 || resync);
    // Batching needs no timer: while one write is in flight, the next joins pile up and go out together in
    // the next tick (group commit), so a burst costs few writes and a lone join waits for nothing. An
    // optional debounce trades latency for even fewer writes.
    if (input.batchWindowMs > 0) await wf.sleep(input.batchWindowMs);
    const batch = ops.splice(0, MAX_OPS_PER_TICK);
    resync = false;
    const replies = applyOps(batch, members, input.capacity, stats);
    if (await writeMembers(input, members, stats)) {
      // An attempt the client gave up on (timeout, reset) may still land on the firewall after this newer
      // write and undo it — FortiOS has no optimistic locking. Check the list again once that is past.
      void wf.sleep(STALE_WRITE_RECHECK).then(() => void (resync = true));
    }
    await replying; // one tick of answers at a time, in tick order
    replying = replies.length ? answering.answerBlocks(replies) : Promise.resolve();

    if (wf.workflowInfo().continueAsNewSuggested) {
      await replying;
      await wf.condition(wf.allHandlersFinished);
      await wf.continueAsNew<typeof groupWorkflow>({ ...input, carried: { members: [...members.values()], pending: ops.splice(0), stats } });
    }
  }
}

/** Applies a batch in arrival order, then evicts the oldest members beyond capacity; returns the answers. */
function applyOps(batch: Op[], members: Map<string, GroupMember>, capacity: number, stats: GroupStats): GroupReply[] {
  const replies: GroupReply[] = [];
  for (const op of batch) {
    if (op.kind === 'join') {
      stats.joins++;
      const existing = members.get(op.req.member);
      if (!existing || existing.blockWorkflowId !== op.req.blockWorkflowId) {
        members.delete(op.req.member); // a new owner of the same name counts as a fresh join
        members.set(op.req.member, { ...op.req, joinedAtMs: Date.now() });
      }
    } else {
      stats.leaves++;
      const existing = members.get(op.req.member);
      if (existing?.blockWorkflowId === op.req.blockWorkflowId) members.delete(op.req.member);
      replies.push({ kind: 'left', ...op.req });
    }
  }
  // With at least one real member the placeholder is gone, so real members may fill the whole capacity.
  for (const [name, m] of members) {
    if (members.size <= capacity) break;
    members.delete(name);
    replies.push({ kind: 'evicted', member: m.member, blockWorkflowId: m.blockWorkflowId, reason: 'group at capacity: oldest block rotated out' });
    stats.evictions++;
  }
  // Every join still a member after eviction is confirmed (repeats too: the sender may have timed out).
  for (const op of batch) {
    if (op.kind === 'join' && members.get(op.req.member)?.blockWorkflowId === op.req.blockWorkflowId) replies.push({ kind: 'joined', ...op.req });
  }
  return replies;
}

/** Writes the member list; returns whether its outcome was uncertain (an earlier attempt failed). */
async function writeMembers(input: GroupInput, members: Map<string, GroupMember>, stats: GroupStats): Promise<boolean> {
  const res = await firewallLocal.syncGroupMembers({ target: input.target, family: input.family, group: input.group, members: [...members.keys()] });
  if (res.wrote) {
    stats.writes++;
    stats.lastWriteAtMs = Date.now();
  }
  return res.attempt > 1;
}
