// The time bar under the header: live / step back / step forward / jump to a time on the
// scrubber, an activity strip of the kept history on which a drag selects a range, and a compare
// mode that shows the union of two moments' graphs with the vanished, new and changed edges
// marked (compare-overlay.ts) and listed. The state is in the URL (`?at=<unix seconds>&compare=1`
// for one moment against now, `?from=&to=` for a range), so a link reopens the same view.
// Talks only to /api/history, /api/graph?at= and /api/changes; the host applies the documents.
import './timebar.css';
import type { GraphDoc } from './types';
import { unionDocs, type ChangesDoc, type EdgeRef } from './compare';

/** What the time bar needs from the page. */
export interface TimeBarHost {
  /** Show a past graph (and stop applying live updates). */
  showPast(doc: GraphDoc, atMs: number): void;
  /** Back to live. */
  goLive(): void;
  /** Mark a comparison of `fromMs` with `toMs` (null: now) on the graph; `null`: none. */
  showChanges?(changes: ChangesDoc | null, fromMs: number, toMs: number | null): void;
}

interface Activity { startMs: number; endMs: number; edges: number; bytes: number; samples: number }
interface HistoryDoc {
  live: boolean; oldestMs: number | null; newestMs: number | null; intervalMs: number;
  seqs: [number, number][]; activity: Activity[]; warnings: string[];
}

/** A chosen stretch of history: compare mode compares its two ends. */
export interface TimeRange { fromMs: number; toMs: number }

const secs = (ms: number) => (ms / 1000).toFixed(3);
const clock = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
/** A drag shorter than this (px) on the strip is a click: jump there. */
const CLICK_PX = 4;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

class HttpError extends Error { constructor(readonly status: number) { super(`HTTP ${status}`); } }

async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) throw new HttpError(r.status);
  return await r.json() as T;
}

export class TimeBar {
  /** The moment shown (a range's start); null: live. */
  atMs: number | null = null;
  /** The range selected on the strip (compare mode compares its ends); null: one moment. */
  range: TimeRange | null = null;
  compare = false;
  /** The moment whose graph is on screen (`atMs` once its documents arrived); null: live. */
  shownMs: number | null = null;
  /** Bumped each time a past view (graph, and changes in compare mode) has been applied. */
  shownCount = 0;
  history: HistoryDoc | null = null;
  changes: ChangesDoc | null = null;
  /** Called after every change of moment, range or compare mode (the closed-connections view). */
  onChange: () => void = () => {};
  private readonly root = el('div', { class: 'timebar', 'data-testid': 'timebar', 'data-mode': 'live' });
  private readonly liveBtn = el('button', { 'data-testid': 'time-live', title: 'Back to the live view' }, 'Live');
  private readonly backBtn = el('button', { 'data-testid': 'time-back', title: 'One sample back' }, '◀');
  private readonly fwdBtn = el('button', { 'data-testid': 'time-forward', title: 'One sample forward' }, '▶');
  private readonly rangeInput = el('input', { type: 'range', 'data-testid': 'time-range', min: '0', max: '0', step: '1', 'aria-label': 'Time' });
  private readonly label = el('span', { class: 'time-label', 'data-testid': 'time-label' }, 'live');
  private readonly compareBox = el('input', { type: 'checkbox', 'data-testid': 'time-compare' });
  private readonly strip = el('div', { class: 'time-strip', 'data-testid': 'time-strip', title: 'Drag to select a range and compare its ends; click to jump' });
  private readonly cells = el('div', { class: 'time-cells' });
  private readonly sel = el('div', { class: 'time-sel', 'data-testid': 'time-selection' });
  private readonly list = el('div', { class: 'time-compare-list', 'data-testid': 'compare-list' });
  private showSeq = 0;
  private drag: { x0: number; x1: number } | null = null;

