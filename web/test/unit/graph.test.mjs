// Unit tests of the DOM-free graph modules (web/src/graph/*.ts, compiled by build.mjs):
// camera, hit-testing, search, grouping, placement, curvature and tooltips.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const lib = new URL('../../../target/web-unit/graph/', import.meta.url);
const { bounds, fitCamera, zoomAt, centreOn, toScreen } = await import(new URL('camera.js', lib));
const { nodeAt, edgeAt, segDist2 } = await import(new URL('hittest.js', lib));
const { applySearch, searchInfoText } = await import(new URL('search.js', lib));
const { groupKeyOf, groupView, defaultCollapsed, groupLabel } = await import(new URL('grouping.js', lib));
const { placeNew, seedAll } = await import(new URL('placement.js', lib));
const { bendPair, ctrl, nodeLabel, nodeRadius, sumEdges, edgeRate, pairKeyOf } = await import(new URL('scene.js', lib));
const { nodeTooltip, edgeTooltip } = await import(new URL('tooltip.js', lib));

const gnode = (id, extra = {}) => ({ id, kind: 'process', type: 'app', label: id, ...extra });
const rnode = (id, x, y, extra = {}) => ({ id, x, y, r: 10, placed: true, type: 'app', kind: 'process', label: id, deg: 0, match: false, hidden: false, ix: 0, ...extra });
const gedge = (id, from, to, extra = {}) => ({ id, from, to, proto: 'tcp', serverPort: 80, count: 1, states: {}, sockets: [], ...extra });
const redge = (id, s, t, extra = {}) => ({ id, s, t, proto: 'tcp', count: 1, rate: -1, edges: [gedge(id, s.id, t.id)], pairKey: pairKeyOf(s.id, t.id), curv: 0, hidden: false, match: false, rz: null, rw: 0, rp: 0, ...extra });

test('camera: fit centres the bounds and caps the zoom at 2', () => {
  const nodes = [rnode('a', 0, 0), rnode('b', 100, 50)];
  const b = bounds(nodes);
  assert.deepEqual(b, { x0: -10, y0: -10, x1: 110, y1: 60 });
  const cam = { k: 1, tx: 0, ty: 0 };
  fitCamera(cam, b, 1000, 800);
  assert.equal(cam.k, 2); // (1000-40)/120 = 8, capped
  const c = toScreen(cam, 50, 25); // the centre of the bounds lands in the middle
  assert.deepEqual(c, { x: 500, y: 400 });
  fitCamera(cam, bounds([rnode('a', 0, 0), rnode('b', 10000, 0)]), 1000, 800);
  assert.ok(Math.abs(cam.k - 960 / 10020) < 1e-12);
});

test('camera: bounds skip hidden and unplaced nodes unless asked, and default when empty', () => {
  const nodes = [rnode('a', 0, 0), rnode('h', 500, 500, { hidden: true }), rnode('u', -500, 0, { placed: false })];
  assert.deepEqual(bounds(nodes), { x0: -10, y0: -10, x1: 10, y1: 10 });
  assert.deepEqual(bounds(nodes, true), { x0: -10, y0: -10, x1: 510, y1: 510 });
  assert.deepEqual(bounds([]), { x0: -100, y0: -100, x1: 100, y1: 100 });
});

test('camera: zoomAt keeps the world point under the cursor and clamps the scale', () => {
  const cam = { k: 1.5, tx: 30, ty: -20 };
  const wx = (200 - cam.tx) / cam.k, wy = (100 - cam.ty) / cam.k;
  zoomAt(cam, 200, 100, 1.4);
  assert.ok(Math.abs(cam.k - 2.1) < 1e-12);
  const p = toScreen(cam, wx, wy);
  assert.ok(Math.abs(p.x - 200) < 1e-9 && Math.abs(p.y - 100) < 1e-9);
  zoomAt(cam, 0, 0, 1e6);
  assert.equal(cam.k, 20);
  zoomAt(cam, 0, 0, 1e-9);
  assert.equal(cam.k, 0.01);
  centreOn(cam, 10, 20, 400, 300);
  assert.equal(cam.k, 1.2);
  assert.deepEqual(toScreen(cam, 10, 20), { x: 200, y: 150 });
});

