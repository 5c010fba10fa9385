/** Unit tests of where the CLI finds the API and its token, and of its table output (no servers). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { blockDetails, keyValues, table, when } from '../../src/cli/format';
import { apiBase, apiToken, cliEnvironment } from '../../src/cli/settings';
import type { BlockStatus } from '../../workflows/messages';

describe('apiBase', () => {
  it('prefers --api, then API_URL, then API_HOST/API_PORT, then 127.0.0.1:8080', () => {
    expect(apiBase('http://a:1/', { API_URL: 'http://b:2' })).toBe('http://a:1');
    expect(apiBase(undefined, { API_URL: 'http://b:2/', API_HOST: 'c' })).toBe('http://b:2');
    expect(apiBase(undefined, { API_HOST: '10.0.0.5', API_PORT: '9000' })).toBe('http://10.0.0.5:9000');
    expect(apiBase(undefined, { API_HOST: '::1' })).toBe('http://[::1]:8080');
    expect(apiBase(undefined, {})).toBe('http://127.0.0.1:8080');
  });

  it('reaches a service listening on every interface through loopback', () => {
    expect(apiBase(undefined, { API_HOST: '0.0.0.0', API_PORT: '8081' })).toBe('http://127.0.0.1:8081');
  });
});

describe('apiToken', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-settings-'));
  writeFileSync(path.join(dir, 'secrets.json'), JSON.stringify({ API_READ_TOKEN: 'file-read', API_WRITE_TOKEN: 'file-write' }));

  it('prefers --token, then the environment, then DATA_DIR/secrets.json', () => {
    expect(apiToken('flag', 'write', { API_WRITE_TOKEN: 'env', DATA_DIR: dir })).toBe('flag');
    expect(apiToken(undefined, 'write', { API_WRITE_TOKEN: 'env', DATA_DIR: dir })).toBe('env');
    expect(apiToken(undefined, 'write', { DATA_DIR: dir })).toBe('file-write');
    expect(apiToken(undefined, 'read', { DATA_DIR: dir })).toBe('file-read');
  });

  it('reads with the write token when there is no read token, and the reverse', () => {
    expect(apiToken(undefined, 'read', { API_WRITE_TOKEN: 'w', DATA_DIR: '/nonexistent' })).toBe('w');
    expect(apiToken(undefined, 'write', { API_READ_TOKEN: 'r', DATA_DIR: '/nonexistent' })).toBe('r');
    expect(apiToken(undefined, 'read', { DATA_DIR: '/nonexistent' })).toBeUndefined();
  });

  it('treats an unreadable secrets.json as absent', () => {
    const bad = mkdtempSync(path.join(os.tmpdir(), 'cli-settings-'));
    writeFileSync(path.join(bad, 'secrets.json'), '{not json');
    expect(apiToken(undefined, 'read', { DATA_DIR: bad })).toBeUndefined();
  });
});

describe('format', () => {
  it('pads columns to the widest cell and shows empty cells as "-"', () => {
    const out = table(
      [
        { ip: '203.0.113.1', state: 'active' },
        { ip: '2001:db8::1', state: undefined },
      ],
      ['ip', 'state'],
    );
    expect(out).toBe('IP           STATE\n203.0.113.1  active\n2001:db8::1  -\n');
  });

  it('aligns key/value lines and drops empty values', () => {
    expect(keyValues([['ip', '1.2.3.4'], ['ended', undefined], ['expires', 'x']])).toBe('ip:       1.2.3.4\nexpires:  x\n');
  });

  it('says how far away a time is', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(when('2030-01-01T06:30:00.000Z', now)).toBe('2030-01-01T06:30:00.000Z (in 6h 30m)');
    expect(when('2029-12-29T23:59:55.000Z', now)).toBe('2029-12-29T23:59:55.000Z (2d ago)');
    expect(when('2029-12-30T00:00:05.000Z', now)).toBe('2029-12-30T00:00:05.000Z (1d 23h ago)');
    expect(when(undefined, now)).toBeUndefined();
  });
});

describe('show on an ended block (issue 14.6)', () => {
  const now = Date.parse('2030-01-01T00:10:00Z');
  const base: BlockStatus = {
    workflowId: 'block:fw1:203.0.113.9',
    target: 'fw1',
    ip: '203.0.113.9',
    family: 'ipv4',
    group: 'ads-blocked',
    state: 'active',
    reason: 'test',
    actor: 'ads',
    createdAt: '2030-01-01T00:00:00.000Z',
    blockedAt: '2030-01-01T00:00:01.000Z',
    expiresAt: '2030-01-01T06:00:00.000Z',
    events: [],
    eventCount: 1,
    extensions: [],
  };

  it('an active block says when it expires', () => {
    expect(blockDetails(base, now)).toMatch(/^expires:\s+2030-01-01T06:00:00.000Z \(in 5h 50m\)$/m);
  });

  it('a cancelled block says when it ended and who cancelled it, never "expires in"', () => {
    const out = blockDetails(
      { ...base, state: 'cancelled', endedAt: '2030-01-01T00:05:00.000Z', cancelledBy: { actor: 'api:write:alice', reason: 'false positive', at: '2030-01-01T00:04:59.000Z' } },
      now,
    );
    expect(out).not.toMatch(/\(in /);
    expect(out).not.toMatch(/^expires:/m);
    expect(out).toMatch(/^state:\s+cancelled$/m);
    expect(out).toMatch(/^was to expire:\s+2030-01-01T06:00:00.000Z$/m);
    expect(out).toMatch(/^ended:\s+2030-01-01T00:05:00.000Z \(5m ago\)$/m);
    expect(out).toMatch(/^cancelled by:\s+api:write:alice \(false positive\)/m);
  });

  it('a block whose unblock is in progress says so', () => {
    const out = blockDetails({ ...base, cancelledBy: { actor: 'a', reason: 'r', at: '2030-01-01T00:09:00.000Z' } }, now);
    expect(out).toMatch(/^state:\s+active \(unblock requested, being lifted\)$/m);
    expect(out).not.toMatch(/\(in /);
  });

  it('an expired or evicted block shows no future expiry', () => {
    for (const state of ['expired', 'evicted', 'rejected', 'releasing'] as const) {
      expect(blockDetails({ ...base, state, endedAt: '2030-01-01T00:09:00.000Z' }, now)).not.toMatch(/\(in /);
    }
  });
});

describe('the CLI reads .env like the service (issue 14.6)', () => {
  it('takes variables from <cwd>/.env; a variable set in the environment wins', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-dotenv-'));
    writeFileSync(path.join(dir, '.env'), 'API_PORT=8099\nAPI_WRITE_TOKEN=from-file\n# comment\n');
    const env = cliEnvironment({ API_WRITE_TOKEN: 'from-env' }, dir);
    expect(env).toMatchObject({ API_PORT: '8099', API_WRITE_TOKEN: 'from-env' });
    expect(apiBase(undefined, env)).toBe('http://127.0.0.1:8099');
    expect(cliEnvironment({ X: '1' }, mkdtempSync(path.join(os.tmpdir(), 'cli-dotenv-')))).toEqual({ X: '1' });
  });
});

describe('bin/ads-mitigator.js before the first build (issue 14.6)', () => {
  it('says what to run when there is neither dist/ nor a compiler, instead of crashing', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'cli-bin-'));
    mkdirSync(path.join(root, 'bin'));
    copyFileSync(path.join(__dirname, '..', '..', 'bin', 'ads-mitigator.js'), path.join(root, 'bin', 'ads-mitigator.js'));
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'ads-mitigator.js'), '--help'], { encoding: 'utf8', cwd: root });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('the CLI is not built yet');
    expect(r.stderr).toContain(`Run \`npm install && npm run build\` in ${root}`);
    expect(r.stderr).not.toMatch(/Cannot find module|at Module/);
  });
});
