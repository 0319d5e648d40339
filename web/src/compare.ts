// Compare mode without the DOM (unit-tested with node --test): the graph compare mode shows is
// the UNION of the graphs at the two moments, so an edge that vanished (and the processes that
// ended with it) is still there to be marked; which edges are marked vanished, new or changed;
// and where on a drawn edge its mark goes.
import type { GraphDoc } from './types';

/** An edge named by its ends (`/api/changes`). */
export interface EdgeRef { id: string; from: string; to: string; proto: string; serverPort: number }
/** Bytes an edge moved between the two moments. */
export interface EdgeBytes extends EdgeRef { txBytes: number; rxBytes: number }
/** `GET /api/changes`. */
export interface ChangesDoc {
  from: string; to: string; fromSeq: number; toSeq: number;
  newEdges: EdgeRef[]; vanishedEdges: EdgeRef[]; edgeBytes: EdgeBytes[];
  processBytes: { node: string; pid?: number; sent: number; received: number }[];
  closedConnections: number;
}

export type MarkKind = 'vanished' | 'new' | 'changed';
/** One edge compare mode marks; `bytes` is what it moved in between (both directions). */
export interface Mark { id: string; from: string; to: string; kind: MarkKind; bytes: number }

/**
 * The graph at `before` and at `after` in one document: every node and edge of either, the
 * later moment's data for those in both (their current names and counters), the earlier one's
 * for those that vanished. `seq` and `timestamp` are the earlier moment's: the view is "at T1".
 */
export function unionDocs(before: GraphDoc, after: GraphDoc): GraphDoc {
  const nodes = new Map(before.nodes.map((n) => [n.id, n]));
  for (const n of after.nodes) nodes.set(n.id, n);
  const edges = new Map(before.edges.map((e) => [e.id, e]));
  for (const e of after.edges) edges.set(e.id, e);
  const doc: GraphDoc = { seq: before.seq, timestamp: before.timestamp, nodes: [...nodes.values()], edges: [...edges.values()] };
  const hidden = after.p2pHiddenEdges ?? before.p2pHiddenEdges;
  if (hidden !== undefined) doc.p2pHiddenEdges = hidden;
  return doc;
}

/**
 * The marks of a comparison: vanished and new edges, and the edges present at both moments
 * that moved bytes in between ("changed", with the byte delta). An edge is marked once: a new
 * edge's bytes go on its "new" mark.
 */
export function marksOf(c: ChangesDoc): Mark[] {
  const bytes = new Map(c.edgeBytes.map((b) => [b.id, b.txBytes + b.rxBytes]));
  const out: Mark[] = [];
  const seen = new Set<string>();
  for (const e of c.vanishedEdges) { seen.add(e.id); out.push({ id: e.id, from: e.from, to: e.to, kind: 'vanished', bytes: 0 }); }
  for (const e of c.newEdges) { seen.add(e.id); out.push({ id: e.id, from: e.from, to: e.to, kind: 'new', bytes: bytes.get(e.id) ?? 0 }); }
  for (const b of c.edgeBytes) {
    if (seen.has(b.id) || b.txBytes + b.rxBytes <= 0) continue;
    seen.add(b.id);
    out.push({ id: b.id, from: b.from, to: b.to, kind: 'changed', bytes: b.txBytes + b.rxBytes });
  }
  return out;
}

/** How many of each kind. */
export function markCounts(marks: readonly Mark[]): Record<MarkKind, number> {
  const n: Record<MarkKind, number> = { vanished: 0, new: 0, changed: 0 };
  for (const m of marks) n[m.kind]++;
  return n;
}

/** The point halfway along a quadratic curve s → c → t (a straight edge: c is the midpoint). */
export function curveMid(sx: number, sy: number, cx: number, cy: number, tx: number, ty: number): { x: number; y: number } {
  return { x: 0.25 * sx + 0.5 * cx + 0.25 * tx, y: 0.25 * sy + 0.5 * cy + 0.25 * ty };
}

/**
 * Raw node id → the collapsed group drawn for it, from the drawn groups' members (a raw node
 * that is drawn itself is not in it).
 */
export function memberIndex(groups: Iterable<readonly [string, readonly string[]]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, members] of groups) for (const m of members) out.set(m, id);
  return out;
}

/** The two moments being compared, in words ("12:00:01 → 12:00:09 UTC", "… → now"). */
export function compareTitle(fromMs: number, toMs: number | null): string {
  const t = (ms: number) => new Date(ms).toISOString().slice(11, 19);
  return `${t(fromMs)} → ${toMs === null ? 'now' : t(toMs) + ' UTC'}`;
}
