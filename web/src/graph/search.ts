// Search: mark the nodes and edges that match a query (name, label, pid, port, address,
// group key) and hide the rest when only matches are wanted. Pure.
import type { RNode, REdge } from './scene.ts';

/** The drawn nodes and edges (Maps in the view; arrays do as well). */
export interface Scene { nodes: { values(): Iterable<RNode> }; edges: { values(): Iterable<REdge> } }

/** `q` is lower-case; `num` is its value when it is all digits (pid or port), else NaN. */
export function nodeMatches(n: RNode, q: string, num: number): boolean {
  if (n.label.toLowerCase().includes(q)) return true;
  const g = n.node;
  if (g) {
    if (g.name && g.name.toLowerCase().includes(q)) return true;
    if (!isNaN(num)) {
      if (g.pid === num) return true;
      if (g.listeners?.some((l) => l.port === num)) return true;
    }
    if (g.address && g.address.includes(q)) return true;
  }
  if (n.group && (n.group.key.toLowerCase().includes(q) || n.group.title?.toLowerCase().includes(q))) return true;
  return false;
}

/** Set `match`/`hidden` on every node and edge of `view`; returns the number of matching nodes, or null
 *  for an empty query (which clears every mark). An edge to a matching port marks its ends. */
export function applySearch(view: Scene, q: string, filterOnly: boolean): number | null {
  // several passes: each needs a fresh iterator (a Map's values() is spent after one)
  const nodes = () => view.nodes.values(), edges = () => view.edges.values();
  if (!q) {
    for (const n of nodes()) { n.match = false; n.hidden = false; }
    for (const e of edges()) { e.match = false; e.hidden = false; }
    return null;
  }
  let count = 0;
  const num = /^\d+$/.test(q) ? Number(q) : NaN;
  for (const n of nodes()) n.match = nodeMatches(n, q, num);
  for (const e of edges()) {
    e.match = !isNaN(num) && e.edges.some((x) => x.serverPort === num);
    if (e.match) { e.s.match = true; e.t.match = true; }
  }
  for (const n of nodes()) { n.hidden = filterOnly && !n.match; if (n.match) count++; }
  for (const e of edges()) e.hidden = e.s.hidden || e.t.hidden;
  return count;
}

export function searchInfoText(count: number | null): string {
  return count === null ? '' : `${count} match${count === 1 ? '' : 'es'}`;
}
