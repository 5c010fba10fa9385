/**
 * Reconciliation of one enforcement set: compares what the firewall holds (ours only, ownership proved)
 * with the running blocks, both ways, and repairs through the normal paths — an active block whose entry is
 * missing is told to re-assert it; an entry of ours that no running block holds is removed through the
 * set's enforcer (the single writer). Visibility only finds candidates; each is confirmed with a strongly
 * consistent describe or query before anything is changed. Runs in one activity, so that a set of 100,000
 * entries never passes through workflow history: only counts and a sample come back.
 */
import { Context } from '@temporalio/activity';
import type { EnforcementBackend } from '../src/enforcement';
import { inPool } from '../src/pool';
import { BlockRow, currentBlockState, runningBlocks } from '../src/temporal/visibility';
import { enforcerStatusQuery, enforcerWorkflowId, reassertSignal, SetChange, SetReport, WORKFLOW_TYPES } from '../workflows/messages';
import { migrateSignal } from '../workflows/legacy/messages';
import { CHANGES_PER_SIGNAL, MessagingDeps, sendToEnforcer } from './messaging';

export interface ReconcileDeps extends MessagingDeps {
  backends: Map<string, EnforcementBackend>;
}

/** Names listed per category in a report (the counts are complete). */
const SAMPLE = 50;
const CHECKS_IN_FLIGHT = 16;
/**
 * Repairs are fed to the enforcer no faster than it commits them: at most this many queued before the next
 * signal. Sent all at once, 50,000 re-adds piled up in the enforcer, its history outgrew the server's
 * suggestion, and continue-as-new carries at most 5,000 queued changes: the rest of the repair was lost
 * (found by the 50,000-block scale bench).
 */
const MAX_QUEUED_REPAIRS = 2000;
/** The enforcer took nothing from its queue for this long (the firewall is down): the rest waits for the next pass. */
const NO_PROGRESS_MS = 60_000;
/** A block still pending after this long is nudged to send its request again. */
const STUCK_AFTER_MS = 10 * 60_000;