  constructor(private readonly host: TimeBarHost) {
    const cmp = el('label', { class: 'time-compare', title: 'Mark the edges that vanished, appeared or moved bytes between this moment and now (or the ends of the selected range)' });
    cmp.append(this.compareBox, document.createTextNode(' compare'));
    const track = el('div', { class: 'time-track' });
    this.strip.append(this.cells, this.sel);
    track.append(this.strip, this.rangeInput);
    this.root.append(this.liveBtn, this.backBtn, this.fwdBtn, track, this.label, cmp);
    const header = document.querySelector('header');
    (header ?? document.body.firstElementChild)?.after(this.root, this.list);
    this.list.hidden = true;
    this.sel.hidden = true;
    this.liveBtn.addEventListener('click', () => this.live());
    this.backBtn.addEventListener('click', () => void this.step(-1));
    this.fwdBtn.addEventListener('click', () => void this.step(1));
    this.rangeInput.addEventListener('change', () => void this.jump(Number(this.rangeInput.value)));
    this.compareBox.addEventListener('change', () => void this.setCompare(this.compareBox.checked));
    this.bindDrag();
    const params = new URLSearchParams(location.search);
    this.compare = params.get('compare') === '1';
    this.compareBox.checked = this.compare;
    const at = Number(params.get('at')), from = Number(params.get('from')), to = Number(params.get('to'));
    void this.refresh().then(() => {
      if (params.has('from') && params.has('to') && Number.isFinite(from) && Number.isFinite(to)) void this.selectRange(from * 1000, to * 1000);
      else if (params.has('at') && Number.isFinite(at)) void this.jump(at * 1000);
    });
    window.setInterval(() => void this.refresh(), 5000);
    this.render();
  }

  /** `?at=` for /api/connections while the past is shown ('' when live). */
  query(): string { return this.atMs === null ? '' : `?at=${secs(this.atMs)}`; }
  /** The moment shown as an `at` value (Unix seconds), or `''` when live. */
  atParam(): string { return this.atMs === null ? '' : secs(this.atMs); }

  async refresh(): Promise<void> {
    try {
      this.history = await getJson<HistoryDoc>('/api/history');
    } catch { /* server gone: the live status says so */ }
    this.render();
  }

  /** Shows the last sample at or before `ms` (compared with now in compare mode). */
  async jump(ms: number): Promise<void> {
    this.range = null;
    this.atMs = this.sampleAt(ms) ?? ms;
    await this.show();
  }

  /**
   * Selects [fromMs, toMs] (either order; snapped to the samples at or before them): the graph
   * shows both ends, compare mode marks what changed between them. A range of one sample is a jump.
   */
  async selectRange(aMs: number, bMs: number): Promise<void> {
    const lo = Math.min(aMs, bMs), hi = Math.max(aMs, bMs);
    const first = this.history?.seqs[0]?.[0];
    const from = this.sampleAt(lo) ?? first ?? lo, to = this.sampleAt(hi) ?? hi;
    if (to <= from) { await this.jump(from); return; }
    this.range = { fromMs: from, toMs: to };
    this.atMs = from;
    this.compare = true;
    this.compareBox.checked = true;
    await this.show();
  }

  /** One sample back (-1) or forward (+1); forward past the newest is live. Leaves a range. */
  async step(dir: -1 | 1): Promise<void> {
    const seqs = this.history?.seqs ?? [];
    if (!seqs.length) return;
    const times = seqs.map((s) => s[0]);
    if (this.atMs === null) {
      // Live: back is the sample before the newest (the newest is what live shows).
      if (dir > 0) return;
      await this.jump(times[Math.max(0, times.length - 2)]);
      return;
    }
    const cur = this.atMs;
    let i = times.findIndex((t) => t > cur) - 1; // the sample shown
    if (i < -1) i = times.length - 1;
    const next = i + dir;
    if (next >= times.length) { this.live(); return; }
    await this.jump(times[Math.max(0, next)]);
  }

  live(): void {
    this.showSeq++;
    this.atMs = null;
    this.shownMs = null;
    this.range = null;
    this.changes = null;
    this.host.goLive();
    this.host.showChanges?.(null, 0, null);
    this.changed();
  }

