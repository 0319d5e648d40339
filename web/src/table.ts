// Listeners table (as psys): process + icon, address + description, port, container, cmdline,
// and two badge columns, 5 badges each, then "+N": "Clients" (who connects to this listener:
// psys's rule, the connections on the listener's pid and port) and "Connects to" (where this
// process connects to). Every process is called by one label, the same as in the graph and diagram.
import type { Connection, ConnectionsDoc, ConnectionsPage, Listener } from './types';
import type { Model } from './model';
import { sprites } from './glyphs';
import { esc, fmtBytes, fmtRate } from './util';
import { badgeHealth, healthCell, healthOf } from './health';
import { ConnectionsTable } from './conntable';
import { fmtCount } from './pager';

type Key = 'process' | 'address' | 'port' | 'proto' | 'container' | 'cmdline' | 'traffic' | 'health' | 'clients' | 'connects';
const MAX_BADGES = 5;

/** A listener's process by its one label (the graph node's label; psys's label for an unseen owner). */
export function listenerLabel(l: Listener): string {
  return l.label || l.serviceLabel || l.processName || `:${l.port}`;
}

/** Where a connection goes: the local process there by its one label, else psys's toLabel
 *  (container, well-known service), else the address. */
export function badgeLabel(c: Connection): string {
  return c.toProcessLabel || c.toLabel || `${c.toAddress}:${c.toPort}`;
}

/** Who an accepted connection comes from (its port is ephemeral, so the address alone). */
export function clientLabel(c: Connection): string {
  return c.toProcessLabel || c.toLabel || c.toAddress;
}

const WILDCARD = new Set(['0.0.0.0', '::']);

/** The connections accepted on listener `l` (psys: same pid and port; procnet also checks the
 *  protocol, and the address unless the listener takes every address). */
export function clientsOf(l: Listener, conns: Connection[]): Connection[] {
  return conns.filter((c) => c.role === 'server' && c.fromPid === l.pid && c.fromPort === l.port && c.proto === l.proto
    && (WILDCARD.has(l.address) || c.fromAddress === l.address));
}

/** A container, drawn (not a text tag): a shipping container, our own art. `title` says which. */
export function containerIcon(title: string, size = 16, xy = ''): string {
  return `<svg class="container-icon" data-testid="container-icon" ${xy} width="${size}" height="${size}" viewBox="0 0 16 16" role="img" aria-label="${esc(title)}">`
    + `<title>${esc(title)}</title><rect x="0.5" y="3" width="15" height="10" rx="1.5" class="ci-box"></rect>`
    + '<path d="M3.5 5v6M6.5 5v6M9.5 5v6M12.5 5v6" class="ci-rib"></path></svg>';
}

export function iconTypeFor(l: Listener, model: Model): string {
  const n = l.pid ? model.nodes.get(`pid:${l.pid}`) : undefined;
  if (n) return n.type;
  if (!l.pid) return 'unknown';
  return l.processIconType ?? 'app';
}

export class TableView {
  private doc: ConnectionsDoc = { listeners: [], connections: [] };
  private sortKey: Key = 'port';
  private sortDir = 1;
  private filter = '';
  private tbody: HTMLElement;
  private info: HTMLElement;
  private note: HTMLElement;
  private filterTimer = 0;
  /** Every connection, virtualised and paged by the server (see conntable.ts). */
  readonly connections: ConnectionsTable;

  constructor(private root: HTMLElement, private model: Model) {
    root.innerHTML = `
      <div class="toolbar">
        <input type="search" id="table-filter" data-testid="table-filter" placeholder="Filter listeners and targets" autocomplete="off">
        <span id="table-info" class="muted" data-testid="table-info"></span>
      </div>
      <div class="table-wrap"><table class="listeners" data-testid="listener-table">
        <thead><tr>
          <th data-key="process">Process</th><th data-key="address">Address</th><th data-key="port">Port</th>
          <th data-key="proto">Proto</th><th data-key="container">Container</th><th data-key="cmdline">Command line</th>
          <th data-key="traffic" title="The process's TCP traffic: rate over the last interval (total so far)">Traffic</th>
          <th data-key="health" title="TCP health of this row's clients and targets (kernel): the largest smoothed RTT, and the segments retransmitted">RTT / retrans</th>
          <th data-key="clients" title="Who connects to this listener">Clients</th>
          <th data-key="connects" title="Where this process connects to">Connects to</th>
        </tr></thead><tbody></tbody></table></div>
      <div class="muted small listener-note" data-testid="listener-note" hidden></div>
      <section class="conn-section" data-testid="conn-section"></section>`;
    this.tbody = root.querySelector('tbody')!;
    this.info = root.querySelector('#table-info')!;
    this.note = root.querySelector('[data-testid="listener-note"]')!;
    this.connections = new ConnectionsTable(root.querySelector('.conn-section')!);
    root.querySelector('#table-filter')!.addEventListener('input', (e) => {
      const value = (e.target as HTMLInputElement).value.trim();
      this.filter = value.toLowerCase(); this.render();
      // The server filters the connections: one request per pause in typing, not per key.
      clearTimeout(this.filterTimer);
      this.filterTimer = window.setTimeout(() => this.connections.setFilter(value), 150);
    });
    root.querySelectorAll<HTMLElement>('th[data-key]').forEach((th) => {
      th.tabIndex = 0;
      th.setAttribute('data-testid', `sort-${th.dataset.key}`);
      const go = () => {
        const k = th.dataset.key as Key;
        if (this.sortKey === k) this.sortDir = -this.sortDir; else { this.sortKey = k; this.sortDir = 1; }
        this.render();
      };
      th.addEventListener('click', go);
      th.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    });
  }

