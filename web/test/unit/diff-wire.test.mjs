// The `slots` encoding of the live diff (`/api/events?diff=slots`): the fake server's encoder
// (test/diff-wire.mjs, which bench/ui.mjs feeds the page with) gives exactly what the real
// server's gives (test/fixtures/diff-wire.json is written by src/serve/diff_wire.rs's tests),
// and the UI's model (src/model.ts, applySlotDiff) decodes it to the same graph as the plain
// diffs give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const { Model } = await import(new URL('../../../target/web-unit/model.js', import.meta.url));
const { SlotEncoder, wantsAddedCols, wantsSlots } = await import(new URL('../diff-wire.mjs', import.meta.url));
const fixture = JSON.parse(readFileSync(new URL('../fixtures/diff-wire.json', import.meta.url), 'utf8'));
const clone = (x) => JSON.parse(JSON.stringify(x));
/** The model's graph as plain data, in a stable order (undefined fields dropped, as on the wire). */
const contents = (m) => ({
  seq: m.seq,
  nodes: clone([...m.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1))),
  edges: clone([...m.edges.values()].sort((a, b) => (a.id < b.id ? -1 : 1))),
});

test('the fake server encodes the fixture as the real server does', () => {
  const enc = new SlotEncoder(clone(fixture.graph));
  assert.ok(fixture.diffs.length > 50);
  fixture.diffs.forEach((d, i) => assert.deepEqual(enc.encode(clone(d)), fixture.encoded[i], `diff ${i}`));
});

test('the model applies the slots encoding to the same graph as the plain diffs', () => {
  const plain = new Model(), slots = new Model();
  plain.loadDoc(clone(fixture.graph));
  const doc = clone(fixture.graph);
  slots.loadDoc(doc);
  slots.startSlots(doc);
  let updatedInPlace = 0;
  fixture.diffs.forEach((d, i) => {
    assert.equal(plain.applyDiff(clone(d)), true);
    const before = new Map(slots.edges);
    const changes = [];
    slots.onChange((c) => changes.push(c));
    assert.equal(slots.applySlotDiff(clone(fixture.encoded[i])), true, `diff ${i} applies`);
    for (const e of changes.at(-1).updatedEdges) if (before.get(e.id) === e) updatedInPlace++;
    assert.deepEqual(contents(slots), contents(plain), `after diff ${i}`);
    // the adjacency follows (the side panel lists a node's edges from it)
    for (const [id, set] of plain.adj) assert.deepEqual([...(slots.adj.get(id) ?? [])].sort(), [...set].sort(), `adjacency of ${id}`);
  });
  assert.ok(updatedInPlace > 20, `updated edges changed in place (${updatedInPlace})`);
});

test('a diff that does not follow the slots is refused, and nothing changes', () => {
  const m = new Model();
  const doc = clone(fixture.graph);
  m.loadDoc(doc);
  // no stream started: refused
  assert.equal(m.applySlotDiff(clone(fixture.encoded[0])), false);
  m.startSlots(doc);
  const before = contents(m);
  // another base
  assert.equal(m.applySlotDiff({ ...clone(fixture.encoded[1]) }), false);
  // a slot that holds nothing
  const bad = clone(fixture.encoded[0]);
  bad.removedEdges = [9999];
  assert.equal(m.applySlotDiff(bad), false);
  assert.deepEqual(contents(m), before);
  // and once refused, the slots are lost until the stream starts again
  assert.equal(m.applySlotDiff(clone(fixture.encoded[0])), false);
  m.startSlots(doc);
  assert.equal(m.applySlotDiff(clone(fixture.encoded[0])), true);
  // a whole document from elsewhere (history, a re-sync) also loses them
  m.loadDoc(clone(fixture.graph));
  assert.equal(m.applySlotDiff(clone(fixture.encoded[1])), false);
});

