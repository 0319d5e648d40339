// The "Closed connections" view: every connection that closed in the time bar's window (a
// selected range, since a compared moment, or the last minutes), from `/api/flows` page by page,
// with the client and server process (name and pid), addresses, bytes each way, how long it
// lived and its last state. Searchable and sortable; virtualised like the connections table
// (only the rows on screen are in the DOM; visibleRange from pager.ts).
import type { TimeBar } from './timebar';
import { esc, fmtBytes } from './util';
import { nextSort, visibleRange } from './pager';
import { closedStatus, filterFlows, flowWindow, flowsUrl, fmtDuration, sortFlows, FLOWS_PAGE, MAX_ROWS, type FlowEnd, type FlowRecord, type FlowWindow, type FlowsPage } from './closed-rows';

const ROW_HEIGHT = 26;
/** Live, the window moves: re-read it this often while shown. */
const LIVE_REFRESH_MS = 5000;

interface Column { key: string; title: string; sort: string; width: string; cell: (f: FlowRecord) => string }

const time = (ms: number) => new Date(ms).toISOString().slice(11, 23);
const proc = (e: FlowEnd) => e.processName || e.pid ? `${esc(e.processName ?? '?')} <span class="muted">${e.pid ?? ''}</span>` : '<span class="muted">unknown</span>';
const bytes = (n: number | undefined) => (n === undefined ? '–' : fmtBytes(n));

const COLUMNS: Column[] = [
  { key: 'start', title: 'Opened', sort: 'start', width: '1.1fr', cell: (f) => time(f.startMs) },
  { key: 'end', title: 'Closed', sort: 'end', width: '1.1fr', cell: (f) => time(f.endMs) },
  { key: 'duration', title: 'Lived', sort: 'duration', width: '0.8fr', cell: (f) => (f.short ? `<span title="opened and closed between two samples (seen in the kernel's destroy report): at most this long">≤ ${esc(fmtDuration(f.duration))} ⚡</span>` : esc(fmtDuration(f.duration))) },
  { key: 'proto', title: 'Proto', sort: 'proto', width: '0.6fr', cell: (f) => `<span class="proto-${esc(f.proto)}">${esc(f.proto.toUpperCase())}</span>` },
  { key: 'client', title: 'Client', sort: 'client', width: '1.6fr', cell: (f) => proc(f.client) },
  { key: 'clientAddr', title: 'Client address', sort: 'clientAddr', width: '1.6fr', cell: (f) => esc(`${f.client.address}:${f.client.port}`) },
  { key: 'server', title: 'Server', sort: 'server', width: '1.6fr', cell: (f) => proc(f.server) },
  { key: 'serverAddr', title: 'Server address', sort: 'serverAddr', width: '1.6fr', cell: (f) => esc(`${f.server.address}:${f.server.port}`) },
  { key: 'clientBytes', title: 'Sent', sort: 'clientBytes', width: '0.9fr', cell: (f) => bytes(f.clientBytes) },
  { key: 'serverBytes', title: 'Received', sort: 'serverBytes', width: '0.9fr', cell: (f) => bytes(f.serverBytes) },
  { key: 'state', title: 'Last state', sort: 'state', width: '1.1fr', cell: (f) => esc(f.state) },
];

export class ClosedTable {
  private rows: FlowRecord[] = [];
  private shown: FlowRecord[] = [];
  private total = -1;
  private q = '';
  private sort = '';
  private minutes = 15;
  private window: FlowWindow | null = null;
  private generation = 0;
  private loading = false;
  private error = '';
  private timer = 0;
  private frame = 0;
  private readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly rowsEl: HTMLElement;
  private readonly info: HTMLElement;
  private readonly windowEl: HTMLElement;
  visible = false;

  constructor(private readonly root: HTMLElement, private readonly timebar: TimeBar) {
    const grid = COLUMNS.map((c) => c.width).join(' ');
    root.innerHTML = `
      <div class="toolbar">
        <input type="search" data-testid="closed-search" placeholder="Search process, pid, address, port, state" autocomplete="off">
        <label class="chk">window live or at one moment <select data-testid="closed-minutes">
          <option value="5">5 min</option><option value="15" selected>15 min</option><option value="60">1 h</option><option value="360">6 h</option><option value="1440">24 h</option></select></label>
        <span class="muted" data-testid="closed-window"></span>
      </div>
      <div class="vt-head-line"><b>Closed connections</b> <span class="muted" data-testid="closed-info" aria-live="polite"></span></div>
      <div class="vt-table" role="table" data-testid="closed-table" style="--vt-cols:${grid}">
        <div class="vt-scroll" data-testid="closed-scroll">
          <div class="vt-row vt-head" role="row">${COLUMNS.map((c) => `<div role="columnheader" tabindex="0" data-sort="${c.sort}" data-testid="closed-sort-${c.key}" aria-sort="none">${c.title}</div>`).join('')}</div>
          <div class="vt-spacer"><div class="vt-rows" role="rowgroup"></div></div></div>
      </div>`;
    this.scroller = root.querySelector('.vt-scroll')!;
    this.spacer = root.querySelector('.vt-spacer')!;
    this.rowsEl = root.querySelector('.vt-rows')!;
    this.info = root.querySelector('[data-testid="closed-info"]')!;
    this.windowEl = root.querySelector('[data-testid="closed-window"]')!;
    const search = root.querySelector<HTMLInputElement>('[data-testid="closed-search"]')!;
    search.addEventListener('input', () => { this.q = search.value.trim(); this.reshape(); });
    const minutes = root.querySelector<HTMLSelectElement>('[data-testid="closed-minutes"]')!;
    minutes.addEventListener('change', () => { this.minutes = Number(minutes.value) || 15; this.reload(); });
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
    root.querySelectorAll<HTMLElement>('[data-sort]').forEach((h) => {
      const go = () => this.setSort(nextSort(this.sort, h.dataset.sort!));
      h.addEventListener('click', go);
      h.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    });
  }

