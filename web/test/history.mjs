// The time bar against a REAL procnet server with history, driven by tests/history_ui.rs: a
// connection between two real processes was opened and closed before this runs. Stepping back
// shows it again, compare mode lists it as vanished, and the link (time in the URL) reopens the
// same moment. Skipped when PROCNET_URL is not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, screenshot, waitForGraph, hasEdgeBetween } from './helpers.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const env = (k) => Number(process.env[k]);
let browser;

before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

test('the time bar steps back to a closed connection, compare marks it vanished, the link reopens it', { skip: !url, timeout: 300000 }, async () => {
  const edge = [`pid:${env('PROCNET_CLIENT_PID')}`, `pid:${env('PROCNET_SERVER_PID')}`, env('PROCNET_SERVER_PORT')];
  const { page, context, errors } = await openUI(browser, url);
  try {
    await page.waitForSelector('[data-testid="timebar"]');
    await waitForGraph(page, (p, e) => p.edges().length > 0 && !p.edges().some((x) => x.from === e[0] && x.to === e[1]), 30000, edge);
    assert.equal(await page.evaluate(() => window.__procnet.atMs), null, 'live at first');
    assert.match(await page.textContent('[data-testid="time-label"]'), /live/);
    await page.waitForFunction(() => document.querySelectorAll('.time-bar-cell').length > 0, null, { timeout: 15000 });
    await screenshot(page, 'timebar-live');

    // Step back, one sample at a time, until the closed connection is shown again.
    let found = false;
    for (let i = 0; i < 60 && !found; i++) {
      const before = await page.evaluate(() => window.__procnet.atMs);
      await page.click('[data-testid="time-back"]');
      await page.waitForFunction((b) => window.__procnet.atMs !== null && window.__procnet.atMs !== b, before, { timeout: 20000 });
      found = await page.evaluate(([f, t, port]) => window.__procnet.edges().some((e) => e.from === f && e.to === t && e.serverPort === port), edge);
    }
    assert.ok(found, 'stepping back shows the connection that no longer exists');
    const atMs = await page.evaluate(() => window.__procnet.atMs);
    assert.match(await page.textContent('[data-testid="time-label"]'), /PAST/, 'the past is unmistakable');
    assert.ok(await page.evaluate(() => window.__procnet.paused), 'live updates do not overwrite the past');

    await page.check('[data-testid="time-compare"]');
    await page.waitForSelector('[data-testid="vanished-edge"]', { timeout: 20000 });
    const vanished = await page.evaluate(() => window.__procnet.vanishedEdgeIds);
    const id = await page.evaluate(([f, t, port]) => window.__procnet.edges().find((e) => e.from === f && e.to === t && e.serverPort === port).id, edge);
    assert.ok(vanished.includes(id), `compare marks ${id} vanished: ${vanished}`);
    assert.equal(await page.locator(`[data-testid="vanished-edge"][data-edge="${id}"]`).count(), 1);
    await screenshot(page, 'timebar-compare');

    const link = page.url();
    assert.match(link, /[?&]at=\d+\.\d{3}/);
    assert.match(link, /compare=1/);

    // The link reopens the same moment, in compare mode.
    const again = await context.newPage();
    again.on('pageerror', (e) => errors.push(String(e)));
    await again.goto(link, { waitUntil: 'domcontentloaded' });
    await again.waitForFunction((a) => window.__procnet && window.__procnet.atMs === a, atMs, { timeout: 30000 });
    await waitForGraph(again, hasEdgeBetween, 20000, edge);
    await again.waitForSelector(`[data-testid="vanished-edge"][data-edge="${id}"]`, { timeout: 20000 });
    await screenshot(again, 'timebar-link');

    // Live again: the connection is gone, the time leaves the URL.
    await page.click('[data-testid="time-live"]');
    await waitForGraph(page, (p, e) => p.atMs === null && !p.edges().some((x) => x.from === e[0] && x.to === e[1]), 30000, edge);
    assert.doesNotMatch(page.url(), /at=/);
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