export function createReconcileActivities(d: ReconcileDeps) {
  const heartbeat = (n: unknown) => Context.current().heartbeat(n);

  /** `running` while a block of the IP holds or is releasing it; `ended`; `never` (no block of ours ever). */
  async function blockState(target: string, ip: string): Promise<'running' | 'ended' | 'never'> {
    const state = await currentBlockState(d.temporal, target, ip);
    if (state === 'never') return 'never';
    return state === 'pending' || state === 'active' || state === 'releasing' ? 'running' : 'ended';
  }

  /**
   * Waits until the set's enforcer holds fewer than MAX_QUEUED_REPAIRS queued changes. False when its queue
   * did not shrink for NO_PROGRESS_MS (a query that fails counts as no progress).
   */
  async function enforcerDrained(target: string, set: string): Promise<boolean> {
    const handle = d.temporal.workflow.getHandle(enforcerWorkflowId(target, set));
    let lowest = Infinity;
    let progressAt = Date.now();
    for (;;) {
      const queued = await handle.query(enforcerStatusQuery).then((st) => st.queued, () => Infinity);
      if (queued < MAX_QUEUED_REPAIRS) return true;
      if (queued < lowest) {
        lowest = queued;
        progressAt = Date.now();
      }
      if (Date.now() - progressAt > NO_PROGRESS_MS) return false;
      heartbeat(`enforcer queue: ${queued}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  return {
    async enforcementSets(input: { target: string }): Promise<string[]> {
      const b = d.backends.get(input.target);
      return b ? [...new Set(b.sets().map((s) => s.name))] : [];
    },

    async reconcileSet(input: { target: string; set: string }): Promise<SetReport & { activeBlocks: number }> {
      const backend = d.backends.get(input.target);
      const report: SetReport & { activeBlocks: number } = { set: input.set, enforced: 0, reasserted: [], orphansRemoved: [], nudged: [], activeBlocks: 0 };
      if (!backend) return { ...report, error: `unknown target ${input.target}` };
      const blocks = new Map<string, BlockRow>();
      // Re-adds carry when their blocks were seen active: the enforcer checks only those whose IP it removed since.
      const listedAtMs = Date.now();
      for await (const b of runningBlocks(d.temporal, { target: input.target, set: input.set })) {
        blocks.set(b.ip, b);
        if (blocks.size % 500 === 0) heartbeat(blocks.size);
      }
      report.activeBlocks = [...blocks.values()].filter((b) => b.state === 'active').length;
      const owned = await backend.list(input.set);
      const enforced = new Set(owned.filter((e) => e.enforced).map((e) => e.ip));
      report.enforced = enforced.size;
      heartbeat('listed');

      // Active blocks whose entry is missing (removed by hand, a wiped feed): re-added through the enforcer in large
      // batches (a feed repairs with one snapshot) without waking each block; the enforcer applies each re-add only
      // while the block holds the IP (it removed nothing of that IP since the listing, or a strongly consistent
      // check at commit time says so: workflows/release-log.ts), so visibility's lag is harmless.
      // A first-release block is migrated instead (its next run re-asserts).
      const missing = [...blocks.values()].filter((b) => b.state === 'active' && !enforced.has(b.ip));
      const readds: SetChange[] = [];
      let unchecked = 0;
      await inPool(missing, CHECKS_IN_FLIGHT, async (b) => {
        if (b.type === WORKFLOW_TYPES.legacyBlock) await d.temporal.workflow.getHandle(b.workflowId).signal(migrateSignal).catch(() => undefined);
        else readds.push({ op: 'add', ip: b.ip, family: b.ip.includes(':') ? 'ipv6' : 'ipv4', expiresAtMs: b.expiresAt?.getTime(), label: 'active block, re-added by reconciliation', listedAtMs });
        if (report.reasserted.length < SAMPLE) report.reasserted.push(b.ip);
      });

      // Entries of ours that no running block holds: confirmed → removed through the enforcer (which checks once
      // more at commit time). On a list with no owner field (banned IPs), only an entry our history knows (a block
      // of that IP existed) is ours. A block that cannot be checked now is left for the next pass.
      const orphans: SetChange[] = [];
      await inPool(owned.filter((e) => !blocks.has(e.ip)), CHECKS_IN_FLIGHT, async (e) => {
        const state = await blockState(input.target, e.ip).catch(() => undefined);
        if (state === undefined) return void unchecked++;
        if (state === 'running' || (state === 'never' && e.proof === 'history')) return;
        orphans.push({ op: 'remove', ip: e.ip, family: e.family });
        if (report.orphansRemoved.length < SAMPLE) report.orphansRemoved.push(e.ip);
        heartbeat(orphans.length);
      });
      const repairs = [...readds, ...orphans];
      let sent = 0;
      while (sent < repairs.length) {
        if (sent > 0 && !(await enforcerDrained(input.target, input.set))) break;
        await sendToEnforcer(d, input.target, input.set, repairs.slice(sent, sent + CHANGES_PER_SIGNAL));
        sent = Math.min(repairs.length, sent + CHANGES_PER_SIGNAL);
        heartbeat(`repairs sent: ${sent}`);
      }
      const problems: string[] = [];
      if (unchecked) problems.push(`${unchecked} block(s) could not be checked now`);
      if (sent < repairs.length) problems.push(`${repairs.length - sent} repair(s) not sent: the enforcer is not taking changes (firewall down?)`);
      if (problems.length) report.error = `${problems.join('; ')}: left for the next reconciliation`;

      // Blocks that have waited long for an answer: nudged to send their request again (cheap, idempotent).
      const now = Date.now();
      const stuck = [...blocks.values()].filter((b) => b.type === WORKFLOW_TYPES.block && (b.state === 'pending' || b.state === 'releasing') && b.startedAt && now - b.startedAt.getTime() > STUCK_AFTER_MS);
      await inPool(stuck, CHECKS_IN_FLIGHT, async (b) => {
        await d.temporal.workflow.getHandle(b.workflowId).signal(reassertSignal).catch(() => undefined);
        if (report.nudged.length < SAMPLE) report.nudged.push(b.ip);
      });
      // And the set as a whole once (capacity lowered, placeholder, shards).
      await sendToEnforcer(d, input.target, input.set, 'resync');
      return report;
    },
  };
}
