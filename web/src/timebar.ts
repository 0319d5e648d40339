// The time bar under the header: live / step back / step forward / jump to a time on the
// scrubber, an activity strip of the kept history, and a compare mode that lists the edges that
// vanished (and appeared) between the chosen moment and now. The chosen time is in the URL
// (`?at=<unix seconds>&compare=1`), so a link reopens the same moment. Talks only to
// /api/history, /api/graph?at= and /api/changes; the host applies the documents.
import './timebar.css';
import type { GraphDoc } from './types';

/** What the time bar needs from the page. */
export interface TimeBarHost {
  /** Show a past graph (and stop applying live updates). */
  showPast(doc: GraphDoc, atMs: number): void;
  /** Back to live. */
  goLive(): void;
}

interface Activity { startMs: number; endMs: number; edges: number; bytes: number; samples: number }
interface HistoryDoc {
  live: boolean; oldestMs: number | null; newestMs: number | null; intervalMs: number;
  seqs: [number, number][]; activity: Activity[]; warnings: string[];
}
interface EdgeRef { id: string; from: string; to: string; proto: string; serverPort: number }
interface ChangesDoc { newEdges: EdgeRef[]; vanishedEdges: EdgeRef[] }

const secs = (ms: number) => (ms / 1000).toFixed(3);
const clock = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

export class TimeBar {
  /** The moment shown; null: live. */
  atMs: number | null = null;
  compare = false;
  history: HistoryDoc | null = null;
  changes: ChangesDoc | null = null;
  private readonly root = el('div', { class: 'timebar', 'data-testid': 'timebar' });
  private readonly liveBtn = el('button', { 'data-testid': 'time-live', title: 'Back to the live view' }, 'Live');
  private readonly backBtn = el('button', { 'data-testid': 'time-back', title: 'One sample back' }, '◀');
  private readonly fwdBtn = el('button', { 'data-testid': 'time-forward', title: 'One sample forward' }, '▶');
  private readonly range = el('input', { type: 'range', 'data-testid': 'time-range', min: '0', max: '0', step: '1', 'aria-label': 'Time' });
  private readonly label = el('span', { class: 'time-label', 'data-testid': 'time-label' }, 'live');
  private readonly compareBox = el('input', { type: 'checkbox', 'data-testid': 'time-compare' });
  private readonly strip = el('div', { class: 'time-strip', 'data-testid': 'time-strip' });
  private readonly list = el('div', { class: 'time-compare-list', 'data-testid': 'compare-list' });
  private jumpSeq = 0;

  constructor(private readonly host: TimeBarHost) {
    const cmp = el('label', { class: 'time-compare', title: 'List the edges that vanished or appeared between this moment and now' });
    cmp.append(this.compareBox, document.createTextNode(' compare with now'));
    const track = el('div', { class: 'time-track' });
    track.append(this.strip, this.range);
    this.root.append(this.liveBtn, this.backBtn, this.fwdBtn, track, this.label, cmp);
    const header = document.querySelector('header');
    (header ?? document.body.firstElementChild)?.after(this.root, this.list);
    this.list.hidden = true;
    this.liveBtn.addEventListener('click', () => this.live());
    this.backBtn.addEventListener('click', () => void this.step(-1));
    this.fwdBtn.addEventListener('click', () => void this.step(1));
    this.range.addEventListener('change', () => void this.jump(Number(this.range.value)));
    this.compareBox.addEventListener('change', () => { this.compare = this.compareBox.checked; this.writeUrl(); void this.refreshChanges(); });
    const params = new URLSearchParams(location.search);
    this.compare = params.get('compare') === '1';
    this.compareBox.checked = this.compare;
    const at = Number(params.get('at'));
    void this.refresh().then(() => { if (params.has('at') && Number.isFinite(at)) void this.jump(at * 1000); });
    window.setInterval(() => void this.refresh(), 5000);
    this.render();
  }

  /** `?at=` for /api/connections while the past is shown ('' when live). */
  query(): string { return this.atMs === null ? '' : `?at=${secs(this.atMs)}`; }
  /** The moment shown as an `at` value (Unix seconds), or `''` when live. */
  atParam(): string { return this.atMs === null ? '' : secs(this.atMs); }

  async refresh(): Promise<void> {
    try {
      const r = await fetch('/api/history', { credentials: 'same-origin', cache: 'no-store' });
      if (r.ok) this.history = await r.json() as HistoryDoc;
    } catch { /* server gone: the live status says so */ }
    this.render();
  }

