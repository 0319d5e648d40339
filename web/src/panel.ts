// Side panel for the selected node (or collapsed group).
import type { Model } from './model';
import type { GraphView } from './graph';
import { nodeLabel } from './graph';
import { groupKeyOf } from './graph/grouping';
import { sprites } from './glyphs';
import { esc, fmtBytes, fmtRate } from './util';

export function renderPanel(view: GraphView, model: Model, id: string | null) {
  const p = view.panelEl;
  if (!id) { p.hidden = true; p.innerHTML = ''; return; }
  const v = view.vnodes.get(id);
  if (!v) { p.hidden = true; return; }
  p.hidden = false;
  const close = `<button class="close" data-testid="panel-close" title="Close">×</button>`;
  if (v.group) {
    const g = v.group;
    const members = g.members.map((m) => model.nodes.get(m)).filter(Boolean).slice(0, 200);
    p.innerHTML = `${close}<h3><img src="${sprites.url('group')}" width="18" height="18" alt=""> ${esc(g.title ?? g.key)}</h3>
      <div class="muted">${g.mode === 'service' ? 'service' : `group by ${esc(g.mode)}`} · ${g.members.length} members</div>
      <button data-testid="expand-group" class="expand">Expand group</button>
      <h4>Members</h4><ul class="plain">${members.map((n) => `<li><a href="#" data-node="${esc(n!.id)}">${esc(nodeLabel(n!))}</a></li>`).join('')}</ul>`;
    p.querySelector('.expand')!.addEventListener('click', () => { view.toggleGroup(g.key, false); view.select(null); });
  } else {
    const n = v.node!;
    const kv = (k: string, val: unknown) => val === undefined || val === null || val === '' ? '' : `<tr><th>${k}</th><td>${esc(val)}</td></tr>`;
    const edges = [...(model.adj.get(id) ?? [])].map((e) => model.edges.get(e)!).filter(Boolean);
    const outs = edges.filter((e) => e.from === id), ins = edges.filter((e) => e.to === id);
    const name = (nid: string) => { const m = model.nodes.get(nid); return m ? nodeLabel(m) : nid; };
    const row = (e: typeof edges[0], other: string) =>
      `<li><span class="proto-${e.proto}">${e.proto.toUpperCase()}</span> <a href="#" data-node="${esc(other)}">${esc(name(other))}</a> :${e.serverPort} <span class="muted">×${e.count}${e.txRate !== undefined ? ' · ' + fmtRate((e.txRate ?? 0) + (e.rxRate ?? 0)) : ''}</span></li>`;
    const started = n.startTime ? new Date(n.startTime * 1000).toLocaleString() : undefined;
    // a service of one process has nothing to fold
    const key = groupKeyOf(n, view.grouping);
    const foldable = key !== null && (view.grouping !== 'service' || [...model.nodes.values()].some((m) => m.id !== n.id && groupKeyOf(m, 'service') === key));
    const groupBtn = foldable ? `<button data-testid="collapse-group" class="collapse">${view.grouping === 'service' ? 'Fold its service' : 'Collapse its group'}</button>` : '';
    p.innerHTML = `${close}<h3><img src="${sprites.url(n.kind === 'unknown' ? 'unknown' : n.kind === 'external' ? 'external' : n.type)}" width="18" height="18" alt=""> ${esc(n.label)}</h3>
      ${n.kind === 'unknown' ? `<div class="warn">Owner not visible: ${esc(n.reason ?? 'unknown')}</div>` : ''}
      <table class="kv" data-testid="panel-details">
        ${kv('pid', n.pid)}${kv('name', n.name)}${kv('kind', n.kind)}${kv('type', n.type)}${kv('user', n.user !== undefined ? `${n.user}${n.uid !== undefined ? ` (${n.uid})` : ''}` : n.uid)}
        ${kv('ppid', n.ppid)}${kv('started', started)}${kv('container', n.container)}${kv('address', n.address)}${kv('exe', n.exe)}
        ${kv('rx', n.rxBytes !== undefined ? `${fmtBytes(n.rxBytes)} (${fmtRate(n.rxRate)})` : undefined)}${kv('tx', n.txBytes !== undefined ? `${fmtBytes(n.txBytes)} (${fmtRate(n.txRate)})` : undefined)}
      </table>
      ${n.cmdline ? `<h4>Command line</h4><pre class="cmd" data-testid="panel-cmdline">${esc(n.cmdline)}</pre>` : ''}
      ${groupBtn}
      <h4>Listening (${n.listeners?.length ?? 0})</h4>
      <ul class="plain" data-testid="panel-listeners">${(n.listeners ?? []).map((l) => `<li><span class="proto-${l.proto}">${l.proto.toUpperCase()}</span> ${esc(l.address)}:${l.port}</li>`).join('') || '<li class="muted">none</li>'}</ul>
      <h4>Connections out (${outs.length})</h4>
      <ul class="plain" data-testid="panel-out">${outs.slice(0, 100).map((e) => row(e, e.to)).join('') || '<li class="muted">none</li>'}</ul>
      <h4>Connections in (${ins.length})</h4>
      <ul class="plain" data-testid="panel-in">${ins.slice(0, 100).map((e) => row(e, e.from)).join('') || '<li class="muted">none</li>'}</ul>`;
    p.querySelector('.collapse')?.addEventListener('click', () => {
      if (key !== null) view.toggleGroup(key, true);
      view.select(null);
    });
  }
  p.querySelector('.close')!.addEventListener('click', () => view.select(null));
  p.querySelectorAll<HTMLAnchorElement>('a[data-node]').forEach((a) => a.addEventListener('click', (ev) => {
    ev.preventDefault();
    const target = a.dataset.node!;
    if (view.vnodes.has(target)) { view.select(target); view.focus(target); }
  }));
}
