// Compare mode and the closed-connections view without the DOM (web/src/compare.ts,
// web/src/closed-rows.ts): the union of two moments' graphs, which edges are marked, where a
// mark goes on a curved edge, the /api/flows window for each time-bar state, search and sort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTitle, curveMid, markCounts, marksOf, memberIndex, unionDocs } from '../../../target/web-unit/compare.js';
import { closedStatus, filterFlows, flowWindow, flowsUrl, fmtDuration, sortFlows } from '../../../target/web-unit/closed-rows.js';

const node = (id, name = id) => ({ id, name });
const edge = (id, from, to, txBytes = 0) => ({ id, from, to, proto: 'tcp', serverPort: 80, txBytes });

test('the union holds both moments: vanished edges and their exited processes stay, shared ones take the later data', () => {
  const before = { seq: 5, timestamp: 'T1', nodes: [node('pid:1', 'old'), node('pid:2'), node('pid:3')], edges: [edge('a', 'pid:1', 'pid:2', 10), edge('gone', 'pid:3', 'pid:2')] };
  const after = { seq: 9, timestamp: 'T2', nodes: [node('pid:1', 'renamed'), node('pid:2'), node('pid:4')], edges: [edge('a', 'pid:1', 'pid:2', 99), edge('fresh', 'pid:4', 'pid:2')], p2pHiddenEdges: 2 };
  const u = unionDocs(before, after);
  assert.equal(u.seq, 5, 'the view is at the earlier moment');
  assert.deepEqual(u.nodes.map((n) => n.id).sort(), ['pid:1', 'pid:2', 'pid:3', 'pid:4']);
  assert.equal(u.nodes.find((n) => n.id === 'pid:1').name, 'renamed');
  assert.deepEqual(u.edges.map((e) => e.id).sort(), ['a', 'fresh', 'gone']);
  assert.equal(u.edges.find((e) => e.id === 'a').txBytes, 99);
  assert.equal(u.p2pHiddenEdges, 2);
  assert.equal('p2pHiddenEdges' in unionDocs(before, { ...after, p2pHiddenEdges: undefined }), false);
});

test('marks: each edge once, a new edge keeps its bytes, an edge that moved nothing is not "changed"', () => {
  const c = {
    from: 'a', to: 'b', fromSeq: 1, toSeq: 2, closedConnections: 1, processBytes: [],
    vanishedEdges: [edge('gone', 'pid:3', 'pid:2')],
    newEdges: [edge('fresh', 'pid:4', 'pid:2')],
    edgeBytes: [{ ...edge('fresh', 'pid:4', 'pid:2'), txBytes: 5, rxBytes: 7 }, { ...edge('a', 'pid:1', 'pid:2'), txBytes: 100, rxBytes: 1 }, { ...edge('idle', 'pid:1', 'pid:2'), txBytes: 0, rxBytes: 0 }],
  };
  const m = marksOf(c);
  assert.deepEqual(m.map((x) => [x.id, x.kind, x.bytes]), [['gone', 'vanished', 0], ['fresh', 'new', 12], ['a', 'changed', 101]]);
  assert.deepEqual(markCounts(m), { vanished: 1, new: 1, changed: 1 });
});

test('a mark sits halfway along the drawn curve; a grouped process is found through its group', () => {
  assert.deepEqual(curveMid(0, 0, 5, 5, 10, 0), { x: 5, y: 2.5 });
  assert.deepEqual(curveMid(0, 0, 5, 0, 10, 0), { x: 5, y: 0 });
  const idx = memberIndex([['grp:nginx', ['pid:10', 'pid:11']], ['grp:pg', ['pid:20']]]);
  assert.equal(idx.get('pid:11'), 'grp:nginx');
  assert.equal(idx.get('pid:20'), 'grp:pg');
  assert.equal(idx.get('pid:99'), undefined);
  assert.equal(compareTitle(Date.UTC(2026, 0, 1, 12, 0, 1), null), '12:00:01 → now');
  assert.equal(compareTitle(Date.UTC(2026, 0, 1, 12, 0, 1), Date.UTC(2026, 0, 1, 12, 0, 9)), '12:00:01 → 12:00:09 UTC');
});

