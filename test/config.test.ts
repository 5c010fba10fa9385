/** Configuration: defaults, one message per bad value, generated secrets that persist, targets files. */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ads-config-'));

test('embedded defaults: emulator target, 6h TTL, medium threshold, generated secrets', () => {
  const dir = tmp();
  const { config, generatedSecrets } = loadConfig({ DATA_DIR: dir });
  expect(config.temporal).toMatchObject({ address: undefined, namespace: 'default', taskQueue: 'ads-mitigator', uiPort: 8233, port: 7233 });
  expect(config.api).toMatchObject({ host: '127.0.0.1', port: 8080, webhookRateLimit: 600 });
  expect(config.block.ttlMs).toBe(6 * 3_600_000);
  expect(config.intake.minPriority).toBe('medium');
  expect(config.targets).toEqual([
    expect.objectContaining({ name: 'fortigate', url: undefined, token: config.emulator.token, groups: { ipv4: 'ads-blocked', ipv6: 'ads-blocked6' }, capacity: 600 }),
  ]);
  expect(generatedSecrets.sort()).toEqual(['API_READ_TOKEN', 'API_WRITE_TOKEN', 'WEBHOOK_SECRET']);
  const file = path.join(dir, 'secrets.json');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const stored = JSON.parse(readFileSync(file, 'utf8'));
  expect(stored.WEBHOOK_SECRET).toBe(config.api.webhookSecret);
  expect(new Set([config.api.webhookSecret, config.api.readToken, config.api.writeToken]).size).toBe(3);

  const again = loadConfig({ DATA_DIR: dir });
  expect(again.generatedSecrets).toEqual([]);
  expect(again.config.api.webhookSecret).toBe(config.api.webhookSecret);
});

