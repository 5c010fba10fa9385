/**
 * End to end, the way a user runs it: `node dist/src/main.js` (what `npm start` runs) on embedded defaults
 * with its own ports and data directory, the Flowmon forwarder invoked the way ADS invokes it, the REST API,
 * the Web UI and the `temporal` CLI from the venv — then a restart that must keep the running block.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporalCliPath } from '../../src/temporal/binaries';
import { eventually } from '../support/stack';
import { freePort } from '../../src/free-port';
import { buildDist } from '../support/processes';

const ROOT = path.join(__dirname, '..', '..');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ads-e2e-'));
let ports: { temporal: number; ui: number; api: number; emulator: number };
let proc: ChildProcess | undefined;
let output = '';

function secrets(): Record<string, string> {
  return JSON.parse(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8'));
}

async function api(pathname: string, token = secrets().API_WRITE_TOKEN): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${ports.api}${pathname}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function start(): Promise<void> {
  output = '';
  proc = spawn(process.execPath, ['dist/src/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      TEMPORAL_PORT: String(ports.temporal),
      TEMPORAL_UI_PORT: String(ports.ui),
      API_PORT: String(ports.api),
      FORTIOS_EMULATOR_PORT: String(ports.emulator),
      BLOCK_TTL: '1h',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that clean-up reaches the dev server it starts
  });
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  await eventually(async () => (await fetch(`http://127.0.0.1:${ports.api}/readyz`)).status === 200, 60_000, `readiness (output: ${output})`);
}

async function stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
  if (!proc || proc.exitCode !== null) return proc?.exitCode ?? null;
  const child = proc;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  // A stop that hangs must not leave the stack behind: kill the whole process group.
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

function forward(line: string): number {
  try {
    execFileSync('python3', ['scripts/flowmon-forwarder.py', '--url', `http://127.0.0.1:${ports.api}/v1/events`, '--secret', secrets().WEBHOOK_SECRET, '--spool-dir', path.join(dataDir, 'forwarder-spool')], {
      cwd: ROOT,
      input: line,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    return 0;
  } catch (err) {
    return (err as { status: number }).status;
  }
}

/** An extended-layout ADS line (17 tab-separated fields), as ADS writes it on the script's stdin. */
function adsLine(id: number, source: string): string {
  return [id, '2025-11-03 15:15:02', '2025-11-03 15:10:43', 'SSHDICT', ' ', ' ', 'SSH attack', 'Security Issues', 'High', 'Attack from a single attacker', '22', 'TCP', source, ' ', '198.51.100.10', 'WAN', ' '].join('\t') + '\n';
}

async function emulatorMembers(): Promise<string[]> {
  const state = (await (await fetch(`http://127.0.0.1:${ports.emulator}/__emulator/state`)).json()) as any;
  return state.tables.addrgrp.find((g: { name: string }) => g.name === 'ads-blocked').members;
}

beforeAll(async () => {
  await buildDist();
  ports = { temporal: await freePort(), ui: await freePort(), api: await freePort(), emulator: await freePort() };
  const t0 = Date.now();
  await start();
  console.log(`stack ready in ${Date.now() - t0} ms`);
}, 180_000);

afterAll(async () => {
  await stop('SIGINT');
});

test('on a fresh data directory: ready within 60 s, Web UI up, search attributes registered, secrets printed once', async () => {
  const headers = { authorization: `Bearer ${secrets().API_READ_TOKEN}` }; // anonymous callers hear only ready / not ready
  const ready = (await (await fetch(`http://127.0.0.1:${ports.api}/readyz`, { headers })).json()) as any;
  expect(ready.checks.temporal.ok).toBe(true);
  expect(Object.values(ready.checks.firewalls).every((f: any) => f.ok)).toBe(true);
  expect((await fetch(`http://127.0.0.1:${ports.ui}/`)).status).toBe(200);
  const list = execFileSync(temporalCliPath(), ['operator', 'search-attribute', 'list', '--address', `127.0.0.1:${ports.temporal}`], { encoding: 'utf8' });
  for (const name of ['BlockedIp', 'FirewallTarget', 'BlockState', 'BlockExpiresAt', 'AdsEventId', 'AdsSeverity']) expect(list).toContain(name);
  expect(output).toContain(`WEBHOOK_SECRET=${secrets().WEBHOOK_SECRET}`);
});

test('forwarder → webhook → workflow → member on the firewall; a re-delivery changes nothing; a repeat extends', async () => {
  const ip = '203.0.113.45';
  expect(forward(adsLine(4179523, ip))).toBe(0);
  await eventually(async () => (await emulatorMembers()).includes(`ads-${ip}`), 20_000, 'member on the emulator');
  // The member lands on the firewall a moment before the group's reply turns the block active.
  const first = await eventually(async () => { const b = (await api(`/v1/blocks/${ip}`)).body; return b.state === 'active' && b; }, 20_000, 'active');
  expect(first).toMatchObject({ ip, state: 'active', eventCount: 1 });

  expect(forward(adsLine(4179523, ip))).toBe(0); // ADS re-ran the script for the same event
  const again = (await api(`/v1/blocks/${ip}`)).body;
  expect(again.eventCount).toBe(1);
  expect(again.expiresAt).toBe(first.expiresAt);

  await new Promise((r) => setTimeout(r, 1100));
  expect(forward(adsLine(4179524, ip))).toBe(0); // a new event for the same attacker
  const repeated = (await api(`/v1/blocks/${ip}`)).body;
  expect(repeated.eventCount).toBe(2);
  expect(Date.parse(repeated.expiresAt)).toBeGreaterThan(Date.parse(first.expiresAt));
  expect((await api('/v1/blocks')).body.blocks.filter((b: { ip: string }) => b.ip === ip)).toHaveLength(1);

  expect(forward('not an ADS line\n')).toBe(1); // the service refused it: the forwarder says so
});

test('Ctrl-C stops everything cleanly; a restart keeps the running block and prints no secret', async () => {
  const ip = '203.0.113.45';
  expect(await stop('SIGINT')).toBe(0);
  await start();
  const block = (await api(`/v1/blocks/${ip}`)).body;
  expect(block).toMatchObject({ ip, state: 'active', eventCount: 2 });
  expect(await emulatorMembers()).toContain(`ads-${ip}`);
  expect(output).not.toContain(secrets().WEBHOOK_SECRET);
});
