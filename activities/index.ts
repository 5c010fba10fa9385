/**
 * Activities: every side effect of the workflows. Built by createActivities(deps) so that tests and the
 * worker inject their own FortiOS clients and Temporal client. Each one is idempotent (set-based or
 * create-if-absent), because Temporal retries them until they succeed: that is how a firewall that is down,
 * slow or failing still converges.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { FortiOSClient, FortiOSError } from '../src/fortios/client';
import { checkIp, IpPolicy } from '../src/policy/ip-policy';
import { inPool } from '../src/pool';
import {
  AddressFamily,
  ADDRESS_NAME_PREFIX,
  blockWorkflowId,
  evictedSignal,
  GroupInput,
  GroupReply,
  groupWorkflowId,
  joinedSignal,
  JoinRequest,
  joinSignal,
  leaveSignal,
  leftSignal,
  PLACEHOLDER_MEMBER,
  SA,
} from '../workflows/messages';

export interface ActivityDeps {
  /** One FortiOS client per firewall target name. */
  firewalls: Map<string, FortiOSClient>;
  ipPolicy: IpPolicy;
  temporal: Client;
  taskQueue: string;
  /** Observes every firewall call (metrics); optional. */
  onFirewallCall?: (target: string, op: string, ms: number, error?: FortiOSError) => void;
}

/** Signals to block workflows in flight at once when a group answers a tick. */
const ANSWERS_IN_FLIGHT = 32;
const REPLY_SIGNALS = { joined: joinedSignal, left: leftSignal, evicted: evictedSignal };

/** Failure types the workflows never retry. */
export const NON_RETRYABLE = ['PolicyRejected', 'FirewallRejected', 'UnknownTarget'];

/** Heartbeats a regular activity; a local one has no heartbeat (a dead worker loses its workflow task instead). */
function heartbeat(details?: unknown): void {
  const ctx = Context.current();
  if (!ctx.info.isLocal) ctx.heartbeat(details);
}

