// Rates you can read and services, not pids (issue 16 items 2 and 3), against a REAL procnet
// server and real processes started by tests/browser_rates.rs: a python process sending 10 MB/s
// and one sending 10 KB/s to a sink, and Debian's nginx with 4 workers. Skipped without PROCNET_URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, screenshot, waitForGraph } from './helpers.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const env = (k) => Number(process.env[k]);
let browser;

before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

const sinkPort = env('RATES_SINK_PORT');
const edgeId = (pid) => `tcp:pid:${pid}->pid:${env('RATES_SINK_PID')}:${sinkPort}`;
const drawnEdge = (page, id) => page.evaluate((i) => window.__procnet.drawnEdges().find((e) => e.id === i) ?? null, id);
const settled = (page) => page.waitForFunction(() => !window.__procnet.layoutRunning, null, { timeout: 20000 });

test('10 MB/s and 10 KB/s: widths far apart on the log scale, rates written on the edges, top talkers in order', { skip: !url, timeout: 90000 }, async () => {
  const fast = env('RATES_FAST_PID'), slow = env('RATES_SLOW_PID');
  const { page, context, errors } = await openUI(browser, url);
  try {
    // both edges drawn with a measured rate in the expected decade
    await waitForGraph(page, (p, [f, s]) => {
      const d = p.drawnEdges();
      const a = d.find((e) => e.id === f), b = d.find((e) => e.id === s);
      return a && b && a.rate > 5e6 && b.rate > 3e3 && b.rate < 3e4 && a.widthPx > 0 && b.widthPx > 0;
    }, 20000, [edgeId(fast), edgeId(slow)]);
    await settled(page);
    await page.click('[data-testid="fit"]');
    await page.mouse.move(2, 2); // nothing hovered: the widths are the plain ones
    await page.waitForTimeout(300);
    const f = await drawnEdge(page, edgeId(fast)), s = await drawnEdge(page, edgeId(slow));
    console.log(`drawn widths: fast ${f.widthPx} px at ${Math.round(f.rate)} B/s, slow ${s.widthPx} px at ${Math.round(s.rate)} B/s`);
    // log scale: 10 MB/s → 7 px, 10 KB/s → 2.5 px (a linear scale made the slow one a hairline)
    assert.ok(f.widthPx >= 6.5 && f.widthPx <= 8, `fast edge ${f.widthPx} px`);
    assert.ok(s.widthPx >= 2 && s.widthPx <= 3.5, `slow edge ${s.widthPx} px`);
    assert.ok(f.widthPx - s.widthPx >= 3, 'visibly different widths');
    // the size legend names the three sizes
    assert.deepEqual(await page.$$eval('[data-testid="rate-legend"]', (r) => r.map((x) => x.textContent.trim())), ['1 KB/s', '100 KB/s', '10 MB/s']);

    // Top talkers: processes and edges by rate, the 10 MB/s one above the 10 KB/s one
    await page.waitForFunction(([a, b]) => {
      const ids = [...document.querySelectorAll('[data-testid="talker-process"]')].map((li) => li.dataset.id);
      return ids.includes(a) && ids.includes(b);
    }, [`pid:${fast}`, `pid:${slow}`], { timeout: 10000 });
    const procRows = await page.$$eval('[data-testid="talker-process"]', (r) => r.map((li) => ({ id: li.dataset.id, rate: Number(li.dataset.rate), text: li.textContent })));
    const fi = procRows.findIndex((r) => r.id === `pid:${fast}`), si = procRows.findIndex((r) => r.id === `pid:${slow}`);
    assert.ok(fi < si, `fasttalker (row ${fi}) above slowtalker (row ${si})`);
    assert.match(procRows[fi].text, /fasttalker/);
    assert.match(procRows[fi].text, /MiB\/s/);
    assert.ok(procRows.every((r, i) => i === 0 || procRows[i - 1].rate >= r.rate), 'rows by rate, highest first');
    const edgeRows = await page.$$eval('[data-testid="talker-edge"]', (r) => r.map((li) => li.dataset.id));
    const fe = edgeRows.indexOf(edgeId(fast)), se = edgeRows.indexOf(edgeId(slow));
    assert.ok(fe >= 0 && se >= 0 && fe < se, `edges by rate: fast at ${fe}, slow at ${se} of ${edgeRows}`);
    // sparklines: the server's last minutes of each row's rate (/api/rates), including the
    // samples from before this page opened
    const opened = await page.evaluate(() => Date.now() - performance.now());
    await page.waitForSelector(`[data-testid="talker-process"][data-id="pid:${fast}"] svg.spark polyline`, { timeout: 10000 });
    await page.waitForSelector(`[data-testid="talker-edge"][data-id="${edgeId(fast)}"] svg.spark polyline`, { timeout: 10000 });
    const rates = await page.evaluate(async (id) => (await fetch(`/api/rates?id=${encodeURIComponent(id)}`)).json(), `pid:${fast}`);
    const series = rates.series[`pid:${fast}`];
    assert.equal(series.length, rates.atMs.length);
    assert.ok(rates.atMs[0] < opened, `the series starts before the page opened (${rates.atMs[0]} < ${opened})`);
    const busy = series.filter((r) => r > 5e6 && r < 2e7).length;
    assert.ok(busy >= 3 && busy >= series.length - 3, `≈10 MB/s at most samples: ${series.map(Math.round)}`);

    // hovering the fast edge writes its rate on it
    const box = await page.locator('[data-testid="graph-canvas"]').boundingBox();
    const a = await page.evaluate((id) => window.__procnet.screenPosition(id), `pid:${fast}`);
    const b = await page.evaluate((id) => window.__procnet.screenPosition(id), `pid:${env('RATES_SINK_PID')}`);
    await page.mouse.move(box.x + (a.x + b.x) / 2, box.y + (a.y + b.y) / 2);
    await page.waitForFunction((id) => window.__procnet.rateLabels.some((l) => l.id === id), edgeId(fast), { timeout: 3000 });
    const hovered = await page.evaluate((id) => window.__procnet.rateLabels.find((l) => l.id === id), edgeId(fast));
    assert.match(hovered.text, /^\d+(\.\d)? MiB\/s$/);
    assert.match(await page.textContent('[data-testid="tooltip"]'), /MiB\/s/);
    await screenshot(page, 'rates-hover');
    // clicking a talker row selects and centres the process
    await page.click(`[data-testid="talker-process"][data-id="pid:${slow}"]`);
    await page.waitForSelector('[data-testid="side-panel"]:not([hidden])');
    assert.match(await page.textContent('[data-testid="side-panel"]'), /slowtalker/);
    await page.click('[data-testid="panel-close"]');
    // zoomed in, every edge with traffic says its rate (nothing hovered or selected)
    await page.mouse.move(2, 2);
    await page.evaluate((id) => window.__procnet.centre(id), `pid:${fast}`);
    for (let i = 0; i < 12 && (await page.evaluate(() => window.__procnet.zoom)) < 2; i++) await page.click('[data-testid="zoom-in"]');
    assert.ok(await page.evaluate(() => window.__procnet.zoom) >= 1);
    await page.waitForFunction((id) => window.__procnet.rateLabels.some((l) => l.id === id), edgeId(fast), { timeout: 3000 });
    await screenshot(page, 'rates-zoomed');
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(300);
    await screenshot(page, 'rates');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('nginx with 4 workers is one service node that expands to its master and 4 workers; the layout stays put', { skip: !url, timeout: 90000 }, async () => {
  const master = env('RATES_NGINX_MASTER');
  const workers = process.env.RATES_NGINX_WORKERS.split(',').map(Number);
  const gid = `group:pid:${master}`;
  const { page, context, errors } = await openUI(browser, url);
  try {
    assert.equal(await page.evaluate(() => window.__procnet.grouping), 'service', 'service grouping is the default');
    await waitForGraph(page, (p, [g, ws]) => {
      const v = p.viewNodeIds();
      const n = p.viewNode(g);
      return v.includes(g) && n.members.length === 5 && ws.every((w) => p.nodeIds().includes(`pid:${w}`) && !v.includes(`pid:${w}`));
    }, 20000, [gid, workers]);
    const g = await page.evaluate((id) => window.__procnet.viewNode(id), gid);
    assert.deepEqual([...g.members].sort(), [master, ...workers].map((p) => `pid:${p}`).sort());
    assert.equal(g.label, 'nginx ×5');
    const view = await page.evaluate(() => window.__procnet.viewNodeIds());
    assert.ok(!view.includes(`pid:${master}`), 'the master is folded too');
    await settled(page);
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(300);
    await screenshot(page, 'rates-service');

    // positions of everything that is not nginx, before expanding
    const others = await page.evaluate((g) => Object.fromEntries(window.__procnet.viewNodeIds().filter((id) => id !== g).map((id) => [id, window.__procnet.position(id)])), gid);
    const gpos = await page.evaluate((id) => window.__procnet.position(id), gid);
    // double-click the service node: it expands to the master and its 4 workers
    const box = await page.locator('[data-testid="graph-canvas"]').boundingBox();
    await page.evaluate((id) => window.__procnet.centre(id), gid); // clear of the legend and panels
    const sp = await page.evaluate((id) => window.__procnet.screenPosition(id), gid);
    await page.mouse.dblclick(box.x + sp.x, box.y + sp.y);
    await waitForGraph(page, (p, [g, ids]) => !p.viewNodeIds().includes(g) && ids.every((id) => p.viewNodeIds().includes(id)), 5000, [gid, [master, ...workers].map((p) => `pid:${p}`)]);
    await settled(page);
    const moved = await page.evaluate((o) => Object.entries(o).map(([id, p]) => { const q = window.__procnet.position(id); return q ? Math.hypot(q.x - p.x, q.y - p.y) : 0; }), others);
    assert.ok(Math.max(0, ...moved) < 0.5, `nodes that stayed did not move (max ${Math.max(0, ...moved)})`);
    const spread = await page.evaluate(([ids, c]) => Math.max(...ids.map((id) => { const q = window.__procnet.position(id); return Math.hypot(q.x - c.x, q.y - c.y); })), [[master, ...workers].map((p) => `pid:${p}`), gpos]);
    console.log(`expanded members within ${Math.round(spread)} units of where the service node was`);
    assert.ok(spread < 150, `members come back around the service node (${spread})`);
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(300);
    await screenshot(page, 'rates-service-expanded');
    // a worker's panel folds its service back into one node, where it was
    await page.evaluate((id) => window.__procnet.centre(id), `pid:${workers[0]}`);
    const wp = await page.evaluate((id) => window.__procnet.screenPosition(id), `pid:${workers[0]}`);
    await page.mouse.click(box.x + wp.x, box.y + wp.y);
    await page.waitForSelector('[data-testid="collapse-group"]');
    assert.equal((await page.textContent('[data-testid="collapse-group"]')).trim(), 'Fold its service');
    await page.click('[data-testid="collapse-group"]');
    await waitForGraph(page, (p, g) => p.viewNodeIds().includes(g), 5000, gid);
    const back = await page.evaluate((id) => window.__procnet.position(id), gid);
    assert.ok(Math.hypot(back.x - gpos.x, back.y - gpos.y) < 0.5, 'the folded service is back where it was');

    // switching grouping away and back keeps the rest where it is, and folds nginx again
    await page.selectOption('[data-testid="group-by"]', 'none');
    await page.selectOption('[data-testid="group-by"]', 'service');
    await waitForGraph(page, (p, g) => p.viewNodeIds().includes(g), 5000, gid);
    await settled(page);
    const moved2 = await page.evaluate((o) => Object.entries(o).map(([id, p]) => { const q = window.__procnet.position(id); return q ? Math.hypot(q.x - p.x, q.y - p.y) : 0; }), others);
    assert.ok(Math.max(0, ...moved2) < 0.5, `switching grouping moved nothing else (max ${Math.max(0, ...moved2)})`);
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
