// Compare mode on the graph: a canvas over the graph's own that marks the edges that vanished
// (dashed, red), appeared (green) and moved bytes (purple, with the delta) between two moments,
// with a legend. It draws after every graph frame, from the graph's public positions and camera,
// so it follows pan, zoom, drag and layout without the graph knowing what it marks. The graph
// shown in compare mode is the union of both moments (compare.ts), so a vanished edge's
// processes are still there to draw it between, even when they have exited since.
import './compare-overlay.css';
import type { GraphView } from './graph';
import { toScreen, type Camera } from './graph/camera';
import { ctrl, type RNode } from './graph/scene';
import { compareTitle, curveMid, markCounts, marksOf, memberIndex, type ChangesDoc, type Mark, type MarkKind } from './compare';
import { esc, fmtBytes } from './util';

/** The colours of the marks (also in the legend, compare-overlay.css). */
export const MARK_COLOURS: Record<MarkKind, string> = { vanished: '#dc2626', new: '#16a34a', changed: '#9333ea' };
const GLYPH: Record<MarkKind, string> = { vanished: '−', new: '+', changed: 'Δ' };
/** Byte labels beyond this many (the busiest first) would hide the graph. */
const MAX_LABELS = 40;
/** Badges closer than this (px) share one spot: only the first is drawn. */
const BADGE_CELL = 14;

/** One mark as the last frame drew it, in CSS px of the graph (read by the browser tests). */
export interface DrawnMark { id: string; kind: MarkKind; x1: number; y1: number; cx: number; cy: number; x2: number; y2: number; mx: number; my: number; bytes: number; r1: number; r2: number }

export class CompareOverlay {
  private readonly canvas = document.createElement('canvas');
  private readonly ctx: CanvasRenderingContext2D;
  private readonly legend = document.createElement('div');
  private marks: Mark[] = [];
  private cam: Camera = { k: 1, tx: 0, ty: 0 };
  private dark = matchMedia('(prefers-color-scheme: dark)').matches;
  /** What the last frame drew, and how many marks had an end outside the view. */
  drawn: DrawnMark[] = [];
  notDrawn = 0;
  /** Nothing drawn on the canvas. */
  private blank = true;

  constructor(private readonly graph: GraphView) {
    this.canvas.id = 'compare-overlay';
    this.canvas.dataset.testid = 'compare-overlay';
    this.canvas.setAttribute('aria-hidden', 'true');
    this.canvas.style.pointerEvents = 'none';
    this.ctx = this.canvas.getContext('2d')!;
    graph.canvasEl.after(this.canvas);
    this.legend.className = 'compare-legend';
    this.legend.dataset.testid = 'compare-legend';
    this.legend.hidden = true;
    graph.canvasEl.parentElement!.append(this.legend);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', (e) => { this.dark = e.matches; this.draw(); });
    graph.onFrame = (cam) => { this.cam = { k: cam.k, tx: cam.tx, ty: cam.ty }; this.draw(); };
  }

  /** Marks a comparison (`null`: compare mode off); `fromMs`/`toMs` name the two moments (`toMs` null: now). */
  set(changes: ChangesDoc | null, fromMs = 0, toMs: number | null = null): void {
    this.marks = changes ? marksOf(changes) : [];
    this.legend.hidden = !changes;
    if (changes) {
      const n = markCounts(this.marks);
      const row = (k: MarkKind, text: string) => `<div class="legend-row" data-testid="compare-legend-${k}"><span class="cmp-swatch cmp-${k}"></span> ${text}</div>`;
      this.legend.innerHTML = `<div class="legend-title">Compare ${esc(compareTitle(fromMs, toMs))}</div>` +
        row('vanished', `vanished (${n.vanished})`) + row('new', `new (${n.new})`) + row('changed', `bytes moved (${n.changed})`) +
        `<div class="legend-row muted" data-testid="compare-not-drawn"></div>`;
    }
    this.graph.requestDraw();
    this.draw();
  }

  private fit(): boolean {
    const w = this.graph.width, h = this.graph.height, dpr = window.devicePixelRatio || 1;
    if (!w || !h) return false;
    const W = Math.round(w * dpr), H = Math.round(h * dpr);
    if (this.canvas.width !== W || this.canvas.height !== H) {
      this.canvas.width = W; this.canvas.height = H;
      this.canvas.style.width = w + 'px'; this.canvas.style.height = h + 'px';
    }
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return true;
  }