  private async setCompare(on: boolean): Promise<void> {
    this.compare = on;
    if (!on && this.range) this.range = null; // a range is what compare compares
    if (this.atMs === null) { this.changed(); return; }
    await this.show();
  }

  /** Fetches and shows the current state: the graph at `atMs`, or the union of both moments
   *  with the changes between them in compare mode. Older answers are dropped. */
  private async show(): Promise<void> {
    const mine = ++this.showSeq;
    const at = this.atMs;
    if (at === null) return;
    const range = this.range;
    this.changed();
    try {
      const before = await getJson<GraphDoc>(`/api/graph?at=${secs(at)}`);
      let doc = before;
      let changes: ChangesDoc | null = null;
      let toMs: number | null = null;
      if (this.compare) {
        // "Now" is the newest sample, named exactly so that the changes and the graph agree.
        if (!range) await this.refresh();
        toMs = range?.toMs ?? this.history?.newestMs ?? null;
        const to = toMs === null ? '' : `&to=${secs(toMs)}`;
        changes = await getJson<ChangesDoc>(`/api/changes?from=${secs(at)}${to}`);
        const after = await getJson<GraphDoc>(toMs === null ? '/api/graph' : `/api/graph?at=${secs(toMs)}`);
        doc = unionDocs(before, after);
      }
      if (mine !== this.showSeq) return;
      this.changes = changes;
      this.host.showPast(doc, at);
      this.host.showChanges?.(changes, at, range ? toMs : null);
      this.shownMs = at;
      this.shownCount++;
      this.render();
    } catch (e) {
      if (mine !== this.showSeq) return;
      this.label.textContent = e instanceof HttpError ? (e.status === 416 ? 'not in history' : `error ${e.status}`) : 'server unreachable';
    }
  }

  private sampleAt(ms: number): number | null {
    const seqs = this.history?.seqs ?? [];
    let best: number | null = null;
    for (const [t] of seqs) if (t <= ms) best = t;
    return best;
  }

  /** The URL, the bar and the listeners follow a change of state. */
  private changed(): void {
    this.writeUrl();
    this.render();
    this.onChange();
  }

  private writeUrl(): void {
    const p = new URLSearchParams(location.search);
    for (const k of ['at', 'from', 'to']) p.delete(k);
    if (this.range) { p.set('from', secs(this.range.fromMs)); p.set('to', secs(this.range.toMs)); } else if (this.atMs !== null) p.set('at', secs(this.atMs));
    if (this.compare) p.set('compare', '1'); else p.delete('compare');
    const q = p.toString();
    history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
  }

  // ---------- the strip: click jumps, drag selects a range ----------
  private span(): [number, number] | null {
    const h = this.history;
    return h?.oldestMs != null && h.newestMs != null && h.newestMs > h.oldestMs ? [h.oldestMs, h.newestMs] : null;
  }

  /** The time under client x on the strip. */
  private timeAtX(clientX: number): number | null {
    const s = this.span();
    const r = this.strip.getBoundingClientRect();
    if (!s || !r.width) return null;
    const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return s[0] + f * (s[1] - s[0]);
  }