test('the closed-connections window follows the time bar', () => {
  const t = Date.UTC(2026, 0, 1, 12, 0, 0);
  assert.deepEqual(flowWindow({ atMs: null, range: null, compare: false }, 15), { since: '15m', until: '', text: 'closed in the last 15 min (live)' });
  const r = flowWindow({ atMs: t, range: { fromMs: t, toMs: t + 8000 }, compare: true }, 15);
  assert.equal(r.since, (t / 1000).toFixed(3), 'a range: what closed from its start (its first graph may still show it)…');
  assert.equal(r.until, ((t + 8000) / 1000).toFixed(3), '…up to its end');
  assert.equal(flowWindow({ atMs: t, range: null, compare: true }, 15).until, '', 'compare with now: up to now');
  const past = flowWindow({ atMs: t, range: null, compare: false }, 5);
  assert.deepEqual([past.since, past.until], [((t - 300000) / 1000).toFixed(3), (t / 1000).toFixed(3)]);
  assert.equal(flowsUrl(r, 10000, 500), `/api/flows?since=${r.since}&until=${r.until}&limit=500&offset=10000`);
  assert.equal(flowsUrl({ since: '15m', until: '' }, 0), '/api/flows?since=15m&limit=10000&offset=0');
});

const flow = (o) => ({ start: '', end: '', startMs: 0, endMs: 0, duration: 1, proto: 'tcp', state: 'ESTABLISHED', client: { address: '127.0.0.1', port: 40000 }, server: { address: '127.0.0.1', port: 80 }, ...o });

test('closed connections are searched by every word and sorted stably either way', () => {
  const rows = [
    flow({ endMs: 3, duration: 0.1, client: { address: '127.0.0.1', port: 40001, pid: 4242, processName: 'curl' }, server: { address: '127.0.0.1', port: 80, pid: 9, processName: 'nginx' }, clientBytes: 500 }),
    flow({ endMs: 1, duration: 30, client: { address: '10.0.0.1', port: 40002, pid: 8, processName: 'python3' }, server: { address: '127.0.0.1', port: 5432, processName: 'postgres' }, clientBytes: 10, state: 'TIME_WAIT' }),
    flow({ endMs: 2, duration: 2, short: true }),
  ];
  assert.deepEqual(filterFlows(rows, 'CURL nginx').map((f) => f.endMs), [3]);
  assert.deepEqual(filterFlows(rows, '5432').map((f) => f.endMs), [1]);
  assert.deepEqual(filterFlows(rows, ' 4242 ').map((f) => f.endMs), [3], 'a pid');
  assert.deepEqual(filterFlows(rows, 'time_wait').map((f) => f.endMs), [1]);
  assert.deepEqual(filterFlows(rows, 'short').map((f) => f.endMs), [2]);
  assert.deepEqual(filterFlows(rows, 'curl postgres'), []);
  assert.equal(filterFlows(rows, '').length, 3);
  assert.deepEqual(sortFlows(rows, 'end').map((f) => f.endMs), [1, 2, 3]);
  assert.deepEqual(sortFlows(rows, '-duration').map((f) => f.endMs), [1, 2, 3]);
  assert.deepEqual(sortFlows(rows, 'clientBytes').map((f) => f.endMs), [2, 1, 3], 'unknown bytes first');
  assert.deepEqual(sortFlows(rows, 'client').map((f) => f.endMs), [2, 3, 1]);
  assert.deepEqual(sortFlows(rows, '').map((f) => f.endMs), [3, 1, 2], 'as given');
  assert.deepEqual(sortFlows(rows, 'nonsense').map((f) => f.endMs), [3, 1, 2]);
});

test('durations and the indicator read well', () => {
  assert.equal(fmtDuration(0.1), '100 ms');
  assert.equal(fmtDuration(2.25), '2.3 s');
  assert.equal(fmtDuration(75), '1 min 15 s');
  assert.equal(fmtDuration(7260), '2 h 1 min');
  assert.equal(fmtDuration(NaN), '–');
  assert.equal(closedStatus({ loaded: 0, total: -1, shown: 0, q: '', loading: true }), 'loading closed connections…');
  assert.equal(closedStatus({ loaded: 1200, total: 1200, shown: 1200, q: '', loading: false }), '1,200 closed connections');
  assert.equal(closedStatus({ loaded: 100000, total: 250000, shown: 3, q: 'curl', loading: false }), '3 of 100,000 closed connections match (the first 100,000 of 250,000 loaded)');
});
