/**
 * What "converged" means for the reliability suite, checked on the firewall itself (the emulator over its
 * REST API) and on Temporal: the group holds exactly the live blocks (each once; the placeholder exactly
 * when nothing else), the `ads-*` address objects are exactly those of the live blocks (no stray, none
 * missing), every ended block ended in the expected state, and each IP had exactly one block workflow.
 */
import type { Client } from '@temporalio/client';
import type { FortiOSClient } from '../../src/fortios/client';
import type { RunningEmulator } from '../../src/fortios/emulator/server';
import type { ipBlock } from '../../workflows/block';
import { ADDRESS_NAME_PREFIX, addressObjectName, PLACEHOLDER_MEMBER } from '../../src/enforcement/address-group';
import { BlockInput, BlockState, BlockStatus, blockWorkflowId, cancelSignal, statusQuery, WORKFLOW_TYPES } from '../../workflows/messages';
import { eventually, eventuallyEach, TARGET } from '../support/stack';

/** What a scenario needs: a client, the task queue its worker polls, and a FortiOS client on the emulator. */
export interface Ctx {
  client: Client;
  taskQueue: string;
  firewall: FortiOSClient;
  /** The firewall target of the scenario's blocks (default TARGET). */
  target?: string;
}

/**
 * Distinct public-looking IPv4 addresses (`a.b.c.7`). They only ever exist as names and subnets on the
 * emulator: nothing is ever sent to them.
 */
export function ips(n: number, firstOctet: number): string[] {
  return Array.from({ length: n }, (_, i) => `${firstOctet}.${Math.floor(i / 250)}.${(i % 250) + 1}.7`);
}

export const names = (list: string[]): string[] => list.map(addressObjectName).sort();
export const handle = (ctx: Ctx, ip: string) => ctx.client.workflow.getHandle<typeof ipBlock>(blockWorkflowId(ctx.target ?? TARGET, ip));

export function startBlock(ctx: Ctx, input: BlockInput) {
  return ctx.client.workflow.start<typeof ipBlock>(WORKFLOW_TYPES.block, {
    workflowId: blockWorkflowId(input.target, input.ip),
    taskQueue: ctx.taskQueue,
    args: [input],
  });
}

export async function cancelBlocks(ctx: Ctx, list: string[], reason = 'reliability test'): Promise<void> {
  await Promise.all(list.map((ip) => handle(ctx, ip).signal(cancelSignal, { reason, actor: 'test' })));
}

export interface FirewallView {
  /** The group's members as the REST API lists them (order kept, duplicates kept). */
  members: string[];
  /** Every address object named `ads-*` on the firewall (IPv4 table), sorted. */
  addresses: string[];
}

export async function view(fw: FortiOSClient, group: string): Promise<FirewallView> {
  const [g, addrs] = await Promise.all([fw.getGroup('ipv4', group), fw.listAddresses('ipv4', { namePrefix: ADDRESS_NAME_PREFIX })]);
  return { members: g?.members ?? [], addresses: addrs.map((a) => a.name).sort() };
}

/** The exact firewall state for these live IPs: members = live (or the placeholder alone), addresses = live. */
export function expected(live: string[]): FirewallView {
  return { members: live.length ? names(live) : [PLACEHOLDER_MEMBER], addresses: names(live) };
}

function sameView(v: FirewallView, want: FirewallView): boolean {
  return JSON.stringify({ ...v, members: [...v.members].sort() }) === JSON.stringify(want);
}

/**
 * Waits until the firewall holds exactly the live blocks, then asserts it field by field (so that a
 * failure shows the difference): no member twice, no stray `ads-*` object, every live address a /32 of its IP.
 */
export async function expectFirewallConverges(fw: FortiOSClient, group: string, live: string[], timeoutMs: number): Promise<void> {
  const want = expected(live);
  let last: FirewallView | undefined;
  try {
    await eventually(async () => sameView((last = await view(fw, group)), want), timeoutMs, `firewall group ${group} = ${live.length} live blocks`);
  } catch (err) {
    // Fall through to the precise assertions below: they name what differs.
    if (!last) throw err;
  }
  const v = await view(fw, group);
  expect(new Set(v.members).size).toBe(v.members.length); // each IP at most once in the group
  expect([...v.members].sort()).toEqual(want.members);
  expect(v.addresses).toEqual(want.addresses); // no stray ads-* object, none missing
  for (const ip of live) expect(await fw.getAddress('ipv4', addressObjectName(ip))).toMatchObject({ subnet: `${ip}/32` });
}

/** Waits until every block of the list is closed, then checks that each ended in `state` (and not failed). */
export async function expectEnded(ctx: Ctx, list: string[], state: BlockState, timeoutMs: number): Promise<BlockStatus[]> {
  await eventuallyEach(list, async (ip) => (await handle(ctx, ip).describe()).status.name !== 'RUNNING', timeoutMs, `${list.length} blocks to end ${state}`);
  const results = await Promise.all(list.map((ip) => handle(ctx, ip).result()));
  expect(results.map((r) => `${r.ip} ${r.state}`)).toEqual(list.map((ip) => `${ip} ${state}`));
  return results;
}

/** Every block of the list still running and enforced (`active`). */
export async function expectActive(ctx: Ctx, list: string[], timeoutMs = 30_000): Promise<void> {
  await eventuallyEach(list, async (ip) => (await handle(ctx, ip).query(statusQuery)).state === 'active', timeoutMs, `${list.length} blocks active`);
  for (const ip of list) expect((await handle(ctx, ip).describe()).status.name).toBe('RUNNING');
}

/**
 * No block duplicated: each IP had exactly one block workflow execution (one run: these scenarios never
 * continue-as-new), according to visibility.
 */
export async function expectOneExecutionEach(ctx: Ctx, list: string[]): Promise<void> {
  const want = new Map(list.map((ip) => [blockWorkflowId(ctx.target ?? TARGET, ip), 1]));
  let seen = new Map<string, number>();
  await eventually(async () => {
    seen = new Map();
    for (let i = 0; i < list.length; i += 50) {
      const ids = list.slice(i, i + 50).map((ip) => `'${blockWorkflowId(ctx.target ?? TARGET, ip)}'`);
      for await (const w of ctx.client.workflow.list({ query: `WorkflowId IN (${ids.join(',')})` })) {
        seen.set(w.workflowId, (seen.get(w.workflowId) ?? 0) + 1);
      }
    }
    return seen.size === want.size && [...seen.values()].every((n) => n === 1);
  }, 20_000, 'one execution per IP in visibility').catch(() => undefined);
  expect(Object.fromEntries([...seen].sort())).toEqual(Object.fromEntries([...want].sort()));
}

/**
 * Records the largest member count the group ever had on the emulator: every write (PUT of the member
 * list, POST to its member table) is observed, not only periodic samples.
 */
export function watchGroupSize(emulator: RunningEmulator, group: string): { max(): number; stop(): void } {
  const tables = emulator.state.ipv4;
  const origPut = tables.putGroup;
  const origAdd = tables.addMember;
  let max = 0;
  const observe = () => (max = Math.max(max, tables.groups.get(group)?.members.size ?? 0));
  tables.putGroup = function (this: typeof tables, ...args: Parameters<typeof origPut>) {
    origPut.apply(this, args);
    observe();
  };
  tables.addMember = function (this: typeof tables, ...args: Parameters<typeof origAdd>) {
    origAdd.apply(this, args);
    observe();
  };
  return {
    max: () => max,
    stop() {
      tables.putGroup = origPut;
      tables.addMember = origAdd;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds since `t0`, for the timing lines the suite prints. */
export const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
