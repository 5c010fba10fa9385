/** The CLI in-process (runCli) against the API on the real stack. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/main';
import { eventually } from '../support/stack';
import { ApiStack, call, startApiStack, TARGET } from '../api/harness';

let s: ApiStack;
let env: Record<string, string>;

beforeAll(async () => {
  s = await startApiStack();
  env = { API_URL: s.url, API_WRITE_TOKEN: s.secrets.write, DATA_DIR: '/nonexistent' };
});
afterAll(async () => {
  await s?.stop();
});

async function cli(args: string[], over: Record<string, string | undefined> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { ...env, ...over } });
  return { code, stdout, stderr };
}
const show = async (ip: string) => (await call(s.url, `/v1/blocks/${encodeURIComponent(ip)}`, { token: s.secrets.read })).body;

describe('block, show, list, extend, unblock', () => {
  const ip = '203.0.113.80';

  it('block prints a table of targets', async () => {
    const r = await cli(['block', ip, '--ttl', '2h', '--reason', 'cli test']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const [title, header, row] = r.stdout.trim().split('\n');
    expect(title).toBe(`${ip} blocked`);
    expect(header.split(/\s+/)).toEqual(['TARGET', 'OUTCOME', 'STATE', 'EXPIRES']);
    expect(row).toMatch(new RegExp(`^${TARGET}\\s+started\\s+(pending|active)\\s+\\S+Z \\(in (1h 59m|2h)\\)$`));
    expect(await show(ip)).toMatchObject({ reason: 'cli test', actor: expect.stringMatching(/^api:write/) });
  });

  it('show prints the block; --json prints the API reply', async () => {
    await eventually(async () => (await show(ip)).state === 'active', 20_000, 'active');
    const human = await cli(['show', ip]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^ip:\\s+${ip.replace(/\./g, '\\.')}$`, 'm'));
    expect(human.stdout).toMatch(/^state:\s+active$/m);
    expect(human.stdout).toMatch(/^reason:\s+cli test$/m);
    const json = await cli(['--json', 'show', ip]);
    expect(JSON.parse(json.stdout)).toMatchObject({ ip, target: TARGET, state: 'active' });
  });

  it('list shows the block, filtered', async () => {
    await eventually(async () => (await cli(['list', '--ip', ip])).stdout.includes(ip), 20_000, 'listed');
    const r = await cli(['list', '--ip', '203.0.113.0/24', '--state', 'active']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0].split(/\s+/)).toEqual(['IP', 'TARGET', 'STATE', 'EXPIRES', 'EVENTS', 'METHOD', 'SEVERITY']);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${ip}\\s+${TARGET}\\s+active\\s`)));
    expect(lines.at(-1)).toMatch(/^\d+ blocks?$/);
    const json = JSON.parse((await cli(['--json', 'list', '--target', TARGET])).stdout);
    expect(json.blocks.map((b: { ip: string }) => b.ip)).toContain(ip);
    expect((await cli(['list', '--ip', '198.51.100.0/24'])).stdout).toBe('no blocks\n');
  });

  it('extend --by moves the expiry', async () => {
    const before = Date.parse((await show(ip)).expiresAt);
    const r = await cli(['extend', ip, '--by', '1h']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${ip} on ${TARGET} now expires at \\S+`));
    expect(Date.parse((await show(ip)).expiresAt) - before).toBe(3_600_000);
  });

  it('extend needs exactly one of --by and --until (usage error, exit 2)', async () => {
    const neither = await cli(['extend', ip]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/exactly one of --by/);
    const both = await cli(['extend', ip, '--by', '1h', '--until', '2030-01-01T00:00:00Z']);
    expect(both.code).toBe(2);
  });

  it('unblock lifts the block; unblocking an address not blocked succeeds and says so', async () => {
    const r = await cli(['unblock', ip, '--reason', 'done']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${ip} unblocked`));
    expect((await show(ip)).cancelledBy).toMatchObject({ reason: 'done' });
    const none = await cli(['unblock', '198.51.100.200']);
    expect(none).toMatchObject({ code: 0, stdout: '198.51.100.200 was not blocked\n' });
  });
});

describe('errors and credentials', () => {
  it('exits 1 with the API error message and code', async () => {
    const r = await cli(['block', '10.0.0.1']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: .*private.*\[ip-private, HTTP 422\]\n$/);
  });

  it('reads the tokens from DATA_DIR/secrets.json when the environment has none', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-secrets-'));
    writeFileSync(path.join(dir, 'secrets.json'), JSON.stringify({ API_READ_TOKEN: s.secrets.read, API_WRITE_TOKEN: s.secrets.write }));
    const r = await cli(['block', '203.0.113.81'], { API_WRITE_TOKEN: undefined, DATA_DIR: dir });
    expect(r.code).toBe(0);
  });

  it('uses the read token for reads, and a read token cannot write (403)', async () => {
    const only = { API_WRITE_TOKEN: undefined, API_READ_TOKEN: s.secrets.read };
    expect((await cli(['list'], only)).code).toBe(0);
    const r = await cli(['block', '203.0.113.82'], only);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/write token.*\[forbidden, HTTP 403\]/);
  });

  it('says how to give a token when there is none (401)', async () => {
    const r = await cli(['list'], { API_WRITE_TOKEN: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--token.*\[unauthorized, HTTP 401\]/);
  });

  it('--token overrides the environment', async () => {
    expect((await cli(['--token', 'wrong', 'list'])).code).toBe(1);
    expect((await cli(['--token', s.secrets.read, 'list'], { API_WRITE_TOKEN: 'wrong' })).code).toBe(0);
  });

  it('reports an unreachable API', async () => {
    const r = await cli(['--api', 'http://127.0.0.1:1', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: cannot reach the API at http:\/\/127\.0\.0\.1:1/);
  });

  it('exits 2 on a usage error and 0 on --help', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['list', '--state', 'bogus'])).code).toBe(2);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: ads-mitigator/);
    for (const cmd of ['block', 'unblock', 'extend', 'list', 'show', 'status']) expect(help.stdout).toContain(cmd);
  });
});

describe('status', () => {
  it('prints each check and exits 0 when ready', async () => {
    const r = await cli(['status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^temporal\s+ok$/m);
    expect(r.stdout).toMatch(new RegExp(`^firewall ${TARGET}\\s+ok \\(FortiOS v7`, 'm'));
    expect(r.stdout.trim().split('\n').at(-1)).toBe('ready');
    expect(JSON.parse((await cli(['--json', 'status'])).stdout).readyz.status).toBe('ready');
  });

  it('exits 1 naming the failing check when not ready', async () => {
    s.stack.emulator.setFaults({ outageUntil: Date.now() + 60_000 });
    try {
      // The service reuses a readiness result for a few seconds.
      const r = await eventually(async () => {
        const x = await cli(['status']);
        return x.code === 1 && x;
      }, 20_000, 'status NOT READY');
      expect(r.stdout).toMatch(new RegExp(`^firewall ${TARGET}\\s+FAIL`, 'm'));
      expect(r.stdout.trim().split('\n').at(-1)).toBe('NOT READY');
    } finally {
      s.stack.emulator.setFaults({ outageUntil: 0 });
    }
  });
});