test('every bad value is reported at once, each with its variable name', () => {
  let error: unknown;
  try {
    loadConfig({ DATA_DIR: tmp(), API_PORT: '99999', BLOCK_TTL: '10', MIN_PRIORITY: 'urgent', FORTIGATE_TLS_INSECURE: 'maybe', WEBHOOK_RATE_LIMIT: '0', FORTIGATE_URL: 'https://192.0.2.1', ALLOWLIST: '10.0.0.1/8' });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const problems = (error as ConfigError).problems.join('\n');
  for (const name of ['API_PORT', 'BLOCK_TTL', 'MIN_PRIORITY', 'FORTIGATE_TLS_INSECURE', 'WEBHOOK_RATE_LIMIT', 'FORTIGATE_TOKEN', 'ALLOWLIST']) {
    expect(problems).toContain(name);
  }
});

test('a real FortiGate: its address joins the allowlist; a secret can come from a file', () => {
  const dir = tmp();
  writeFileSync(path.join(dir, 'token'), 'fw-token\n');
  const { config } = loadConfig({ DATA_DIR: dir, FORTIGATE_URL: 'https://192.0.2.1:10443', FORTIGATE_TOKEN_FILE: path.join(dir, 'token'), FORTIGATE_VDOM: 'dmz', BLOCK_TTL: '90s' });
  expect(config.targets[0]).toMatchObject({ url: 'https://192.0.2.1:10443', token: 'fw-token', vdom: 'dmz' });
  expect(config.ipPolicy.allowlist).toContain('192.0.2.1');
  expect(config.block.ttlMs).toBe(90_000);
});

test('TARGETS_FILE (YAML) describes several firewalls; a bad one names the field', () => {
  const dir = tmp();
  const file = path.join(dir, 'targets.yaml');
  writeFileSync(file, 'targets:\n  - { name: edge-a, url: "https://192.0.2.1", token: a }\n  - { name: edge-b, url: "https://192.0.2.2", token: b, group: g2, capacity: 300 }\n');
  const { config } = loadConfig({ DATA_DIR: dir, TARGETS_FILE: file });
  expect(config.targets.map((t) => [t.name, t.groups.ipv4, t.capacity])).toEqual([
    ['edge-a', 'ads-blocked', 600],
    ['edge-b', 'g2', 300],
  ]);
  writeFileSync(file, 'targets:\n  - { name: "bad name!", url: "https://192.0.2.1" }\n');
  expect(() => loadConfig({ DATA_DIR: dir, TARGETS_FILE: file })).toThrow(/TARGETS_FILE.*name/s);
});

test('a policy that would block a victim is refused at start-up', () => {
  expect(() => loadConfig({ DATA_DIR: tmp(), BLOCK_SOURCE_METHODS: 'SCANS,DOS' })).toThrow(/DOS/);
});

test('MAX_TARGETS_PER_EVENT: default 100, from 1 to 1000', () => {
  expect(loadConfig({ DATA_DIR: tmp() }).config.intake.maxTargetsPerEvent).toBe(100);
  expect(loadConfig({ DATA_DIR: tmp(), MAX_TARGETS_PER_EVENT: '500' }).config.intake.maxTargetsPerEvent).toBe(500);
  expect(() => loadConfig({ DATA_DIR: tmp(), MAX_TARGETS_PER_EVENT: '0' })).toThrow(/MAX_TARGETS_PER_EVENT/);
  expect(() => loadConfig({ DATA_DIR: tmp(), MAX_TARGETS_PER_EVENT: '1001' })).toThrow(/MAX_TARGETS_PER_EVENT/);
});

describe('syslog listener settings', () => {
  test('off by default; a port turns it on, for loopback senders on loopback', () => {
    expect(loadConfig({ DATA_DIR: tmp() }).config.syslog).toBeUndefined();
    expect(loadConfig({ DATA_DIR: tmp(), SYSLOG_UDP_PORT: '5514' }).config.syslog).toEqual({
      host: '127.0.0.1',
      udpPort: 5514,
      tcpPort: undefined,
      tls: undefined,
      allow: ['127.0.0.0/8', '::1'],
    });
  });

  test('remote senders: the listener binds every interface (IPv6 too when an IPv6 sender is allowed); SYSLOG_HOST wins', () => {
    const v4 = loadConfig({ DATA_DIR: tmp(), SYSLOG_TCP_PORT: '6514', SYSLOG_ALLOW: '192.0.2.10, 198.51.100.0/24' }).config.syslog;
    expect(v4).toMatchObject({ host: '0.0.0.0', tcpPort: 6514, allow: ['192.0.2.10', '198.51.100.0/24'] });
    expect(loadConfig({ DATA_DIR: tmp(), SYSLOG_TCP_PORT: '6514', SYSLOG_ALLOW: '2001:db8::10' }).config.syslog?.host).toBe('::');
    expect(loadConfig({ DATA_DIR: tmp(), SYSLOG_TCP_PORT: '6514', SYSLOG_ALLOW: '192.0.2.10', SYSLOG_HOST: '192.0.2.1' }).config.syslog?.host).toBe('192.0.2.1');
  });

  test('TLS needs the certificate, the key and the TCP port; the files must be readable', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'cert.pem'), 'x');
    writeFileSync(path.join(dir, 'key.pem'), 'x');
    const both = { SYSLOG_TLS_CERT: path.join(dir, 'cert.pem'), SYSLOG_TLS_KEY: path.join(dir, 'key.pem') };
    expect(loadConfig({ DATA_DIR: dir, SYSLOG_TCP_PORT: '6514', ...both }).config.syslog?.tls).toEqual({ certFile: both.SYSLOG_TLS_CERT, keyFile: both.SYSLOG_TLS_KEY });
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ DATA_DIR: dir, ...env });
      } catch (err) {
        return (err as ConfigError).problems.join('\n');
      }
      return '';
    };
    expect(problems({ SYSLOG_TCP_PORT: '6514', SYSLOG_TLS_CERT: both.SYSLOG_TLS_CERT })).toMatch(/give both/);
    expect(problems({ SYSLOG_UDP_PORT: '5514', ...both })).toMatch(/SYSLOG_TLS_CERT: TLS runs on SYSLOG_TCP_PORT/);
    expect(problems({ SYSLOG_TCP_PORT: '6514', ...both, SYSLOG_TLS_KEY: path.join(dir, 'missing.pem') })).toMatch(/SYSLOG_TLS_KEY/);
    expect(problems({ SYSLOG_UDP_PORT: '5514', SYSLOG_ALLOW: '10.0.0.1/8' })).toMatch(/SYSLOG_ALLOW/);
    expect(problems({ SYSLOG_UDP_PORT: '70000' })).toMatch(/SYSLOG_UDP_PORT/);
  });
});
