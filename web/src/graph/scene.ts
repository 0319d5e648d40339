// The renderer's own view of the graph: drawable nodes and edges (one per raw node/edge, or
// per collapsed group and aggregated edge), and the pure facts derived from them (radius,
// label, traffic rate, curve control point). No DOM, no canvas: node can import it for tests.
import type { GEdge, GNode } from '../types.ts';

export type GroupMode = 'none' | 'service' | 'name' | 'type' | 'container' | 'host';

/** A collapsed group: its key under `mode`, its raw member ids, and the name shown for it
 *  (for a service, its head's label; otherwise the key). */
export interface GroupData { key: string; mode: GroupMode; members: string[]; title?: string }

export interface RNode {
  id: string;
  x: number; y: number; r: number;
  placed: boolean;
  type: string; kind: string;
  label: string;
  node?: GNode;          // a raw node
  group?: GroupData;     // a collapsed group
  deg: number;
  match: boolean;
  hidden: boolean;
  ix: number;            // scratch index for layout jobs
  /** the edges between this node and another whose id sorts after this one's, one list per
   *  such node (graph/pairs.ts): scanned while short, by that node in `nbr` once long (hubs) */
  pairs?: REdge[][];
  /** the other end of each of `pairs` */
  pairNodes?: RNode[];
  nbr?: Map<RNode, REdge[]>;
  /** bytes/s both ways (a group: summed over its members), -1 when unknown */
  rate?: number;
  /** the change that last queued this node's radius (GraphView: a mark, not a set lookup) */
  tm?: number;
  /** taken out of the view (a node that comes back is a new object) */
  gone?: boolean;
  /** the node layer's colour word (graph/draw.ts), and the raw node or group it was made for */
  cw?: number; cwSrc?: object;
}

export interface REdge {
  id: string;
  s: RNode; t: RNode;
  proto: string;
  count: number;
  rate: number;          // bytes/s, -1 when unknown
  edges: GEdge[];        // the raw edges behind it (1, or many when aggregated)
  /** `edges[0]` when it is the only one, else null: what a slot lookup checks (one load, not two) */
  raw: GEdge | null;
  /** every edge between the same two nodes, whichever their direction (this one included) */
  pair: REdge[] | null;
  curv: number;
  hidden: boolean;
  match: boolean;
  /** the density layer's raster record (density.ts `RasterEdge`); rw 0: not rasterised */
  rw: number; rp: number;
  rx0: number; ry0: number; rcx: number; rcy: number; rx1: number; ry1: number; rc: boolean;
  /** width the last frame drew it with, CSS px (0: not drawn); read by tests through the hook */
  wpx?: number;
  /** in GraphView's set of retransmitting edges */
  rt?: boolean;
  /** its place in the view's EdgeTable (-1: not in it) */
  li: number;
}

/** Below 1 KB/s an edge is a hairline and a node has no traffic ring. */
export const RATE_FLOOR = 1000;

/** A view of at most this many nodes labels every node at any zoom (graph/draw.ts); above it
 *  labels appear only once zoomed in far enough to read them. */
export const LABEL_ALL_MAX = 60;

/** Decades above 1 KB/s (0 below it, or when the rate is unknown). */
function decades(rate: number | undefined): number {
  return rate !== undefined && rate > RATE_FLOOR ? Math.log10(rate / RATE_FLOOR) : 0;
}

/** Edge width in CSS px on a log scale, so 10 KB/s and 10 MB/s differ at a glance while a
 *  linear scale would make every edge but the biggest a hairline: 1 px up to 1 KB/s, then
 *  +1.5 px per decade (100 KB/s → 4 px, 10 MB/s → 7 px), at most 8 px. */
export function rateWidth(rate: number | undefined): number {
  return Math.min(8, 1 + 1.5 * decades(rate));
}

/** The sizes the legend shows, with the width each is drawn with. */
export const RATE_LEGEND: { label: string; rate: number }[] = [
  { label: '1 KB/s', rate: 1e3 }, { label: '100 KB/s', rate: 1e5 }, { label: '10 MB/s', rate: 1e7 },
];

/** Width of a node's traffic ring in CSS px (0: no ring): the same log scale as edges. */
export function ringWidth(rate: number | undefined): number {
  const d = decades(rate);
  return d > 0 ? Math.min(7, 1 + 1.2 * d) : 0;
}

/** A raw node's traffic, both ways, or -1 when the server knows none. */
export function nodeRate(n: GNode): number {
  if (n.txRate === undefined && n.rxRate === undefined) return -1;
  return (n.txRate ?? 0) + (n.rxRate ?? 0);
}

/** Bigger for collapsed groups (by member count), for hubs (by degree) and for busy nodes
 *  (by traffic, log scale: +1 px per decade above 1 KB/s), so all three stand out. */
export function nodeRadius(n: RNode): number {
  const busy = Math.min(5, decades(n.rate));
  if (n.group) return 12 + Math.min(14, Math.sqrt(n.group.members.length) * 2) + busy;
  if (n.kind === 'external') return 8;
  return 9 + Math.min(7, Math.sqrt(n.deg) * 1.2) + busy;
}

/** The label drawn under a node and used by search: the pid makes same-named processes distinct. */
export function nodeLabel(n: GNode): string {
  if (n.kind === 'unknown') return `? ${n.label || 'unknown'} (${n.reason ?? 'unknown'})`;
  if (n.kind === 'process' && n.pid !== undefined) return `${n.label} · ${n.pid}`;
  return n.label;
}

/** Bytes per second both ways, or -1 when the server knows no traffic for the edge. */
export function edgeRate(e: GEdge): number {
  if (e.txRate === undefined && e.rxRate === undefined) return -1;
  return (e.txRate ?? 0) + (e.rxRate ?? 0);
}

/** Socket count and summed rate (-1 when none of the edges has a rate) of an aggregated edge. */
export function sumEdges(edges: GEdge[]): { count: number; rate: number } {
  let count = 0, rate = -1;
  for (const e of edges) { count += e.count; const r = edgeRate(e); if (r >= 0) rate = Math.max(0, rate) + r; }
  return { count, rate };
}

/** The density layer's three line weights: the raster keeps one counter per weight. */
export function densityWeight(rate: number): number {
  return rate > 1048576 ? 3 : rate > 65536 ? 2 : 1;
}

/** Control point of a curved (multi-)edge's quadratic Bézier. */
export function ctrl(e: REdge): [number, number] {
  const s = e.s, t = e.t;
  const mx = (s.x + t.x) / 2, my = (s.y + t.y) / 2;
  const dx = t.x - s.x, dy = t.y - s.y;
  // e.curv already carries the sign that makes opposite-direction edges bend apart
  return [mx - dy * e.curv, my + dx * e.curv];
}

/** Key shared by every edge between the same two nodes, whichever their direction. */
export function pairKeyOf(from: string, to: string): string {
  return from < to ? from + '\u0000' + to : to + '\u0000' + from;
}

/** Spread the edges between one pair of nodes into distinct curves (a single edge is straight). */
export function bendPair(p: REdge[]) {
  const n = p.length;
  if (n === 1) { p[0].curv = 0; return; }
  p.sort((a, b) => (a.id < b.id ? -1 : 1));
  for (let i = 0; i < n; i++) {
    const e = p[i];
    const c = (i - (n - 1) / 2) * 0.35;
    e.curv = e.s.id < e.t.id ? c : -c; // same bend side regardless of direction
  }
}