  /** Shown (the tab chosen) or hidden; while shown a live window is re-read every few seconds. */
  setVisible(on: boolean) {
    this.visible = on;
    clearTimeout(this.timer);
    if (on) this.reload();
  }

  setSort(sort: string) {
    this.sort = sort;
    this.root.querySelectorAll<HTMLElement>('[data-sort]').forEach((h) => {
      const f = h.dataset.sort!;
      h.setAttribute('aria-sort', sort === f ? 'ascending' : sort === `-${f}` ? 'descending' : 'none');
    });
    this.reshape();
  }

  /** Reads the time bar's window again (its state changed, or live time moved on). */
  reload() {
    clearTimeout(this.timer);
    if (!this.visible) return;
    const w = flowWindow(this.timebar, this.minutes);
    const moved = w.since !== this.window?.since || w.until !== this.window?.until;
    this.window = w;
    this.windowEl.textContent = w.text;
    void this.load(w, moved);
  }

  private async load(w: FlowWindow, fresh: boolean) {
    const gen = ++this.generation;
    this.loading = true;
    if (fresh) { this.rows = []; this.total = -1; this.scroller.scrollTop = 0; this.reshape(); }
    const rows: FlowRecord[] = [];
    let total = 0;
    try {
      for (let offset = 0; offset < MAX_ROWS; offset += FLOWS_PAGE) {
        const r = await fetch(flowsUrl(w, offset, Math.min(FLOWS_PAGE, MAX_ROWS - offset)), { credentials: 'same-origin', cache: 'no-store' });
        if (gen !== this.generation) return;
        if (!r.ok) { this.error = r.status === 416 ? 'this window is not in the kept history' : (await r.text()).trim(); rows.length = 0; total = 0; break; }
        const page = await r.json() as FlowsPage;
        if (gen !== this.generation) return;
        this.error = '';
        rows.push(...page.flows);
        total = page.total;
        if (rows.length >= total || !page.flows.length) break;
      }
    } catch { this.error = 'server unreachable'; }
    if (gen !== this.generation) return;
    this.loading = false;
    this.rows = rows;
    this.total = total;
    this.reshape();
    if (this.visible && !w.until) this.timer = window.setTimeout(() => this.reload(), LIVE_REFRESH_MS);
  }

  /** Filter and sort again, then draw. */
  private reshape() {
    this.shown = sortFlows(filterFlows(this.rows, this.q), this.sort);
    this.draw();
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  private draw() {
    const n = this.shown.length;
    this.spacer.style.height = `${n * ROW_HEIGHT}px`;
    const { first, last } = visibleRange(this.scroller.scrollTop, this.scroller.clientHeight || 600, ROW_HEIGHT, n);
    const html: string[] = [];
    for (let i = first; i < last; i++) {
      const f = this.shown[i];
      html.push(`<div class="vt-row" role="row" data-testid="closed-row" data-index="${i}" data-client-pid="${f.client.pid ?? ''}" data-server-pid="${f.server.pid ?? ''}" data-client-port="${f.client.port}" data-server-port="${f.server.port}" data-client-bytes="${f.clientBytes ?? ''}" data-server-bytes="${f.serverBytes ?? ''}" data-duration="${f.duration}" data-short="${!!f.short}">${COLUMNS.map((c) => `<div role="cell">${c.cell(f)}</div>`).join('')}</div>`);
    }
    this.rowsEl.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    this.rowsEl.innerHTML = html.join('') || (this.total >= 0 && !this.loading ? `<div class="vt-row muted empty" data-testid="closed-empty"><div>No connections closed in this window${this.q ? ' match the search' : ''}.</div></div>` : '');
    this.info.textContent = this.error || closedStatus({ loaded: this.rows.length, total: this.total, shown: n, q: this.q, loading: this.loading });
    this.info.dataset.total = String(this.total);
    this.info.dataset.loading = String(this.loading);
  }

  /** For tests: what the view holds. */
  get state() {
    return { total: this.total, loaded: this.rows.length, shown: this.shown.length, q: this.q, sort: this.sort, window: this.window, loading: this.loading };
  }
}