test('hit-testing: nearest visible node within radius + slack, edges within 5 px', () => {
  const cam = { k: 2, tx: 100, ty: 100 };
  const a = rnode('a', 0, 0), b = rnode('b', 15, 0), h = rnode('h', 0, 0, { hidden: true });
  assert.equal(nodeAt([h, a, b], cam, 100 + 2 * 10, 100), b); // world x=10: b is nearer (5 vs 10)
  assert.equal(nodeAt([a, b], cam, 100 - 2 * 11, 100), a); // 11 < r + 3/k = 11.5
  assert.equal(nodeAt([a, b], cam, 100 - 2 * 12, 100), null);
  assert.equal(nodeAt([h], cam, 100, 100), null);
  const s = rnode('s', 0, 0), t = rnode('t', 100, 0);
  const e = redge('e', s, t);
  assert.equal(edgeAt([e], cam, 100 + 2 * 50, 100 + 4), e); // 2 world units off = 4 px
  assert.equal(edgeAt([e], cam, 100 + 2 * 50, 100 + 12), null); // 6 px off
  assert.equal(edgeAt([{ ...e, hidden: true }], cam, 100 + 2 * 50, 100), null);
  // a curved edge is hit on its bend, not on the straight chord
  const c = redge('c', s, t, { curv: 0.35 });
  const [cx, cy] = ctrl(c);
  const midY = (0 + 2 * cy + 0) / 4; // quadratic Bézier at u = 1/2
  assert.equal(edgeAt([c], cam, 100 + 2 * ((0 + 2 * cx + 100) / 4), 100 + 2 * midY), c);
  assert.equal(edgeAt([c], cam, 100 + 2 * 50, 100), null);
  assert.equal(segDist2(5, 5, 0, 0, 10, 0), 25);
  assert.equal(segDist2(-3, 4, 0, 0, 10, 0), 25); // clamped to the end point
});

test('search: name, pid and port; a port match marks both ends; only-matches hides the rest', () => {
  const web = rnode('web · 10', 0, 0, { node: gnode('pid:10', { name: 'nginx', pid: 10, listeners: [{ proto: 'tcp', address: '0.0.0.0', port: 8080 }] }) });
  const db = rnode('db · 20', 0, 0, { node: gnode('pid:20', { name: 'postgres', pid: 20 }) });
  const cli = rnode('cli · 30', 0, 0, { node: gnode('pid:30', { name: 'curl', pid: 30 }) });
  const e1 = redge('e1', cli, db, { edges: [gedge('e1', 'pid:30', 'pid:20', { serverPort: 5432 })] });
  const e2 = redge('e2', cli, web);
  const nodes = [web, db, cli], edges = [e1, e2];
  // as the view holds them: Maps, whose values() can be walked once per call
  const scene = { nodes: new Map(nodes.map((n) => [n.id, n])), edges: new Map(edges.map((e) => [e.id, e])) };
  assert.equal(applySearch(scene, 'postg', false), 1);
  assert.deepEqual(nodes.map((n) => n.match), [false, true, false]);
  assert.equal(applySearch(scene, '8080', false), 1); // listener port
  assert.ok(web.match && !db.match);
  assert.equal(applySearch(scene, '5432', true), 2); // edge port: both ends match
  assert.ok(e1.match && db.match && cli.match && !web.match);
  assert.ok(web.hidden && !db.hidden && e2.hidden && !e1.hidden);
  assert.equal(applySearch(scene, '20', false), 1); // pid
  assert.ok(db.match);
  assert.equal(applySearch(scene, '', true), null);
  assert.ok(nodes.every((n) => !n.match && !n.hidden) && edges.every((e) => !e.match && !e.hidden));
  assert.equal(searchInfoText(null), '');
  assert.equal(searchInfoText(1), '1 match');
  assert.equal(searchInfoText(3), '3 matches');
});

test('grouping: keys per mode, collapsed groups aggregate edges and drop internal ones', () => {
  const n = [gnode('pid:1', { name: 'php' }), gnode('pid:2', { name: 'php' }), gnode('pid:3', { name: 'db', container: 'pg' }),
    { id: 'ext:1.2.3.4', kind: 'external', type: 'external', label: '1.2.3.4' }];
  assert.equal(groupKeyOf(n[0], 'name'), 'php');
  assert.equal(groupKeyOf(n[3], 'name'), '(external)');
  assert.equal(groupKeyOf(n[0], 'container'), '(host)');
  assert.equal(groupKeyOf(n[2], 'container'), 'pg');
  assert.equal(groupKeyOf(n[3], 'type'), 'external');
  assert.equal(groupKeyOf(n[0], 'none'), null);
  assert.deepEqual([...defaultCollapsed(n, 'name')], ['php']); // only groups of more than one
  assert.equal(defaultCollapsed(n, 'none').size, 0);
  const e = [gedge('a', 'pid:1', 'pid:3', { count: 2 }), gedge('b', 'pid:2', 'pid:3', { count: 3 }), gedge('c', 'pid:1', 'pid:2'),
    gedge('d', 'pid:3', 'ext:1.2.3.4'), gedge('u', 'pid:2', 'pid:3', { proto: 'udp' })];
  const v = groupView(n, e, 'name', new Set(['php']));
  assert.equal(v.rep.get('pid:1'), 'group:php');
  assert.equal(v.rep.get('pid:3'), 'pid:3');
  assert.deepEqual(v.groups.get('group:php').members, ['pid:1', 'pid:2']);
  assert.equal(groupLabel(v.groups.get('group:php')), 'php ×2');
  assert.deepEqual([...v.edges.keys()].sort(), ['agg:group:php>pid:3/tcp', 'agg:group:php>pid:3/udp', 'd']);
  const agg = v.edges.get('agg:group:php>pid:3/tcp');
  assert.deepEqual(agg.edges.map((x) => x.id), ['a', 'b']);
  assert.deepEqual(sumEdges(agg.edges), { count: 5, rate: -1 });
});

