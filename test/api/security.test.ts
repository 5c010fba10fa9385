/**
 * The API's transport and credentials against the real stack: HTTPS with a private CA (the forwarder and
 * the CLI succeed, plain HTTP is refused), mutual TLS, the signed webhook's replay window (nothing is
 * started for a replay), and a /readyz that tells anonymous callers nothing and spares the firewall.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import pino from 'pino';
import { Agent, fetch as undiciFetch } from 'undici';
import { signedHmac, hmacSha256 } from '../../src/api/auth';
import type { Config } from '../../src/config';
import { RunningApiServer, startApiServer } from '../../src/api/server';
import { runCli } from '../../src/cli/main';
import { canonicalIp } from '../../src/policy/ip-policy';
import { blockWorkflowId } from '../../workflows/messages';
import { makePki, Pki } from '../support/pki';
import { eventually } from '../support/stack';
import { adsLine, ApiStack, call, captureLogger, eventId, startApiStack, TARGET } from './harness';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'flowmon-forwarder.py');
const PYTHON = process.env.FORWARDER_PYTHON ?? 'python3';

let s: ApiStack;
let pki: Pki;
let mtls: RunningApiServer;

/** Another server on the same stack, with these API settings over the stack's. */
function serverWith(api: Partial<Config['api']>, logger = pino({ level: 'silent' })): Promise<RunningApiServer> {
  return startApiServer({
    config: { ...s.config, api: { ...s.config.api, ...api } },
    blocks: s.blocks,
    temporal: s.stack.client,
    firewalls: new Map([[TARGET, s.stack.firewall]]),
    logger,
    metrics: s.metrics,
    limits: { webhookPerMinute: 100_000 },
  });
}

beforeAll(async () => {
  pki = makePki();
  s = await startApiStack({ api: { tls: { certFile: pki.serverCert, keyFile: pki.serverKey } } });
  mtls = await serverWith({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.caCert } });
});
afterAll(async () => {
  await mtls?.close();
  await s?.stop();
  pki?.remove();
});

/** fetch through undici with the given TLS material (Node's fetch cannot take a CA). */
async function tlsGet(url: string, tls: { ca?: boolean; client?: boolean } = {}, headers: Record<string, string> = {}) {
  const agent = new Agent({
    connect: {
      ...(tls.ca ? { ca: readFileSync(pki.caCert) } : {}),
      ...(tls.client ? { cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) } : {}),
    },
  });
  try {
    const res = await undiciFetch(url, { dispatcher: agent, headers });
    return { status: res.status, body: (await res.json()) as any };
  } finally {
    await agent.close();
  }
}

/** The innermost error message of a failed fetch. */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    let e = err as { message?: string; code?: string; cause?: unknown };
    const parts: string[] = [];
    for (let depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) parts.push(`${e.code ?? ''} ${e.message ?? ''}`);
    return parts.join(' / ');
  }
  throw new Error('expected the request to fail');
}

function forward(url: string, input: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key)) delete env[key];
  const child = spawn(PYTHON, [SCRIPT, '--url', url, '--secret', s.secrets.webhook, '--timeout', '5', '--retry-delay', '0.05', '--spool-dir', join(pki.dir, `spool-${eventId()}`), ...args], { env });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function cli(args: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { API_WRITE_TOKEN: s.secrets.write, DATA_DIR: '/nonexistent', ...env } });
  return { code, stdout, stderr };
}

