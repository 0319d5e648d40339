// The page asks only for icons the server has (driven by tests/browser_icons.rs,
// which starts two real servers: one without --icons-dir, one with an empty
// directory that this test fills). Skipped when the URLs are not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, switchView, solidPng } from './helpers.mjs';

const bare = process.env.PROCNET_URL_NO_ICONS?.replace(/\/$/, '');
const withIcons = process.env.PROCNET_URL_ICONS?.replace(/\/$/, '');
const iconsDir = process.env.PROCNET_ICONS_DIR;
let browser;

before(async () => { if (bare) browser = await launch(); });
after(async () => { await browser?.close(); });

/** Opens the UI, visits every view, and returns each /icons/ request with its status. */
async function iconRequests(url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const seen = [];
  const errors = [];
  let indexRequests = 0;
  // Listening before the page loads, so its first requests are seen too.
  page.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith('/icons/')) seen.push(`${path} ${r.status()}`);
    if (path === '/api/icons') indexRequests++;
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(url + '/', { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.__procnet && window.__procnet.lastSeq >= 0, null, { timeout: 15000 });
    for (const view of ['table', 'diagram', 'graph']) {
      await switchView(page, view);
      await page.waitForTimeout(500);
    }
    await page.waitForTimeout(1000);
    assert.deepEqual(errors, []);
    return { seen, indexRequests };
  } finally { await context.close(); }
}

test('without --icons-dir the page requests no icon file', { skip: !bare, timeout: 60000 }, async () => {
  const { seen, indexRequests } = await iconRequests(bare);
  assert.deepEqual(seen, [], 'no /icons/ request at all');
  assert.equal(indexRequests, 1, 'the icon index is asked once');
});

test('with --icons-dir the page requests exactly the icons that exist', { skip: !withIcons, timeout: 60000 }, async () => {
  writeFileSync(join(iconsDir, 'database.png'), await solidPng(8, 8, [200, 30, 30]));
  writeFileSync(join(iconsDir, 'app.png'), await solidPng(8, 8, [30, 200, 30]));
  const { seen } = await iconRequests(withIcons);
  assert.deepEqual([...new Set(seen)].sort(), ['/icons/app.png 200', '/icons/database.png 200']);
});
