/**
 * The production topology under failure (`npm run test:production`, not part of `npm test`): the real
 * Temporal server on PostgreSQL with SQL visibility, two workers and two API replicas as processes
 * (src/production/stack.ts, what scripts/production-stack starts). A 2,000-IP burst goes through both
 * APIs while one worker is SIGKILLed, one API replica is SIGKILLed (the client retries what failed on the
 * other replica) and the Temporal server is SIGKILLed and started again. Then: every block enforced once on
 * the firewall, one workflow per IP, search by our attributes on SQL visibility; every block lifted
 * through the API. Only the public surface is used: /v1/events, /v1/blocks, /readyz, the emulator's
 * /__emulator/state and the search attributes.
 * Timings (kills, restart, convergence) are printed and written to DATA_DIR/production/scenario.json.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { freePort } from '../../src/free-port';
import { until } from '../../src/production/child';
import { ProductionStack, startProductionStack } from '../../src/production/stack';
import { freeServerPorts } from '../../src/production/temporal-server';
import { buildDist } from '../support/processes';

const COUNT = Number(process.env.PRODUCTION_BURST ?? 2000);
const PER_REQUEST = 5; // ADS lines per webhook request: 400 requests for 2,000 IPs
const IN_FLIGHT = 8;
const GROUP = 'ads-blocked';
const ACCEPTED = new Set(['started', 'extended', 'duplicate', 'unchanged']);

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ads-production-'));
chmodSync(dataDir, 0o755); // PostgreSQL runs as "nobody" when we are root: it must reach its directory
let stack: ProductionStack;
let temporal: Client;
let secrets: { webhook: string; write: string };
const timeline: Record<string, number> = {};
const record: Record<string, unknown> = { count: COUNT, perRequest: PER_REQUEST, inFlight: IN_FLIGHT };
const t0 = Date.now();
const at = (name: string) => (timeline[name] = Date.now());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 2,000 distinct public IPv4 addresses (names on the emulator only: nothing is sent to them). */
const ips = Array.from({ length: COUNT }, (_, i) => `45.${60 + Math.floor(i / 250)}.${(i % 250) + 1}.9`);
const eventIdOf = (i: number) => String(8_100_000 + i);

/** An extended-layout ADS line (17 tab-separated fields), as the Flowmon forwarder posts it. */
function adsLine(id: string, source: string): string {
  return [id, '2025-11-03 15:15:02', '2025-11-03 15:10:43', 'SSHDICT', ' ', ' ', 'SSH attack', 'Security Issues', 'High', 'Attack from a single attacker', '22', 'TCP', source, ' ', '198.51.100.10', 'WAN', ' '].join('\t') + '\n';
}

interface Delivery {
  attempts: number;
  /** Replicas (index) on which an attempt failed. */
  failedOn: number[];
  errors: string[];
}

/**
 * One request, the way a client behind a load balancer would retry it: on a connection error, a timeout or
 * any answer other than 200-with-every-event-accepted, the same request again on the other replica, with
 * a growing pause (bounded: about 3 minutes in all).
 */
async function deliver(send: (url: string) => Promise<{ ok: boolean; detail: string }>, first: number): Promise<Delivery> {
  const d: Delivery = { attempts: 0, failedOn: [], errors: [] };
  let k = first;
  for (let attempt = 1; attempt <= 90; attempt++) {
    d.attempts = attempt;
    const replica = k % stack.apis.length;
    try {
      const r = await send(stack.apis[replica]!.url);
      if (r.ok) return d;
      d.errors.push(r.detail);
    } catch (err) {
      d.errors.push((err as Error).message);
    }
    d.failedOn.push(replica);
    k++;
    await sleep(Math.min(2_000, 100 * attempt));
  }
  throw new Error(`request failed ${d.attempts} times; last errors: ${d.errors.slice(-3).join(' | ')}`);
}

