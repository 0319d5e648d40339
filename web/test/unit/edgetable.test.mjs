// Unit tests of the view's edge bookkeeping (web/src/graph/edgetable.ts, pairs.ts): the edge
// table against a Map under random adds and deletes, and the pair lists against pairs keyed by
// the two ends' ids, for small nodes (scanned lists) and hubs (maps).
import { test } from 'node:test';
import assert from 'node:assert/strict';

const lib = new URL('../../../target/web-unit/graph/', import.meta.url);
const { EdgeTable } = await import(new URL('edgetable.js', lib));
const { joinPair, leavePair } = await import(new URL('pairs.js', lib));
const { pairKeyOf } = await import(new URL('scene.js', lib));

/** a deterministic PRNG, so a failure repeats */
const rng = (seed) => () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const node = (id) => ({ id });
const edge = (id, s, t) => ({ id, s, t, pair: null, li: -1 });

test('edge table: same edges, in insertion order, as a Map under random adds and deletes', () => {
  const r = rng(7), t = new EdgeTable(), m = new Map();
  const a = node('a'), b = node('b');
  let next = 0;
  for (let step = 0; step < 20000; step++) {
    if (m.size && r() < 0.48) {
      const ids = [...m.keys()], id = ids[Math.floor(r() * ids.length)];
      const v = m.get(id);
      m.delete(id);
      assert.equal(t.delete(v), true);
      assert.equal(t.delete(v), false, 'a second delete finds nothing');
    } else {
      const v = edge('e' + next++, a, b);
      m.set(v.id, v); t.add(v);
    }
    if (step % 97 === 0) t.dropIndex(); // the index by id is rebuilt on demand
    if (step % 13 === 0) {
      const id = 'e' + Math.floor(r() * next);
      assert.equal(t.get(id), m.get(id));
      assert.equal(t.has(id), m.has(id));
    }
    if (step % 501 === 0) assert.deepEqual([...t.keys()], [...m.keys()]);
    assert.equal(t.size, m.size);
  }
  assert.deepEqual([...t.values()], [...m.values()]);
  assert.deepEqual([...t].map(([k]) => k), [...m.keys()]);
});

test('pair lists: the same groups as pairs keyed by both ends, for small nodes and hubs', () => {
  const r = rng(11);
  const nodes = Array.from({ length: 200 }, (_, i) => node('n' + String(i).padStart(3, '0')));
  const hub = nodes[0]; // sorts first: holds the lists of all its many neighbours
  const live = [];
  let next = 0;
  for (let step = 0; step < 6000; step++) {
    if (live.length && r() < 0.45) {
      const v = live.splice(Math.floor(r() * live.length), 1)[0];
      const p = v.pair, left = leavePair(v);
      assert.equal(v.pair, null);
      assert.equal(left, p.length ? p : null);
      assert.ok(!p.includes(v));
    } else {
      // a third of the edges at the hub, the others between near neighbours (a few each, and
      // many multi-edges)
      const i = 1 + Math.floor(r() * 190), s = r() < 0.3 ? hub : nodes[i];
      const t = nodes[i + 1 + Math.floor(r() * 4)];
      const v = edge('e' + next++, r() < 0.5 ? s : t, r() < 0.5 ? t : s);
      const p = joinPair(v);
      assert.equal(v.pair, p);
      assert.ok(p.includes(v));
    }
    if (step % 50 === 0 || step === 5999) {
      const want = new Map();
      for (const v of live) {
        const k = pairKeyOf(v.s.id, v.t.id);
        if (!want.has(k)) want.set(k, new Set());
        want.get(k).add(v);
      }
      for (const v of live) assert.deepEqual(new Set(v.pair), want.get(pairKeyOf(v.s.id, v.t.id)), `pair of ${v.id}`);
    }
  }
  assert.ok(hub.nbr instanceof Map, 'the hub switched to a map');
  assert.ok(nodes.some((n) => n.pairs), 'small nodes keep scanned lists');
});

test('pair lists: a node\'s list that empties goes, the others are still found', () => {
  const a = node('a'), b = node('b'), c = node('c'), d = node('d');
  const ab = edge('1', a, b), ac = edge('2', a, c), ad = edge('3', d, a);
  joinPair(ab); joinPair(ac); joinPair(ad);
  assert.equal(leavePair(ab), null);
  assert.equal(a.pairs.length, 2);
  const da = edge('4', a, d);
  assert.equal(joinPair(da), ad.pair, 'the other direction joins the same list');
  assert.deepEqual(da.pair.map((e) => e.id), ['3', '4']);
  const ab2 = edge('5', b, a);
  assert.deepEqual(joinPair(ab2), [ab2], 'a new list once the old one went');
  assert.equal(ac.pair.length, 1);
});

test('pair lists: a node being removed (gone) drops its lists with its first edge; a survivor keeps its own', () => {
  const a = node('a'), b = node('b'), c = node('c'), z = node('z');
  const ab = edge('1', a, b), ab2 = edge('2', b, a), ac = edge('3', a, c), az = edge('4', z, a);
  for (const v of [ab, ab2, ac, az]) joinPair(v);
  // `a` goes (its lists hang off it: its id sorts first), and so do all of its edges
  a.gone = true;
  assert.equal(leavePair(ab), null);
  assert.equal(ab.pair, null);
  assert.equal(a.pairs, undefined, 'the lists went with the first edge');
  for (const v of [ab2, ac]) { assert.equal(leavePair(v), null); assert.equal(v.pair, null); }
  // `z`'s edge to `a` hangs off `a` too: nothing left to keep
  assert.equal(leavePair(az), null);
  // a node that stays keeps its lists up to date when the other end goes
  const p = node('p'), q = node('q'), r = node('r');
  const pq = edge('5', p, q), pr = edge('6', p, r);
  joinPair(pq); joinPair(pr);
  q.gone = true;
  assert.equal(leavePair(pq), null);
  assert.deepEqual(p.pairNodes, [r]);
  assert.deepEqual(p.pairs, [[pr]]);
});
