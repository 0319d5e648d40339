// The edges between the same two nodes (either direction), for curving multi-edges apart.
// Each pair list hangs off the end whose id sorts first. Most nodes have a few neighbours, so
// their lists are found by a short scan of an array (no hash operation per added or removed
// edge); a node with many (a hub) gets a map by neighbour instead.
import type { REdge, RNode } from './scene.ts';

/** Past this many neighbours a scan costs more than a map lookup. */
const SCAN_MAX = 16;

/** The end a pair list hangs off. */
function loOf(v: REdge): RNode {
  return v.s.id < v.t.id ? v.s : v.t;
}

/** Put `v` in the list of its two nodes' edges (and set `v.pair`); returns that list. */
export function joinPair(v: REdge): REdge[] {
  const lo = loOf(v), hi = lo === v.s ? v.t : v.s;
  let p: REdge[] | undefined;
  if (lo.nbr) {
    p = lo.nbr.get(hi);
    if (!p) lo.nbr.set(hi, (p = []));
  } else {
    const ps = lo.pairs ?? (lo.pairs = []), ns = lo.pairNodes ?? (lo.pairNodes = []);
    // (the other ends side by side: the scan compares pointers, it reads no edge)
    const k = ns.indexOf(hi);
    if (k >= 0) p = ps[k];
    else {
      p = [];
      if (ps.length < SCAN_MAX) { ps.push(p); ns.push(hi); }
      else {
        const m = new Map<RNode, REdge[]>();
        for (let i = 0; i < ps.length; i++) m.set(ns[i], ps[i]);
        m.set(hi, p);
        lo.nbr = m; lo.pairs = undefined; lo.pairNodes = undefined;
      }
    }
  }
  p.push(v);
  v.pair = p;
  return p;
}

/** Take `v` out of its pair list (and clear `v.pair`); returns what is left of the list, or
 *  null when it was the last (the list is then dropped from its node). */
export function leavePair(v: REdge): REdge[] | null {
  const p = v.pair;
  if (!p) return null;
  v.pair = null;
  // the node the list hangs off is being removed, and every edge of it with it: its lists go at
  // once (whatever still points at the node), none is kept up to date edge by edge (the caller
  // marks the nodes of a change `gone` before it removes their edges)
  const lo = loOf(v);
  if (lo.gone) { lo.pairs = undefined; lo.pairNodes = undefined; lo.nbr = undefined; return null; }
  const i = p.indexOf(v);
  if (i >= 0) p.splice(i, 1);
  if (p.length) return p;
  const hi = lo === v.s ? v.t : v.s;
  if (lo.nbr) lo.nbr.delete(hi);
  else if (lo.pairs && lo.pairNodes) {
    const ps = lo.pairs, ns = lo.pairNodes, k = ns.indexOf(hi);
    if (k >= 0) { ps[k] = ps[ps.length - 1]; ps.pop(); ns[k] = ns[ns.length - 1]; ns.pop(); }
  }
  return null;
}
