// The table at scale, in headless Chromium against the real server (tests/browser_table.rs):
// with PROCNET_MIN_CONNS connection rows held by bench/holdconns.py, the connections table shows
// its first rows (time logged, asserted by no clock), keeps only the visible rows in the DOM,
// loads the rows where it is scrolled to, sorts on the server, and a search narrows the rows
// to those that match. Screenshots: table-100k.png, table-100k-search.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, screenshot } from './helpers.mjs';

const url = process.env.PROCNET_URL;
const minRows = Number(process.env.PROCNET_MIN_CONNS ?? 0);
let browser;
before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

/** The connection rows in the DOM: index and the text of each cell. */
const connRows = (page) => page.$$eval('[data-testid="conn-row"]', (rows) => rows.map((r) => ({
  index: Number(r.dataset.index), fromPort: Number(r.dataset.fromPort), cells: [...r.children].map((c) => c.textContent.trim()),
})));
const tableState = (page) => page.evaluate(() => window.__procnet.connectionsTable);

test('the connections table at scale: first rows, virtualised, scrolled, sorted and searched', { skip: !url, timeout: 240000 }, async () => {
  const t0 = Date.now();
  const { page, context, errors } = await openUI(browser, url, { hash: '#table', height: 900 });
  try {
    await page.waitForSelector('[data-testid="conn-row"]', { timeout: 60000 });
    const state = await tableState(page);
    console.log(`first connection rows ${Date.now() - t0} ms after navigation; ${state.firstRowsMs.toFixed(0)} ms after the first page was asked for; total ${state.total}`);
    assert.ok(state.total >= minRows, `the table counts every connection: ${state.total} >= ${minRows}`);
    const info = await page.textContent('[data-testid="conn-info"]');
    assert.match(info, /^[\d,]+ connections$/, `the indicator shows the count: ${info}`);
    // Virtualised: a screenful of rows in the DOM, not 100k.
    const first = await connRows(page);
    assert.ok(first.length > 10 && first.length < 200, `${first.length} rows in the DOM`);
    assert.deepEqual(first.map((r) => r.index), first.map((_, i) => i));
    await screenshot(page, 'table-100k');

    // Scroll to the middle: the rows there are loaded and drawn, still only a screenful.
    const mid = Math.floor(state.total / 2);
    await page.$eval('[data-testid="conn-scroll"]', (el, y) => { el.scrollTop = y; }, mid * 26);
    await page.waitForFunction((m) => [...document.querySelectorAll('[data-testid="conn-row"]')].some((r) => Math.abs(Number(r.dataset.index) - m) < 40), mid, { timeout: 30000 });
    const middle = await connRows(page);
    assert.ok(middle.length < 200, `${middle.length} rows in the DOM after scrolling`);
    assert.ok(middle.every((r) => r.index > mid - 100 && r.index < mid + 100), 'the rows drawn are those scrolled to');

    // Sort on the server: Local descending puts the highest address:port first.
    await page.click('[data-testid="conn-sort-local"]');
    await page.click('[data-testid="conn-sort-local"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="conn-sort-local"]').getAttribute('aria-sort') === 'descending');
    await page.waitForFunction(() => document.querySelector('[data-testid="conn-row"]')?.dataset.index === '0', null, { timeout: 30000 });
    const sorted = await connRows(page);
    const key = (cell) => { const [a, p] = cell.split(/:(?=\d+$)/); return a.split('.').reduce((n, o) => n * 256 + Number(o), 0) * 65536 + Number(p); };
    for (let i = 1; i < sorted.length; i++) assert.ok(key(sorted[i - 1].cells[1]) >= key(sorted[i].cells[1]), `descending: ${sorted[i - 1].cells[1]} before ${sorted[i].cells[1]}`);

    // A search narrows the rows: one connection's local address:port is in exactly its two
    // rows (the client's own end, and the server's remote end).
    const needle = sorted[0].cells[1];
    await page.fill('[data-testid="table-filter"]', needle);
    await page.waitForFunction(() => { const s = window.__procnet.connectionsTable; return s.q !== '' && s.total >= 0 && s.total < 10; }, null, { timeout: 30000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="conn-info"]').dataset.loading === 'false');
    const found = await connRows(page);
    const narrowed = await tableState(page);
    assert.ok(found.length >= 1 && found.length === narrowed.total, `${found.length} rows shown, total ${narrowed.total}`);
    assert.ok(found.every((r) => r.cells[1] === needle || r.cells[2] === needle), `every row has ${needle}`);
    assert.match(await page.textContent('[data-testid="conn-info"]'), /^\d+ of [\d,]+ connections match$/);
    await screenshot(page, 'table-100k-search');

    // A wider search (one listener's port, in a few thousand rows) stays paged.
    const port = needle.split(':').pop();
    const listenerPort = (await page.evaluate(() => [...document.querySelectorAll('[data-testid="listener-row"]')].map((r) => r.dataset.port))).find((p) => p !== port);
    if (listenerPort) {
      await page.fill('[data-testid="table-filter"]', `127.0.0.1:${listenerPort}`);
      await page.waitForFunction((q) => { const s = window.__procnet.connectionsTable; return s.q === q && s.total >= 0; }, `127.0.0.1:${listenerPort}`, { timeout: 30000 });
      const wide = await tableState(page);
      assert.ok(wide.total > 0 && wide.total < state.total, `${wide.total} of ${state.total}`);
      const rows = await connRows(page);
      assert.ok(rows.length < 200 && rows.every((r) => r.cells.some((c) => c === `127.0.0.1:${listenerPort}`)));
    }
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
