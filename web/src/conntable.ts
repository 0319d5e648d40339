// The connections table, virtualised: only the rows on screen are in the DOM, and only the pages
// that hold them are asked of the server (`/api/connections?q=&sort=&limit=&offset=`), so 100k
// sockets show their first rows as fast as 100. Filter and sort run on the server; the
// indicator says what is loading and out of how many.
import type { Connection, ConnectionsPage } from './types';
import { esc, fmtBytes } from './util';
import { fmtRtt } from './health';
import { BLOCK, blocksFor, nextSort, pageUrl, statusText, visibleRange } from './pager';

/** Fixed, so the position of any row is known without rendering the ones above it. */
export const ROW_HEIGHT = 26;

interface Column { key: string; title: string; sort: string; width: string; cell: (c: Connection) => string }

const COLUMNS: Column[] = [
  { key: 'process', title: 'Process', sort: 'fromProcessName', width: '2fr', cell: (c) => `${esc(c.fromProcessName)} <span class="muted">${c.fromPid || ''}</span>` },
  { key: 'local', title: 'Local', sort: 'fromAddress', width: '2fr', cell: (c) => esc(`${c.fromAddress}:${c.fromPort}`) },
  { key: 'remote', title: 'Remote', sort: 'toAddress', width: '2fr', cell: (c) => esc(`${c.toAddress}:${c.toPort}`) },
  { key: 'to', title: 'To', sort: 'toProcessLabel', width: '2fr', cell: (c) => esc(c.toProcessLabel ?? c.toHostName ?? c.toLabel ?? '') },
  { key: 'proto', title: 'Proto', sort: 'proto', width: '0.7fr', cell: (c) => `<span class="proto-${c.proto}">${c.proto.toUpperCase()}</span>` },
  { key: 'role', title: 'Role', sort: 'role', width: '0.8fr', cell: (c) => c.role },
  { key: 'state', title: 'State', sort: 'state', width: '1.3fr', cell: (c) => esc(c.state) },
  { key: 'sent', title: 'Sent', sort: 'txBytes', width: '1fr', cell: (c) => fmtBytes(c.txBytes) },
  { key: 'received', title: 'Received', sort: 'rxBytes', width: '1fr', cell: (c) => fmtBytes(c.rxBytes) },
  { key: 'rtt', title: 'RTT', sort: 'rttMs', width: '0.9fr', cell: (c) => esc(fmtRtt(c.rttMs)) },
  { key: 'retrans', title: 'Retrans', sort: 'retransmits', width: '0.8fr', cell: (c) => (c.retransmits ? `<span class="retrans">${c.retransmits}</span>` : c.retransmits === 0 ? '0' : '–') },
];

export class ConnectionsTable {
  private q = '';
  /** A past moment (`at=`, Unix seconds) whose connections are shown; empty for live. */
  private at = '';
  private sort = '';
  private total = -1;
  private unfiltered = -1;
  /** Pages of the current filter and sort, by block index. */
  private blocks = new Map<number, Connection[]>();
  private inFlight = new Set<number>();
  /** Bumped by every change of filter or sort: answers to older requests are dropped. */
  private generation = 0;
  private error = '';
  private frame = 0;
  private scroller: HTMLElement;
  private spacer: HTMLElement;
  private rowsEl: HTMLElement;
  private info: HTMLElement;
  /** When the first request of this filter and sort went out, and how long its rows took. */
  private askedAt = 0;
  firstRowsMs = -1;
  visible = false;

  constructor(private root: HTMLElement, private base = '/api/connections') {
    const grid = COLUMNS.map((c) => c.width).join(' ');
    root.innerHTML = `
      <div class="vt-head-line"><b>Connections</b> <span class="muted" data-testid="conn-info" aria-live="polite"></span></div>
      <div class="vt-table" role="table" data-testid="conn-table" style="--vt-cols:${grid}">
        <div class="vt-scroll" data-testid="conn-scroll">
          <div class="vt-row vt-head" role="row">${COLUMNS.map((c) => `<div role="columnheader" tabindex="0" data-sort="${c.sort}" data-testid="conn-sort-${c.key}" aria-sort="none">${c.title}</div>`).join('')}</div>
          <div class="vt-spacer"><div class="vt-rows" role="rowgroup"></div></div></div>
      </div>`;
    this.scroller = root.querySelector('.vt-scroll')!;
    this.spacer = root.querySelector('.vt-spacer')!;
    this.rowsEl = root.querySelector('.vt-rows')!;
    this.info = root.querySelector('[data-testid="conn-info"]')!;
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
    root.querySelectorAll<HTMLElement>('[data-sort]').forEach((h) => {
      const go = () => this.setSort(nextSort(this.sort, h.dataset.sort!));
      h.addEventListener('click', go);
      h.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    });
  }

  /** Shows the connections of a past moment from the server's history (`''`: live). */
  setAt(at: string) {
    if (at === this.at) return;
    this.at = at;
    this.restart();
  }

