// Browser check of reverse-DNS names against a REAL procnet server, driven by
// tests/dns_names.rs (which runs a real resolver, the peers and the server in a
// network namespace and passes the node id, name and address). Skipped when
// PROCNET_URL is not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, screenshot, waitForGraph } from './helpers.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const nodeId = process.env.NAMES_NODE;
const name = process.env.NAMES_NAME;
const address = process.env.NAMES_ADDRESS;
let browser;

before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

test('an external endpoint is labelled with its DNS name; the tooltip keeps the address', { skip: !url, timeout: 60000 }, async () => {
  const { page, context, errors } = await openUI(browser, url);
  try {
    await waitForGraph(page, (p, [id, n]) => p.node(id)?.label === n, 15000, [nodeId, name]);
    await page.waitForFunction(() => !window.__procnet.layoutRunning, null, { timeout: 15000 });
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(500);
    const pos = await page.evaluate((id) => window.__procnet.screenPosition(id), nodeId);
    assert.ok(pos, `${nodeId} is drawn`);
    const box = await page.locator('[data-testid="graph-canvas"]').boundingBox();
    await page.mouse.move(box.x + pos.x, box.y + pos.y);
    await page.waitForSelector('[data-testid="tooltip"]:not([hidden])', { timeout: 5000 });
    const tip = await page.textContent('[data-testid="tooltip"]');
    assert.ok(tip.includes(name), `tooltip names ${name}: ${tip}`);
    assert.ok(tip.includes(address), `tooltip keeps ${address}: ${tip}`);
    await screenshot(page, 'names-tooltip');
    // The search box finds the endpoint by its name.
    await page.fill('[data-testid="search"]', name);
    assert.match(await page.textContent('[data-testid="search-info"]'), /[1-9]\d* match/);
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
