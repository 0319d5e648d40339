// Placement of nodes that have no position yet: next to their placed neighbours, else seeded
// as a block just outside the current drawing, so an update never moves what is already shown.
import { seedLayout, SPACING } from '../layout.ts';
import { bounds } from './camera.ts';
import type { RNode, REdge } from './scene.ts';

/** Place the unplaced nodes of `pending`, knowing the edges next to them (`near`: any superset
 *  of the edges that touch a pending node; the caller passes only those an update added, so the
 *  cost follows the change). `all` is every node, for the drawing's bounds. Returns false (and
 *  places nothing) when no node is placed yet: then the caller runs a full initial layout. */
export function placeNew(pending: RNode[], near: Iterable<REdge>, all: Iterable<RNode>, random: () => number = Math.random): boolean {
  pending = pending.filter((n) => !n.placed);
  if (!pending.length) return true;
  let anyPlaced = false;
  for (const n of all) if (n.placed) { anyPlaced = true; break; }
  if (!anyPlaced) return false;
  // neighbour lists for pending nodes
  const nb = new Map<RNode, RNode[]>();
  for (const n of pending) nb.set(n, []);
  for (const e of near) {
    if (!e.s.placed || !e.t.placed) {
      nb.get(e.s)?.push(e.t);
      nb.get(e.t)?.push(e.s);
    }
  }
  let rest = pending;
  for (let pass = 0; pass < 4 && rest.length; pass++) {
    const next: RNode[] = [];
    for (const n of rest) {
      let sx = 0, sy = 0, k = 0;
      for (const m of nb.get(n)!) if (m.placed) { sx += m.x; sy += m.y; k++; }
      if (!k) { next.push(n); continue; }
      const a = random() * Math.PI * 2, r = SPACING * (0.8 + random() * 0.8);
      n.x = sx / k + Math.cos(a) * r; n.y = sy / k + Math.sin(a) * r; n.placed = true;
    }
    if (next.length === rest.length) break;
    rest = next;
  }
  if (rest.length) {
    // unconnected newcomers: seed them as a block just outside the current drawing
    const b = bounds(all, true);
    const idx = new Map<RNode, number>(); rest.forEach((n, i) => idx.set(n, i));
    const nbrs = rest.map((n) => nb.get(n)!.map((m) => idx.get(m)).filter((i): i is number => i !== undefined));
    const xs = new Float64Array(rest.length), ys = new Float64Array(rest.length);
    seedLayout(rest.length, nbrs, xs, ys);
    let minx = Infinity, miny = Infinity;
    for (let i = 0; i < rest.length; i++) { minx = Math.min(minx, xs[i]); miny = Math.min(miny, ys[i]); }
    rest.forEach((n, i) => { n.x = xs[i] - minx + b.x1 + SPACING * 2; n.y = ys[i] - miny + b.y0; n.placed = true; });
  }
  return true;
}

/** Seed positions for every node at once (O(N+E)); the worker refines them afterwards. */
export function seedAll(nodes: RNode[], edges: Iterable<REdge>) {
  nodes.forEach((n, i) => (n.ix = i));
  const nbrs: number[][] = nodes.map(() => []);
  for (const e of edges) { nbrs[e.s.ix].push(e.t.ix); nbrs[e.t.ix].push(e.s.ix); }
  const xs = new Float64Array(nodes.length), ys = new Float64Array(nodes.length);
  seedLayout(nodes.length, nbrs, xs, ys);
  nodes.forEach((n, i) => { n.x = xs[i]; n.y = ys[i]; n.placed = true; });
}
