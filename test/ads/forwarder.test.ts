/**
 * scripts/flowmon-forwarder.py against a real HTTP server on loopback: what it sends (signed, split within
 * the service's limits), what it does when the service fails (retry, spool, re-deliver next run, exactly
 * once, also with overlapping runs), and what it says (per-outcome counts, exit status).
 * FORWARDER_PYTHON picks the interpreter (e.g. python3.6, the appliance's oldest); default python3.
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXTENDED_DOS, IDS_LINE, JSON_SSHDICT, STANDARD_SSHDICT, unterminated } from './samples';
import { TEST_CERT, TEST_KEY } from './tls-fixture';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'flowmon-forwarder.py');
const PYTHON = process.env.FORWARDER_PYTHON ?? 'python3';
const SECRET = 's3cr3t';
const MAX_BODY = 1024 * 1024;

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

type Reply = (res: ServerResponse, req: IncomingMessage, body: string) => void;

interface Hook {
  url: string;
  received: Received[];
  server: Server;
  /** Every line of every request, in arrival order. */
  lines(): string[];
}

/** A webhook stub that answers with the given replies in turn (the last one repeats). */
async function webhook(replies: Reply[], tls = false): Promise<Hook> {
  const received: Received[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() });
      replies[Math.min(received.length, replies.length) - 1](res, req, body);
    });
  };
  const server: Server = tls ? createTlsServer({ cert: TEST_CERT, key: TEST_KEY }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const scheme = tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`;
  return { url, received, server, lines: () => received.filter((r) => r.body.startsWith('{')).flatMap((r) => JSON.parse(r.body).lines as string[]) };
}

const status = (code: number, headers: Record<string, string> = {}, body = '{}'): Reply => (res) => {
  res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
  res.end(body);
};

/** 200 with the webhook's reply shape: every line "started". */
const accepted: Reply = (res, _req, body) => {
  const n = (JSON.parse(body).lines as string[]).length;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ received: n, summary: { started: n }, events: [], errors: [] }));
};

/** The service's limits: 413 beyond `maxLines` lines (the real one says 500). */
const limitedTo = (maxLines: number): Reply => (res, req, body) => {
  if ((JSON.parse(body).lines as string[]).length > maxLines) status(413, {}, JSON.stringify({ error: { code: 'too-many-events', message: `at most ${maxLines}` } }))(res, req, body);
  else accepted(res, req, body);
};

const servers: Server[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** A URL where nothing listens (the service is down). */
async function downUrl(): Promise<string> {
  const hook = await webhook([status(200)]);
  await new Promise((resolve) => hook.server.close(resolve));
  return hook.url;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the forwarder; a fresh spool directory unless `--spool-dir` is among the arguments. */
function forward(url: string, input: string, extraArgs: string[] = []): Promise<Run> {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key)) delete env[key];
  const spool = extraArgs.includes('--spool-dir') ? [] : ['--spool-dir', join(tempDir('forwarder-spool-'), 'spool')];
  const args = [SCRIPT, '--url', url, '--secret', SECRET, '--timeout', '2', '--retry-delay', '0.05', ...spool, ...extraArgs];
  const child = spawn(PYTHON, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const PREFIX = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 ads-mitigator-forwarder\[\d+\]: /;

/** Every run logs WARNING lines (when it drops lines) and then exactly one result line; never the secret. */
function logLines(run: Run): { summary: string; warnings: string[] } {
  expect(run.stderr).not.toContain(SECRET);
  const lines = run.stderr.trimEnd().split('\n');
  for (const line of lines) expect(line).toMatch(PREFIX);
  const summary = lines.pop() as string;
  expect(summary).toMatch(new RegExp(PREFIX.source + 'result='));
  for (const line of lines) expect(line).toMatch(new RegExp(PREFIX.source + 'WARNING '));
  return { summary: summary.replace(PREFIX, ''), warnings: lines.map((l) => l.replace(PREFIX, '')) };
}
const logLine = (run: Run) => logLines(run).summary;

/** Numeric fields of the result line. */
function fields(run: Run): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of logLine(run).matchAll(/\b([a-z]+)=(\d+)(?=\s|$)/g)) out[m[1]] = Number(m[2]);
  return out;
}

const segments = (spoolDir: string) => (existsSync(spoolDir) ? readdirSync(spoolDir).filter((n) => /^seg-.*\.jsonl$/.test(n)) : []);
/** Distinct ADS-like lines: `tag` keeps runs apart. */
const lineSet = (tag: string, n: number, pad = 0) => Array.from({ length: n }, (_, i) => `${tag}-${String(i).padStart(5, '0')}\t${'x'.repeat(pad)}`);
const input = (lines: string[]) => lines.map((l) => `${l}\n`).join('');

const hmac = (ts: string, body: string) => `sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;

describe('flowmon-forwarder.py', () => {
  describe('what it sends', () => {
    test('posts the raw lines unchanged, signed over timestamp and body (no secret on the wire), and exits 0', async () => {
      const hook = await webhook([accepted]);
      // CRLF on one line, a trailing " " field on the standard line, a JSON line and an IDS line.
      const text = STANDARD_SSHDICT + unterminated(EXTENDED_DOS) + '\r\n' + JSON_SSHDICT + IDS_LINE;
      const run = await forward(hook.url, text);

      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(1);
      const [request] = hook.received;
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/v1/events');
      expect(request.headers.authorization).toBeUndefined();
      expect(request.body).not.toContain(SECRET);
      const ts = String(request.headers['x-ads-timestamp']);
      expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(30);
      expect(request.headers['x-ads-signature']).toBe(hmac(ts, request.body));
      expect(request.headers['content-type']).toBe('application/json');
      expect(JSON.parse(request.body)).toEqual({
        lines: [unterminated(STANDARD_SSHDICT), unterminated(EXTENDED_DOS), unterminated(JSON_SSHDICT), unterminated(IDS_LINE)],
        forwarder: { version: '2', host: hostname() },
      });
      expect(JSON.parse(request.body).lines[0].endsWith('\tWAN\t ')).toBe(true);
      expect(logLine(run)).toMatch(
        /^result=ok lines=4 replayed=0 requests=1 attempts=1 started=4 extended=0 unchanged=0 duplicate=0 ignored=0 rejected=0 malformed=0 spooled=0 spool=0 elapsed=\d+\.\d\ds url=http:\/\/127\.0\.0\.1:\d+\/v1\/events$/,
      );
    });

    test('--auth bearer sends the secret as a Bearer token instead (services before signing)', async () => {
      const hook = await webhook([accepted]);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--auth', 'bearer']);
      expect(run.code).toBe(0);
      expect(hook.received[0].headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(hook.received[0].headers['x-ads-signature']).toBeUndefined();
    });

    test('keeps non-ASCII text and inner separators such as \\x1c and \\u2028 inside a line', async () => {
      const hook = await webhook([accepted]);
      const line = unterminated(STANDARD_SSHDICT).replace('SSH attack', 'SSH útok\x1c\u2028…');
      const run = await forward(hook.url, `${line}\n`);
      expect(run.code).toBe(0);
      expect(JSON.parse(hook.received[0].body).lines).toEqual([line]);
    });

    test('1,201 lines in one run: all reach the service once, in order, in requests of at most 500', async () => {
      const hook = await webhook([accepted]);
      const lines = lineSet('big', 1201);
      const run = await forward(hook.url, input(lines));
      expect(run.code).toBe(0);
      expect(hook.received.length).toBeGreaterThanOrEqual(3);
      for (const r of hook.received) expect(JSON.parse(r.body).lines.length).toBeLessThanOrEqual(500);
      expect(hook.lines()).toEqual(lines);
      expect(fields(run)).toMatchObject({ lines: 1201, requests: hook.received.length, started: 1201, spooled: 0 });
    });

    test('splits by bytes too: no request body over 1 MiB', async () => {
      const hook = await webhook([accepted]);
      const lines = lineSet('wide', 400, 4000); // ~1.6 MB in all
      const run = await forward(hook.url, input(lines));
      expect(run.code).toBe(0);
      expect(hook.received.length).toBeGreaterThanOrEqual(2);
      for (const r of hook.received) expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(MAX_BODY);
      expect(hook.lines()).toEqual(lines);
    });

    test('a 413 for the whole request splits it instead of dropping it', async () => {
      const hook = await webhook([limitedTo(100)]);
      const lines = lineSet('split', 300);
      const run = await forward(hook.url, input(lines));
      expect(run.code).toBe(0);
      const delivered = hook.received.filter((r) => JSON.parse(r.body).lines.length <= 100);
      expect(delivered.flatMap((r) => JSON.parse(r.body).lines)).toEqual(lines);
      expect(fields(run)).toMatchObject({ started: 300, spooled: 0, malformed: 0 });
    });

    test('a single line larger than the service accepts is dropped loudly (exit 1); the others go through', async () => {
      const hook = await webhook([accepted]);
      const huge = `huge\t${'y'.repeat(MAX_BODY)}`;
      const run = await forward(hook.url, input(['small-1', huge, 'small-2']));
      expect(run.code).toBe(1);
      expect(hook.lines()).toEqual(['small-1', 'small-2']);
      const { summary, warnings } = logLines(run);
      expect(warnings).toEqual([expect.stringMatching(/^WARNING dropped a line of \d+ bytes: larger than the service accepts/)]);
      expect(summary).toMatch(/^result=failed .* malformed=1 .*"line larger than the service accepts":1/);
    });
  });

  describe('what it says', () => {
    test('logs per-outcome counts from the webhook reply, with the reasons for ignored, rejected and malformed', async () => {
      const reply = {
        received: 5,
        summary: { started: 1, duplicate: 1, ignored: 1, rejected: 1, malformed: 1 },
        events: [
          { eventId: '1', outcome: 'started', ips: [{ ip: '203.0.113.1', outcome: 'started' }] },
          { eventId: '2', outcome: 'duplicate', ips: [{ ip: '203.0.113.2', outcome: 'duplicate' }] },
          { eventId: '3', outcome: 'ignored', rule: 'below-threshold', reason: 'Low < medium' },
          { eventId: '4', outcome: 'rejected', ips: [{ ip: '10.0.0.1', outcome: 'rejected', code: 'ip-private', reason: 'private' }] },
        ],
        errors: [{ index: 4, message: 'line 4: expected 15 or 17 tab-separated fields, got 1' }],
      };
      const hook = await webhook([status(200, {}, JSON.stringify(reply))]);
      const run = await forward(hook.url, input(lineSet('mixed', 5)));
      expect(run.code).toBe(0); // every event had its answer; ignored and rejected are the service's policy
      expect(fields(run)).toMatchObject({ started: 1, extended: 0, duplicate: 1, ignored: 1, rejected: 1, malformed: 1 });
      const reasons = JSON.parse(/ reasons=(\{.*?\})(?: |$)/.exec(logLine(run))![1]);
      expect(reasons).toEqual({ ignored: { 'below-threshold': 1 }, rejected: { 'ip-private': 1 }, malformed: { 'line #: expected # or # tab-separated fields, got #': 1 } });
    });

    test('400 (no line is an event): exits 1, names why, and does not spool what no run could deliver', async () => {
      const spool = join(tempDir('forwarder-'), 'spool');
      const body = { error: { code: 'malformed', message: 'none of the 1 items is a valid ADS event', details: { errors: [{ index: 0, message: 'line 0: field count 1' }] } } };
      const hook = await webhook([status(400, {}, JSON.stringify(body))]);
      const run = await forward(hook.url, 'not an ADS line\n', ['--spool-dir', spool]);
      expect(run.code).toBe(1);
      expect(hook.received).toHaveLength(1);
      expect(logLine(run)).toMatch(/^result=failed .*malformed=1 .*reasons=\{"malformed":\{"line #: field count #":1\}\}/);
      expect(segments(spool)).toEqual([]);
    });

    test('appends its log lines to --log-dir when it exists', async () => {
      const dir = tempDir('forwarder-log-');
      const hook = await webhook([accepted]);
      await forward(hook.url, STANDARD_SSHDICT, ['--log-dir', dir]);
      await forward(hook.url, STANDARD_SSHDICT, ['--log-dir', dir]);
      const lines = readFileSync(join(dir, 'ads-mitigator-forwarder.log'), 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      for (const line of lines) expect(line).toMatch(/ads-mitigator-forwarder\[\d+\]: result=ok lines=1 replayed=0 requests=1 attempts=1 started=1 /);
      expect(lines.join('\n')).not.toContain(SECRET);
    });
  });

  describe('retries', () => {
    test('503 then 200: retries the same body, signed afresh, and exits 0', async () => {
      const hook = await webhook([status(503), accepted]);
      const run = await forward(hook.url, STANDARD_SSHDICT);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(2);
      expect(hook.received[1].body).toBe(hook.received[0].body);
      const second = hook.received[1];
      expect(second.headers['x-ads-signature']).toBe(hmac(String(second.headers['x-ads-timestamp']), second.body));
      expect(logLine(run)).toMatch(/^result=ok lines=1 replayed=0 requests=1 attempts=2 started=1 /);
    });

    test('429 with Retry-After: waits as told instead of the short backoff', async () => {
      const hook = await webhook([status(429, { 'Retry-After': '1' }), accepted]);
      const run = await forward(hook.url, STANDARD_SSHDICT);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(2);
      expect(hook.received[1].at - hook.received[0].at).toBeGreaterThanOrEqual(950);
    });

    test('503 every time: 3 attempts with backoff 1x, 2x, then spools and exits 0', async () => {
      const hook = await webhook([status(503)]);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--retry-delay', '0.2']);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(3);
      const [first, second, third] = hook.received.map((r) => r.at);
      expect(second - first).toBeGreaterThanOrEqual(180);
      expect(third - second).toBeGreaterThanOrEqual(380);
      expect(logLine(run)).toMatch(/^result=spooled lines=1 replayed=0 requests=1 attempts=3 .* spooled=1 spool=1 .* error="HTTP 503 \{\} \(the service was unavailable/);
    });

    test('a service that never answers times out per attempt; the line is spooled', async () => {
      const hook = await webhook([() => undefined]);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--timeout', '0.3']);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(3);
      expect(logLine(run)).toMatch(/attempts=3 .* spooled=1 .* error="connection failed: .*timed out/);
    });
  });

  describe('the spool', () => {
    test('service down for a whole run: exit 0, lines spooled; the next run delivers them first, exactly once, and empties the spool', async () => {
      const spool = join(tempDir('forwarder-'), 'spool');
      const down = await downUrl();
      const first = lineSet('first', 700);
      const second = lineSet('second', 5);
      const third = lineSet('third', 3);

      const run1 = await forward(down, input(first), ['--spool-dir', spool]);
      expect(run1.code).toBe(0);
      expect(fields(run1)).toMatchObject({ lines: 700, requests: 1, attempts: 3, spooled: 700, spool: 700 });
      expect(logLine(run1)).toMatch(/^result=spooled .*error="connection failed: .*refused/i);

      // Still down: the spool is tried (one request), the new lines go straight to the spool.
      const run2 = await forward(down, input(second), ['--spool-dir', spool]);
      expect(run2.code).toBe(0);
      expect(fields(run2)).toMatchObject({ lines: 5, replayed: 0, requests: 1, spooled: 5, spool: 705 });
      expect(segments(spool)).toHaveLength(2);

      const hook = await webhook([accepted]);
      const run3 = await forward(hook.url, input(third), ['--spool-dir', spool]);
      expect(run3.code).toBe(0);
      expect(hook.lines()).toEqual([...first, ...second, ...third]); // oldest first, each once
      expect(fields(run3)).toMatchObject({ lines: 3, replayed: 705, started: 708, spooled: 0, spool: 0 });
      expect(segments(spool)).toEqual([]);

      const run4 = await forward(hook.url, '', ['--spool-dir', spool]);
      expect(run4.code).toBe(0);
      expect(hook.lines()).toHaveLength(708); // nothing sent twice
    });

    test('401 (wrong secret): no retry, exit 1 and a loud reason, but the line is spooled, not lost', async () => {
      const spool = join(tempDir('forwarder-'), 'spool');
      const refusing = await webhook([status(401, {}, `{"error":{"code":"unauthorized","message":"bad token Bearer ${SECRET}"}}`)]);
      const run = await forward(refusing.url, STANDARD_SSHDICT, ['--spool-dir', spool]);
      expect(run.code).toBe(1);
      expect(refusing.received).toHaveLength(1);
      expect(logLine(run)).toMatch(/^result=failed lines=1 replayed=0 requests=1 attempts=1 .* spooled=1 spool=1 .* error="HTTP 401 .*bad token Bearer \*\*\*.*check --secret, and that the appliance clock/);

      const fixed = await webhook([accepted]);
      const again = await forward(fixed.url, '', ['--spool-dir', spool]);
      expect(again.code).toBe(0);
      expect(fixed.lines()).toEqual([unterminated(STANDARD_SSHDICT)]);
      expect(segments(spool)).toEqual([]);
    });

    // urllib would follow a 302/303 as a GET elsewhere.
    test.each([302, 303, 307, 308])('a %i redirect is not followed: exit 1, line spooled', async (code) => {
      const elsewhere = await webhook([accepted]);
      const hook = await webhook([status(code, { Location: elsewhere.url })]);
      const run = await forward(hook.url, STANDARD_SSHDICT);
      expect(run.code).toBe(1);
      expect(hook.received).toHaveLength(1);
      expect(elsewhere.received).toHaveLength(0);
      expect(logLine(run)).toMatch(new RegExp(`attempts=1 .* spooled=1 .* error="HTTP ${code}.*redirects are not followed`));
    });

    test('spool full: the oldest spooled lines make room for the newest, with a WARNING; exit 1', async () => {
      const spool = join(tempDir('forwarder-'), 'spool');
      const down = await downUrl();
      const old = lineSet('old', 20, 200);
      const recent = lineSet('new', 20, 200); // each run's segment is ~5 KB
      const args = ['--spool-dir', spool, '--spool-max-size', '8K'];
      expect((await forward(down, input(old), args)).code).toBe(0);
      const full = await forward(down, input(recent), args);
      expect(full.code).toBe(1);
      const { summary, warnings } = logLines(full);
      expect(warnings).toEqual([expect.stringMatching(/^WARNING spool full \(8192 bytes, --spool-max-size\): dropped the 20 oldest spooled line\(s\) to keep the newest$/)]);
      expect(summary).toMatch(/^result=failed .* spooled=20 spool=20 /);

      const hook = await webhook([accepted]);
      expect((await forward(hook.url, '', args)).code).toBe(0);
      expect(hook.lines()).toEqual(recent);
    });

    test('spooled lines older than --spool-max-age are dropped with a WARNING', async () => {
      const spool = join(tempDir('forwarder-'), 'spool');
      const down = await downUrl();
      const t0 = Date.now();
      expect((await forward(down, input(lineSet('stale', 3)), ['--spool-dir', spool])).code).toBe(0);
      const hook = await webhook([accepted]);
      while (Date.now() - t0 < 1100) await new Promise((r) => setTimeout(r, 50)); // the lines are now > 1 s old
      const run = await forward(hook.url, input(['fresh']), ['--spool-dir', spool, '--spool-max-age', '1s']);
      expect(run.code).toBe(1);
      expect(logLines(run).warnings).toEqual([expect.stringMatching(/^WARNING dropped 3 spooled line\(s\) older than --spool-max-age 1s \(first seen \d{4}-/)]);
      expect(hook.lines()).toEqual(['fresh']);
      expect(segments(spool)).toEqual([]);
    });

    test('overlapping runs: concurrent spooling keeps every line, concurrent re-delivery sends each once', async () => {
      const spool = join(tempDir('forwarder-'), 'spool');
      const down = await downUrl();
      const batches = Array.from({ length: 6 }, (_, i) => lineSet(`run${i}`, 60));
      const spooling = await Promise.all(batches.map((b) => forward(down, input(b), ['--spool-dir', spool])));
      expect(spooling.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0]);
      expect(segments(spool)).toHaveLength(6);

      // A slow service keeps the runs overlapping while they re-deliver.
      const slow: Reply = (res, req, body) => void setTimeout(() => accepted(res, req, body), 150);
      const hook = await webhook([slow]);
      const extra = ['late-a', 'late-b', 'late-c'];
      const runs = await Promise.all(extra.map((l) => forward(hook.url, `${l}\n`, ['--spool-dir', spool])));
      expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
      const got = hook.lines();
      expect(got).toHaveLength(6 * 60 + 3);
      expect(new Set(got)).toEqual(new Set([...batches.flat(), ...extra]));
      expect(segments(spool)).toEqual([]);
    });

    test('a spool that cannot be written while the service is down: exit 1, says why', async () => {
      const blocker = join(tempDir('forwarder-'), 'file');
      writeFileSync(blocker, 'not a directory');
      const run = await forward(await downUrl(), STANDARD_SSHDICT, ['--spool-dir', join(blocker, 'spool')]);
      expect(run.code).toBe(1);
      expect(logLine(run)).toMatch(/^result=failed .* error=".*cannot spool 1 line\(s\) to .*file\/spool/);
    });

    test('the default spool directory is only created when a line must wait', async () => {
      const hook = await webhook([accepted]);
      const parent = tempDir('forwarder-');
      mkdirSync(join(parent, 'unused'));
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--spool-dir', join(parent, 'unused', 'spool')]);
      expect(run.code).toBe(0);
      expect(existsSync(join(parent, 'unused', 'spool'))).toBe(false);
    });
  });

  describe('parameters', () => {
    test.each([
      ['empty stdin', ''],
      ['blank lines only', '\n\r\n\n'],
    ])('%s: exits 0 without a request', async (_name, text) => {
      const hook = await webhook([status(500)]);
      const run = await forward(hook.url, text);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(0);
      expect(logLine(run)).toMatch(/^result=ok lines=0 replayed=0 requests=0 /);
    });

    test('ignores unknown parameters the way ADS passes them (--name value)', async () => {
      const hook = await webhook([accepted]);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['-j', 'yes', '--perspective', 'Security Issues']);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(1);
    });

    test.each<[string, string[], RegExp]>([
      ['a missing --url', [SCRIPT, '--secret', SECRET], /usage error: the following arguments are required: --url/],
      ['a non-HTTP --url', [SCRIPT, '--url', 'ftp://x/', '--secret', SECRET], /usage error: --url must be an http:\/\/ or https:\/\/ URL/],
      ['a bad --insecure', [SCRIPT, '--url', 'https://x/', '--secret', SECRET, '--insecure', 'maybe'], /usage error: --insecure must be yes or no/],
      ['a bad --auth', [SCRIPT, '--url', 'https://x/', '--secret', SECRET, '--auth', 'none'], /usage error: --auth must be signature or bearer/],
      ['a bad --spool-max-size', [SCRIPT, '--url', 'https://x/', '--secret', SECRET, '--spool-max-size', 'lots'], /usage error: --spool-max-size must be a size/],
      ['a bad --spool-max-age', [SCRIPT, '--url', 'https://x/', '--secret', SECRET, '--spool-max-age', 'forever'], /usage error: --spool-max-age must be a duration/],
      ['--client-cert without --client-key', [SCRIPT, '--url', 'https://x/', '--secret', SECRET, '--client-cert', '/x.pem'], /usage error: --client-cert and --client-key go together/],
      ['a missing --ca-file', [SCRIPT, '--url', 'https://x/', '--secret', SECRET, '--ca-file', '/nonexistent/ca.pem'], /usage error: cannot use --ca-file/],
    ])('%s: exits 1 with one log line', async (_name, args, message) => {
      const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.stdin.end(STANDARD_SSHDICT);
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect(code).toBe(1);
      expect(stderr).not.toContain(SECRET);
      expect(stderr.trimEnd().split('\n').pop()).toMatch(message);
    });

    test('--help documents the ADS set-up, the spool, signing and the exit status, and exits 0', async () => {
      const child = spawn(PYTHON, [SCRIPT, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      for (const text of ['--url', '--secret', '--ca-file', '--client-cert', '--timeout', '--insecure', '--auth', '--spool-dir', '--spool-max-size', '--spool-max-age', '--log-dir',
        'X-ADS-Timestamp', 'OLDEST spooled lines are dropped', 'HTTP 401', 'Exit status', 'Perspective', 'Minimum priority to be reported', 'Initiate response']) {
        expect(stdout).toContain(text);
      }
      expect(stdout).not.toContain('--retry-delay');
      expect(/^[\x00-\x7f]*$/.test(stdout)).toBe(true); // ASCII: the appliance may run with LANG=C
    });
  });

  describe('HTTPS', () => {
    let caFile: string;
    beforeEach(() => {
      caFile = join(tempDir('forwarder-tls-'), 'ca.pem');
      writeFileSync(caFile, TEST_CERT);
    });

    test('--ca-file trusts the service certificate', async () => {
      const hook = await webhook([accepted], true);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--ca-file', caFile]);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(1);
      expect(hook.received[0].headers['x-ads-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    });

    test('an untrusted certificate fails at once: no retry, nothing delivered, exit 1, the line spooled', async () => {
      const hook = await webhook([accepted], true);
      const run = await forward(hook.url, STANDARD_SSHDICT);
      expect(run.code).toBe(1);
      expect(hook.received).toHaveLength(0);
      expect(logLine(run)).toMatch(/^result=failed .*attempts=1 .* spooled=1 .* error="connection failed: .*CERTIFICATE_VERIFY_FAILED/);
    });

    test('--insecure yes skips verification (lab only)', async () => {
      const hook = await webhook([accepted], true);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--insecure', 'yes']);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(1);
    });
  });
});