  /** Says why a column is empty (too many connections to fetch them all for the badges). */
  setNote(text: string) {
    this.note.hidden = !text;
    this.note.textContent = text;
  }

  private lastJson = '';
  setData(doc: ConnectionsDoc) {
    const j = JSON.stringify(doc);
    if (j === this.lastJson) return; // unchanged: keep the DOM (hover, text selection) as it is
    this.lastJson = j;
    this.doc = doc; this.render();
  }

  /** The listener's process traffic, from its graph node (TCP; UDP is not counted by the kernel). */
  private traffic(l: Listener): { rate: number; known: boolean; rx?: number; tx?: number; rxRate?: number; txRate?: number } {
    const n = l.pid ? this.model.nodes.get(`pid:${l.pid}`) : undefined;
    if (!n || (n.rxBytes === undefined && n.txBytes === undefined)) return { rate: -1, known: false };
    return { rate: (n.rxRate ?? 0) + (n.txRate ?? 0), known: true, rx: n.rxBytes, tx: n.txBytes, rxRate: n.rxRate, txRate: n.txRate };
  }

  private trafficCell(l: Listener): string {
    const t = this.traffic(l);
    if (!t.known) return '<span class="muted" title="unknown: no counters (UDP, or not visible)">–</span>';
    const rate = t.rxRate !== undefined || t.txRate !== undefined ? `↓${fmtRate(t.rxRate)} ↑${fmtRate(t.txRate)}` : '';
    return `${rate}<div class="muted small">${fmtBytes(t.rx)} / ${fmtBytes(t.tx)}</div>`;
  }

  render() {
    const byPid = new Map<number, Connection[]>();
    for (const c of this.doc.connections) {
      if (c.role === 'server') continue; // accepted, not "connects to"
      let l = byPid.get(c.fromPid); if (!l) byPid.set(c.fromPid, (l = [])); l.push(c);
    }
    const accepted = this.doc.connections.filter((c) => c.role === 'server');
    const rows = this.doc.listeners.map((l) => ({ l, conns: (l.pid ? byPid.get(l.pid) : undefined) ?? [], clients: clientsOf(l, accepted) }));
    const f = this.filter;
    const shown = f ? rows.filter(({ l, conns, clients }) =>
      [listenerLabel(l), l.processName, l.serviceLabel, l.address, l.addressDescription, String(l.port), String(l.pid), l.containerName, l.cmdline, l.proto]
        .some((s) => s && s.toLowerCase().includes(f)) || conns.some((c) => badgeLabel(c).toLowerCase().includes(f))
        || clients.some((c) => clientLabel(c).toLowerCase().includes(f))) : rows;
    const val = (r: typeof rows[0]): string | number => {
      switch (this.sortKey) {
        case 'process': return listenerLabel(r.l).toLowerCase();
        case 'address': return r.l.address;
        case 'port': return r.l.port;
        case 'proto': return r.l.proto;
        case 'container': return r.l.containerName ?? '';
        case 'cmdline': return r.l.cmdline ?? '';
        case 'clients': return r.clients.length;
        case 'connects': return r.conns.length;
        case 'traffic': return this.traffic(r.l).rate;
        case 'health': { const h = healthOf([...r.clients, ...r.conns]); return h.known ? h.retransmits * 1e6 + (h.rttMs ?? 0) : -1; }
      }
    };
    shown.sort((a, b) => { const x = val(a), y = val(b); return (x < y ? -1 : x > y ? 1 : a.l.port - b.l.port) * this.sortDir; });
    this.root.querySelectorAll<HTMLElement>('th[data-key]').forEach((th) => {
      th.setAttribute('aria-sort', th.dataset.key === this.sortKey ? (this.sortDir > 0 ? 'ascending' : 'descending') : 'none');
    });
    this.info.textContent = `${shown.length} of ${rows.length} listeners`;
    const html: string[] = [];
    for (const { l, conns, clients } of shown) {
      const t = iconTypeFor(l, this.model);
      const badges = badgeList(conns, badgeLabel, (c) => `${c.fromAddress}:${c.fromPort} → ${c.toAddress}:${c.toPort}`, '');
      const clientBadges = badgeList(clients, clientLabel, (c) => `${c.toAddress}:${c.toPort} → ${c.fromAddress}:${c.fromPort}`, 'client-');
      const label = listenerLabel(l);
      const name = label !== l.processName ? `${esc(label)} <span class="muted">${esc(l.processName)}</span>` : esc(label);
      html.push(`<tr data-testid="listener-row" data-pid="${l.pid}" data-port="${l.port}">
        <td class="proc"><img src="${sprites.url(t)}" width="18" height="18" alt="${esc(t)}"> <span>${name}</span> <span class="muted">${l.pid ? l.pid : (l.reason ? `(${esc(l.reason)})` : '')}</span></td>
        <td>${esc(l.address)}<div class="muted small">${esc(l.addressDescription)}</div></td>
        <td class="num">${l.port}</td>
        <td><span class="proto-${l.proto}">${l.proto.toUpperCase()}</span></td>
        <td>${l.containerName ? `<span class="container" data-testid="container">${containerIcon(`container: ${l.containerName}`)} <span data-testid="container-name">${esc(l.containerName)}</span></span>` : ''}</td>
        <td class="cmd" title="${esc(l.cmdline ?? '')}">${esc(l.cmdline ?? '')}</td>
        <td class="num traffic" data-testid="traffic">${this.trafficCell(l)}</td>
        <td class="num health" data-testid="health">${healthCell([...clients, ...conns])}</td>
        <td class="badges" data-testid="clients">${clientBadges}</td>
        <td class="badges" data-testid="connects-to">${badges}</td></tr>`);
    }
    this.tbody.innerHTML = html.join('') || `<tr><td colspan="10" class="muted empty">No listeners${f ? ' match the filter' : ''}.</td></tr>`;
  }
}

