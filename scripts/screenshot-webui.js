#!/usr/bin/env node
/**
 * Screenshots of the Temporal Web UI as an operator sees it (docs/web-ui-*.png): the block list with our
 * search attributes as columns, and one block's page with its summary and current details. Run against a
 * stack started as the README says (`npm start`), with at least one block:
 *
 *   npm i --no-save playwright-core && node scripts/screenshot-webui.js http://127.0.0.1:8233 docs
 *
 * Uses Debian's chromium (/usr/bin/chromium, `apt-get install chromium`); playwright-core downloads nothing.
 * Not part of the test suite: the pictures document the README's "Operating it" section.
 */
const { chromium } = require('playwright-core');

const COLUMNS = ['BlockedIp', 'BlockState', 'BlockExpiresAt', 'AdsMethod', 'AdsSeverity', 'FirewallTarget', 'AddressGroup'];

async function main() {
  const [ui = 'http://127.0.0.1:8233', outDir = 'docs', namespace = 'default'] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1700, height: 700 } });
    const query = encodeURIComponent('WorkflowType="ipBlock" AND ExecutionStatus="Running"');
    await page.goto(`${ui}/namespaces/${namespace}/workflows?query=${query}`);
    await page.getByText('block:', { exact: false }).first().waitFor({ timeout: 60_000 });
    await addColumns(page);
    await page.screenshot({ path: `${outDir}/web-ui-blocklist.png` });

    const href = await page.locator('a[href*="/workflows/block"]').first().getAttribute('href');
    await page.setViewportSize({ width: 1600, height: 1100 });
    await page.goto(new URL(href, ui).toString());
    // The block's summary and current details (kept current by the workflow) are on the User Metadata tab.
    await page.getByText('User Metadata', { exact: true }).first().click();
    await page.keyboard.press('r'); // the UI refreshes the current details on "R"
    await page.getByText('why:', { exact: false }).first().waitFor({ timeout: 20_000 }).catch(() => undefined);
    await page.waitForTimeout(1000);
    await page.screenshot({ path: `${outDir}/web-ui-block.png` });
  } finally {
    await browser.close();
  }
}

/** The list's column chooser ("Configure Columns"): our search attributes in, the run id out. */
async function addColumns(page) {
  await page.getByTestId('workflows-summary-table-configuration-button').click();
  for (const name of COLUMNS) {
    const add = page.getByTestId(`orderable-list-item-${name}-add-button`);
    if (await add.count()) await add.click();
  }
  for (const name of ['Run ID', 'End', 'Type', 'Start']) {
    const remove = page.getByTestId(`orderable-list-item-${name}-remove-button`);
    if (await remove.count()) await remove.click();
  }
  await page.getByTestId('drawer-close-button').first().click();
  await page.getByText('block:', { exact: false }).first().waitFor();
  await page.waitForTimeout(1000); // the drawer's closing animation
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
