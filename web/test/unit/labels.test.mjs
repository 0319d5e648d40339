// Label collision avoidance (web/src/graph/labels.ts) and the node bitmap fill
// (web/src/graph/nodelayer.ts), pure, compiled by build.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const lib = new URL('../../../target/web-unit/graph/', import.meta.url);
const { placeLabels, anyOverlap } = await import(new URL('labels.js', lib));
const { fillSquares, rgbaWord } = await import(new URL('nodelayer.js', lib));

const cand = (id, x, y, priority, extra = {}) => ({ id, text: id, x, y, w: 60, h: 13, priority, ...extra });

test('labels: of two overlapping labels the higher priority one is drawn, the other left out', () => {
  // "python3 · 30060" and "python3 · 30011" side by side, 10 px apart: they would overlap
  const out = placeLabels([cand('python3 · 30011', 110, 50, 1), cand('python3 · 30060', 100, 50, 2)], 800, 600);
  assert.deepEqual(out.map((l) => l.id), ['python3 · 30060']);
  // far enough apart, both are drawn
  const both = placeLabels([cand('a', 0, 0, 1), cand('b', 100, 0, 1), cand('c', 0, 20, 1)], 800, 600);
  assert.equal(both.length, 3);
});

test('labels: the hovered/selected label is always drawn, and the rest keep clear of it', () => {
  const out = placeLabels([cand('big', 100, 50, 9), cand('hovered', 120, 52, 0, { force: true })], 800, 600);
  assert.deepEqual(out.map((l) => l.id), ['hovered']);
  const two = placeLabels([cand('sel', 100, 50, 0, { force: true }), cand('hov', 101, 51, 0, { force: true })], 800, 600);
  assert.equal(two.length, 2, 'forced labels are drawn whatever they overlap');
});

test('labels: a dense random field gives no two overlapping boxes, off-screen ones included, and honours the budget', () => {
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const cands = Array.from({ length: 2000 }, (_, i) => ({ id: `n${i}`, text: `n${i}`, x: rnd() * 1400 - 100, y: rnd() * 800 - 40, w: 20 + rnd() * 100, h: 13, priority: rnd() }));
  const out = placeLabels(cands, 1280, 720);
  assert.ok(out.length > 50, `placed ${out.length}`);
  assert.equal(anyOverlap(out), null);
  // greedy by priority: the best candidate is always placed
  const best = cands.reduce((a, b) => (b.priority > a.priority ? b : a));
  assert.ok(out.some((l) => l.id === best.id));
  // against a brute-force greedy placement: the same set
  const order = cands.slice().sort((a, b) => b.priority - a.priority);
  const brute = [];
  for (const c of order) if (!brute.some((o) => c.x < o.x + o.w + 2 && o.x < c.x + c.w + 2 && c.y < o.y + o.h + 2 && o.y < c.y + c.h + 2)) brute.push(c);
  assert.deepEqual(out.map((l) => l.id).sort(), brute.map((l) => l.id).sort());
  assert.equal(placeLabels(cands, 1280, 720, 10).length, 10);
});

test('node bitmap: squares at whole device pixels, clipped, hidden nodes and colour 0 left out', () => {
  const W = 20, H = 10, out = new Uint32Array(W * H).fill(123);
  const n = (id, x, y, r, extra = {}) => ({ id, x, y, r, hidden: false, ...extra });
  const red = rgbaWord('#ff0000'), half = rgbaWord('#00ff00', 64);
  assert.equal(red, 0xff0000ff);
  assert.equal(half, (64 << 24 | 0xff00) >>> 0);
  const nodes = [n('a', 5, 5, 1), n('b', 19, 0, 1), n('h', 10, 5, 1, { hidden: true }), n('z', 12, 5, 1)];
  fillSquares(out, W, H, nodes, { k: 1, tx: 0, ty: 0 }, 1, 1.5, (x) => (x.id === 'z' ? 0 : x.id === 'b' ? half : red));
  const at = (x, y) => out[y * W + x];
  // a: half-side max(1, 1.5) = 1.5 → pixels 4..6 (round(3.5)=4 .. round(6.5)=7 exclusive)
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const inA = x >= 4 && x < 7 && y >= 4 && y < 7, inB = x >= 18 && y < 2;
    assert.equal(at(x, y), inA ? red : inB ? half : 0, `pixel ${x},${y}`);
  }
  // the next call clears only what the last one filled: 'a' moved, nothing of it stays behind
  const first = fillSquares(new Uint32Array(W * H), W, H, nodes, { k: 1, tx: 0, ty: 0 }, 1, 1.5, () => red);
  const buf = new Uint32Array(W * H);
  const r1 = fillSquares(buf, W, H, nodes, { k: 1, tx: 0, ty: 0 }, 1, 1.5, () => red);
  assert.equal(r1.len, first.len);
  fillSquares(buf, W, H, [n('a', 10, 5, 1)], { k: 1, tx: 0, ty: 0 }, 1, 1.5, () => red, r1.drawn, r1.len);
  const lit = [...buf.keys()].filter((i) => buf[i] !== 0);
  assert.deepEqual(lit, [4 * W + 9, 4 * W + 10, 4 * W + 11, 5 * W + 9, 5 * W + 10, 5 * W + 11, 6 * W + 9, 6 * W + 10, 6 * W + 11]);
});