export function createActivities(deps: ActivityDeps) {
  function firewall(target: string): FortiOSClient {
    const fw = deps.firewalls.get(target);
    if (!fw) throw ApplicationFailure.nonRetryable(`unknown firewall target "${target}"`, 'UnknownTarget');
    return fw;
  }

  /** Runs one firewall call, turning errors a retry cannot fix into non-retryable failures. */
  async function call<T>(target: string, op: string, fn: (fw: FortiOSClient) => Promise<T>): Promise<T> {
    // A heartbeat before each call lets Temporal notice a dead worker within the heartbeat timeout instead of
    // the whole start-to-close timeout (each call is bounded by the client's own timeout).
    heartbeat();
    const started = Date.now();
    try {
      const result = await fn(firewall(target));
      deps.onFirewallCall?.(target, op, Date.now() - started);
      return result;
    } catch (err) {
      if (!(err instanceof FortiOSError)) throw err;
      deps.onFirewallCall?.(target, op, Date.now() - started, err);
      // The error's message names method, path, status and FortiOS error: never the token.
      if (err.kind === 'validation' || err.kind === 'conflict') {
        throw ApplicationFailure.nonRetryable(err.message, 'FirewallRejected', { kind: err.kind, status: err.status, fortiError: err.fortiError });
      }
      throw ApplicationFailure.retryable(err.message, `Firewall:${err.kind}`, { kind: err.kind, status: err.status, fortiError: err.fortiError });
    }
  }

  return {
    /**
     * Creates the address object unless it exists with the same subnet. Right before the side effect, the
     * full safety policy (allowlist included) is checked once more with the worker's current configuration:
     * the API checked it too; this is defence in depth.
     */
    async ensureAddress(input: { target: string; family: AddressFamily; name: string; ip: string; cidr: string; comment: string }): Promise<'created' | 'exists'> {
      const verdict = checkIp(input.ip, deps.ipPolicy);
      if (!verdict.ok) throw ApplicationFailure.nonRetryable(verdict.reason, 'PolicyRejected', { code: verdict.code });
      return call(input.target, 'ensureAddress', (fw) =>
        fw.ensureAddress(input.family, { name: input.name, subnet: input.cidr, comment: input.comment.slice(0, 255) }),
      );
    },

    async deleteAddress(input: { target: string; family: AddressFamily; name: string }): Promise<'deleted' | 'absent'> {
      return call(input.target, 'deleteAddress', (fw) => fw.deleteAddress(input.family, input.name));
    },

    /**
     * Makes the group hold exactly `members` plus whatever does not belong to us (other tools' or an
     * operator's members are kept), with the placeholder present exactly when nothing else is. One GET and
     * at most one PUT: set-based, so a retried or repeated call converges to the same list.
     */
    async syncGroupMembers(input: { target: string; family: AddressFamily; group: string; members: string[] }): Promise<{ wrote: boolean; size: number; attempt: number }> {
      const attempt = Context.current().info.attempt;
      return call(input.target, 'syncGroupMembers', async (fw) => {
        const current = await fw.getGroup(input.family, input.group);
        // Retried, not failed: once an operator creates the group, the blocks converge.
        if (!current) throw ApplicationFailure.retryable(`address group "${input.group}" does not exist on target "${input.target}": create it (README, FortiGate set-up)`, 'GroupMissing');
        const foreign = current.members.filter((m) => m !== PLACEHOLDER_MEMBER && !m.startsWith(ADDRESS_NAME_PREFIX));
        const wanted = [...foreign, ...input.members];
        const desired = wanted.length > 0 ? wanted : [PLACEHOLDER_MEMBER];
        if (sameSet(current.members, desired)) return { wrote: false, size: desired.length, attempt };
        heartbeat();
        await fw.setGroupMembers(input.family, input.group, desired);
        return { wrote: true, size: desired.length, attempt };
      });
    },

    /** Members of the group on the firewall that are ours (reconciliation). */
    async readGroupMembers(input: { target: string; family: AddressFamily; group: string }): Promise<string[]> {
      return call(input.target, 'readGroupMembers', async (fw) => {
        const g = await fw.getGroup(input.family, input.group);
        return (g?.members ?? []).filter((m) => m.startsWith(ADDRESS_NAME_PREFIX));
      });
    },

    /** Address names of the block workflows running for a target, from visibility (reconciliation). */
    async listRunningBlocks(input: { target: string }): Promise<{ workflowId: string; ip: string; group?: string }[]> {
      const out: { workflowId: string; ip: string; group?: string }[] = [];
      const query = `WorkflowType="blockWorkflow" AND ExecutionStatus="Running" AND FirewallTarget="${input.target}"`;
      for await (const wf of deps.temporal.workflow.list({ query })) {
        const ip = wf.typedSearchAttributes.get(SA.blockedIp);
        if (ip) out.push({ workflowId: wf.workflowId, ip, group: wf.typedSearchAttributes.get(SA.addressGroup) });
        Context.current().heartbeat(out.length);
      }
      return out;
    },

    /**
     * Our address objects that no running block owns. Visibility lags, so each candidate is confirmed with
     * a strongly consistent describe of its block workflow before it is called stray.
     */
    async findStrayAddresses(input: { target: string; family: AddressFamily }): Promise<string[]> {
      const names = await call(input.target, 'listManagedAddresses', async (fw) =>
        (await fw.listAddresses(input.family, { namePrefix: ADDRESS_NAME_PREFIX })).map((a) => a.name),
      );
      const strays: string[] = [];
      for (const name of names) {
        const id = blockWorkflowId(input.target, name.slice(ADDRESS_NAME_PREFIX.length));
        const running = await deps.temporal.workflow
          .getHandle(id)
          .describe()
          .then((d) => d.status.name === 'RUNNING', (err) => (err instanceof WorkflowNotFoundError ? false : Promise.reject(err)));
        if (!running) strays.push(name);
        Context.current().heartbeat(strays.length);
      }
      return strays;
    },

    /**
     * Hands a join or leave to the group's entity workflow, starting it if it is not running. Sent from a
     * local activity rather than as the block workflow's external signal: the block's history then holds one
     * marker instead of the signal's two events and the extra workflow task its acknowledgement wakes.
     * Idempotent: the group answers a repeated request the same way.
     */
    async askGroup(input: { group: Omit<GroupInput, 'carried'>; kind: 'join' | 'leave'; request: JoinRequest }): Promise<void> {
      const g = input.group;
      await deps.temporal.workflow.signalWithStart('groupWorkflow', {
        workflowId: groupWorkflowId(g.target, g.group),
        taskQueue: deps.taskQueue,
        args: [g],
        signal: input.kind === 'join' ? joinSignal : leaveSignal,
        signalArgs: [input.request],
        typedSearchAttributes: [
          { key: SA.firewallTarget, value: g.target },
          { key: SA.addressGroup, value: g.group },
        ],
      });
    },

    /**
     * The group's answers, one signal per block, a bounded number in flight. Sent through the client, like
     * askGroup: no events in the group's history per answer. A block that has ended no longer needs its
     * answer; a retry re-sends them all, which the blocks ignore.
     */
    async answerBlocks(replies: GroupReply[]): Promise<void> {
      await inPool(replies, ANSWERS_IN_FLIGHT, async ({ kind, blockWorkflowId, member, reason }) => {
        await deps.temporal.workflow
          .getHandle(blockWorkflowId)
          .signal(REPLY_SIGNALS[kind], { member, reason })
          .catch((err) => {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
          });
        heartbeat();
      });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
