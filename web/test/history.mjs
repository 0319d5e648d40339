// The time bar against a REAL procnet server with history, driven by tests/history_ui.rs: a
// connection between two real processes was opened and closed (a "long" one of ~4 s, then a
// "short" one of ~100 ms) before this runs. Stepping back shows the long one again; compare mode
// lists it as vanished AND marks it on the overlay over the graph (pixels read back at the
// mark); a drag on the activity strip selects a range whose ends are compared and which the URL
// reopens; the Closed connections tab shows the short one with its pids and bytes.
// Skipped when PROCNET_URL is not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, screenshot, switchView, waitForGraph, hasEdgeBetween } from './helpers.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const env = (k) => Number(process.env[k]);
/** How long to wait for the server's answers: a loaded machine running a debug build takes its time. */
const WAIT = 60000;
let browser;
/** The moment (ms) that shows the long connection, found by the first test. */
let openAtMs = null;

before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

const longEdge = () => [`pid:${env('PROCNET_CLIENT_PID')}`, `pid:${env('PROCNET_SERVER_PID')}`, env('PROCNET_SERVER_PORT')];
const edgeId = (page, edge) => page.evaluate(([f, t, port]) => window.__procnet.edges().find((e) => e.from === f && e.to === t && e.serverPort === port)?.id, edge);

/** The overlay's mark for `id` once drawn, and how many pixels of the vanished red (#dc2626) it
 *  has around its midpoint (read back from the overlay canvas). */
async function markPixels(page, id, kind) {
  await page.waitForFunction(([i, k]) => window.__procnet.compareMarks.some((m) => m.id === i && m.kind === k), [id, kind], { timeout: WAIT });
  return page.evaluate(([i, k]) => {
    const m = window.__procnet.compareMarks.find((x) => x.id === i && x.kind === k);
    const c = document.querySelector('[data-testid="compare-overlay"]');
    const dpr = c.width / c.clientWidth;
    const r = 9;
    const d = c.getContext('2d').getImageData(Math.round((m.mx - r) * dpr), Math.round((m.my - r) * dpr), Math.round(2 * r * dpr), Math.round(2 * r * dpr)).data;
    let red = 0, green = 0;
    for (let p = 0; p < d.length; p += 4) {
      if (d[p + 3] > 200 && d[p] > 180 && d[p + 1] < 90 && d[p + 2] < 90) red++;
      if (d[p + 3] > 200 && d[p] < 60 && d[p + 1] > 130 && d[p + 2] < 110) green++;
    }
    // Off the mark, along no edge: the overlay is clear there (it only draws marks).
    const corner = c.getContext('2d').getImageData(1, 1, 1, 1).data[3];
    return { mark: m, red, green, corner, inside: m.mx > 0 && m.my > 0 && m.mx < c.clientWidth && m.my < c.clientHeight };
  }, [id, kind]);
}