/** Up to MAX_BADGES badges, then an outline "+N" (psys's secondary and outline variants). */
function badgeList(conns: Connection[], label: (c: Connection) => string, route: (c: Connection) => string, prefix: string): string {
  const shown = conns.slice(0, MAX_BADGES).map((c) => {
    const h = badgeHealth(c);
    return `<span class="badge${h.cls}"${h.style} data-testid="${prefix}badge" title="${esc(`${c.proto.toUpperCase()} ${route(c)} ${c.state}${h.title}`)}">${esc(label(c))}</span>`;
  }).join('');
  const more = conns.length > MAX_BADGES ? `<span class="badge outline" data-testid="${prefix}badge-more">+${conns.length - MAX_BADGES}</span>` : '';
  return shown + more;
}

/** Above this many connections the document is not fetched whole for the listeners' badges: it
 *  would be megabytes every 2 s (24 MB at 100k sockets) for a table of a few dozen rows. */
export const FULL_DOC_MAX = 20_000;

async function getJson<T>(url: string): Promise<T | null> {
  const r = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  return r.ok ? await r.json() as T : null;
}

/** One refresh of the table view: the connections table re-reads its pages; the listeners come
 *  with every connection (for the badges) when there are at most FULL_DOC_MAX, else alone
 *  (`rows=listeners`), with a note that the connections are in the table below. Returns the
 *  whole document when it was fetched. */
export async function refreshTable(view: TableView, at = ''): Promise<ConnectionsDoc | null> {
  // `at`: a past moment (Unix seconds) from the server's history; empty for live.
  const atParam = at ? `&at=${encodeURIComponent(at)}` : '';
  view.connections.setAt(at);
  view.connections.start();
  const probe = await getJson<ConnectionsPage | ConnectionsDoc>('/api/connections?limit=0' + atParam);
  if (!probe) return null;
  if (!('total' in probe)) { // a server without paging: this is the whole document
    view.setNote(''); view.setData(probe); return probe;
  }
  if (probe.unfiltered <= FULL_DOC_MAX) {
    const doc = await getJson<ConnectionsDoc>('/api/connections' + (at ? `?at=${encodeURIComponent(at)}` : ''));
    if (doc) { view.setNote(''); view.setData(doc); }
    return doc;
  }
  const page = await getJson<ConnectionsPage>('/api/connections?rows=listeners&limit=10000' + atParam);
  if (!page) return null;
  view.setData({ listeners: page.listeners ?? [], connections: [] });
  view.setNote(`${fmtCount(probe.unfiltered)} connections: too many to fetch whole for the Clients and Connects-to badges. `
    + 'Every one is in the Connections table below: search it by process, address or port.');
  return null;
}
