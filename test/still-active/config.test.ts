/** STILL_ACTIVE configuration: off by default, each mode's settings, every bad value named, the password never in a message. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';
import { createStillActive, FlowmonStillActive, IntakeStillActive } from '../../src/still-active';

const dir = () => mkdtempSync(path.join(os.tmpdir(), 'ads-still-active-'));
const problems = (env: Record<string, string>): string => {
  try {
    loadConfig({ DATA_DIR: dir(), ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.join('\n');
    throw err;
  }
  return '';
};

test('off by default: no port, blocks are admitted without settings', () => {
  const { config } = loadConfig({ DATA_DIR: dir() });
  expect(config.stillActive).toMatchObject({ mode: 'off', windowMs: 15 * 60_000, maxTotalMs: 7 * 86_400_000 });
  expect(createStillActive(config.stillActive!)).toBeUndefined();
});

test('intake: no credentials needed', () => {
  const { config } = loadConfig({ DATA_DIR: dir(), STILL_ACTIVE: 'intake', STILL_ACTIVE_WINDOW: '30m', STILL_ACTIVE_MAX_TOTAL: '3d' });
  const runtime = createStillActive(config.stillActive!)!;
  expect(runtime.port).toBeInstanceOf(IntakeStillActive);
  expect(runtime.settings).toEqual({ source: 'intake', windowMs: 30 * 60_000, maxTotalMs: 3 * 86_400_000 });
});

test('flowmon: URL, user, password (or _FILE), optional CA and time zone', async () => {
  const d = dir();
  const secret = path.join(d, 'flowmon-password');
  writeFileSync(secret, 'from-a-file\n');
  const { config } = loadConfig({ DATA_DIR: d, STILL_ACTIVE: 'flowmon', FLOWMON_URL: 'https://192.0.2.50', FLOWMON_USER: 'mitigator', FLOWMON_PASSWORD_FILE: secret, FLOWMON_TIMEZONE: 'Europe/Prague' });
  expect(config.stillActive!.flowmon).toEqual({ url: 'https://192.0.2.50', user: 'mitigator', password: 'from-a-file', caFile: undefined, timeZone: 'Europe/Prague' });
  const runtime = createStillActive(config.stillActive!)!;
  expect(runtime.port).toBeInstanceOf(FlowmonStillActive);
  expect(runtime.settings.source).toBe('flowmon');
  await runtime.port.close();
});

test('bad values: each named, the password never shown', () => {
  expect(problems({ STILL_ACTIVE: 'sometimes' })).toMatch(/STILL_ACTIVE="sometimes": expected off, intake or flowmon/);
  const p = problems({ STILL_ACTIVE: 'flowmon', BLOCK_TTL: '1h', STILL_ACTIVE_WINDOW: '2h', STILL_ACTIVE_MAX_TOTAL: '30m', FLOWMON_URL: 'https://admin:hunter2-pw@flowmon.example/rest', FLOWMON_PASSWORD: 'hunter2-pw', FLOWMON_CA_FILE: '/nonexistent/ca.pem', FLOWMON_TIMEZONE: 'Mars/Olympus' });
  for (const name of ['STILL_ACTIVE_WINDOW', 'STILL_ACTIVE_MAX_TOTAL', 'FLOWMON_URL', 'FLOWMON_USER', 'FLOWMON_CA_FILE', 'FLOWMON_TIMEZONE']) expect(p).toContain(name);
  expect(p).not.toContain('hunter2-pw');
  expect(problems({ STILL_ACTIVE: 'flowmon' })).toMatch(/FLOWMON_URL: required[\s\S]*FLOWMON_USER: required[\s\S]*FLOWMON_PASSWORD/);
  expect(problems({ STILL_ACTIVE: 'off', STILL_ACTIVE_WINDOW: '10h' })).toBe(''); // off: nothing else is checked
});