  /** Server-side filter (the same words as the listener table's). */
  setFilter(q: string) {
    if (q === this.q) return;
    this.q = q;
    this.restart();
  }

  setSort(sort: string) {
    this.sort = sort;
    this.root.querySelectorAll<HTMLElement>('[data-sort]').forEach((h) => {
      const f = h.dataset.sort!;
      h.setAttribute('aria-sort', sort === f ? 'ascending' : sort === `-${f}` ? 'descending' : 'none');
    });
    this.restart();
  }

  /** Re-reads the pages on screen (a new sample), keeping the scroll position. */
  refresh() {
    if (!this.visible) return;
    const keep = new Set(this.wantedBlocks());
    for (const b of [...this.blocks.keys()]) if (!keep.has(b)) this.blocks.delete(b);
    for (const b of keep) this.load(b, true);
  }

  private restart() {
    this.generation++;
    this.blocks.clear();
    this.inFlight.clear();
    this.total = -1;
    this.firstRowsMs = -1;
    this.askedAt = performance.now();
    this.scroller.scrollTop = 0;
    this.load(0, false);
    this.draw();
  }

  /** Starts the table (the first time it is shown). */
  start() {
    this.visible = true;
    if (this.total < 0 && this.inFlight.size === 0) this.restart(); else this.refresh();
  }

  private range() {
    return visibleRange(this.scroller.scrollTop, this.scroller.clientHeight || 600, ROW_HEIGHT, Math.max(0, this.total));
  }

  private wantedBlocks(): number[] {
    const { first, last } = this.range();
    return this.total < 0 ? [0] : blocksFor(first, last);
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); for (const b of this.wantedBlocks()) this.load(b, false); });
  }

  private async load(block: number, again: boolean) {
    if (this.inFlight.has(block) || (!again && this.blocks.has(block))) return;
    const gen = this.generation;
    this.inFlight.add(block);
    this.draw();
    try {
      const r = await fetch(pageUrl(this.base, { q: this.q, sort: this.sort, offset: block * BLOCK, limit: BLOCK, at: this.at }), { credentials: 'same-origin', cache: 'no-store' });
      if (gen !== this.generation) return;
      if (!r.ok) { this.error = (await r.text()).trim(); return; }
      const page = await r.json() as ConnectionsPage | { connections: Connection[] };
      if (gen !== this.generation) return;
      this.error = '';
      this.take(block, page);
    } catch { /* server gone: the next refresh tries again */ } finally {
      if (gen === this.generation) { this.inFlight.delete(block); this.draw(); }
    }
  }

  private take(block: number, page: ConnectionsPage | { connections: Connection[] }) {
    if ('total' in page) {
      this.total = page.total;
      this.unfiltered = page.unfiltered;
      this.blocks.set(block, page.connections ?? []);
    } else {
      // A server without paging sent the whole document: page it here.
      const all = page.connections ?? [];
      this.total = this.unfiltered = all.length;
      for (let b = 0; b * BLOCK < all.length; b++) this.blocks.set(b, all.slice(b * BLOCK, (b + 1) * BLOCK));
    }
    if (this.firstRowsMs < 0) this.firstRowsMs = performance.now() - this.askedAt;
    this.draw();
  }

  /** Renders the rows on screen (and placeholders for those still loading). */
  private draw() {
    const total = Math.max(0, this.total);
    this.spacer.style.height = `${total * ROW_HEIGHT}px`;
    const { first, last } = this.range();
    const html: string[] = [];
    let missing = false;
    for (let i = first; i < last; i++) {
      const c = this.blocks.get(Math.floor(i / BLOCK))?.[i % BLOCK];
      if (!c) { missing = true; html.push(`<div class="vt-row vt-pending" role="row" data-testid="conn-pending"><div>…</div></div>`); continue; }
      html.push(`<div class="vt-row" role="row" data-testid="conn-row" data-index="${i}" data-from-pid="${c.fromPid}" data-from-port="${c.fromPort}">${COLUMNS.map((col) => `<div role="cell">${col.cell(c)}</div>`).join('')}</div>`);
    }
    this.rowsEl.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    this.rowsEl.innerHTML = html.join('') || (this.total === 0 ? `<div class="vt-row muted empty" data-testid="conn-empty"><div>No connections${this.q ? ' match the filter' : ''}.</div></div>` : '');
    const loading = this.inFlight.size > 0 && (missing || this.total < 0);
    this.info.textContent = this.error || statusText({ total: this.total, unfiltered: this.unfiltered, first, last, loading, q: this.q });
    this.info.classList.toggle('loading', loading);
    this.info.dataset.total = String(this.total);
    this.info.dataset.loading = String(loading);
  }

  /** For tests and the bench: what the table holds. */
  get state() {
    return { total: this.total, unfiltered: this.unfiltered, blocks: this.blocks.size, firstRowsMs: this.firstRowsMs, q: this.q, sort: this.sort };
  }
}

