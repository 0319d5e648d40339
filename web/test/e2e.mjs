// Browser end-to-end checks (node --test, playwright-core + Debian Chromium, no network).
// PROCNET_URL=http://127.0.0.1:8765 node --test web/test/e2e.mjs   — against a running procnet;
// without PROCNET_URL a fake server (test/fake-server.mjs + fixtures) is started on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, switchView, screenshot, waitForGraph, tableRows, solidPng } from './helpers.mjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeServer } from './fake-server.mjs';

let browser, fake, url;
const usingFake = !process.env.PROCNET_URL;

before(async () => {
  if (usingFake) {
    const iconsDir = mkdtempSync(join(tmpdir(), 'procnet-icons-'));
    writeFileSync(join(iconsDir, 'database.png'), await solidPng(32, 32, [200, 30, 160]));
    fake = await startFakeServer({ tick: 700, iconsDir }); url = fake.url;
  }
  else url = process.env.PROCNET_URL.replace(/\/$/, '');
  browser = await launch();
});
after(async () => { await browser?.close(); await fake?.close(); });

test('page loads without console errors and the three views render', { timeout: 60000 }, async () => {
  const { page, context, errors } = await openUI(browser, url);
  try {
    // graph
    await page.waitForSelector('[data-testid="graph-canvas"]');
    const n = Number(await page.textContent('[data-testid="node-count"]'));
    assert.ok(n > 0, 'graph has nodes');
    await page.waitForTimeout(1500); // let the layout settle for the screenshot
    await page.click('[data-testid="fit"]');
    await screenshot(page, 'graph');
    // table
    await switchView(page, 'table');
    await page.waitForSelector('[data-testid="listener-row"]', { timeout: 5000 });
    await screenshot(page, 'table');
    // diagram
    await switchView(page, 'diagram');
    await page.waitForSelector('[data-testid="diagram-listener"]', { timeout: 5000 });
    await screenshot(page, 'diagram');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('live updates: a short-lived process appears and disappears', { skip: !usingFake, timeout: 30000 }, async () => {
  const { page, context, errors } = await openUI(browser, url);
  try {
    await waitForGraph(page, (p) => p.nodeIds().includes('pid:5000') && p.edges().some((e) => e.from === 'pid:5000' && e.to === 'pid:1200'), 3000);
    await waitForGraph(page, (p) => !p.nodeIds().includes('pid:5000') && !p.edges().some((e) => e.from === 'pid:5000'), 3000);
    // as from the real server: the page asked for slots, the fake server's encoder sent them
    const events = await page.evaluate(() => window.__procnet.diffEvents);
    assert.ok(events.diffs >= 1 && events.diff === 0 && events.reconnects === 0, JSON.stringify(events));
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('table shows badges and +N, sorts and filters', { skip: !usingFake, timeout: 30000 }, async () => {
  const { page, context } = await openUI(browser, url, { hash: '#table' });
  try {
    await page.waitForSelector('[data-testid="listener-row"]');
    const rows = await tableRows(page);
    const api = rows.find((r) => r.pid === 2101 && r.port === 3000);
    assert.ok(api, 'API listener row');
    assert.equal(api.badges.length, 5);
    assert.equal(api.more, '+2');
    assert.ok(api.badges.includes('PostgreSQL') && api.badges.includes('93.184.216.34:443'));
    await page.fill('[data-testid="table-filter"]', 'redis');
    const filtered = await tableRows(page);
    assert.ok(filtered.length >= 1 && filtered.length < rows.length);
    await page.fill('[data-testid="table-filter"]', '');
    await page.click('[data-testid="sort-port"]'); // port asc is the default: now descending
    const ports = (await tableRows(page)).map((r) => r.port);
    assert.deepEqual(ports, [...ports].sort((a, b) => b - a));
  } finally { await context.close(); }
});

test('graph: search, side panel, grouping, pause, rules banner', { skip: !usingFake, timeout: 30000 }, async () => {
  const { page, context } = await openUI(browser, url);
  try {
    await page.fill('[data-testid="search"]', '5432');
    assert.match(await page.textContent('[data-testid="search-info"]'), /[1-9]\d* match/);
    await page.fill('[data-testid="search"]', '');
    // click on postgres: find its screen position through the hook
    await page.waitForFunction(() => !window.__procnet.layoutRunning, null, { timeout: 10000 });
    await page.click('[data-testid="fit"]');
    const pos = await page.evaluate(() => window.__procnet.screenPosition('pid:1500'));
    const box = await page.locator('[data-testid="graph-canvas"]').boundingBox();
    await page.mouse.click(box.x + pos.x, box.y + pos.y);
    await page.waitForSelector('[data-testid="side-panel"]:not([hidden])');
    assert.match(await page.textContent('[data-testid="side-panel"]'), /postgres -D/);
    assert.match(await page.textContent('[data-testid="panel-in"]'), /API/);
    await page.mouse.move(box.x + 5, box.y + 5);
    await screenshot(page, 'graph-panel');
    // group by process name: the two `node` API processes collapse into one node
    await page.selectOption('[data-testid="group-by"]', 'name');
    const v = await page.evaluate(() => window.__procnet.viewNodeIds());
    assert.ok(v.includes('group:node'));
    assert.ok(!v.includes('pid:2101'));
    await page.selectOption('[data-testid="group-by"]', 'none');
    // pause stops updates
    await page.click('[data-testid="pause"]');
    const seq = await page.evaluate(() => window.__procnet.lastSeq);
    await page.waitForTimeout(1600);
    assert.equal(await page.evaluate(() => window.__procnet.lastSeq), seq);
    await page.click('[data-testid="pause"]');
    await page.waitForFunction((s) => window.__procnet.lastSeq > s, seq, { timeout: 3000 });
    // resuming starts the stream again (the slots went by while paused), and diffs apply again
    const after = await page.evaluate(() => window.__procnet.diffEvents);
    assert.ok(after.reconnects >= 1, JSON.stringify(after));
    await page.waitForFunction((n) => window.__procnet.diffEvents.diffs > n, after.diffs, { timeout: 3000 });
    // a rules error is a visible banner
    fake.sendStatus({ rulesError: 'rules.yaml: rule 2: match_name: invalid regex', warnings: [] });
    await page.waitForSelector('[data-testid="rules-error"]:not([hidden])');
    fake.sendStatus({ rulesError: null, warnings: [] });
    await page.waitForSelector('[data-testid="rules-error"]', { state: 'hidden' });
  } finally { await context.close(); }
});

test('node labels never overlap: of two nodes dragged together only one label is drawn', { skip: !usingFake, timeout: 30000 }, async () => {
  const { page, context } = await openUI(browser, url);
  try {
    await page.waitForFunction(() => !window.__procnet.layoutRunning && window.__procnet.labelBoxes.length > 3, null, { timeout: 10000 });
    await page.click('[data-testid="fit"]');
    const overlapping = (boxes) => {
      for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) return `${a.text} over ${b.text}`;
      }
      return null;
    };
    const labels = () => page.evaluate(() => window.__procnet.labelBoxes);
    const before = await labels();
    assert.equal(overlapping(before), null);
    assert.ok(before.some((l) => l.id === 'pid:2101') && before.some((l) => l.id === 'pid:2102'), 'both API labels drawn while apart');
    // drag "API · 2101" until it sits 8 px right of "API · 2102": their labels would collide
    const box = await page.locator('[data-testid="graph-canvas"]').boundingBox();
    const a = await page.evaluate(() => window.__procnet.screenPosition('pid:2101'));
    const b = await page.evaluate(() => window.__procnet.screenPosition('pid:2102'));
    await page.mouse.move(box.x + a.x, box.y + a.y);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + a.x + ((b.x + 8 - a.x) * i) / 10, box.y + a.y + ((b.y - a.y) * i) / 10);
    await page.mouse.up();
    await page.mouse.move(box.x + box.width + 5, box.y + 5); // leave the canvas: nothing hovered
    await page.waitForTimeout(150);
    const moved = await page.evaluate(() => window.__procnet.screenPosition('pid:2101'));
    assert.ok(Math.hypot(moved.x - b.x - 8, moved.y - b.y) < 3, `dragged next to the other: ${JSON.stringify(moved)} vs ${JSON.stringify(b)}`);
    const after = await labels();
    assert.equal(overlapping(after), null, 'no two drawn labels overlap');
    assert.equal(after.filter((l) => l.id === 'pid:2101' || l.id === 'pid:2102').length, 1, 'one of the two colliding labels left out');
    // the hovered node's label is drawn whatever it overlaps
    await page.mouse.move(box.x + moved.x, box.y + moved.y);
    await page.waitForFunction(() => window.__procnet.labelBoxes.some((l) => l.id === 'pid:2101'), null, { timeout: 3000 });
    await screenshot(page, 'labels-no-overlap');
  } finally { await context.close(); }
});

test('a PNG from /icons/<type>.png overrides the built-in glyph', { skip: !usingFake, timeout: 30000 }, async () => {
  const { page, context, errors } = await openUI(browser, url);
  try {
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="legend"] img')].some((i) => i.getAttribute('src') === '/icons/database.png'), null, { timeout: 5000 });
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('dark theme renders', { timeout: 30000 }, async () => {
  const { page, context, errors } = await openUI(browser, url, { colorScheme: 'dark' });
  try {
    await page.waitForTimeout(1200);
    await screenshot(page, 'graph-dark');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(15, 23, 42)');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
