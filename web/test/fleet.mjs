// Browser checks of fleet mode (`procnet serve --fleet`) against a REAL fleet: host network
// namespaces, one procnet each, a real Prometheus; driven by tests/fleet_mode.rs, which passes
// the fleet server's URL and the node ids it expects. Skipped when PROCNET_URL is not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, screenshot, waitForGraph } from './helpers.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const expected = JSON.parse(process.env.PROCNET_FLEET_NODES ?? '[]');
let browser;

before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

test('the fleet map shows process@host nodes and groups them by host', { skip: !url, timeout: 60000 }, async () => {
  const { page, context, errors } = await openUI(browser, url, { width: 1400, height: 900 });
  try {
    await waitForGraph(page, (p, ids) => ids.every((id) => p.nodeIds().includes(id)), 15000, expected);
    const hosts = await page.evaluate((ids) => ids.map((id) => window.__procnet.node(id).host ?? null), expected);
    assert.ok(hosts.filter(Boolean).length >= 3, `hosts on the nodes: ${hosts}`);
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(1500);
    await screenshot(page, 'fleet-map');
    await page.selectOption('[data-testid="group-by"]', 'host');
    await page.waitForTimeout(300);
    const drawn = await page.evaluate(() => window.__procnet.viewNodeIds());
    for (const h of new Set(hosts.filter(Boolean))) {
      assert.ok(drawn.includes(`group:${h}`), `a group for host ${h} in ${drawn}`);
    }
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(1500);
    await screenshot(page, 'fleet-grouped');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