test('the encoder refuses a diff that does not follow its stream', () => {
  const enc = new SlotEncoder(clone(fixture.graph));
  assert.throws(() => enc.encode({ ...clone(fixture.diffs[0]), base: 99 }), /seq 99/);
  assert.throws(() => enc.encode({ ...clone(fixture.diffs[0]), removedEdges: ['nope'] }), /unknown id nope/);
});

test('which event streams ask for slots', () => {
  assert.equal(wantsSlots('/api/events?diff=slots'), true);
  assert.equal(wantsSlots('/api/events?x=1&diff=slots'), true);
  assert.equal(wantsSlots('/api/events'), false);
  assert.equal(wantsSlots('/api/events?diff=json'), false);
});

test('the model keeps every field an edge has on the wire', async () => {
  const { edgeRecord } = await import(new URL('../../../target/web-unit/model.js', import.meta.url));
  const keys = new Set();
  for (const e of fixture.graph.edges) Object.keys(e).forEach((k) => keys.add(k));
  for (const d of fixture.diffs) for (const e of [...d.addedEdges, ...d.updatedEdges]) Object.keys(e).forEach((k) => keys.add(k));
  for (const k of ['rxBytes', 'rxRate', 'rttMs', 'retransmits', 'txBytes', 'txRate']) assert.ok(keys.has(k), `the fixture has an edge with ${k}`);
  const rec = edgeRecord(Object.fromEntries([...keys].map((k) => [k, `v-${k}`])));
  for (const k of keys) assert.equal(rec[k], `v-${k}`, `edgeRecord keeps ${k}`);
});

test('with added=cols the fake server encodes the added edges as the real server does', () => {
  const enc = new SlotEncoder(clone(fixture.graph), { addedCols: true });
  assert.equal(fixture.encodedCols.length, fixture.diffs.length);
  let cols = 0;
  fixture.diffs.forEach((d, i) => {
    const want = fixture.encodedCols[i];
    assert.deepEqual(want.addedEdges, [], `diff ${i}: no whole edges`);
    cols += want.addedEdgeCols.id.length;
    assert.deepEqual(enc.encode(clone(d)), want, `diff ${i}`);
  });
  assert.ok(cols > 50, `${cols} added edges as columns`);
});

test('the model applies added edges from columns to the same graph, each edge in the record shape', async () => {
  const { edgeRecord } = await import(new URL('../../../target/web-unit/model.js', import.meta.url));
  const shape = Object.keys(edgeRecord(fixture.graph.edges[0]));
  const plain = new Model(), cols = new Model();
  plain.loadDoc(clone(fixture.graph));
  const doc = clone(fixture.graph);
  cols.loadDoc(doc);
  cols.startSlots(doc);
  let added = 0;
  const changes = [];
  cols.onChange((c) => changes.push(c));
  fixture.diffs.forEach((d, i) => {
    assert.equal(plain.applyDiff(clone(d)), true);
    assert.equal(cols.applySlotDiff(clone(fixture.encodedCols[i])), true, `diff ${i} applies`);
    for (const e of changes.at(-1).addedEdges) { added++; assert.deepEqual(Object.keys(e), shape, `edge ${e.id}`); }
    assert.deepEqual(contents(cols), contents(plain), `after diff ${i}`);
  });
  assert.ok(added > 50, `${added} edges added`);
  for (const [id, set] of plain.adj) assert.deepEqual([...(cols.adj.get(id) ?? [])].sort(), [...set].sort(), `adjacency of ${id}`);
});

test('added columns whose ends do not match are refused, and nothing changes', () => {
  const m = new Model();
  const doc = clone(fixture.graph);
  m.loadDoc(doc);
  m.startSlots(doc);
  // the first diff that adds edges, after the ones before it
  const i = fixture.encodedCols.findIndex((d) => d.addedEdgeCols.id.length > 0);
  assert.ok(i >= 0);
  for (let j = 0; j < i; j++) assert.equal(m.applySlotDiff(clone(fixture.encodedCols[j])), true);
  const before = contents(m);
  const bad = clone(fixture.encodedCols[i]);
  bad.addedEdgeEnds.pop();
  assert.equal(m.applySlotDiff(bad), false);
  assert.deepEqual(contents(m), before);
});

