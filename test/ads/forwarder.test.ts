/**
 * scripts/flowmon-forwarder.py against a real HTTP server on loopback.
 * FORWARDER_PYTHON picks the interpreter (e.g. python3.6, the appliance's oldest); default python3.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

type Reply = (res: ServerResponse, req: IncomingMessage) => void;

/** A webhook stub that answers with the given replies in turn (the last one repeats). */
async function webhook(replies: Reply[], tls = false): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() });
      replies[Math.min(received.length, replies.length) - 1](res, req);
    });
  };
  const server: Server = tls ? createTlsServer({ cert: TEST_CERT, key: TEST_KEY }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const scheme = tls ? 'https' : 'http';
  return { url: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`, received, server };
}

const status = (code: number, headers: Record<string, string> = {}, body = '{}'): Reply => (res) => {
  res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
  res.end(body);
};

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function forward(url: string, input: string, extraArgs: string[] = []): Promise<Run> {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key)) delete env[key];
  const args = [SCRIPT, '--url', url, '--secret', SECRET, '--timeout', '2', '--retry-delay', '0.05', ...extraArgs];
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

/** Every run writes exactly one log line, which never contains the secret. */
function logLine(run: Run): string {
  expect(run.stderr).not.toContain(SECRET);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 ads-mitigator-forwarder\[\d+\]: result=/);
  return lines[0];
}

describe('flowmon-forwarder.py', () => {
  test('posts the raw lines unchanged, with the bearer secret, and exits 0 on 200', async () => {
    const hook = await webhook([status(200)]);
    // CRLF on one line, a trailing " " field on the standard line, a JSON line and an IDS line.
    const input = STANDARD_SSHDICT + unterminated(EXTENDED_DOS) + '\r\n' + JSON_SSHDICT + IDS_LINE;
    const run = await forward(hook.url, input);

    expect(run.code).toBe(0);
    expect(hook.received).toHaveLength(1);
    const [request] = hook.received;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/v1/events');
    expect(request.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({
      lines: [unterminated(STANDARD_SSHDICT), unterminated(EXTENDED_DOS), unterminated(JSON_SSHDICT), unterminated(IDS_LINE)],
      forwarder: { version: '1', host: hostname() },
    });
    expect(JSON.parse(request.body).lines[0].endsWith('\tWAN\t ')).toBe(true);
    expect(logLine(run)).toMatch(/result=ok status=200 lines=4 attempts=1 elapsed=\d+\.\d\ds url=http:\/\/127\.0\.0\.1:\d+\/v1\/events$/);
  });

  test('keeps non-ASCII text and inner separators such as \\x1c and \\u2028 inside a line', async () => {
    const hook = await webhook([status(202)]);
    const line = unterminated(STANDARD_SSHDICT).replace('SSH attack', 'SSH útok\x1c\u2028…');
    const run = await forward(hook.url, `${line}\n`);
    expect(run.code).toBe(0);
    expect(JSON.parse(hook.received[0].body).lines).toEqual([line]);
  });

  test('401: exits 1 at once, without retrying, and does not log the secret the server echoes', async () => {
    const hook = await webhook([status(401, {}, `{"error":"bad token Bearer ${SECRET}"}`)]);
    const run = await forward(hook.url, STANDARD_SSHDICT);
    expect(run.code).toBe(1);
    expect(hook.received).toHaveLength(1);
    expect(logLine(run)).toMatch(/result=failed lines=1 attempts=1 .* error="HTTP 401 \{\\"error\\":\\"bad token Bearer \*\*\*\\"\}"$/);
  });

  test('503 then 200: retries and exits 0', async () => {
    const hook = await webhook([status(503), status(200)]);
    const run = await forward(hook.url, STANDARD_SSHDICT);
    expect(run.code).toBe(0);
    expect(hook.received).toHaveLength(2);
    expect(hook.received[1].body).toBe(hook.received[0].body);
    expect(logLine(run)).toMatch(/result=ok status=200 lines=1 attempts=2 /);
  });

  test('503 every time: gives up after 3 attempts with backoff 1x, 2x and exits 1', async () => {
    const hook = await webhook([status(503)]);
    const run = await forward(hook.url, STANDARD_SSHDICT, ['--retry-delay', '0.2']);
    expect(run.code).toBe(1);
    expect(hook.received).toHaveLength(3);
    const [first, second, third] = hook.received.map((r) => r.at);
    expect(second - first).toBeGreaterThanOrEqual(180);
    expect(third - second).toBeGreaterThanOrEqual(380);
    expect(logLine(run)).toMatch(/result=failed lines=1 attempts=3 .* error="HTTP 503 \{\}"$/);
  });

  test('429 with Retry-After: waits as told instead of the short backoff', async () => {
    const hook = await webhook([status(429, { 'Retry-After': '1' }), status(200)]);
    const run = await forward(hook.url, STANDARD_SSHDICT);
    expect(run.code).toBe(0);
    expect(hook.received).toHaveLength(2);
    expect(hook.received[1].at - hook.received[0].at).toBeGreaterThanOrEqual(950);
  });

  test('service down: retries, then exits 1', async () => {
    const hook = await webhook([status(200)]);
    await new Promise((resolve) => hook.server.close(resolve));
    const run = await forward(hook.url, STANDARD_SSHDICT);
    expect(run.code).toBe(1);
    expect(logLine(run)).toMatch(/result=failed lines=1 attempts=3 .* error="connection failed: .*refused/i);
  });

  test('a service that never answers times out per attempt and exits 1', async () => {
    const hook = await webhook([() => undefined]);
    const run = await forward(hook.url, STANDARD_SSHDICT, ['--timeout', '0.3']);
    expect(run.code).toBe(1);
    expect(hook.received).toHaveLength(3);
    expect(logLine(run)).toMatch(/attempts=3 .* error="connection failed: .*timed out/);
  });

  // urllib would follow a 302/303 as a GET that still carries the Authorization header.
  test.each([302, 303, 307, 308])('a %i redirect is not followed (it would carry the secret elsewhere) and fails', async (code) => {
    const elsewhere = await webhook([status(200)]);
    const hook = await webhook([status(code, { Location: elsewhere.url })]);
    const run = await forward(hook.url, STANDARD_SSHDICT);
    expect(run.code).toBe(1);
    expect(hook.received).toHaveLength(1);
    expect(elsewhere.received).toHaveLength(0);
    expect(logLine(run)).toMatch(new RegExp(`attempts=1 .* error="HTTP ${code}`));
  });

  test.each([
    ['empty stdin', ''],
    ['blank lines only', '\n\r\n\n'],
  ])('%s: exits 0 without a request', async (_name, input) => {
    const hook = await webhook([status(500)]);
    const run = await forward(hook.url, input);
    expect(run.code).toBe(0);
    expect(hook.received).toHaveLength(0);
    expect(logLine(run)).toMatch(/result=ok lines=0/);
  });

  test('ignores unknown parameters the way ADS passes them (--name value)', async () => {
    const hook = await webhook([status(200)]);
    const run = await forward(hook.url, STANDARD_SSHDICT, ['-j', 'yes', '--perspective', 'Security Issues']);
    expect(run.code).toBe(0);
    expect(hook.received).toHaveLength(1);
  });

  test.each<[string, string[], RegExp]>([
    ['a missing --url', [SCRIPT, '--secret', SECRET], /usage error: the following arguments are required: --url/],
    ['a non-HTTP --url', [SCRIPT, '--url', 'ftp://x/', '--secret', SECRET], /usage error: --url must be an http:\/\/ or https:\/\/ URL/],
    ['a bad --insecure', [SCRIPT, '--url', 'https://x/', '--secret', SECRET, '--insecure', 'maybe'], /usage error: --insecure must be yes or no/],
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

  test('--help documents the ADS set-up and exits 0', async () => {
    const child = spawn(PYTHON, [SCRIPT, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    for (const text of ['--url', '--secret', '--ca-file', '--timeout', '--insecure', 'Perspective', 'Minimum priority to be reported', 'Initiate response']) {
      expect(stdout).toContain(text);
    }
    expect(stdout).not.toContain('--retry-delay');
    expect(/^[\x00-\x7f]*$/.test(stdout)).toBe(true); // ASCII: the appliance may run with LANG=C
  });

  test('appends its log line to the ADS log directory when it exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forwarder-log-'));
    try {
      const hook = await webhook([status(200)]);
      await forward(hook.url, STANDARD_SSHDICT, ['--log-dir', dir]);
      await forward(hook.url, STANDARD_SSHDICT, ['--log-dir', dir]);
      const lines = readFileSync(join(dir, 'ads-mitigator-forwarder.log'), 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      for (const line of lines) expect(line).toMatch(/ads-mitigator-forwarder\[\d+\]: result=ok status=200 lines=1 attempts=1 /);
      expect(lines.join('\n')).not.toContain(SECRET);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('HTTPS', () => {
    let dir: string;
    let caFile: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'forwarder-tls-'));
      caFile = join(dir, 'ca.pem');
      writeFileSync(caFile, TEST_CERT);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('--ca-file trusts the service certificate', async () => {
      const hook = await webhook([status(200)], true);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--ca-file', caFile]);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(1);
      expect(hook.received[0].headers.authorization).toBe(`Bearer ${SECRET}`);
    });

    test('an untrusted certificate fails at once: no retry, no request delivered', async () => {
      const hook = await webhook([status(200)], true);
      const run = await forward(hook.url, STANDARD_SSHDICT);
      expect(run.code).toBe(1);
      expect(hook.received).toHaveLength(0);
      expect(logLine(run)).toMatch(/attempts=1 .* error="connection failed: .*CERTIFICATE_VERIFY_FAILED/);
    });

    test('--insecure yes skips verification (lab only)', async () => {
      const hook = await webhook([status(200)], true);
      const run = await forward(hook.url, STANDARD_SSHDICT, ['--insecure', 'yes']);
      expect(run.code).toBe(0);
      expect(hook.received).toHaveLength(1);
    });
  });
});
