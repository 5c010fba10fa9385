/**
 * Temporal (and the firewall) unreachable: the API answers 503 with Retry-After quickly, starts nothing,
 * and still answers bad input with its 4xx, because validation comes first. No stack needed: the client
 * points at a port where nothing listens.
 */
import { createServer } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { BlockService } from '../../src/blocks/service';
import { FortiOSClient } from '../../src/fortios/client';
import { ApiMetrics } from '../../src/api/metrics';
import { RunningApiServer, startApiServer } from '../../src/api/server';
import { adsLine, call, eventId, secret, Secrets, TARGET, testConfig } from './harness';

let server: RunningApiServer;
let blocks: BlockService;
let connection: Connection;
let firewall: FortiOSClient;
const secrets: Secrets = { webhook: secret(), read: secret(), write: secret() };

/** A port that was free a moment ago: nothing listens there. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

beforeAll(async () => {
  const port = await closedPort();
  connection = Connection.lazy({ address: `127.0.0.1:${port}`, connectTimeout: 500 });
  const temporal = new Client({ connection });
  firewall = new FortiOSClient({ baseUrl: `http://127.0.0.1:${port}`, token: 'unused', timeoutMs: 500 });
  const config = testConfig({ taskQueue: 'nowhere', firewallUrl: `http://127.0.0.1:${port}`, firewallToken: 'unused' }, secrets);
  blocks = new BlockService(temporal, config);
  server = await startApiServer({
    config,
    blocks,
    temporal,
    firewalls: new Map([[TARGET, firewall]]),
    logger: pino({ level: 'silent' }),
    metrics: new ApiMetrics(),
    limits: { temporalProbeMs: 1000, firewallProbeMs: 1000 },
  });
});
afterAll(async () => {
  await server?.close();
  await firewall?.close();
  await connection?.close().catch(() => undefined);
});

const expect503 = (r: { status: number; headers: Headers; body: any }) => {
  expect(r.status).toBe(503);
  expect(r.body.error.code).toBe('temporal-unavailable');
  expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
};

it('answers a valid webhook event with 503 + Retry-After, quickly, without starting anything', async () => {
  const started = jest.spyOn(blocks, 'block');
  const t0 = Date.now();
  const r = await call(server.url, '/v1/events', { token: secrets.webhook, body: { lines: [adsLine({ id: eventId(), source: '203.0.113.5' })] } });
  expect503(r);
  expect(Date.now() - t0).toBeLessThan(8000);
  expect(started).not.toHaveBeenCalled();
  started.mockRestore();
});

it('still answers webhook input that needs no Temporal: malformed (400) or all refused by policy (200)', async () => {
  const malformed = await call(server.url, '/v1/events', { token: secrets.webhook, body: { lines: ['garbage'] } });
  expect(malformed.status).toBe(400);
  const refused = await call(server.url, '/v1/events', { token: secrets.webhook, body: { lines: [adsLine({ id: eventId(), source: '10.0.0.1' })] } });
  expect(refused.status).toBe(200);
  expect(refused.body.events[0].ips[0]).toMatchObject({ outcome: 'rejected', code: 'ip-private' });
});

it('answers REST reads and writes with 503, but invalid requests with their 4xx first', async () => {
  expect503(await call(server.url, '/v1/blocks', { token: secrets.read }));
  expect503(await call(server.url, '/v1/blocks', { token: secrets.write, body: { ip: '203.0.113.5' } }));
  expect((await call(server.url, '/v1/blocks', { token: secrets.write, body: { ip: '10.0.0.1' } })).status).toBe(422);
  expect((await call(server.url, '/v1/blocks', { token: secrets.write, body: { nope: 1 } })).status).toBe(400);
  expect((await call(server.url, '/v1/blocks', { body: { ip: '203.0.113.5' } })).status).toBe(401);
});

it('GET /readyz answers 503 naming Temporal and the firewall (to a token holder); /healthz stays 200', async () => {
  const anonymous = await call(server.url, '/readyz');
  expect(anonymous.status).toBe(503);
  expect(anonymous.body.error.details).toBeUndefined();
  const r = await call(server.url, '/readyz', { token: secrets.read });
  expect(r.status).toBe(503);
  expect(r.body.error.code).toBe('not-ready');
  expect(r.body.error.message).toMatch(/temporal: .*; firewall fw1: /);
  expect(r.body.error.details.checks).toEqual({
    temporal: { ok: false, error: expect.any(String) },
    firewalls: { [TARGET]: { ok: false, error: expect.any(String) } },
  });
  expect((await call(server.url, '/healthz')).status).toBe(200);
});
