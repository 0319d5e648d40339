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
    await page.waitForFunction(() => !window.__procnet.layoutRunning, null, { timeout: 20000 });
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(1500);
    await screenshot(page, 'fleet-grouped');
    // the host groups are laid out apart, not stacked where their members' centroids fell
    const groups = await page.evaluate(() => window.__procnet.viewNodeIds().filter((id) => id.startsWith('group:'))
      .map((id) => ({ id, ...window.__procnet.position(id), r: window.__procnet.viewNode(id).r })));
    for (const a of groups) for (const b of groups) {
      if (a.id >= b.id) continue;
      const d = Math.hypot(a.x - b.x, a.y - b.y);
      assert.ok(d >= a.r + b.r, `${a.id} and ${b.id} overlap: ${d.toFixed(1)} apart, radii ${a.r} + ${b.r}`);
    }
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

// The time bar in fleet mode: its history is the engine's (/api/history from Prometheus); a step
// back shows a past moment, and the scrubber at a moment before the workload shows the map
// without the workload's edge.
const beforeMs = Number(process.env.PROCNET_FLEET_BEFORE) * 1000;
const [edgeFrom, edgeTo] = JSON.parse(process.env.PROCNET_FLEET_EDGE ?? '[null, null]');

test('the time bar steps back through the fleet\'s history', { skip: !url || !beforeMs, timeout: 120000 }, async () => {
  const { page, context, errors } = await openUI(browser, url, { width: 1400, height: 900 });
  const hasEdge = (p, e) => p.edges().some((x) => x.from === e[0] && x.to === e[1]);
  try {
    await waitForGraph(page, hasEdge, 15000, [edgeFrom, edgeTo]);
    await page.waitForFunction(() => document.querySelectorAll('.time-bar-cell').length > 0, null, { timeout: 20000 });
    const range = await page.$eval('[data-testid="time-range"]', (el) => [Number(el.min), Number(el.max)]);
    assert.ok(range[0] > 0 && range[0] < beforeMs && range[1] > beforeMs, `the scrubber covers the run: ${range}, before ${beforeMs}`);

    // One step back from live: a past moment of the fleet, still with the edge.
    await page.click('[data-testid="time-back"]');
    await page.waitForFunction(() => window.__procnet.atMs !== null, null, { timeout: 20000 });
    const back = await page.evaluate(() => window.__procnet.atMs);
    assert.ok(back <= range[1] && back > beforeMs, `one step back: ${back}`);
    assert.match(await page.textContent('[data-testid="time-label"]'), /PAST/);
    await waitForGraph(page, hasEdge, 20000, [edgeFrom, edgeTo]);
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(1000);
    await screenshot(page, 'fleet-timebar-back');

    // The scrubber at a moment before the workload: the map of then, without its edge.
    await page.$eval('[data-testid="time-range"]', (el, v) => { el.value = String(v); el.dispatchEvent(new Event('change')); }, Math.round(beforeMs));
    await page.waitForFunction((b) => window.__procnet.atMs !== null && window.__procnet.atMs <= b, beforeMs, { timeout: 20000 });
    await waitForGraph(page, (p, e) => p.nodeIds().length > 0 && !p.edges().some((x) => x.from === e[0] && x.to === e[1]), 20000, [edgeFrom, edgeTo]);
    assert.ok(await page.evaluate(() => window.__procnet.paused), 'live updates do not overwrite the past');
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(1000);
    await screenshot(page, 'fleet-timebar-before');

    // Live again: the edge is back.
    await page.click('[data-testid="time-live"]');
    await waitForGraph(page, (p, e) => p.atMs === null && p.edges().some((x) => x.from === e[0] && x.to === e[1]), 30000, [edgeFrom, edgeTo]);
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