test('scene: parallel edges bend apart symmetrically, whichever their direction', () => {
  const a = rnode('a', 0, 0), b = rnode('b', 100, 0);
  const one = [redge('x', a, b, { curv: 1 })];
  bendPair(one);
  assert.equal(one[0].curv, 0);
  const p = [redge('e2', b, a), redge('e1', a, b), redge('e3', a, b)];
  bendPair(p);
  assert.deepEqual(p.map((e) => e.id), ['e1', 'e2', 'e3']);
  assert.deepEqual(p.map((e) => e.curv), [-0.35, -0, 0.35]);
  // e1 (a→b) and a hypothetical b→a edge in the same slot bend to the same side on screen
  const [, y1] = ctrl(p[0]);
  const rev = redge('r', b, a, { curv: 0.35 });
  assert.equal(Math.sign(ctrl(rev)[1]), Math.sign(y1));
  assert.equal(pairKeyOf('a', 'b'), pairKeyOf('b', 'a'));
});

test('scene: labels, radii and rates', () => {
  assert.equal(nodeLabel(gnode('pid:7', { label: 'web', pid: 7 })), 'web · 7');
  assert.equal(nodeLabel({ id: 'unknown:x', kind: 'unknown', type: 'app', label: '', reason: 'permission' }), '? unknown (permission)');
  assert.equal(nodeRadius(rnode('a', 0, 0, { deg: 0 })), 9);
  assert.equal(nodeRadius(rnode('a', 0, 0, { deg: 10000 })), 16);
  assert.equal(nodeRadius(rnode('e', 0, 0, { kind: 'external' })), 8);
  assert.equal(nodeRadius(rnode('g', 0, 0, { group: { key: 'k', mode: 'name', members: ['1', '2', '3', '4'] } })), 16);
  assert.equal(edgeRate(gedge('e', 'a', 'b')), -1);
  assert.equal(edgeRate(gedge('e', 'a', 'b', { txRate: 5 })), 5);
  assert.deepEqual(sumEdges([gedge('1', 'a', 'b', { txRate: 5, rxRate: 1 }), gedge('2', 'a', 'b', { count: 4 })]), { count: 5, rate: 6 });
});

test('placement: newcomers go next to placed neighbours or beside the drawing; nothing placed → full layout', () => {
  const hub = rnode('hub', 1000, 1000), lone = rnode('lone', 0, 0, { placed: false }), nb = rnode('nb', 0, 0, { placed: false });
  const nodes = new Map([[hub.id, hub], [nb.id, nb], [lone.id, lone]]);
  const edges = new Map([['e', redge('e', nb, hub)]]);
  assert.equal(placeNew([...nodes.values()], edges.values(), nodes.values(), () => 0.5), true);
  assert.ok(nb.placed && lone.placed);
  const d = Math.hypot(nb.x - hub.x, nb.y - hub.y);
  assert.ok(Math.abs(d - 40 * 1.2) < 1e-9, `neighbour at ${d}`); // SPACING·(0.8 + 0.5·0.8)
  assert.ok(lone.x >= hub.x + hub.r, `lone newcomer right of the drawing: ${lone.x}`);
  const fresh = new Map([['a', rnode('a', 0, 0, { placed: false })]]);
  assert.equal(placeNew([...fresh.values()], [], fresh.values()), false);
  assert.equal(fresh.get('a').placed, false);
  const all = [rnode('a', 0, 0, { placed: false }), rnode('b', 0, 0, { placed: false }), rnode('c', 0, 0, { placed: false })];
  seedAll(all, [redge('ab', all[0], all[1])]);
  assert.ok(all.every((n) => n.placed && Number.isFinite(n.x) && Number.isFinite(n.y)));
  assert.equal(new Set(all.map((n) => `${n.x},${n.y}`)).size, 3);
});

test('tooltips escape what processes control', () => {
  const n = rnode('x', 0, 0, { node: gnode('pid:1', { label: '<img src=x onerror=alert(1)>', pid: 1, name: 'a&b' }) });
  const html = nodeTooltip(n);
  assert.ok(!html.includes('<img') && html.includes('&lt;img') && html.includes('a&amp;b'), html);
  const s = rnode('s', 0, 0), t = rnode('t', 0, 0);
  const e = redge('e', s, t, { edges: [gedge('e', 'pid:1', 'pid:2', { states: { '<b>': 1 }, sockets: [{ client: '1', server: '2', state: '<i>' }] })] });
  const eh = edgeTooltip(e, new Map([['pid:1', gnode('pid:1', { label: '<script>', pid: 1 })]]));
  assert.ok(eh.includes('&lt;script&gt; · 1') && eh.includes('pid:2') && eh.includes('&lt;b&gt; 1') && !eh.includes('<i>'), eh);
});
