/** Unit tests of where the CLI finds the API and its token, and of its table output (no servers). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keyValues, table, when } from '../../src/cli/format';
import { apiBase, apiToken } from '../../src/cli/settings';

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
