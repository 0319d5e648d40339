// Unit tests of rates you can read and services (issue 16 items 2 and 3): the log scale of edge
// widths and traffic rings, the top-talkers ranking and sparkline, and grouping by service.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const lib = new URL('../../../target/web-unit/graph/', import.meta.url);
const { rateWidth, ringWidth, nodeRate, nodeRadius, RATE_LEGEND } = await import(new URL('scene.js', lib));
const { topBy, topProcesses, topEdges, sparkline, NO_HISTORY } = await import(new URL('talkers.js', lib));
const { groupKeyOf, groupView, defaultCollapsed, groupLabel } = await import(new URL('grouping.js', lib));
const { nodeTooltip } = await import(new URL('tooltip.js', lib));

const gnode = (id, extra = {}) => ({ id, kind: 'process', type: 'app', label: id, ...extra });
const gedge = (id, from, to, extra = {}) => ({ id, from, to, proto: 'tcp', serverPort: 80, count: 1, states: {}, sockets: [], ...extra });

test('edge width: log scale, 1 px up to 1 KB/s, the legend sizes 1 / 4 / 7 px, capped at 8', () => {
  assert.equal(rateWidth(-1), 1);
  assert.equal(rateWidth(undefined), 1);
  assert.equal(rateWidth(500), 1);
  assert.deepEqual(RATE_LEGEND.map((l) => [l.label, rateWidth(l.rate)]), [['1 KB/s', 1], ['100 KB/s', 4], ['10 MB/s', 7]]);
  assert.equal(rateWidth(1e4), 2.5); // 10 KB/s
  assert.equal(rateWidth(1e12), 8);
  // 10 MB/s against 10 KB/s: a linear scale would give 1000:1 (one a hairline); this gives 7:2.5
  assert.ok(rateWidth(1e7) - rateWidth(1e4) >= 4);
  // monotonic
  let last = 0;
  for (let r = 1; r < 1e10; r *= 1.7) { const w = rateWidth(r); assert.ok(w >= last); last = w; }
});

test('nodes: the traffic ring and the radius grow with the log of the rate', () => {
  assert.equal(ringWidth(-1), 0);
  assert.equal(ringWidth(999), 0);
  assert.ok(ringWidth(1e7) > ringWidth(1e4) && ringWidth(1e4) > 0);
  assert.equal(nodeRate(gnode('a')), -1);
  assert.equal(nodeRate(gnode('a', { txRate: 5, rxRate: 7 })), 12);
  const rn = (rate) => ({ id: 'a', kind: 'process', deg: 1, rate });
  assert.ok(nodeRadius(rn(1e7)) > nodeRadius(rn(1e4)));
  assert.equal(nodeRadius(rn(-1)), nodeRadius(rn(500)));
});

test('top talkers: highest first, ties by id, no-traffic items left out, at most n', () => {
  const items = [['a', 5], ['b', 50], ['c', 0], ['d', 50], ['e', -1], ['f', 7]];
  assert.deepEqual(topBy(items, (x) => x[1], (x) => x[0], 3).map((x) => x.item[0]), ['b', 'd', 'f']);
  assert.deepEqual(topBy(items, (x) => x[1], (x) => x[0], 10).map((x) => x.item[0]), ['b', 'd', 'f', 'a']);
  const nodes = [gnode('pid:1', { label: 'slow', pid: 1, txRate: 1e4, rxRate: 0 }), gnode('pid:2', { label: 'fast', pid: 2, txRate: 1e7, rxRate: 10 }),
    gnode('pid:3', { label: 'quiet', pid: 3 }), { id: 'ext:1.2.3.4', kind: 'external', type: 'external', label: '1.2.3.4', txRate: 1e9 }];
  const p = topProcesses(nodes);
  assert.deepEqual(p.map((t) => t.id), ['pid:2', 'pid:1']); // the external endpoint is no process
  assert.equal(p[0].label, 'fast · 2');
  assert.equal(p[0].rate, 1e7 + 10);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const e = topEdges([gedge('x', 'pid:1', 'pid:3', { txRate: 1e4 }), gedge('y', 'pid:2', 'pid:3', { txRate: 1e7, rxRate: 5 }), gedge('z', 'pid:2', 'pid:1')], byId);
  assert.deepEqual(e.map((t) => [t.id, t.label]), [['y', 'fast · 2 → quiet · 3 :80'], ['x', 'slow · 1 → quiet · 3 :80']]);
});

test('sparkline: nothing without history (the seam for issue 9), a polyline with it', () => {
  assert.equal(NO_HISTORY.series('pid:1'), null);
  assert.equal(sparkline(null), '');
  assert.equal(sparkline([5]), '');
  const svg = sparkline([0, 10, 5], 60, 14);
  assert.match(svg, /^<svg class="spark"/);
  assert.match(svg, /points="0\.0,13\.5 30\.0,0\.5 60\.0,7\.0"/);
});

test('service grouping: workers fold under their head, named after it, with a count', () => {
  const n = [gnode('pid:10', { name: 'nginx', label: 'nginx', service: 'pid:10' }),
    ...[11, 12, 13, 14].map((p) => gnode(`pid:${p}`, { name: 'nginx', label: 'nginx worker', service: 'pid:10' })),
    gnode('pid:20', { name: 'curl', service: 'pid:20' }), gnode('pid:30', { name: 'old' }),
    { id: 'ext:1.2.3.4', kind: 'external', type: 'external', label: '1.2.3.4' }];
  assert.equal(groupKeyOf(n[1], 'service'), 'pid:10');
  assert.equal(groupKeyOf(n[6], 'service'), 'pid:30'); // no service from the server: itself
  assert.equal(groupKeyOf(n[7], 'service'), 'ext:1.2.3.4');
  assert.deepEqual([...defaultCollapsed(n, 'service')], ['pid:10']);
  assert.deepEqual([...defaultCollapsed(n, 'service', new Set(['pid:10']))], []); // the user expanded it
  const e = [gedge('a', 'pid:20', 'pid:11', { txRate: 100 }), gedge('b', 'pid:20', 'pid:12', { txRate: 50 }), gedge('c', 'pid:10', 'pid:11')];
  const v = groupView(n, e, 'service', new Set(['pid:10']));
  const g = v.groups.get('group:pid:10');
  assert.deepEqual(g.members, ['pid:10', 'pid:11', 'pid:12', 'pid:13', 'pid:14']);
  assert.equal(groupLabel(g), 'nginx ×5'); // the head's label, not a worker's or the key
  assert.deepEqual([...v.edges.keys()], ['agg:pid:20>group:pid:10/tcp']);
  // the head listed after its workers still names the group
  const w = groupView([...n.slice(1, 5), n[0]], [], 'service', new Set(['pid:10']));
  assert.equal(groupLabel(w.groups.get('group:pid:10')), 'nginx ×5');
  const tip = nodeTooltip({ id: 'group:pid:10', group: g, rate: 150, label: groupLabel(g) });
  assert.match(tip, /<b>nginx<\/b><br>service of 5 processes<br>150 B\/s in \+ out/);
});
