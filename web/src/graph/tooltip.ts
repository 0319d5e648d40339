// Tooltip HTML for a hovered node or edge (escaped). Pure: strings in, string out.
import type { GNode } from '../types.ts';
import { esc, fmtBytes, fmtRate } from '../util.ts';
import { nodeLabel, type RNode, type REdge } from './scene.ts';
import { edgeHealthLine } from '../health.ts';

export function nodeTooltip(n: RNode): string {
  if (n.group) {
    const rate = n.rate !== undefined && n.rate >= 0 ? `<br>${fmtRate(n.rate)} in + out` : '';
    const what = n.group.mode === 'service' ? `service of ${n.group.members.length} processes` : `group of ${n.group.members.length} (${esc(n.group.mode)})`;
    return `<b>${esc(n.group.title ?? n.group.key)}</b><br>${what}${rate}<br><span class="muted">double-click to expand</span>`;
  }
  const g = n.node!;
  const rows: string[] = [`<b>${esc(g.label)}</b>`];
  if (g.kind === 'process') rows.push(`pid ${g.pid ?? '?'} · ${esc(g.name ?? '')} · ${esc(g.type)}`);
  if (g.kind === 'external') rows.push(`external ${esc(g.address ?? g.id)}`);
  if (g.kind === 'unknown') rows.push(`<span class="warn">owner not visible: ${esc(g.reason ?? 'unknown')}</span>`);
  if (g.container) rows.push(`container ${esc(g.container)}`);
  if (g.rxRate !== undefined || g.txRate !== undefined) rows.push(`rx ${fmtRate(g.rxRate)} · tx ${fmtRate(g.txRate)}`);
  return rows.join('<br>');
}

/** Up to 6 raw edges behind the drawn one, each with up to 4 of its sockets. */
export function edgeTooltip(e: REdge, nodes: ReadonlyMap<string, GNode>): string {
  const name = (id: string) => { const n = nodes.get(id); return n ? esc(nodeLabel(n)) : esc(id); };
  const rows: string[] = [];
  const shown = e.edges.slice(0, 6);
  for (const g of shown) {
    rows.push(`<b class="proto-${g.proto}">${g.proto.toUpperCase()}</b> ${name(g.from)} → ${name(g.to)} :${g.serverPort}`);
    rows.push(`count ${g.count}` + (g.states && Object.keys(g.states).length ? ' · ' + Object.entries(g.states).map(([s, c]) => `${esc(s)} ${c}`).join(', ') : ''));
    for (const s of (g.sockets ?? []).slice(0, 4)) rows.push(`<span class="mono">${esc(s.client)} → ${esc(s.server)}</span> <span class="muted">${esc(s.state)}</span>`);
    if ((g.sockets?.length ?? 0) > 4) rows.push(`<span class="muted">… ${g.sockets!.length - 4} more sockets</span>`);
    if (g.txRate !== undefined || g.rxRate !== undefined || g.txBytes !== undefined) {
      rows.push(`tx ${fmtRate(g.txRate)} (${fmtBytes(g.txBytes)}) · rx ${fmtRate(g.rxRate)} (${fmtBytes(g.rxBytes)})`);
    }
    const health = edgeHealthLine(g);
    if (health) rows.push(health);
  }
  if (e.edges.length > shown.length) rows.push(`<span class="muted">… ${e.edges.length - shown.length} more edges (aggregated, ${e.count} sockets)</span>`);
  return rows.join('<br>');
}