test('which event streams ask for added edges as columns', () => {
  assert.equal(wantsAddedCols('/api/events?diff=slots&added=cols'), true);
  assert.equal(wantsAddedCols('/api/events?diff=slots'), false);
});

test('the first document\'s edges get the record shape after it, and the diffs apply all the same', async () => {
  const { edgeRecord } = await import(new URL('../../../target/web-unit/model.js', import.meta.url));
  const shape = Object.keys(edgeRecord(fixture.graph.edges[0]));
  const plain = new Model(), m = new Model();
  plain.loadDoc(clone(fixture.graph));
  const doc = clone(fixture.graph);
  const parsed = [...doc.edges];
  m.loadDoc(doc);
  m.startSlots(doc);
  // not copied for the first frame: the model holds the parsed objects
  assert.ok(parsed.every((e) => m.edges.get(e.id) === e));
  const replaced = new Map();
  m.onReplace((old, rec) => { assert.equal(old.id, rec.id); replaced.set(old, rec); });
  let done = false;
  fixture.diffs.forEach((d, i) => {
    assert.equal(plain.applyDiff(clone(d)), true);
    // a few at a time, between the diffs (as after the first frame, before and between updates)
    if (i >= 3 && !done) done = m.normalizeSome(2);
    assert.equal(m.applySlotDiff(clone(fixture.encodedCols[i])), true, `diff ${i} applies`);
    assert.deepEqual(contents(m), contents(plain), `after diff ${i}`);
  });
  assert.equal(m.normalizeSome(), true);
  assert.ok(replaced.size > 0);
  for (const e of m.edges.values()) assert.deepEqual(Object.keys(e), shape, `edge ${e.id} in the record shape`);
  for (const [old] of replaced) assert.notEqual(m.edges.get(old.id), old);
});

// The model keeps its edges by slot while the stream's slots are live (src/model-edges.ts): its
// index by id, built when asked, kept while asked between updates and dropped when not, always
// agrees with the edges; losing the slots (a plain diff) keeps every edge.
test('the model\'s edges by slot and by id agree, asked for or not, and survive the slots', () => {
  const plain = new Model(), slots = new Model();
  plain.loadDoc(clone(fixture.graph));
  const doc = clone(fixture.graph);
  slots.loadDoc(doc);
  slots.startSlots(doc);
  fixture.diffs.forEach((d, i) => {
    assert.equal(plain.applyDiff(clone(d)), true);
    assert.equal(slots.applySlotDiff(clone(fixture.encoded[i])), true, `diff ${i} applies`);
    const all = [...slots.edges.values()];
    assert.equal(slots.edges.size, all.length, `size after diff ${i}`);
    assert.equal(slots.edges.size, plain.edges.size, `size after diff ${i}`);
    // asked by id after two diffs of three: the index is kept, dropped, built again
    if (i % 3 !== 2) {
      for (const e of all) assert.equal(slots.edges.get(e.id), e, `edge ${e.id} by id after diff ${i}`);
      for (const id of plain.edges.keys()) assert.ok(slots.edges.has(id), `${id} after diff ${i}`);
    }
  });
  // the slots are lost (a plain diff after them): every edge is kept, by id
  const last = fixture.diffs.at(-1);
  const before = contents(slots);
  assert.equal(slots.applyDiff({ seq: last.seq + 1, base: last.seq, timestamp: last.timestamp, addedNodes: [], updatedNodes: [], removedNodes: [], addedEdges: [], updatedEdges: [], removedEdges: [] }), true);
  assert.deepEqual(contents(slots).edges, before.edges);
  assert.equal(slots.slotEdges.length, 0);
  for (const e of slots.edges.values()) assert.equal(slots.edges.get(e.id), e);
});
