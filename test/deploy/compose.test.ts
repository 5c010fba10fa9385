/**
 * docker-compose.yml cannot run here (no Docker engine), so it is checked for what would break silently:
 * it parses, the Temporal service runs with the same deploy/ files as scripts/production-stack, and the
 * version it pins is the one the production stack builds.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { TEMPORAL_SERVER_VERSION } from '../../src/production/temporal-build';

const ROOT = path.join(__dirname, '..', '..');
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'));

test('the temporal service uses deploy/temporal/config.yaml and deploy/dynamicconfig, at the version the production stack builds', () => {
  const t = compose.services.temporal;
  expect(t.volumes).toEqual(expect.arrayContaining([expect.stringMatching(/^\.\/deploy\/temporal\/config\.yaml:/), expect.stringMatching(/^\.\/deploy\/dynamicconfig:/)]));
  expect(t.command.join('\n')).toContain('--config-file /etc/temporal/config/ads-mitigator.yaml');
  expect(t.environment.DYNAMIC_CONFIG_FILE_PATH).toBe('/etc/temporal/config/dynamicconfig/production.yaml');
  for (const s of ['temporal', 'temporal-schema', 'temporal-bootstrap']) {
    expect(compose.services[s].image).toContain(`:\${TEMPORAL_VERSION:-${TEMPORAL_SERVER_VERSION.replace(/^v/, '')}}`);
  }
});

test('every service a service depends on exists; workers and API run the image with their own entry points', () => {
  for (const [name, s] of Object.entries<any>(compose.services)) {
    for (const dep of Object.keys(s.depends_on ?? {})) expect({ name, dep, exists: dep in compose.services }).toEqual({ name, dep, exists: true });
  }
  expect(compose.services.worker.command).toEqual(['node', 'dist/src/worker/main.js']);
  expect(compose.services.api.command).toEqual(['node', 'dist/src/api/main.js']);
});

test('the dynamic config and the server config template are well-formed', () => {
  const dyn = parse(readFileSync(path.join(ROOT, 'deploy', 'dynamicconfig', 'production.yaml'), 'utf8'));
  for (const [key, values] of Object.entries<any>(dyn)) {
    expect({ key, ok: Array.isArray(values) && values.every((v) => 'value' in v) }).toEqual({ key, ok: true });
  }
  const template = readFileSync(path.join(ROOT, 'deploy', 'temporal', 'config.yaml'), 'utf8');
  expect(template.split('\n')[0]).toBe('# enable-template'); // else the server reads the {{ }} literally
  expect(template).toContain('pluginName: postgres12');
});
