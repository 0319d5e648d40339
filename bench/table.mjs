#!/usr/bin/env node
// Time to the first table rows in headless Chromium against a running `procnet serve` (started
// by bench/table.sh with bench/holdconns.py holding the connections): each run opens a fresh page
// at /#table and measures in the page, from its navigation start, when the first connection row
// (the paged, virtualised table) and the first listener row are in the DOM (a MutationObserver
// installed before the page's scripts); `withNewContextMs` is the same seen from outside,
// including the new browser context. A binary from before the paged table has only
// listener rows (fed by the whole /api/connections document), so "first rows" is whichever
// comes first. Prints one JSON line.
//
//   node bench/table.mjs URL [RUNS]
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { launch } = await import(join(here, '..', 'web', 'test', 'helpers.mjs'));
const [url, runsArg] = process.argv.slice(2);
const RUNS = Number(runsArg ?? 5);
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

const browser = await launch();
const first = [], conn = [], listen = [], heap = [], wall = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    // In the page, from its navigation start: when the first row of each table is in the DOM.
    await page.addInitScript(() => {
      const seen = {};
      window.__rowsAt = seen;
      new MutationObserver(() => {
        for (const id of ['conn-row', 'listener-row']) {
          if (seen[id] === undefined && document.querySelector(`[data-testid="${id}"]`)) seen[id] = performance.now();
        }
      }).observe(document, { childList: true, subtree: true });
    });
    const t0 = Date.now();
    await page.goto(`${url}/#table`, { waitUntil: 'commit' });
    const when = (sel, timeout) => page.waitForSelector(sel, { timeout }).then(() => Date.now() - t0, () => NaN);
    const [any, c, l] = await Promise.all([
      when('[data-testid="conn-row"], [data-testid="listener-row"]', 120000),
      when('[data-testid="conn-row"]', 20000), // never, before the paged table
      when('[data-testid="listener-row"]', 120000),
    ]);
    const at = await page.evaluate(() => window.__rowsAt);
    conn.push(at['conn-row'] ?? NaN); listen.push(at['listener-row'] ?? NaN);
    first.push(Math.min(...[at['conn-row'], at['listener-row']].filter((x) => x !== undefined)));
    wall.push(any); void c; void l;
    heap.push(await page.evaluate(() => performance.memory?.usedJSHeapSize ?? NaN));
    await context.close();
  }
} finally { await browser.close(); }
const ok = (a) => a.filter((x) => !Number.isNaN(x));
console.log(JSON.stringify({
  runs: RUNS, firstRowsMs: Math.round(median(first)), firstRowsAll: first.map(Math.round),
  withNewContextMs: median(wall),
  connRowsMs: ok(conn).length ? Math.round(median(ok(conn))) : null, listenerRowsMs: ok(listen).length ? Math.round(median(ok(listen))) : null,
  heapMiB: Math.round(median(heap) / 1048576 * 10) / 10,
}));
