/**
 * Property test: ~2,000 random and hostile bodies at the webhook. Every answer must be a 2xx or a 4xx in
 * the API's error shape, the server must stay up, and nothing may be started: the only addresses the
 * generators produce are ones the safety policy refuses (or garbage), so no body is a valid block.
 */
import fc from 'fast-check';
import { signedHmac } from '../../src/api/auth';
import { eventually } from '../support/stack';
import { adsLine, ApiStack, call, eventId, secret, startApiStack } from './harness';

const RUNS = 2000;
const ALLOWLISTED = '192.0.2.0/24';
let s: ApiStack;

beforeAll(async () => {
  s = await startApiStack({ ipPolicy: { allowlist: [ALLOWLISTED] } });
});
afterAll(async () => {
  await s?.stop();
});

// ------------------------------------------------------------------ generators
const octet = fc.integer({ min: 0, max: 255 });
const v4 = (first: fc.Arbitrary<string>) => fc.tuple(first, octet, octet, octet).map(([a, b, c, d]) => `${a}.${b}.${c}.${d}`);
/** Addresses the policy always refuses: private, reserved, allowlisted; IPv4 and IPv6. */
const refusedIp = fc.oneof(
  v4(fc.constantFrom('10', '127', '0', '224', '239', '240', '255')),
  fc.tuple(octet, octet).map(([c, d]) => `192.168.${c}.${d}`),
  fc.tuple(fc.integer({ min: 16, max: 31 }), octet, octet).map(([b, c, d]) => `172.${b}.${c}.${d}`),
  fc.tuple(octet, octet).map(([c, d]) => `169.254.${c}.${d}`),
  octet.map((d) => `192.0.2.${d}`), // allowlisted in this file
  fc.tuple(fc.constantFrom('fe80::', 'fd00::', 'ff02::', '::ffff:10.0.0.'), fc.integer({ min: 1, max: 249 })).map(([prefix, n]) => `${prefix}${n}`),
  fc.constantFrom('::1', '::', '0.0.0.0', '255.255.255.255', '100.64.0.1', '198.18.0.1'),
);
/** Text that is not an IP address (so it can never name a blockable one). */
const garbage = fc.string({ maxLength: 40 }).filter((t) => !/^[0-9a-f:.\s/]*$/i.test(t.trim()) || t.trim() === '');
const addressish = fc.oneof({ weight: 4, arbitrary: refusedIp }, { weight: 1, arbitrary: garbage });
const method = fc.oneof(fc.constantFrom('SSHDICT', 'SCANS', 'DOS', 'SRVNA', 'REFLECTDOS', 'TOR', 'HTTPDICT', 'IDS'), fc.string({ maxLength: 12 }));
const priority = fc.oneof(fc.constantFrom('Critical', 'High', 'Medium', 'Low', 'Info', ' ', '5', '1'), fc.string({ maxLength: 10 }));
const digits = fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String);

/** ADS-shaped lines: the right field counts with refused addresses, or random fields and counts. */
const shapedLine = fc
  .record({ id: fc.oneof(digits, fc.string({ maxLength: 8 })), method, priority, source: addressish, targets: fc.array(addressish, { maxLength: 5 }) })
  .map((f) => adsLine(f));
const randomTabLine = fc.array(fc.oneof(fc.string({ maxLength: 20 }), addressish, digits), { minLength: 1, maxLength: 20 }).map((f) => f.join('\t'));
const line = fc.oneof(shapedLine, randomTabLine, fc.string({ maxLength: 200 }));

const wrongType = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue(), { maxKeys: 3 }));
const eventObject = fc.record(
  {
    id: fc.oneof(digits, wrongType),
    type: fc.oneof(method, wrongType),
    severity: fc.oneof(priority, wrongType),
    source: fc.oneof(addressish, wrongType),
    targets: fc.oneof(fc.array(addressish, { maxLength: 4 }), addressish, wrongType),
    srcIp: addressish,
    dstIp: addressish,
  },
  { requiredKeys: [] },
);

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
/** Prototype-pollution attempts written as raw JSON (an object literal could not carry an own "__proto__"). */
const hostileTemplates: ((key: string, lines: string, value: string) => string)[] = [
  (key, lines) => `{"${key}":{"polluted":"yes"},"lines":${lines}}`,
  () => `{"constructor":{"prototype":{"polluted":"yes"}},"id":"1","type":"SSHDICT","severity":"High","source":"10.0.0.1"}`,
  (key, _l, value) => `[{"${key}":${value}},{"id":"2","${key}":{"polluted":"yes"},"source":"127.0.0.1","type":"SCANS","severity":"High"}]`,
  (key, lines) => `{"lines":${lines},"forwarder":{"${key}":{"polluted":"yes"}}}`,
  (key) => `{"id":"3","type":"SSHDICT","severity":"High","source":"10.1.1.1","targets":{"${key}":"x"}}`,
];
const hostileJson = fc
  .tuple(fc.constantFrom(...hostileTemplates), fc.constantFrom(...PROTO_KEYS), fc.array(line, { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 }))
  .map(([template, key, lines, value]) => template(key, JSON.stringify(lines), JSON.stringify(value) ?? 'null'));