const neverStarted = async (ip: string) => {
  const handle = s.stack.client.workflow.getHandle(blockWorkflowId(TARGET, canonicalIp(ip) ?? ip));
  await expect(handle.describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
};
const blockOf = (ip: string) => s.blocks.get(ip, TARGET).catch(() => undefined);

let ipCounter = 60;
const freshIp = () => `203.0.113.${ipCounter++}`;

describe('HTTPS with a private CA', () => {
  it('serves HTTPS: a client trusting the CA gets through, one that does not is refused', async () => {
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await tlsGet(`${s.url}/healthz`, { ca: true })).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await failure(tlsGet(`${s.url}/healthz`))).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify|self.signed/i);
  });

  it('refuses plain HTTP on the TLS port', async () => {
    const plain = s.url.replace(/^https:/, 'http:');
    const message = await failure(fetch(`${plain}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${s.secrets.webhook}` }, body: adsLine({ id: eventId(), source: freshIp() }) }));
    expect(message).toMatch(/fetch failed|ECONNRESET|socket|closed/i);
  });

  it('the forwarder with --ca-file delivers a signed event and the block starts', async () => {
    const ip = freshIp();
    const run = await forward(`${s.url}/v1/events`, `${adsLine({ id: eventId(), source: ip })}\n`, ['--ca-file', pki.caCert]);
    expect(run.stderr).toMatch(/result=ok .*started=1/);
    expect(run.code).toBe(0);
    await eventually(async () => (await blockOf(ip))?.state === 'active', 20_000, 'block active');
  });

  it('the forwarder without the CA fails loudly and keeps the line', async () => {
    const run = await forward(`${s.url}/v1/events`, `${adsLine({ id: eventId(), source: freshIp() })}\n`, []);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/CERTIFICATE_VERIFY_FAILED/);
    expect(run.stderr).toMatch(/spooled=1/);
  });

  it('the CLI with ADS_MITIGATOR_CA_FILE (or --ca-file) lists blocks and reads the detailed status', async () => {
    const list = await cli(['list'], { API_URL: s.url, ADS_MITIGATOR_CA_FILE: pki.caCert });
    expect(list).toMatchObject({ code: 0, stderr: '' });
    expect(list.stdout).toMatch(/\d+ blocks?\n$/);
    const status = await cli(['--ca-file', pki.caCert, 'status'], { API_URL: s.url });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^firewall ${TARGET}\\s+ok \\(FortiOS v7`, 'm'));
  });

  it('the CLI without the CA, or with an unreadable CA file, fails with a reason', async () => {
    const untrusted = await cli(['list'], { API_URL: s.url });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/cannot reach the API at https:.*(UNABLE_TO_VERIFY|verify|certificate)/i);
    const missing = await cli(['list'], { API_URL: s.url, ADS_MITIGATOR_CA_FILE: '/nonexistent/ca.pem' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the CA file \/nonexistent\/ca\.pem: ENOENT/);
  });
});

describe('mutual TLS', () => {
  it('refuses a client without a certificate; accepts one the CA signed', async () => {
    expect(await failure(tlsGet(`${mtls.url}/healthz`, { ca: true }))).toMatch(/certificate required|ECONNRESET|socket|closed|alert/i);
    expect(await tlsGet(`${mtls.url}/healthz`, { ca: true, client: true })).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('the forwarder and the CLI present their client certificates', async () => {
    const ip = freshIp();
    const input = `${adsLine({ id: eventId(), source: ip })}\n`;
    const without = await forward(`${mtls.url}/v1/events`, input, ['--ca-file', pki.caCert]);
    expect(without.stderr).toMatch(/spooled=1/);
    const run = await forward(`${mtls.url}/v1/events`, input, ['--ca-file', pki.caCert, '--client-cert', pki.clientCert, '--client-key', pki.clientKey]);
    expect(run.stderr).toMatch(/result=ok .*started=1/);
    expect(run.code).toBe(0);
    const env = { API_URL: mtls.url, ADS_MITIGATOR_CA_FILE: pki.caCert };
    expect((await cli(['list'], env)).code).toBe(1);
    expect(await cli(['list'], { ...env, ADS_MITIGATOR_CLIENT_CERT: pki.clientCert, ADS_MITIGATOR_CLIENT_KEY: pki.clientKey })).toMatchObject({ code: 0, stderr: '' });
  });
});

describe('signed webhook with a replay window', () => {
  const body = (ip: string) => JSON.stringify({ lines: [adsLine({ id: eventId(), source: ip })] });
  const signedPost = (base: string, raw: string, ageSeconds: number) => {
    const ts = String(Math.floor(Date.now() / 1000) - ageSeconds);
    const headers = { 'content-type': 'application/json', 'x-ads-timestamp': ts, 'x-ads-signature': `sha256=${signedHmac(s.secrets.webhook, ts, raw).toString('hex')}` };
    return tlsPost(base, raw, headers);
  };
  async function tlsPost(base: string, raw: string, headers: Record<string, string>) {
    const agent = new Agent({ connect: { ca: readFileSync(pki.caCert) } });
    try {
      const res = await undiciFetch(`${base}/v1/events`, { method: 'POST', dispatcher: agent, headers, body: raw });
      return { status: res.status, body: (await res.json()) as any };
    } finally {
      await agent.close();
    }
  }

  it('accepts a fresh signature; refuses a replay outside the window with 401, starting nothing', async () => {
    const ip = freshIp();
    const block = jest.spyOn(s.blocks, 'block');
    try {
      const replay = await signedPost(s.url, body(ip), 301);
      expect(replay.status).toBe(401);
      expect(replay.body.error.message).toMatch(/more than 300 s from the service's clock/);
      expect(block).not.toHaveBeenCalled();
      await neverStarted(ip);
      const fresh = await signedPost(s.url, body(ip), 0);
      expect(fresh.status).toBe(200);
      expect(fresh.body.events[0].ips[0]).toMatchObject({ ip, outcome: 'started' });
    } finally {
      block.mockRestore();
    }
  });

  it('refuses the old signature without timestamp unless the compatibility flag is on', async () => {
    const ip = freshIp();
    const raw = body(ip);
    const headers = { 'content-type': 'application/json', 'x-ads-signature': `sha256=${hmacSha256(s.secrets.webhook, raw).toString('hex')}` };
    const refused = await tlsPost(s.url, raw, headers);
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toMatch(/without X-ADS-Timestamp is refused/);
    await neverStarted(ip);
    const { logger, lines } = captureLogger();
    const compat = await serverWith({ tls: s.config.api.tls, webhookAllowUntimedSignature: true }, logger);
    try {
      expect((await tlsPost(compat.url, raw, headers)).status).toBe(200);
      expect(lines.some((l) => /signed without timestamp/.test(l) && JSON.parse(l).level === 40)).toBe(true);
    } finally {
      await compat.close();
    }
  });

  it('WEBHOOK_ALLOW_BEARER=false refuses the bearer secret; the forwarder signs, so it still delivers', async () => {
    const noBearer = await serverWith({ tls: s.config.api.tls, webhookAllowBearer: false });
    try {
      const ip = freshIp();
      const r = await tlsPost(noBearer.url, body(ip), { 'content-type': 'application/json', authorization: `Bearer ${s.secrets.webhook}` });
      expect(r.status).toBe(401);
      expect(r.body.error.message).toMatch(/WEBHOOK_ALLOW_BEARER=false/);
      await neverStarted(ip);
      const run = await forward(`${noBearer.url}/v1/events`, `${adsLine({ id: eventId(), source: ip })}\n`, ['--ca-file', pki.caCert]);
      expect(run.stderr).toMatch(/result=ok .*started=1/);
    } finally {
      await noBearer.close();
    }
  });
});

describe('/readyz', () => {
  const statusReads = () => Object.entries(s.stack.emulator.state.counters.reads).filter(([k]) => /status/i.test(k)).reduce((n, [, v]) => n + v, 0);

  it('tells an anonymous caller ready or not, nothing else; a read token sees each check', async () => {
    const anonymous = await tlsGet(`${s.url}/readyz`, { ca: true });
    expect(anonymous).toEqual({ status: 200, body: { status: 'ready' } });
    expect(JSON.stringify(anonymous.body)).not.toMatch(/v7\.|FGVM|EMULATOR/i);
    const detailed = await tlsGet(`${s.url}/readyz`, { ca: true }, { authorization: `Bearer ${s.secrets.read}` });
    expect(detailed.body.checks.firewalls[TARGET]).toMatchObject({ ok: true, version: expect.stringMatching(/^v7/), hostname: expect.any(String) });
    const wrong = await tlsGet(`${s.url}/readyz`, { ca: true }, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
  });

  it('when not ready, an anonymous caller hears 503 without the reason', async () => {
    s.stack.emulator.setFaults({ outageUntil: Date.now() + 60_000 });
    try {
      const down = await eventually(async () => {
        const r = await tlsGet(`${s.url}/readyz`, { ca: true });
        return r.status === 503 && r;
      }, 20_000, 'not ready');
      expect(down.body.error).toEqual({ code: 'not-ready', message: expect.not.stringMatching(/firewall|temporal|fw1/) });
      const detailed = await tlsGet(`${s.url}/readyz`, { ca: true }, { authorization: `Bearer ${s.secrets.read}` });
      expect(detailed.body.error.message).toMatch(/firewall fw1/);
    } finally {
      s.stack.emulator.setFaults({ outageUntil: 0 });
    }
  });

  it('a flood of probes reaches the firewall at most once per cache period', async () => {
    await eventually(async () => (await tlsGet(`${s.url}/readyz`, { ca: true })).status === 200, 20_000, 'ready again');
    const before = statusReads();
    const t0 = Date.now();
    const replies = await Promise.all(Array.from({ length: 50 }, () => tlsGet(`${s.url}/readyz`, { ca: true })));
    const elapsed = Date.now() - t0;
    expect(replies.every((r) => r.status === 200)).toBe(true);
    // One cached result (3 s) serves them all; on a slow box the flood may span one more period.
    expect(statusReads() - before).toBeLessThanOrEqual(1 + Math.floor(elapsed / 3000));
  });
});

describe('plain HTTP off loopback', () => {
  it('is refused without API_ALLOW_PLAINTEXT, and logged loudly with it', async () => {
    await expect(startApiServer({ config: { ...s.config, api: { ...s.config.api, tls: undefined } }, host: '0.0.0.0', blocks: s.blocks, temporal: s.stack.client, firewalls: new Map(), logger: pino({ level: 'silent' }) })).rejects.toThrow(/API_ALLOW_PLAINTEXT=true/);
    const { logger, lines } = captureLogger();
    const open = await startApiServer({ config: { ...s.config, api: { ...s.config.api, tls: undefined, allowPlaintext: true } }, host: '0.0.0.0', blocks: s.blocks, temporal: s.stack.client, firewalls: new Map(), logger, metrics: s.metrics });
    try {
      expect(lines.some((l) => /PLAIN HTTP on a non-loopback address/.test(l) && JSON.parse(l).level === 40)).toBe(true);
      expect((await call(open.url.replace('0.0.0.0', '127.0.0.1'), '/healthz')).status).toBe(200);
    } finally {
      await open.close();
    }
  });
});
