/**
 * The enforcement configuration contract (design.md, "Enforcement backends"): FORTIGATE_ENFORCEMENT with its
 * default, FORTIGATE_GROUP as comma-separated shards, FORTIGATE_FEED, the TARGETS_FILE keys `enforcement`,
 * `groups`, `feed`, and the pull-feed credential. Bad values are refused at start with the variable's name.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ads-enf-config-'));
const REAL = { FORTIGATE_URL: 'https://192.0.2.1', FORTIGATE_TOKEN: 't' };

test('defaults to address-group; FORTIGATE_GROUP takes comma-separated shards', () => {
  expect(loadConfig({ DATA_DIR: tmp(), ...REAL }).config.targets[0]).toMatchObject({ enforcement: 'address-group', groups: { ipv4: ['ads-blocked'], ipv6: ['ads-blocked6'] } });
  const { config } = loadConfig({ DATA_DIR: tmp(), ...REAL, FORTIGATE_GROUP: 'blk-1, blk-2,blk-3', FORTIGATE_GROUP6: 'blk6-1,blk6-2', FORTIGATE_GROUP_CAPACITY: '300' });
  expect(config.targets[0]).toMatchObject({ groups: { ipv4: ['blk-1', 'blk-2', 'blk-3'], ipv6: ['blk6-1', 'blk6-2'] }, capacity: 300 });
});

test('threat-feed needs FORTIGATE_FEED; banned-ip and dry-run need nothing more; anything else is refused', () => {
  expect(loadConfig({ DATA_DIR: tmp(), ...REAL, FORTIGATE_ENFORCEMENT: 'threat-feed', FORTIGATE_FEED: 'ads-feed', FORTIGATE_FEED_CAPACITY: '300000' }).config.targets[0]).toMatchObject({
    enforcement: 'threat-feed',
    feed: 'ads-feed',
    feedCapacity: 300_000,
  });
  expect(() => loadConfig({ DATA_DIR: tmp(), ...REAL, FORTIGATE_ENFORCEMENT: 'threat-feed' })).toThrow(/FORTIGATE_FEED/);
  expect(() => loadConfig({ DATA_DIR: tmp(), ...REAL, FORTIGATE_ENFORCEMENT: 'threat-feed', FORTIGATE_FEED: 'x'.repeat(36) })).toThrow(/FORTIGATE_FEED.*35/);
  for (const kind of ['banned-ip', 'dry-run']) expect(loadConfig({ DATA_DIR: tmp(), ...REAL, FORTIGATE_ENFORCEMENT: kind }).config.targets[0].enforcement).toBe(kind);
  expect(() => loadConfig({ DATA_DIR: tmp(), ...REAL, FORTIGATE_ENFORCEMENT: 'iptables' })).toThrow(/FORTIGATE_ENFORCEMENT.*address-group, threat-feed, banned-ip/);
});

test('TARGETS_FILE keys enforcement, groups (list or comma string), feed', () => {
  const dir = tmp();
  const file = path.join(dir, 'targets.yaml');
  writeFileSync(
    file,
    [
      'targets:',
      '  - { name: a, url: "https://192.0.2.1", token: x, groups: [g1, g2], groups6: "h1,h2" }',
      '  - { name: b, url: "https://192.0.2.2", token: x, enforcement: threat-feed, feed: ads-feed }',
      '  - { name: c, url: "https://192.0.2.3", token: x, enforcement: banned-ip }',
    ].join('\n'),
  );
  const { config } = loadConfig({ DATA_DIR: dir, TARGETS_FILE: file });
  expect(config.targets.map((t) => [t.name, t.enforcement, t.groups.ipv4, t.groups.ipv6, t.feed])).toEqual([
    ['a', 'address-group', ['g1', 'g2'], ['h1', 'h2'], undefined],
    ['b', 'threat-feed', ['ads-blocked'], ['ads-blocked6'], 'ads-feed'],
    ['c', 'banned-ip', ['ads-blocked'], ['ads-blocked6'], undefined],
  ]);
  writeFileSync(file, 'targets:\n  - { name: b, url: "https://192.0.2.2", token: x, enforcement: threat-feed }\n');
  expect(() => loadConfig({ DATA_DIR: dir, TARGETS_FILE: file })).toThrow(/target "b".*feed/);
});

test('the pull-feed credential: both or neither', () => {
  expect(loadConfig({ DATA_DIR: tmp(), ...REAL }).config.api.feedPull).toBeUndefined();
  expect(loadConfig({ DATA_DIR: tmp(), ...REAL, FEED_PULL_USER: 'fw', FEED_PULL_PASSWORD: 'pw' }).config.api.feedPull).toEqual({ user: 'fw', password: 'pw' });
  expect(() => loadConfig({ DATA_DIR: tmp(), ...REAL, FEED_PULL_USER: 'fw' })).toThrow(/FEED_PULL_USER and FEED_PULL_PASSWORD/);
  let message = '';
  try {
    loadConfig({ DATA_DIR: tmp(), ...REAL, FEED_PULL_PASSWORD: 'very-secret-value' });
  } catch (err) {
    message = String(err);
  }
  expect(message).toMatch(/FEED_PULL/);
  expect(message).not.toContain('very-secret-value');
});
