/**
 * ingest: the webhook on the repeat (dedup) path, OURS only (the seed has no webhook: for it a repeat is one
 * more ADS process spawn and an SQLite UPDATE). `ips` IPs are blocked first; then, one event per request
 * unless said otherwise:
 *   repeatNewId       — 16 senders, the same IPs re-reported with new event ids, spread over the IPs
 *                       (outcome extended);
 *   redelivery        — 16 senders, the exact same events delivered again, spread (outcome duplicate);
 *   hotIp             — 16 senders re-reporting ONE IP with new event ids (one block workflow takes all);
 *   redeliveryBatch50 — one sender re-delivering a whole batch of 50 already-seen events per request
 *                       (the forwarder retrying after a timeout).
 * Each repeat is an Update of the running block workflow (Update-with-Start): it is accepted only once the
 * worker has run the handler, so it costs a workflow task and history events even when nothing changes.
 * Firewall latency does not enter this path; it is run at write latency 0 only.
 */
import { blockWorkflowId } from '../../workflows/messages';
import { addressObjectName } from '../../src/enforcement/address-group';
import { Webhook, adsLine, attackerIps, closedLoop, eventId, Sent } from '../lib/load';
import { CpuMeter, Row, RunContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { startOurs } from '../lib/stack';
import { dist, machine, r1 } from '../lib/stats';

export const ingestScenario: Scenario = {
  name: 'ingest',
  describe: 'webhook rate and latency for repeats (new event ids; exact re-delivery)',
  async run(ctx: RunContext): Promise<ScenarioOutput> {
    const ipCount = 50;
    const concurrency = 16;
    const phaseMs = ctx.quick ? 3000 : 10_000;
    const maxRequests = 20_000;
    const startedAt = new Date().toISOString();
    const ours: Record<string, unknown> = {};
    const conditions: Record<string, unknown> = {};
    const rows: Row[] = [];

    ctx.log(`ingest: ours, ${ipCount} blocked IPs, ${concurrency} senders, ${phaseMs / 1000} s per phase`);
    const stack = await startOurs({ writeLatencyMs: 0 });
    const hook = new Webhook(stack.apiUrl, stack.webhookSecret, concurrency);
    try {
      const ips = attackerIps(ipCount, 90);
      const first = ips.map((ip) => ({ id: eventId(), ip }));
      await Promise.all(first.map((e) => hook.post([adsLine(e.id, e.ip)])));
      await stack.tracker.until(() => ips.every((ip) => stack.tracker.members.has(addressObjectName(ip))), 60_000);

      const phase = async (name: string, senders: number, linesFor: (i: number) => string[]) => {
        const meter = new CpuMeter(stack.server);
        const { results, elapsedMs } = await closedLoop<Sent>(senders, phaseMs, maxRequests, (i) => hook.post(linesFor(i)));
        conditions[name] = meter.read();
        const ok = results.filter((r) => r.status === 200);
        const outcomes: Record<string, number> = {};
        for (const r of ok) for (const [k, v] of Object.entries(r.body?.summary ?? {})) outcomes[k] = (outcomes[k] ?? 0) + v;
        const events = Object.values(outcomes).reduce((a, b) => a + b, 0);
        ours[name] = {
          senders,
          requests: results.length,
          errors: results.length - ok.length,
          requestsPerS: r1((results.length / elapsedMs) * 1000),
          eventsPerS: r1((events / elapsedMs) * 1000),
          latencyMs: dist(ok.map((r) => r.ms)),
          outcomes,
        };
      };

      ctx.log('ingest: repeats with new event ids');
      await phase('repeatNewId', concurrency, (i) => [adsLine(eventId(), ips[i % ipCount]!)]);
      ctx.log('ingest: exact re-delivery');
      await phase('redelivery', concurrency, (i) => {
        const e = first[i % ipCount]!;
        return [adsLine(e.id, e.ip)];
      });
      ctx.log('ingest: one hot IP, new event ids');
      await phase('hotIp', concurrency, () => [adsLine(eventId(), ips[0]!)]);
      ctx.log('ingest: one sender re-delivering a 50-event batch per request');
      await phase('redeliveryBatch50', 1, () => first.map((e) => adsLine(e.id, e.ip)));

      // What the repeats cost in Temporal: the history of one block workflow after all of it.
      const h = await stack.client.workflow.getHandle(blockWorkflowId(stack.config.targets[0]!.name, ips[0]!)).fetchHistory();
      ours.oneBlockHistoryEvents = h.events?.length ?? 0;
    } finally {
      await hook.close();
      await stack.stop();
    }

    type P = { requestsPerS: number; eventsPerS: number; latencyMs: ReturnType<typeof dist>; outcomes: Record<string, number> };
    const p = (k: string) => ours[k] as P;
    const pq = (k: string) => `${p(k).latencyMs.p50} / ${p(k).latencyMs.p99}`;
    rows.push(
      { scenario: 'ingest', lat: '0', metric: 'repeat, new event id (16 senders): req/s', ours: p('repeatNewId').requestsPerS, baseline: 'n/a' },
      { scenario: 'ingest', lat: '0', metric: 'repeat, new event id: p50 / p99 ms', ours: pq('repeatNewId'), baseline: 'n/a' },
      { scenario: 'ingest', lat: '0', metric: 'exact re-delivery (16 senders): req/s', ours: p('redelivery').requestsPerS, baseline: 'n/a' },
      { scenario: 'ingest', lat: '0', metric: 'exact re-delivery: p50 / p99 ms', ours: pq('redelivery'), baseline: 'n/a' },
      { scenario: 'ingest', lat: '0', metric: 'one hot IP, new ids (16 senders): req/s', ours: p('hotIp').requestsPerS, baseline: 'n/a' },
      { scenario: 'ingest', lat: '0', metric: 'one hot IP: p50 / p99 ms', ours: pq('hotIp'), baseline: 'n/a' },
      { scenario: 'ingest', lat: '0', metric: 're-delivered 50-event batch (1 sender): events/s', ours: p('redeliveryBatch50').eventsPerS, baseline: 'n/a' },
    );
    return {
      record: {
        scenario: 'ingest',
        startedAt,
        machine: machine(),
        params: { blockedIps: ipCount, senders: concurrency, phaseMs, hotIpPhaseMs: phaseMs, writeLatencyMs: 0, quick: ctx.quick },
        ours,
        baseline: { note: 'n/a: the seed has no webhook; ADS spawns the script per event, a repeat is an SQLite UPDATE (and, in the seed, a no-op: update_ip binds its parameters swapped)' },
        targets: {},
        conditions,
      },
      rows,
    };
  },
};
