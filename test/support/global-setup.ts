/** Bundles the workflow code once for every test file (a bundle costs ~1 s and 1.6 MB). */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

export default async function globalSetup(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, '..', '..', 'workflows', 'index.ts'),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  const codePath = path.join(os.tmpdir(), `ads-mitigator-workflows-${process.pid}.js`);
  await writeFile(codePath, code);
  process.env.WORKFLOW_BUNDLE_PATH = codePath;
}