  /** Shows the last sample at or before `ms`. */
  async jump(ms: number): Promise<void> {
    const mine = ++this.jumpSeq;
    const r = await fetch(`/api/graph?at=${secs(ms)}`, { credentials: 'same-origin', cache: 'no-store' });
    if (mine !== this.jumpSeq) return;
    if (!r.ok) { this.label.textContent = r.status === 416 ? 'not in history' : `error ${r.status}`; return; }
    const doc = await r.json() as GraphDoc;
    this.atMs = this.sampleAt(ms) ?? ms;
    this.host.showPast(doc, this.atMs);
    this.writeUrl();
    this.render();
    await this.refreshChanges();
  }

  /** One sample back (-1) or forward (+1); forward past the newest is live. */
  async step(dir: -1 | 1): Promise<void> {
    const seqs = this.history?.seqs ?? [];
    if (!seqs.length) return;
    const cur = this.atMs ?? seqs[seqs.length - 1][0] + 1;
    const times = seqs.map((s) => s[0]);
    let i = times.findIndex((t) => t > cur) - 1;
    if (i < -1) i = times.length - 1;
    if (this.atMs === null) i = times.length - 1; // live: back is the newest sample…
    const next = this.atMs === null ? (dir < 0 ? times.length - 2 : -1) : i + dir;
    if (next >= times.length || (next < 0 && dir > 0)) { this.live(); return; }
    await this.jump(times[Math.max(0, next)]);
  }

  live(): void {
    this.atMs = null;
    this.changes = null;
    this.writeUrl();
    this.host.goLive();
    this.render();
  }

  private sampleAt(ms: number): number | null {
    const seqs = this.history?.seqs ?? [];
    let best: number | null = null;
    for (const [t] of seqs) if (t <= ms) best = t;
    return best;
  }

  private async refreshChanges(): Promise<void> {
    if (!this.compare || this.atMs === null) { this.changes = null; this.renderList(); return; }
    try {
      const r = await fetch(`/api/changes?from=${secs(this.atMs)}`, { credentials: 'same-origin', cache: 'no-store' });
      this.changes = r.ok ? await r.json() as ChangesDoc : null;
    } catch { this.changes = null; }
    this.renderList();
  }

  private writeUrl(): void {
    const p = new URLSearchParams(location.search);
    if (this.atMs === null) p.delete('at'); else p.set('at', secs(this.atMs));
    if (this.compare) p.set('compare', '1'); else p.delete('compare');
    const q = p.toString();
    history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
  }

  private render(): void {
    const h = this.history;
    const past = this.atMs !== null;
    this.root.classList.toggle('past', past);
    this.liveBtn.setAttribute('aria-pressed', String(!past));
    this.label.textContent = past ? `PAST · ${clock(this.atMs!)}` : (h && !h.live ? 'replay: end of the recording' : 'live');
    if (h?.oldestMs != null && h.newestMs != null) {
      this.range.min = String(h.oldestMs);
      this.range.max = String(h.newestMs);
      this.range.value = String(this.atMs ?? h.newestMs);
      this.range.title = `${clock(h.oldestMs)} – ${clock(h.newestMs)}`;
    }
    const acts = h?.activity ?? [];
    const maxBytes = Math.max(1, ...acts.map((a) => a.bytes));
    const maxEdges = Math.max(1, ...acts.map((a) => a.edges));
    this.strip.replaceChildren(...acts.map((a) => {
      const bar = el('span', { class: 'time-bar-cell', title: `${clock(a.startMs)}: ${a.edges} edges, ${a.bytes} bytes` });
      bar.style.height = `${Math.max(a.samples ? 8 : 0, 100 * Math.max(a.bytes / maxBytes, a.edges / maxEdges))}%`;
      return bar;
    }));
    this.renderList();
  }

  private renderList(): void {
    const c = this.changes;
    this.list.hidden = !c;
    if (!c) { this.list.replaceChildren(); return; }
    const row = (e: EdgeRef, kind: 'vanished' | 'new') => {
      const d = el('div', { class: `compare-${kind}`, 'data-testid': `${kind}-edge`, 'data-edge': e.id });
      d.textContent = `${kind === 'vanished' ? '− vanished' : '+ new'}: ${e.from} → ${e.to} (${e.proto}/${e.serverPort})`;
      return d;
    };
    const head = el('div', { class: 'compare-head' }, `Since ${clock(this.atMs!)}: ${c.vanishedEdges.length} vanished, ${c.newEdges.length} new`);
    this.list.replaceChildren(head, ...c.vanishedEdges.map((e) => row(e, 'vanished')), ...c.newEdges.map((e) => row(e, 'new')));
  }
}
