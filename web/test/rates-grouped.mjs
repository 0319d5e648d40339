// The grouped view follows diffs in place (issue 16 item 3 at scale): a synthetic graph whose
// processes form services of up to 6, with 5 % churn per update (members come and go, heads
// go, new processes join existing services), fed to the page as SSE diffs. After the diffs, the
// view must be exactly what a fresh page builds from the final document: the same drawn nodes,
// group members, drawn edges and their rates. Against the fake server, no real procnet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI } from './helpers.mjs';
import { startFakeServer } from './fake-server.mjs';
import { Synth, rng } from './synth.mjs';

let browser, fake;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); await fake?.close(); });

/** The view as the page draws it, in a comparable form. */
const snapshotView = (page) => page.evaluate(() => {
  const p = window.__procnet;
  const nodes = p.viewNodeIds().sort().map((id) => { const v = p.viewNode(id); return [id, v.label, v.members ? v.members.sort() : null, v.rate]; });
  const edges = p.drawnEdges().map((e) => [e.id, e.from, e.to, e.rate]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return { nodes, edges };
});

test('grouped by service, the view after 12 diffs equals a fresh build of the final graph', { timeout: 90000 }, async () => {
  const synth = new Synth(400, 1600, 7);
  const pick = rng(99);
  const heads = [];
  let i = 0;
  for (const n of synth.nodes.values()) {
    if (n.kind !== 'process') continue;
    if (i++ % 6 === 0) heads.push(n.id);
    n.service = heads[heads.length - 1];
  }
  const doc = synth.doc();
  fake = await startFakeServer({ graph: doc, connections: { listeners: [], connections: [] } });
  const { page, context, errors } = await openUI(browser, fake.url);
  try {
    await page.waitForFunction((s) => window.__procnet.lastSeq === s, doc.seq);
    assert.equal(await page.evaluate(() => window.__procnet.grouping), 'service');
    const groups0 = (await snapshotView(page)).nodes.filter((n) => n[2]);
    assert.ok(groups0.length > 40, `services folded (${groups0.length})`);
    let joined = 0;
    for (let k = 0; k < 12; k++) {
      const d = synth.diff(0.05);
      // half the newcomers join an existing service, as a new worker or backend would
      for (const n of d.addedNodes) if (n.kind === 'process' && pick() < 0.5) { n.service = heads[Math.floor(pick() * heads.length)]; joined++; }
      fake.setGraph(synth.doc());
      fake.sendDiff(d);
      await page.waitForFunction((s) => window.__procnet.lastSeq === s, d.seq);
    }
    assert.ok(joined > 10, `newcomers joined services (${joined})`);
    const live = await snapshotView(page);
    const how = await page.evaluate(() => window.__procnet.groupedUpdates);
    console.log(`grouped updates: ${how.inPlace} in place, ${how.rebuilt} rebuilt`);
    assert.ok(how.inPlace >= 6, `most diffs applied in place (${JSON.stringify(how)})`);
    const fresh = await openUI(browser, fake.url);
    try {
      await fresh.page.waitForFunction((s) => window.__procnet.lastSeq === s, synth.seq);
      const built = await snapshotView(fresh.page);
      assert.equal(live.nodes.length, built.nodes.length, 'drawn nodes');
      assert.deepEqual(live.nodes, built.nodes);
      assert.equal(live.edges.length, built.edges.length, 'drawn edges');
      assert.deepEqual(live.edges, built.edges);
      assert.deepEqual(fresh.errors, []);
    } finally { await fresh.context.close(); }
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