async function postEvents(url: string, lines: string[]): Promise<{ ok: boolean; detail: string }> {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secrets.webhook}`, 'content-type': 'text/plain' },
    body: lines.join(''),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await res.json().catch(() => undefined)) as { events?: { outcome: string }[] } | undefined;
  const ok = res.status === 200 && (body?.events ?? []).length === lines.length && body!.events!.every((e) => ACCEPTED.has(e.outcome));
  return { ok, detail: `${res.status} ${JSON.stringify(body).slice(0, 300)}` };
}

async function unblock(url: string, ip: string): Promise<{ ok: boolean; detail: string }> {
  const res = await fetch(`${url}/v1/blocks/${encodeURIComponent(ip)}?reason=${encodeURIComponent('production scenario')}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${secrets.write}` },
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await res.json().catch(() => undefined)) as { found?: boolean } | undefined;
  return { ok: res.status === 200 && body?.found === true, detail: `${res.status} ${JSON.stringify(body).slice(0, 300)}` };
}

async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

interface FirewallView {
  members: string[];
  addresses: string[];
}

async function firewall(): Promise<FirewallView> {
  const state = (await (await fetch(`${stack.firewallUrl}/__emulator/state`)).json()) as {
    tables: { addrgrp: { name: string; members: string[] }[]; address: { name: string }[] };
  };
  return {
    members: state.tables.addrgrp.find((g) => g.name === GROUP)?.members ?? [],
    addresses: state.tables.address.map((a) => a.name).filter((n) => n.startsWith('ads-')),
  };
}

const memberOf = (ip: string) => `ads-${ip}`;
const count = async (query: string) => (await temporal.workflow.count(query)).count;

beforeAll(async () => {
  await buildDist();
  const ports = await freeServerPorts();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(ports.frontend),
    API_PORT: '0',
    FORTIOS_EMULATOR_PORT: String(await freePort()),
    FORTIGATE_GROUP_CAPACITY: String(COUNT + 100),
    FORTIOS_EMULATOR_GROUP_LIMIT: String(COUNT + 100),
    BLOCK_TTL: '1h',
    WEBHOOK_RATE_LIMIT: '1000000',
    LOG_LEVEL: 'info',
  };
  const { config } = loadConfig(env);
  secrets = { webhook: config.api.webhookSecret, write: config.api.writeToken };
  const setup0 = Date.now();
  stack = await startProductionStack({ config, env, workers: 2, apis: 2, ports, log: (m) => console.log(`[stack] ${m}`) });
  record.stackStartS = (Date.now() - setup0) / 1000;
  temporal = new Client({ connection: await Connection.connect({ address: stack.temporal.address }), namespace: config.temporal.namespace });
}, 30 * 60_000);

afterAll(async () => {
  await temporal?.connection.close().catch(() => undefined);
  await stack?.stop();
  record.timelineS = Object.fromEntries(Object.entries(timeline).map(([k, v]) => [k, (v - t0) / 1000]));
  console.log(`production scenario: ${JSON.stringify(record, null, 2)}`);
  if (stack) writeFileSync(path.join(stack.dir, '..', 'scenario.json'), JSON.stringify(record, null, 2));
  if (!process.env.KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
});

test('/readyz of every replica says ready only while the server, its PostgreSQL and the firewall answer', async () => {
  for (const a of stack.apis) expect((await fetch(`${a.url}/readyz`)).status).toBe(200);
  await stack.postgres!.stop();
  try {
    for (const a of stack.apis) {
      await until(`replica ${a.url} not ready while PostgreSQL is down`, async () => (await fetch(`${a.url}/readyz`)).status === 503, 60_000);
      // The details (which check failed) are for callers with a token; anonymous probes only see 503.
      const res = await fetch(`${a.url}/readyz`, { headers: { authorization: `Bearer ${secrets.write}` } });
      const body = (await res.json()) as { error: { details: { checks: { temporal: { ok: boolean; error?: string }; firewalls: Record<string, { ok: boolean }> } } } };
      expect(body.error.details.checks.temporal.ok).toBe(false); // the server answers, its persistence does not
      expect(Object.values(body.error.details.checks.firewalls).every((f) => f.ok)).toBe(true);
    }
  } finally {
    await stack.postgres!.start();
  }
  for (const a of stack.apis) await until(`replica ${a.url} ready again`, async () => (await fetch(`${a.url}/readyz`)).status === 200, 90_000);
});

test('2,000-IP burst through both APIs with a worker, an API replica and the Temporal server killed: every block enforced once, then lifted', async () => {
  const batches: number[][] = [];
  for (let i = 0; i < COUNT; i += PER_REQUEST) batches.push(Array.from({ length: Math.min(PER_REQUEST, COUNT - i) }, (_, j) => i + j));
  const retried = new Set<number>();
  let answered = 0;
  const faults: Promise<void>[] = [];
  const onProgress = () => {
    const share = answered / batches.length;
    if (share >= 0.25 && !timeline.workerKilled) {
      at('workerKilled');
      faults.push(stack.workers[0]!.kill().then(() => undefined));
    }
    if (share >= 0.45 && !timeline.apiKilled) {
      at('apiKilled');
      faults.push(stack.apis[0]!.child.kill().then(() => undefined));
    }
    if (share >= 0.65 && !timeline.serverKilled) {
      at('serverKilled');
      faults.push(
        stack.temporal.restart!("kill").then(({ servingAt }) => {
          timeline.serverServingAgain = servingAt;
        }),
      );
    }
  };

  // ---- the burst
  at('burstStart');
  let attempts = 0;
  await pool(batches, IN_FLIGHT, async (batch, i) => {
    const d = await deliver((url) => postEvents(url, batch.map((n) => adsLine(eventIdOf(n), ips[n]!))), i);
    attempts += d.attempts;
    if (d.attempts > 1) batch.forEach((n) => retried.add(n));
    answered++;
    onProgress();
  });
  at('burstAllAccepted');
  await Promise.all(faults);
  record.requests = batches.length;
  record.attempts = attempts;
  record.ipsInRetriedRequests = retried.size;
  expect(timeline.workerKilled && timeline.apiKilled && timeline.serverKilled && timeline.serverServingAgain).toBeTruthy();

  // ---- convergence on the firewall: every IP in the group exactly once, one address object each
  const want = ips.map(memberOf).sort();
  let last: FirewallView = { members: [], addresses: [] };
  await until('all 2,000 blocks enforced on the firewall', async () => {
    last = await firewall();
    return last.members.length === COUNT && last.addresses.length === COUNT;
  }, 10 * 60_000).catch((err) => {
    throw new Error(`${(err as Error).message}; members ${last.members.length}, addresses ${last.addresses.length}`);
  });
  at('converged');
  expect(new Set(last.members).size).toBe(last.members.length); // no member twice
  expect([...last.members].sort()).toEqual(want);
  expect([...last.addresses].sort()).toEqual(want);

  // ---- one workflow per IP, and search by our attributes on SQL visibility
  const blockWf = 'WorkflowType = "ipBlock"';
  await until('visibility: 2,000 active blocks', async () => (await count(`${blockWf} AND BlockState = "active"`)) === COUNT, 3 * 60_000);
  at('visibilityActive');
  expect(await count(blockWf)).toBe(COUNT); // no second run for any IP (open or closed)
  const now = new Date();
  const inTwoHours = new Date(now.getTime() + 2 * 3_600_000);
  expect(await count(`${blockWf} AND BlockExpiresAt > "${now.toISOString()}" AND BlockExpiresAt < "${inTwoHours.toISOString()}"`)).toBe(COUNT);
  for (const n of [0, 1, 499, 1000, 1500, COUNT - 1, ...[...retried].slice(0, 10)]) {
    const byIp = [];
    for await (const wf of temporal.workflow.list({ query: `BlockedIp = "${ips[n]}"` })) byIp.push(wf);
    expect(byIp).toHaveLength(1);
    const byEvent = [];
    for await (const wf of temporal.workflow.list({ query: `AdsEventId = "${eventIdOf(n)}"` })) byEvent.push(wf.workflowId);
    expect(byEvent).toEqual([byIp[0]!.workflowId]);
  }

  // Through the API: every block lists its one event, even where the request was retried on the other replica.
  const listed: { ip: string; eventIds: string[]; state: string }[] = [];
  let pageToken: string | undefined;
  do {
    const res = await fetch(`${stack.apis[1]!.url}/v1/blocks?pageSize=1000${pageToken ? `&pageToken=${pageToken}` : ''}`, { headers: { authorization: `Bearer ${secrets.write}` } });
    const body = (await res.json()) as { blocks: { ip: string; eventIds: string[]; state: string }[]; nextPageToken?: string };
    listed.push(...body.blocks);
    pageToken = body.nextPageToken;
  } while (pageToken);
  expect(listed).toHaveLength(COUNT);
  const byIp = new Map(listed.map((b) => [b.ip, b]));
  ips.forEach((ip, n) => expect(byIp.get(ip)).toMatchObject({ eventIds: [eventIdOf(n)], state: 'active' }));
  for (const n of [...retried].slice(0, 100)) {
    const res = await fetch(`${stack.apis[1]!.url}/v1/blocks/${ips[n]}`, { headers: { authorization: `Bearer ${secrets.write}` } });
    expect(await res.json()).toMatchObject({ ip: ips[n], state: 'active', eventCount: 1 });
  }

  // ---- the killed replica and worker come back; every block is lifted through the API
  at('restartKilled');
  await Promise.all([stack.startApi(0), stack.startWorker(0)]);
  at('unblockStart');
  await pool(ips, IN_FLIGHT, async (ip, i) => {
    await deliver((url) => unblock(url, ip), i);
  });
  at('unblockAllAccepted');
  await until('every block lifted on the firewall', async () => {
    last = await firewall();
    return last.addresses.length === 0 && last.members.length === 1;
  }, 10 * 60_000).catch((err) => {
    throw new Error(`${(err as Error).message}; members ${last.members.length}, addresses ${last.addresses.length}`);
  });
  at('unblockConverged');
  expect(last.members).toEqual(['none']);
  await until('visibility: no running block, 2,000 cancelled', async () => (await count(`${blockWf} AND ExecutionStatus = "Running"`)) === 0 && (await count(`${blockWf} AND BlockState = "cancelled"`)) === COUNT, 3 * 60_000);
  expect(await count(blockWf)).toBe(COUNT);

  const s = (a: string, b: string) => (timeline[b]! - timeline[a]!) / 1000;
  Object.assign(record, {
    burstToAllAcceptedS: s('burstStart', 'burstAllAccepted'),
    burstToEnforcedS: s('burstStart', 'converged'),
    serverDowntimeS: s('serverKilled', 'serverServingAgain'),
    serverServingToEnforcedS: s('serverServingAgain', 'converged'),
    enforcedToVisibilityS: s('converged', 'visibilityActive'),
    unblockToLiftedS: s('unblockStart', 'unblockConverged'),
  });
});
