#!/usr/bin/env node
'use strict';
// Thin shim: the CLI is TypeScript compiled to dist/ by `npm run build`.
require('../dist/src/cli/main.js').main();
