// Browser checks of fleet mode (`procnet serve --fleet`) against a REAL fleet: host network
// namespaces, one procnet each, a real Prometheus; driven by tests/fleet_mode.rs, which passes
// the fleet server's URL and the node ids it expects. Skipped when PROCNET_URL is not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, screenshot, waitForGraph } from './helpers.mjs';
import { startFakeServer } from './fake-server.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const expected = JSON.parse(process.env.PROCNET_FLEET_NODES ?? '[]');
let browser;

before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

test('the fleet map opens grouped by host, expanded while small; collapsed it shows one node per host', { skip: !url, timeout: 60000 }, async () => {
  const { page, context, errors } = await openUI(browser, url, { width: 1400, height: 900 });
  try {
    await waitForGraph(page, (p, ids) => ids.every((id) => p.nodeIds().includes(id)), 15000, expected);
    const hosts = await page.evaluate((ids) => ids.map((id) => window.__procnet.node(id).host ?? null), expected);
    assert.ok(hosts.filter(Boolean).length >= 3, `hosts on the nodes: ${hosts}`);
    // the default for a fleet: grouped by host (the selector says so); a map this small opens
    // with its hosts expanded, every process@host drawn (and labelled)
    assert.equal(await page.evaluate(() => window.__procnet.grouping), 'host');
    assert.equal(await page.$eval('[data-testid="group-by"]', (el) => el.value), 'host');
    const open = await page.evaluate(() => window.__procnet.viewNodeIds());
    assert.ok(open.length <= 60, `a small fleet map: ${open.length} nodes`);
    for (const id of expected) assert.ok(open.includes(id), `${id} drawn (hosts expanded) in ${open}`);
    assert.ok(!open.some((id) => id.startsWith('group:')), `no host folded: ${open}`);
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(1500);
    const labels = await page.evaluate(() => window.__procnet.labelBoxes.map((l) => l.text));
    for (const id of expected) {
      const label = await page.evaluate((i) => window.__procnet.node(i).label, id);
      assert.ok(labels.includes(label), `${label} labelled: ${labels}`);
    }
    await screenshot(page, 'fleet-map');
    // "Collapse all" folds each host into one node
    await page.click('[data-testid="collapse-all"]');
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

/** A fleet document as `serve --fleet` gives it: `hosts` hosts of `per` processes each
 *  (`svc:<host>/<process>`, with `host`), each process a client of the next host's same process. */
function fleetDoc(hosts, per) {
  const nodes = [], edges = [];
  const H = Array.from({ length: hosts }, (_, i) => `h${String(i).padStart(2, '0')}`);
  for (const h of H) for (let p = 0; p < per; p++) {
    nodes.push({ id: `svc:${h}/app${p}`, kind: 'process', type: 'app', label: `app${p}@${h}`, name: `app${p}`, host: h });
  }
  H.forEach((h, i) => {
    const to = H[(i + 1) % H.length];
    for (let p = 0; p < per; p++) {
      edges.push({ id: `svc:${h}/app${p}>svc:${to}/app${p}/tcp/${5000 + p}`, from: `svc:${h}/app${p}`, to: `svc:${to}/app${p}`, proto: 'tcp',
        serverPort: 5000 + p, count: 1, states: { ESTABLISHED: 1 }, sockets: [], txBytes: 1000 * (p + 1), rxBytes: 100, txRate: 100 * (p + 1), rxRate: 10 });
    }
  });
  return { seq: 1, timestamp: new Date().toISOString(), nodes, edges };
}

// A fleet too big to label every node (12 hosts × 8 processes): it opens with one node per host;
// `?group=` still chooses another grouping. Fake server: no fleet needed.
test('a bigger fleet map opens collapsed, one node per host; ?group= overrides', { timeout: 60000 }, async () => {
  const doc = fleetDoc(12, 8);
  const fake = await startFakeServer({ graph: doc, connections: { listeners: [], connections: [] } });
  const own = browser ?? await launch();
  try {
    const { page, context, errors } = await openUI(own, fake.url, { width: 1400, height: 900 });
    try {
      await waitForGraph(page, (p, n) => p.nodeIds().length === n, 15000, doc.nodes.length);
      assert.equal(await page.evaluate(() => window.__procnet.grouping), 'host');
      assert.equal(await page.$eval('[data-testid="group-by"]', (el) => el.value), 'host');
      const drawn = await page.evaluate(() => window.__procnet.viewNodeIds().sort());
      assert.deepEqual(drawn, [...new Set(doc.nodes.map((n) => `group:${n.host}`))].sort());
      // the traffic between hosts is on the hosts' edges: one per pair of neighbouring hosts
      const agg = await page.evaluate(() => window.__procnet.drawnEdges());
      assert.equal(agg.length, 12, JSON.stringify(agg.map((e) => e.id)));
      assert.ok(agg.every((e) => e.rate === 8 * 10 + 100 * (8 * 9) / 2), JSON.stringify(agg.map((e) => e.rate)));
      await page.waitForFunction(() => !window.__procnet.layoutRunning, null, { timeout: 20000 });
      await page.click('[data-testid="fit"]');
      await page.waitForTimeout(500);
      const labels = await page.evaluate(() => window.__procnet.labelBoxes.map((l) => l.text));
      assert.equal(labels.length, 12, `every host labelled: ${labels}`);
      await screenshot(page, 'fleet-big-collapsed');
      // a double-click on a host opens it
      const p = await page.evaluate(() => window.__procnet.screenPosition('group:h03'));
      const box = await page.$eval('[data-testid="graph-canvas"]', (el) => { const r = el.getBoundingClientRect(); return { x: r.left, y: r.top }; });
      await page.mouse.dblclick(box.x + p.x, box.y + p.y);
      await waitForGraph(page, (q) => q.viewNodeIds().includes('svc:h03/app0') && !q.viewNodeIds().includes('group:h03'), 5000);
      assert.deepEqual(errors, []);
    } finally { await context.close(); }
    {
      const { page, context, errors } = await openUI(own, fake.url, { width: 1400, height: 900, hash: '?group=service' });
      try {
        await waitForGraph(page, (p, n) => p.viewNodeIds().length === n, 15000, doc.nodes.length);
        assert.equal(await page.evaluate(() => window.__procnet.grouping), 'service');
        assert.equal(await page.$eval('[data-testid="group-by"]', (el) => el.value), 'service');
        assert.deepEqual(errors, []);
      } finally { await context.close(); }
    }
  } finally { if (own !== browser) await own.close(); await fake.close(); }
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