  /** Redraws the marks with the graph's current positions and camera. */
  draw(): void {
    const ctx = this.ctx;
    // Not comparing (most frames): nothing to do once the canvas is blank.
    if (!this.marks.length && this.blank) return;
    this.drawn = [];
    this.notDrawn = 0;
    if (!this.fit()) return;
    ctx.clearRect(0, 0, this.graph.width, this.graph.height);
    this.blank = !this.marks.length;
    if (this.blank) return;
    const vnodes = this.graph.vnodes;
    let groups: Map<string, string> | null = null;
    const drawnNode = (raw: string): RNode | undefined => {
      const v = vnodes.get(raw);
      if (v) return v;
      groups ??= memberIndex([...vnodes.values()].filter((n) => n.group).map((n) => [n.id, n.group!.members] as const));
      const g = groups.get(raw);
      return g === undefined ? undefined : vnodes.get(g);
    };
    for (const m of this.marks) {
      const s = drawnNode(m.from), t = drawnNode(m.to);
      if (!s || !t || s === t) { this.notDrawn++; continue; }
      const e = this.graph.vedges.get(m.id);
      const [cx, cy] = e && e.s === s && e.t === t ? ctrl(e) : [(s.x + t.x) / 2, (s.y + t.y) / 2];
      const a = toScreen(this.cam, s.x, s.y), b = toScreen(this.cam, t.x, t.y), c = toScreen(this.cam, cx, cy);
      const mid = curveMid(a.x, a.y, c.x, c.y, b.x, b.y);
      this.drawn.push({ id: m.id, kind: m.kind, x1: a.x, y1: a.y, cx: c.x, cy: c.y, x2: b.x, y2: b.y, mx: mid.x, my: mid.y, bytes: m.bytes, r1: s.r * this.cam.k, r2: t.r * this.cam.k });
    }
    const bg = this.dark ? '#0f172a' : '#f8fafc';
    ctx.lineCap = 'round';
    // Changed under new under vanished: what disappeared is what a user compares for.
    for (const kind of ['changed', 'new', 'vanished'] as MarkKind[]) {
      const marks = this.drawn.filter((d) => d.kind === kind);
      if (!marks.length) continue;
      const path = new Path2D();
      for (const d of marks) { path.moveTo(d.x1, d.y1); path.quadraticCurveTo(d.cx, d.cy, d.x2, d.y2); }
      if (kind === 'vanished') {
        // Blank the graph's own stroke first, so the dashes read as dashes.
        ctx.setLineDash([]); ctx.strokeStyle = bg; ctx.lineWidth = 6; ctx.stroke(path);
        ctx.setLineDash([8, 5]);
      } else ctx.setLineDash([]);
      ctx.strokeStyle = MARK_COLOURS[kind];
      ctx.lineWidth = kind === 'changed' ? 2 : 3;
      ctx.stroke(path);
    }
    ctx.setLineDash([]);
    // The processes stay visible: the marks stop at their circles.
    ctx.globalCompositeOperation = 'destination-out';
    ctx.beginPath();
    for (const d of this.drawn) {
      ctx.moveTo(d.x1 + d.r1 + 1, d.y1); ctx.arc(d.x1, d.y1, d.r1 + 1, 0, Math.PI * 2);
      ctx.moveTo(d.x2 + d.r2 + 1, d.y2); ctx.arc(d.x2, d.y2, d.r2 + 1, 0, Math.PI * 2);
    }
    ctx.fill();
    ctx.globalCompositeOperation = 'source-over';
    ctx.font = 'bold 11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    // One badge a spot (vanished first): parallel edges would stack theirs into a blot.
    const taken = new Set<string>();
    const order: MarkKind[] = ['vanished', 'new', 'changed'];
    for (const d of [...this.drawn].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))) {
      const cell = `${Math.round(d.mx / BADGE_CELL)},${Math.round(d.my / BADGE_CELL)}`;
      if (taken.has(cell)) continue;
      taken.add(cell);
      ctx.beginPath();
      ctx.arc(d.mx, d.my, 7, 0, Math.PI * 2);
      ctx.fillStyle = MARK_COLOURS[d.kind];
      ctx.fill();
      ctx.lineWidth = 1.5; ctx.strokeStyle = '#fff'; ctx.stroke();
      ctx.fillStyle = '#fff';
      ctx.fillText(GLYPH[d.kind], d.mx, d.my + 0.5);
    }
    ctx.textAlign = 'left';
    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 3;
    ctx.strokeStyle = bg;
    for (const d of this.drawn.filter((x) => x.bytes > 0).sort((x, y) => y.bytes - x.bytes).slice(0, MAX_LABELS)) {
      const text = `+${fmtBytes(d.bytes)}`;
      ctx.strokeText(text, d.mx + 10, d.my);
      ctx.fillStyle = MARK_COLOURS[d.kind];
      ctx.fillText(text, d.mx + 10, d.my);
    }
    const nd = this.legend.querySelector('[data-testid="compare-not-drawn"]');
    if (nd) nd.textContent = this.notDrawn ? `${this.notDrawn} inside a group or not in the view` : '';
  }
}

