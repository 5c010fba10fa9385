#!/usr/bin/env node
'use strict';
// The CLI is TypeScript compiled to dist/ by `npm run build`. Before the first build (a fresh clone,
// `npx ads-mitigator --help`), build it once if the compiler is installed, else say what to run.
const { existsSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const entry = path.join(root, 'dist', 'src', 'cli', 'main.js');

if (!existsSync(entry)) {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    process.stderr.write(`ads-mitigator: the CLI is not built yet (${path.relative(process.cwd(), entry) || entry} is missing).\n` + `Run \`npm install && npm run build\` in ${root}, then try again.\n`);
    process.exit(1);
  }
  process.stderr.write('ads-mitigator: first run, building the CLI (npm run build)…\n');
  const built = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0 || !existsSync(entry)) {
    process.stderr.write(`ads-mitigator: the build failed; run \`npm run build\` in ${root} to see why.\n`);
    process.exit(1);
  }
}
require(entry).main();