test('the time bar steps back to a closed connection, compare marks it vanished on the graph, the link reopens it', { skip: !url, timeout: 300000 }, async () => {
  const edge = longEdge();
  const { page, context, errors } = await openUI(browser, url);
  try {
    await page.waitForSelector('[data-testid="timebar"]');
    await waitForGraph(page, (p, e) => p.edges().length > 0 && !p.edges().some((x) => x.from === e[0] && x.to === e[1]), WAIT, edge);
    assert.equal(await page.evaluate(() => window.__procnet.atMs), null, 'live at first');
    assert.match(await page.textContent('[data-testid="time-label"]'), /LIVE/);
    assert.equal(await page.getAttribute('[data-testid="timebar"]', 'data-mode'), 'live');
    assert.equal(await page.locator('[data-testid="compare-legend"]').isVisible(), false, 'no compare legend when live');
    await page.waitForFunction(() => document.querySelectorAll('.time-bar-cell').length > 0, null, { timeout: 15000 });
    await screenshot(page, 'timebar-live');

    // Step back, one sample at a time, until the closed connection is shown again.
    let found = false;
    for (let i = 0; i < 60 && !found; i++) {
      const before = await page.evaluate(() => window.__procnet.atMs);
      await page.click('[data-testid="time-back"]');
      // The graph of the new moment is applied (not only the moment chosen).
      await page.waitForFunction((b) => window.__procnet.atMs !== null && window.__procnet.atMs !== b && window.__procnet.shownAtMs === window.__procnet.atMs, before, { timeout: WAIT });
      found = await page.evaluate(([f, t, port]) => window.__procnet.edges().some((e) => e.from === f && e.to === t && e.serverPort === port), edge);
    }
    assert.ok(found, 'stepping back shows the connection that no longer exists');
    const atMs = await page.evaluate(() => window.__procnet.atMs);
    openAtMs = atMs;
    assert.match(await page.textContent('[data-testid="time-label"]'), /PAST/, 'the past is unmistakable');
    assert.equal(await page.getAttribute('[data-testid="timebar"]', 'data-mode'), 'past');
    assert.match(await page.getAttribute('[data-testid="timebar"]', 'class'), /\bpast\b/);
    assert.match(await page.getAttribute('[data-testid="time-live"]', 'class') ?? '', /go-live/, 'the way back to live stands out');
    assert.match(await page.textContent('[data-testid="live-status"]'), /past/);
    assert.ok(await page.evaluate(() => window.__procnet.paused), 'live updates do not overwrite the past');

    await page.check('[data-testid="time-compare"]');
    await page.waitForSelector('[data-testid="vanished-edge"]', { timeout: WAIT });
    const vanished = await page.evaluate(() => window.__procnet.vanishedEdgeIds);
    const id = await edgeId(page, edge);
    assert.ok(vanished.includes(id), `compare lists ${id} vanished: ${vanished}`);
    assert.equal(await page.locator(`[data-testid="vanished-edge"][data-edge="${id}"]`).count(), 1);
    // …and marks it on the graph: the overlay drew it, dashed red, between the two processes.
    const px = await markPixels(page, id, 'vanished');
    assert.ok(px.inside, `the mark is on screen: ${JSON.stringify(px.mark)}`);
    assert.ok(px.red > 40, `red pixels at the vanished edge's midpoint: ${JSON.stringify(px)}`);
    assert.equal(px.corner, 0, 'the overlay is transparent away from its marks');
    const from = await page.evaluate((e) => window.__procnet.screenPosition(e[0]), edge);
    assert.ok(Math.hypot(from.x - px.mark.x1, from.y - px.mark.y1) < 1, 'the mark starts at the client as the graph draws it');
    await page.waitForSelector('[data-testid="compare-legend"]', { state: 'visible' });
    assert.match(await page.textContent('[data-testid="compare-legend-vanished"]'), /vanished \(\d+\)/);
    assert.match(await page.textContent('[data-testid="compare-legend"]'), /→ now/);
    await screenshot(page, 'timebar-compare');

    // The marks follow the camera: zoom and the mark moves with the nodes.
    await page.click('[data-testid="zoom-in"]');
    await page.waitForFunction(([i, x]) => { const m = window.__procnet.compareMarks.find((q) => q.id === i); return m && Math.abs(m.x1 - x) > 1; }, [id, px.mark.x1], { timeout: 10000 });
    const moved = await page.evaluate(([i, e]) => ({ m: window.__procnet.compareMarks.find((q) => q.id === i), p: window.__procnet.screenPosition(e) }), [id, edge[0]]);
    assert.ok(Math.hypot(moved.p.x - moved.m.x1, moved.p.y - moved.m.y1) < 1, 'after zooming the mark still starts at the client');

    const link = page.url();
    assert.match(link, /[?&]at=\d+\.\d{3}/);
    assert.match(link, /compare=1/);

    // The link reopens the same moment, in compare mode, marked on the graph.
    const again = await context.newPage();
    again.on('pageerror', (e) => errors.push(String(e)));
    await again.goto(link, { waitUntil: 'domcontentloaded' });
    await again.waitForFunction((a) => window.__procnet && window.__procnet.shownAtMs === a, atMs, { timeout: WAIT });
    await waitForGraph(again, hasEdgeBetween, WAIT, edge);
    await again.waitForSelector(`[data-testid="vanished-edge"][data-edge="${id}"]`, { timeout: WAIT });
    assert.ok((await markPixels(again, id, 'vanished')).red > 40, 'the reopened link marks it too');
    await screenshot(again, 'timebar-link');
    await again.close();

    // Live again: the connection is gone, the marks and the time leave.
    await page.click('[data-testid="time-live"]');
    await waitForGraph(page, (p, e) => p.atMs === null && !p.edges().some((x) => x.from === e[0] && x.to === e[1]), WAIT, edge);
    assert.doesNotMatch(page.url(), /at=/);
    assert.deepEqual(await page.evaluate(() => window.__procnet.compareMarks), []);
    assert.equal(await page.locator('[data-testid="compare-legend"]').isVisible(), false);
    assert.match(await page.textContent('[data-testid="time-label"]'), /LIVE/);
    assert.equal(await page.getAttribute('[data-testid="timebar"]', 'data-mode'), 'live');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

/** Drags on the activity strip from time `aMs` to time `bMs` (clamped to the strip). */
async function dragStrip(page, aMs, bMs) {
  const box = await page.locator('[data-testid="time-strip"]').boundingBox();
  const [o, n] = await page.evaluate(() => window.__procnet.historySpan);
  const x = (ms) => box.x + Math.min(box.width - 1, Math.max(1, ((ms - o) / (n - o)) * box.width));
  const y = box.y + box.height / 2;
  await page.mouse.move(x(aMs), y);
  await page.mouse.down();
  for (let i = 1; i <= 5; i++) await page.mouse.move(x(aMs) + (x(bMs) - x(aMs)) * i / 5, y);
  await page.mouse.up();
}

test('a drag on the activity strip selects a range, compare marks what vanished in it, the URL reopens it', { skip: !url, timeout: 300000 }, async () => {
  assert.ok(openAtMs, 'the first test found when the connection was open');
  const edge = longEdge();
  const { page, context, errors } = await openUI(browser, url);
  try {
    await page.waitForFunction(() => window.__procnet.historySpan?.[1] > window.__procnet.historySpan?.[0], null, { timeout: WAIT });
    // From a moment the long connection was open to the newest sample (past the right end).
    const [, newest] = await page.evaluate(() => window.__procnet.historySpan);
    await dragStrip(page, openAtMs + 1, newest + 60000);
    await page.waitForFunction(() => window.__procnet.timeRange !== null && window.__procnet.shownAtMs === window.__procnet.timeRange.fromMs, null, { timeout: WAIT });
    const range = await page.evaluate(() => window.__procnet.timeRange);
    assert.ok(range.fromMs <= openAtMs + 1 && range.fromMs < range.toMs, `the range starts at a sample at or before the drag: ${JSON.stringify(range)}`);
    await waitForGraph(page, hasEdgeBetween, WAIT, edge);
    assert.equal(await page.getAttribute('[data-testid="timebar"]', 'data-mode'), 'range');
    assert.match(await page.textContent('[data-testid="time-label"]'), /PAST .*→/);
    assert.ok(await page.isChecked('[data-testid="time-compare"]'), 'a range turns compare on');
    await page.waitForSelector('[data-testid="time-selection"]', { state: 'visible' });
    const id = await edgeId(page, edge);
    const px = await markPixels(page, id, 'vanished');
    assert.ok(px.red > 40, `the range's vanished edge is marked: ${JSON.stringify(px)}`);
    assert.match(await page.textContent('[data-testid="compare-legend"]'), /UTC/, 'the legend names both ends');
    const link = page.url();
    const q = new URL(link).searchParams;
    assert.equal(q.get('from'), (range.fromMs / 1000).toFixed(3));
    assert.equal(q.get('to'), (range.toMs / 1000).toFixed(3));
    assert.equal(q.get('at'), null);
    await screenshot(page, 'timebar-range');

    // The link reopens the range, compared and marked.
    const again = await context.newPage();
    again.on('pageerror', (e) => errors.push(String(e)));
    await again.goto(link, { waitUntil: 'domcontentloaded' });
    await again.waitForFunction((r) => window.__procnet?.timeRange?.fromMs === r.fromMs && window.__procnet.timeRange.toMs === r.toMs && window.__procnet.shownAtMs === r.fromMs, range, { timeout: WAIT });
    assert.ok((await markPixels(again, id, 'vanished')).red > 40, 'the reopened range marks it too');
    await again.waitForSelector('[data-testid="time-selection"]', { state: 'visible' });
    await screenshot(again, 'timebar-range-link');
    await again.close();

    // A click (no drag) on the strip is one moment again: the range leaves the URL.
    await dragStrip(page, openAtMs, openAtMs);
    await page.waitForFunction(() => window.__procnet.timeRange === null && window.__procnet.atMs !== null, null, { timeout: WAIT });
    assert.doesNotMatch(page.url(), /from=/);
    assert.match(page.url(), /at=/);
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('the Closed connections tab shows the ~100 ms connection with its pids and bytes, searchable and sortable', { skip: !url, timeout: 300000 }, async () => {
  const shortPort = env('PROCNET_SHORT_PORT');
  // Other processes on this machine may reuse the port: ours is the one to our server.
  const shortRow = `[data-testid="closed-row"][data-client-port="${shortPort}"][data-server-port="${env('PROCNET_SERVER_PORT')}"]`;
  const { page, context, errors } = await openUI(browser, url, { hash: '#closed' });
  try {
    await page.waitForFunction(() => window.__procnet.view === 'closed');
    // Live: the last minutes (of every process on this machine: find ours by its port).
    await page.waitForFunction(() => window.__procnet.closedConnections.loaded > 0, null, { timeout: WAIT });
    await page.fill('[data-testid="closed-search"]', String(shortPort));
    await page.waitForSelector(shortRow, { timeout: WAIT });
    const row = page.locator(shortRow);
    assert.equal(Number(await row.getAttribute('data-client-pid')), env('PROCNET_SHORT_PID'), 'the client pid');
    assert.equal(Number(await row.getAttribute('data-server-pid')), env('PROCNET_SERVER_PID'), 'the server pid');
    const sent = Number(await row.getAttribute('data-client-bytes'));
    assert.ok(Math.abs(sent - env('PROCNET_SHORT_BYTES')) <= env('PROCNET_SHORT_BYTES') / 100, `bytes sent within 1 %: ${sent}`);
    assert.equal(await row.getAttribute('data-short'), 'true', 'it opened and closed between two samples');
    assert.match(await row.textContent(), /≤ .*⚡/, 'shown as at most the gap between those samples');
    const text = await row.textContent();
    assert.match(text, /python/, 'the process names');
    assert.match(text, /4[89] KiB/, `the bytes sent, shown: ${text}`);
    assert.match(await page.textContent('[data-testid="closed-window"]'), /last 15 min/);
    await screenshot(page, 'closed-live');

    // Search: the short one's port leaves only rows with that port.
    const found = await page.$$eval('[data-testid="closed-row"]', (rows) => rows.map((r) => r.textContent));
    assert.ok(found.length >= 1 && found.every((t) => t.includes(String(shortPort))), `only matches: ${found}`);
    assert.ok(await page.evaluate(() => window.__procnet.closedConnections.shown < window.__procnet.closedConnections.loaded), 'the search hid the others');
    await page.fill('[data-testid="closed-search"]', 'no-such-process-here');
    await page.waitForSelector('[data-testid="closed-empty"]');
    await page.fill('[data-testid="closed-search"]', '');
    // Sort: by how long they lived, longest first.
    await page.waitForFunction(() => window.__procnet.closedConnections.shown >= 2, null, { timeout: 10000 });
    await page.click('[data-testid="closed-sort-duration"]');
    await page.click('[data-testid="closed-sort-duration"]');
    assert.equal(await page.getAttribute('[data-testid="closed-sort-duration"]', 'aria-sort'), 'descending');
    const durations = await page.$$eval('[data-testid="closed-row"]', (rows) => rows.map((r) => Number(r.dataset.duration)));
    assert.deepEqual(durations, [...durations].sort((a, b) => b - a), 'longest first');

    // The window follows the time bar: a range from before the long connection closed to now.
    assert.ok(openAtMs, 'the first test found when the connection was open');
    await page.evaluate(() => { location.hash = ''; });
    await switchView(page, 'graph');
    const [, newest] = await page.evaluate(() => window.__procnet.historySpan);
    await dragStrip(page, openAtMs + 1, newest + 60000);
    await page.waitForFunction(() => window.__procnet.timeRange !== null, null, { timeout: WAIT });
    await switchView(page, 'closed');
    await page.waitForFunction(() => /closed between/.test(document.querySelector('[data-testid="closed-window"]').textContent));
    assert.match(await page.textContent('[data-testid="live-status"]'), /past/, 'the header says past on every view');
    assert.match(await page.textContent('[data-testid="time-label"]'), /PAST/);
    await page.waitForFunction(() => window.__procnet.closedConnections.total >= 0 && !window.__procnet.closedConnections.loading, null, { timeout: WAIT });
    await page.fill('[data-testid="closed-search"]', String(shortPort));
    await page.waitForSelector(shortRow, { timeout: WAIT });
    await page.fill('[data-testid="closed-search"]', String(env('PROCNET_CLIENT_PID')));
    try {
      await page.waitForSelector(`[data-testid="closed-row"][data-client-pid="${env('PROCNET_CLIENT_PID')}"]`, { timeout: WAIT });
    } catch (e) {
      const dbg = await page.evaluate(async (port) => {
        const st = window.__procnet.closedConnections;
        const q = new URLSearchParams({ since: st.window.since, limit: '10000' });
        if (st.window.until) q.set('until', st.window.until);
        const all = await (await fetch('/api/flows?' + q)).json();
        const any = await (await fetch('/api/flows?since=10m&limit=10000')).json();
        return { st, range: window.__procnet.timeRange, inWindow: all.flows.filter((f) => f.server.port === port), anywhere: any.flows.filter((f) => f.server.port === port) };
      }, env('PROCNET_SERVER_PORT'));
      throw new Error(`${e}\n${JSON.stringify(dbg, null, 1)}`);
    }
    await screenshot(page, 'closed-range');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
