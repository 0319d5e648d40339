// Top talkers, pure: the processes and the edges that move the most bytes per second, and the
// sparkline of a rate series. The panel (../talkers.ts) renders these; no DOM here.
import type { GEdge, GNode } from '../types.ts';
import { edgeRate, nodeLabel, nodeRate } from './scene.ts';

/** One row of the panel: what it is, its rate both ways, and each way where known. */
export interface Talker {
  id: string; label: string; rate: number; tx?: number; rx?: number;
  /** an edge's client end (what its row reveals), so the panel needs no lookup by id */
  from?: string;
}

/** Where the sparkline's points come from: the last minutes of a node's or edge's rate, oldest
 *  first (../ratehistory.ts asks the server's `/api/rates`). */
export interface RateHistory { series(id: string): number[] | null }
export const NO_HISTORY: RateHistory = { series: () => null };

/** The `n` items with the highest rate, highest first (ties by id); items without traffic
 *  (rate ≤ 0, or unknown) are left out. One pass, keeping a short sorted list: O(items × n). */
export function topBy<T>(items: Iterable<T>, rate: (x: T) => number, id: (x: T) => string, n: number): { item: T; rate: number }[] {
  const out: { item: T; rate: number }[] = [];
  for (const x of items) {
    const r = rate(x);
    if (!(r > 0)) continue;
    if (out.length === n && r <= out[n - 1].rate) continue;
    let i = out.length;
    while (i > 0 && (out[i - 1].rate < r || (out[i - 1].rate === r && id(out[i - 1].item) > id(x)))) i--;
    out.splice(i, 0, { item: x, rate: r });
    if (out.length > n) out.pop();
  }
  return out;
}

/** The busiest processes (raw nodes of kind `process`), by bytes/s in + out. */
export function topProcesses(nodes: Iterable<GNode>, n = 8): Talker[] {
  const procs = (function* () { for (const x of nodes) if (x.kind === 'process') yield x; })();
  return topBy(procs, nodeRate, (x) => x.id, n).map(({ item, rate }) => ({ id: item.id, label: nodeLabel(item), rate, tx: item.txRate, rx: item.rxRate }));
}

/** The busiest edges, by bytes/s both ways, labelled `client → server :port`. */
export function topEdges(edges: Iterable<GEdge>, nodes: ReadonlyMap<string, GNode>, n = 8): Talker[] {
  const name = (id: string) => { const x = nodes.get(id); return x ? nodeLabel(x) : id; };
  return topBy(edges, edgeRate, (e) => e.id, n).map(({ item, rate }) => ({
    id: item.id, label: `${name(item.from)} → ${name(item.to)} :${item.serverPort}`, rate, tx: item.txRate, rx: item.rxRate, from: item.from,
  }));
}

/** An inline SVG polyline of `values` (w × h px, scaled to the largest), or '' when there is no
 *  series or fewer than two points. */
export function sparkline(values: number[] | null, w = 60, h = 14): string {
  if (!values || values.length < 2) return '';
  const max = Math.max(...values, 1);
  const pts = values.map((v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(h - (Math.max(0, v) / max) * (h - 1) - 0.5).toFixed(1)}`).join(' ');
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-hidden="true"><polyline fill="none" stroke="currentColor" stroke-width="1" points="${pts}"/></svg>`;
}
