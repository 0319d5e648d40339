// TCP health in the UI: the kernel's smoothed RTT and retransmission count per edge and
// connection (`rttMs`, `retransmits`), as text for tooltips and table cells, and the marking
// of edges whose connections retransmitted (loss on the path), so they stand out in the graph.
import type { Connection, GEdge } from './types.ts';
import { esc } from './util.ts';

/** Red: the colour the UI uses for trouble. */
export const RETRANSMIT_COLOR = '#dc2626';
/** Inline, so this module needs no stylesheet of its own. */
const RED = `style="color:${RETRANSMIT_COLOR}"`;

/** An RTT in milliseconds, to a useful precision (µs on loopback, whole ms far away). */
export function fmtRtt(ms: number | undefined): string {
  if (ms === undefined) return '–';
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** Whether any of these edges' or connections' sockets retransmitted. */
export function hasRetransmits(items: { retransmits?: number }[]): boolean {
  return items.some((g) => (g.retransmits ?? 0) > 0);
}

/** One tooltip line for an edge, or '' when the kernel gave nothing (UDP, non-Linux). */
export function edgeHealthLine(g: GEdge): string {
  if (g.rttMs === undefined && g.retransmits === undefined) return '';
  const r = g.retransmits ?? 0;
  const retrans = r > 0
    ? `<b class="retrans" ${RED} data-testid="edge-retransmits">${r} retransmits</b>`
    : `<span class="muted" data-testid="edge-retransmits">0 retransmits</span>`;
  return `rtt ${esc(fmtRtt(g.rttMs))} (max) · ${retrans}`;
}

/** Worst RTT and total retransmits over some connections; `known` false when none has health. */
export function healthOf(conns: Connection[]): { known: boolean; rttMs?: number; retransmits: number } {
  let known = false, rtt: number | undefined, retransmits = 0;
  for (const c of conns) {
    if (c.rttMs === undefined && c.retransmits === undefined) continue;
    known = true;
    if (c.rttMs !== undefined) rtt = rtt === undefined ? c.rttMs : Math.max(rtt, c.rttMs);
    retransmits += c.retransmits ?? 0;
  }
  return { known, rttMs: rtt, retransmits };
}

/** A table cell's content: worst RTT, then the retransmits (marked when there are any). */
export function healthCell(conns: Connection[]): string {
  const h = healthOf(conns);
  if (!h.known) return '<span class="muted" title="no TCP connections with kernel RTT">–</span>';
  const r = h.retransmits > 0
    ? `<span class="retrans" ${RED} data-testid="retransmits">${h.retransmits} retrans</span>`
    : '<span class="muted" data-testid="retransmits">0 retrans</span>';
  return `<span data-testid="rtt">${esc(fmtRtt(h.rttMs))}</span><div class="small">${r}</div>`;
}

/** A connection badge's extra title text, and class and style: outlined red when it retransmitted. */
export function badgeHealth(c: Connection): { title: string; cls: string; style: string } {
  const parts: string[] = [];
  if (c.rttMs !== undefined) parts.push(`rtt ${fmtRtt(c.rttMs)}`);
  if (c.retransmits !== undefined) parts.push(`${c.retransmits} retransmits`);
  const lossy = (c.retransmits ?? 0) > 0;
  return {
    title: parts.length ? ` · ${parts.join(' · ')}` : '',
    cls: lossy ? ' retrans' : '',
    style: lossy ? ` style="box-shadow:inset 0 0 0 1px ${RETRANSMIT_COLOR}"` : '',
  };
}

/** Strokes a dashed red outline over every shown edge whose connections retransmitted, on top
 *  of the normal drawing (so it stands out at any zoom). `trace` adds one edge's path. */
export function drawRetransmitEdges<E extends { hidden: boolean; edges: GEdge[] }>(
  ctx: CanvasRenderingContext2D, edges: Iterable<E>, k: number, trace: (e: E) => void,
): void {
  let any = false;
  for (const e of edges) {
    if (e.hidden || !hasRetransmits(e.edges)) continue;
    if (!any) {
      any = true;
      ctx.save();
      ctx.beginPath();
    }
    trace(e);
  }
  if (!any) return;
  ctx.globalAlpha = 0.95;
  ctx.strokeStyle = RETRANSMIT_COLOR;
  ctx.lineWidth = 2 / k;
  ctx.setLineDash([5 / k, 3 / k]);
  ctx.stroke();
  ctx.restore();
}