  private bindDrag(): void {
    this.strip.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || !this.span()) return;
      e.preventDefault();
      this.strip.setPointerCapture(e.pointerId);
      this.drag = { x0: e.clientX, x1: e.clientX };
      this.renderSelection();
    });
    this.strip.addEventListener('pointermove', (e) => {
      if (!this.drag) return;
      this.drag.x1 = e.clientX;
      this.renderSelection();
    });
    const end = (e: PointerEvent, cancel: boolean) => {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      d.x1 = e.clientX;
      const a = this.timeAtX(d.x0), b = this.timeAtX(d.x1);
      if (cancel || a === null || b === null) { this.renderSelection(); return; }
      if (Math.abs(d.x1 - d.x0) < CLICK_PX) void this.jump(b);
      else void this.selectRange(a, b);
    };
    this.strip.addEventListener('pointerup', (e) => end(e, false));
    this.strip.addEventListener('pointercancel', (e) => end(e, true));
  }

  /** The selection on the strip: the drag under way, else the chosen range. */
  private renderSelection(): void {
    const s = this.span();
    const r = this.strip.getBoundingClientRect();
    let lo: number, hi: number;
    if (this.drag && r.width) {
      lo = (Math.min(this.drag.x0, this.drag.x1) - r.left) / r.width;
      hi = (Math.max(this.drag.x0, this.drag.x1) - r.left) / r.width;
    } else if (this.range && s) {
      lo = (this.range.fromMs - s[0]) / (s[1] - s[0]);
      hi = (this.range.toMs - s[0]) / (s[1] - s[0]);
    } else { this.sel.hidden = true; return; }
    lo = Math.min(1, Math.max(0, lo)); hi = Math.min(1, Math.max(lo, hi));
    this.sel.hidden = false;
    this.sel.style.left = `${lo * 100}%`;
    this.sel.style.width = `max(2px, ${(hi - lo) * 100}%)`;
  }

  private render(): void {
    const h = this.history;
    const past = this.atMs !== null;
    const mode = this.range ? 'range' : past ? 'past' : 'live';
    this.root.dataset.mode = mode;
    this.root.classList.toggle('past', past);
    this.liveBtn.setAttribute('aria-pressed', String(!past));
    this.liveBtn.classList.toggle('go-live', past);
    this.label.textContent = this.range ? `PAST · ${clock(this.range.fromMs)} → ${clock(this.range.toMs).slice(11)}`
      : past ? `PAST · ${clock(this.atMs!)}` : (h && !h.live ? 'replay: end of the recording' : '● LIVE');
    this.fwdBtn.disabled = !past;
    if (h?.oldestMs != null && h.newestMs != null) {
      this.rangeInput.min = String(h.oldestMs);
      this.rangeInput.max = String(h.newestMs);
      this.rangeInput.value = String(this.atMs ?? h.newestMs);
      this.rangeInput.title = `${clock(h.oldestMs)} – ${clock(h.newestMs)}`;
    }
    const acts = h?.activity ?? [];
    const maxBytes = Math.max(1, ...acts.map((a) => a.bytes));
    const maxEdges = Math.max(1, ...acts.map((a) => a.edges));
    this.cells.replaceChildren(...acts.map((a) => {
      const bar = el('span', { class: 'time-bar-cell', title: `${clock(a.startMs)}: ${a.edges} edges, ${a.bytes} bytes` });
      bar.style.height = `${Math.max(a.samples ? 8 : 0, 100 * Math.max(a.bytes / maxBytes, a.edges / maxEdges))}%`;
      return bar;
    }));
    this.renderSelection();
    this.renderList();
  }

  private renderList(): void {
    const c = this.changes;
    this.list.hidden = !c || this.atMs === null;
    if (!c || this.atMs === null) { this.list.replaceChildren(); return; }
    const row = (e: EdgeRef, kind: 'vanished' | 'new') => {
      const d = el('div', { class: `compare-${kind}`, 'data-testid': `${kind}-edge`, 'data-edge': e.id });
      d.textContent = `${kind === 'vanished' ? '− vanished' : '+ new'}: ${e.from} → ${e.to} (${e.proto}/${e.serverPort})`;
      return d;
    };
    const since = this.range ? `${clock(this.range.fromMs)} → ${clock(this.range.toMs)}` : `Since ${clock(this.atMs)}`;
    const head = el('div', { class: 'compare-head' }, `${since}: ${c.vanishedEdges.length} vanished, ${c.newEdges.length} new, ${c.closedConnections} connections closed`);
    this.list.replaceChildren(head, ...c.vanishedEdges.map((e) => row(e, 'vanished')), ...c.newEdges.map((e) => row(e, 'new')));
  }
}