/** Nested very deep, or strings far beyond the per-line limit (64 KiB) and up to beyond the body limit (1 MiB). */
const huge = fc.constantFrom(
  () => '['.repeat(100_000),
  () => JSON.stringify({ lines: ['A'.repeat(70_000)] }),
  () => JSON.stringify({ id: '1', type: 'SSHDICT', severity: 'High', source: '10.0.0.1', detail: 'x'.repeat(300_000) }),
  () => `${'9'.repeat(50)}\t`.repeat(20_000),
  () => 'B'.repeat(1024 * 1024 + 100),
  () => JSON.stringify({ lines: Array.from({ length: 600 }, () => 'x') }),
);

type Body = { payload: string | Buffer; type: string };
const contentType = fc.constantFrom('application/json', 'text/plain', 'text/plain; charset=utf-8', '', 'application/x-ndjson', 'application/octet-stream', 'text/plain; charset=latin1', 'application/vnd.ads+json');
const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 6, arbitrary: fc.array(line, { maxLength: 8 }).map((lines) => ({ payload: JSON.stringify({ lines, forwarder: { v: 1 } }), type: 'application/json' })) },
  { weight: 4, arbitrary: fc.array(line, { maxLength: 8 }).map((lines) => ({ payload: lines.join('\n'), type: 'text/plain' })) },
  { weight: 4, arbitrary: fc.oneof(eventObject, fc.array(fc.oneof(eventObject, line), { maxLength: 5 })).map((v) => ({ payload: JSON.stringify(v), type: 'application/json' })) },
  { weight: 3, arbitrary: fc.tuple(fc.jsonValue(), contentType).map(([v, type]) => ({ payload: JSON.stringify(v) ?? 'null', type })) },
  { weight: 3, arbitrary: hostileJson.map((payload) => ({ payload, type: 'application/json' })) },
  { weight: 3, arbitrary: fc.tuple(fc.uint8Array({ minLength: 0, maxLength: 300 }), contentType).map(([bytes, type]) => ({ payload: Buffer.from(bytes), type })) },
  { weight: 2, arbitrary: fc.tuple(fc.string({ unit: 'binary', maxLength: 300 }), contentType).map(([text, type]) => ({ payload: text, type })) },
  { weight: 1, arbitrary: fc.tuple(huge, contentType).map(([make, type]) => ({ payload: make(), type })) },
);
type Auth = 'bearer' | 'hmac' | 'wrong';
const auth = fc.constantFrom<Auth>('bearer', 'bearer', 'bearer', 'hmac', 'wrong');

function headersFor(b: Body, a: Auth): Record<string, string> {
  const h: Record<string, string> = b.type ? { 'content-type': b.type } : {};
  if (a === 'bearer') h.authorization = `Bearer ${s.secrets.webhook}`;
  if (a === 'wrong') h.authorization = `Bearer ${secret()}`;
  if (a === 'hmac') {
    h['x-ads-timestamp'] = String(Math.floor(Date.now() / 1000));
    h['x-ads-signature'] = `sha256=${signedHmac(s.secrets.webhook, h['x-ads-timestamp'], b.payload).toString('hex')}`;
  }
  return h;
}

const countBlockWorkflows = async () => (await s.stack.client.workflow.count('WorkflowType = "ipBlock"')).count;

it(`answers ${RUNS} random and hostile bodies with 2xx/4xx, stays up, and starts nothing`, async () => {
  const before = await countBlockWorkflows();
  const blockCalls = jest.spyOn(s.blocks, 'block');
  const statuses = new Map<number, number>();
  const seen = { ignored: 0, rejectedIps: 0 };
  await fc.assert(
    fc.asyncProperty(body, auth, async (b, a) => {
      const r = await call(s.url, '/v1/events', { method: 'POST', body: b.payload, headers: headersFor(b, a) });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect(r.status >= 200 && r.status < 500).toBe(true);
      if (r.status >= 400) {
        expect(typeof r.body.error.code).toBe('string');
        expect(typeof r.body.error.message).toBe('string');
      } else {
        for (const e of r.body.events) {
          expect(['ignored', 'rejected']).toContain(e.outcome);
          if (e.outcome === 'ignored') seen.ignored++;
          for (const ip of e.ips ?? []) {
            expect(ip).toMatchObject({ outcome: 'rejected', code: expect.stringMatching(/^ip-/) });
            seen.rejectedIps++;
          }
        }
      }
      if (a === 'wrong') expect([401, 413, 429]).toContain(r.status);
    }),
    { numRuns: RUNS },
  );
  expect(blockCalls).not.toHaveBeenCalled();
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  // The generators must reach every layer: the parser's refusals, the policy's and the body limits.
  expect([...statuses.keys()]).toEqual(expect.arrayContaining([200, 400, 401, 413, 415]));
  expect(seen.ignored).toBeGreaterThan(0);
  expect(seen.rejectedIps).toBeGreaterThan(0);

  // Still up, and a valid event still works. Its workflow shows in visibility after every fuzz request,
  // so once it is counted, a workflow wrongly started by the fuzz would have been counted as well.
  expect((await call(s.url, '/healthz')).status).toBe(200);
  const control = await call(s.url, '/v1/events', { token: s.secrets.webhook, body: { lines: [adsLine({ id: eventId(), source: '203.0.113.200' })] } });
  expect(control.body.events[0].outcome).toBe('started');
  expect(blockCalls).toHaveBeenCalledTimes(1);
  await eventually(async () => (await countBlockWorkflows()) >= before + 1, 20_000, 'the control block in visibility');
  expect(await countBlockWorkflows()).toBe(before + 1);
});
