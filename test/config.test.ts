/** Configuration: defaults, one message per bad value, generated secrets that persist, targets files. */
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config';
import { newSecret } from '../src/secret';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ads-config-'));

test('embedded defaults: emulator target, 6h TTL, medium threshold, generated secrets', () => {
  const dir = tmp();
  const { config, generatedSecrets } = loadConfig({ DATA_DIR: dir });
  expect(config.temporal).toMatchObject({ address: undefined, namespace: 'default', taskQueue: 'ads-mitigator', uiPort: 8233, port: 7233 });
  expect(config.api).toMatchObject({ host: '127.0.0.1', port: 8080, webhookRateLimit: 600 });
  expect(config.block.ttlMs).toBe(6 * 3_600_000);
  expect(config.intake.minPriority).toBe('medium');
  expect(config.targets).toEqual([
    expect.objectContaining({ name: 'fortigate', url: undefined, token: config.emulator.token, groups: { ipv4: ['ads-blocked'], ipv6: ['ads-blocked6'] }, capacity: 600, enforcement: 'address-group' }),
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
  writeFileSync(
    file,
    'targets:\n  - { name: edge-a, url: "https://192.0.2.1", token: a }\n  - { name: edge-b, url: "https://192.0.2.2", token: b, group: g2, capacity: 300 }\n' +
      '  - { name: edge-c, url: "https://192.0.2.3", token: c, groups: [s1, s2] }\n  - { name: edge-d, url: "https://192.0.2.4", token: d, enforcement: threat-feed, feed: ads-feed }\n',
  );
  const { config } = loadConfig({ DATA_DIR: dir, TARGETS_FILE: file });
  expect(config.targets.map((t) => [t.name, t.enforcement, t.groups.ipv4, t.capacity, t.feed])).toEqual([
    ['edge-a', 'address-group', ['ads-blocked'], 600, undefined],
    ['edge-b', 'address-group', ['g2'], 300, undefined],
    ['edge-c', 'address-group', ['s1', 's2'], 600, undefined],
    ['edge-d', 'threat-feed', ['ads-blocked'], 600, 'ads-feed'],
  ]);
  writeFileSync(file, 'targets:\n  - { name: x, url: "https://192.0.2.1", token: a, enforcement: threat-feed }\n');
  expect(() => loadConfig({ DATA_DIR: dir, TARGETS_FILE: file })).toThrow(/threat-feed.*feed/s);
  expect(loadConfig({ DATA_DIR: dir, FORTIGATE_GROUP: 'a, b,c' }).config.targets[0].groups.ipv4).toEqual(['a', 'b', 'c']);
  expect(() => loadConfig({ DATA_DIR: dir, FORTIGATE_ENFORCEMENT: 'threat-feed' })).toThrow(/FORTIGATE_FEED: required/);
  expect(() => loadConfig({ DATA_DIR: dir, FORTIGATE_ENFORCEMENT: 'nftables' })).toThrow(/FORTIGATE_ENFORCEMENT="nftables"/);
  writeFileSync(file, 'targets:\n  - { name: "bad name!", url: "https://192.0.2.1" }\n');
  expect(() => loadConfig({ DATA_DIR: dir, TARGETS_FILE: file })).toThrow(/TARGETS_FILE.*name/s);
});

test('a policy that would block a victim is refused at start-up', () => {
  expect(() => loadConfig({ DATA_DIR: tmp(), BLOCK_SOURCE_METHODS: 'SCANS,DOS' })).toThrow(/DOS/);
});

test('API TLS: certificate and key together, readable; plain HTTP off loopback only with API_ALLOW_PLAINTEXT', () => {
  const dir = tmp();
  const cert = path.join(dir, 'api.crt');
  const key = path.join(dir, 'api.key');
  writeFileSync(cert, 'pem');
  writeFileSync(key, 'pem');
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig({ DATA_DIR: dir, ...env });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  expect(loadConfig({ DATA_DIR: dir }).config.api).toMatchObject({ tls: undefined, allowPlaintext: false, webhookAllowBearer: true, webhookAllowUntimedSignature: false });
  expect(loadConfig({ DATA_DIR: dir, API_HOST: '0.0.0.0', API_TLS_CERT: cert, API_TLS_KEY: key, API_TLS_CLIENT_CA: cert }).config.api.tls).toEqual({ certFile: cert, keyFile: key, clientCaFile: cert });
  expect(problems({ API_HOST: '0.0.0.0' })).toEqual([expect.stringMatching(/^API_HOST=0\.0\.0\.0: plain HTTP .* API_ALLOW_PLAINTEXT=true/)]);
  expect(problems({ API_HOST: '::1' })).toEqual([]);
  expect(problems({ API_HOST: '0.0.0.0', API_ALLOW_PLAINTEXT: 'true' })).toEqual([]);
  expect(problems({ API_TLS_CERT: cert })).toEqual(['API_TLS_KEY: required with API_TLS_CERT']);
  expect(problems({ API_TLS_CLIENT_CA: cert })).toEqual([expect.stringMatching(/^API_TLS_CLIENT_CA: needs API_TLS_CERT and API_TLS_KEY/)]);
  expect(problems({ API_TLS_CERT: cert, API_TLS_KEY: path.join(dir, 'missing.key') })).toEqual([`API_TLS_KEY: cannot read ${path.join(dir, 'missing.key')}`]);
  expect(problems({ WEBHOOK_ALLOW_BEARER: 'nope' })).toEqual([expect.stringMatching(/^WEBHOOK_ALLOW_BEARER=/)]);
  expect(loadConfig({ DATA_DIR: dir, WEBHOOK_ALLOW_BEARER: 'false', WEBHOOK_ALLOW_UNTIMED_SIGNATURE: 'true' }).config.api).toMatchObject({ webhookAllowBearer: false, webhookAllowUntimedSignature: true });
});

describe('start-up messages say what the operator typed (issue 14.6)', () => {
  const problemsOf = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.join('\n');
      throw err;
    }
    throw new Error('expected a ConfigError');
  };

  test('a FORTIGATE_URL that is not a URL, or has a path, says what is expected', () => {
    const bad = problemsOf({ DATA_DIR: tmp(), FORTIGATE_URL: 'not-a-url', FORTIGATE_TOKEN: 't' });
    expect(bad).toMatch(/^FORTIGATE_URL: "not-a-url" is not a URL: expected https:\/\/<address or name>\[:port\], e\.g\. https:\/\/192\.0\.2\.1/m);
    expect(bad).not.toMatch(/^Invalid URL$/m);
    expect(problemsOf({ DATA_DIR: tmp(), FORTIGATE_URL: 'https://192.0.2.1/api/v2', FORTIGATE_TOKEN: 't' })).toMatch(/FORTIGATE_URL: .*no path/);
    expect(problemsOf({ DATA_DIR: tmp(), FORTIGATE_URL: 'ftp://192.0.2.1', FORTIGATE_TOKEN: 't' })).toMatch(/FORTIGATE_URL: .*https:\/\//);
  });

  test('a missing FORTIGATE_CA_FILE (or TARGETS_FILE caFile) is named in words, not as a raw ENOENT', () => {
    const missing = path.join(tmp(), 'nope.pem');
    const bad = problemsOf({ DATA_DIR: tmp(), FORTIGATE_URL: 'https://192.0.2.1', FORTIGATE_TOKEN: 't', FORTIGATE_CA_FILE: missing });
    expect(bad).toContain(`FORTIGATE_CA_FILE: cannot read ${missing} (no such file)`);
    expect(bad).not.toContain('ENOENT');
    const dir = tmp();
    const file = path.join(dir, 'targets.yaml');
    writeFileSync(file, `targets:\n  - { name: a, url: "https://192.0.2.1", token: x, caFile: ${missing} }\n`);
    const fromFile = problemsOf({ DATA_DIR: dir, TARGETS_FILE: file });
    expect(fromFile).toContain(`target a: caFile: cannot read ${missing} (no such file)`);
    expect(fromFile).not.toContain('ENOENT');
  });

  test('secrets.json is written only when the configuration is valid', () => {
    const dir = tmp();
    expect(() => loadConfig({ DATA_DIR: dir, API_PORT: 'eighty' })).toThrow(ConfigError);
    expect(existsSync(path.join(dir, 'secrets.json'))).toBe(false);
    loadConfig({ DATA_DIR: dir });
    expect(existsSync(path.join(dir, 'secrets.json'))).toBe(true);
  });

  test('durations are shown as durations', () => {
    expect(problemsOf({ DATA_DIR: tmp(), BLOCK_TTL: '40d' })).toContain('BLOCK_TTL: 40d is longer than BLOCK_MAX_TTL (30d)');
  });
});

describe('NOTIFY_*', () => {
  test('off by default; a webhook and syslog with the kinds wanted', () => {
    expect(loadConfig({ DATA_DIR: tmp() }).config.notify).toMatchObject({ kinds: [], firewallFailingAfterMs: 120_000 });
    const { config } = loadConfig({
      DATA_DIR: tmp(),
      NOTIFY_WEBHOOK_URL: 'https://hooks.example.net/ads',
      NOTIFY_WEBHOOK_SECRET: 's3cret',
      NOTIFY_SYSLOG: 'tcp://[2001:db8::5]:6514',
      NOTIFY_EVENTS: 'unblock, block,EVICTION',
      NOTIFY_FIREWALL_FAILING_AFTER: '30s',
    });
    expect(config.notify).toEqual({
      kinds: ['block', 'unblock', 'eviction'],
      webhook: { url: 'https://hooks.example.net/ads', secret: 's3cret' },
      syslog: { protocol: 'tcp', host: '2001:db8::5', port: 6514 },
      firewallFailingAfterMs: 30_000,
    });
    expect(loadConfig({ DATA_DIR: tmp(), NOTIFY_SYSLOG: 'udp://127.0.0.1' }).config.notify).toMatchObject({ syslog: { protocol: 'udp', port: 514 }, kinds: expect.arrayContaining(['firewall-failing', 'rejected']) });
  });

  test('each bad value is named', () => {
    const problems = (() => {
      try {
        loadConfig({ DATA_DIR: tmp(), NOTIFY_WEBHOOK_URL: 'hooks', NOTIFY_SYSLOG: 'syslog.example:514', NOTIFY_EVENTS: 'block,unblok', NOTIFY_FIREWALL_FAILING_AFTER: '5' });
      } catch (err) {
        return (err as ConfigError).problems.join('\n');
      }
      return '';
    })();
    for (const text of ['NOTIFY_WEBHOOK_URL: "hooks" is not a URL', 'NOTIFY_WEBHOOK_SECRET: required', 'NOTIFY_SYSLOG: "syslog.example:514": expected udp://host:port', 'NOTIFY_EVENTS: unknown kind "unblok"', 'NOTIFY_FIREWALL_FAILING_AFTER']) {
      expect(problems).toContain(text);
    }
  });
});

test('MAX_TARGETS_PER_EVENT: default 100, from 1 to 1000', () => {
  expect(loadConfig({ DATA_DIR: tmp() }).config.intake.maxTargetsPerEvent).toBe(100);
  expect(loadConfig({ DATA_DIR: tmp(), MAX_TARGETS_PER_EVENT: '500' }).config.intake.maxTargetsPerEvent).toBe(500);
  expect(() => loadConfig({ DATA_DIR: tmp(), MAX_TARGETS_PER_EVENT: '0' })).toThrow(/MAX_TARGETS_PER_EVENT/);
  expect(() => loadConfig({ DATA_DIR: tmp(), MAX_TARGETS_PER_EVENT: '1001' })).toThrow(/MAX_TARGETS_PER_EVENT/);
});

test('EARLY_ADD: on by default, off with false; anything else is named', () => {
  expect(loadConfig({ DATA_DIR: tmp() }).config.block.earlyAdd).toBe(true);
  expect(loadConfig({ DATA_DIR: tmp(), EARLY_ADD: 'false' }).config.block.earlyAdd).toBe(false);
  expect(() => loadConfig({ DATA_DIR: tmp(), EARLY_ADD: 'sometimes' })).toThrow(/EARLY_ADD/);
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

describe('generated secrets', () => {
  test('never start with "-" (taken for an option after --secret), 32 URL-safe characters', () => {
    const secrets = Array.from({ length: 2000 }, () => newSecret());
    expect(secrets.filter((s) => s.startsWith('-'))).toEqual([]);
    for (const s of secrets) expect(s).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{31}$/);
    expect(new Set(secrets).size).toBe(secrets.length);
  });
});
