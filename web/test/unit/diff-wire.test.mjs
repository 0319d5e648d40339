// The `slots` encoding of the live diff (`/api/events?diff=slots`): the fake server's encoder
// (test/diff-wire.mjs, which bench/ui.mjs feeds the page with) gives exactly what the real
// server's gives (test/fixtures/diff-wire.json is written by src/serve/diff_wire.rs's tests),
// and the UI's model (src/model.ts, applySlotDiff) decodes it to the same graph as the plain
// diffs give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const { Model } = await import(new URL('../../../target/web-unit/model.js', import.meta.url));
const { SlotEncoder, wantsSlots } = await import(new URL('../diff-wire.mjs', import.meta.url));
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
