// The live process graph: our own canvas renderer with level-of-detail, batched paths,
// incremental diff application, stable positions and worker-based layout refinement.
import type { Change, Model } from './model';
import type { GEdge, GNode } from './types';
import { sprites, typeColor, glyphType, GLYPH_TYPES, TYPE_COLORS } from './glyphs';
import { seedLayout, SPACING } from './layout';
import { esc, fmtBytes, fmtRate, el } from './util';
import { DensityLayer } from './density';
import { drawRetransmitEdges, edgeHealthLine } from './health';

export type GroupMode = 'none' | 'name' | 'type' | 'container';

interface GroupData { key: string; mode: GroupMode; members: string[] }

export interface RNode {
  id: string;
  x: number; y: number; r: number;
  placed: boolean;
  type: string; kind: string;
  label: string;
  node?: GNode;          // a raw node
  group?: GroupData;     // a collapsed group
  deg: number;
  match: boolean;
  hidden: boolean;
  ix: number;            // scratch index for layout jobs
}

export interface REdge {
  id: string;
  s: RNode; t: RNode;
  proto: string;
  count: number;
  rate: number;          // bytes/s, -1 when unknown
  edges: GEdge[];        // the raw edges behind it (1, or many when aggregated)
  pairKey: string;
  curv: number;
  hidden: boolean;
  match: boolean;
  rz: Float64Array | null; // density layer raster record
  rw: number; rp: number;
}

const COLORS = { tcp: '#2563eb', udp: '#f59e0b', tcpDark: '#60a5fa', udpDark: '#fbbf24' };

function nodeRadius(n: RNode): number {
  if (n.group) return 12 + Math.min(14, Math.sqrt(n.group.members.length) * 2);
  if (n.kind === 'external') return 8;
  return 9 + Math.min(7, Math.sqrt(n.deg) * 1.2);
}

export interface PerfRecord { seq: number; parseMs: number; applyMs: number; drawMs: number; totalMs: number; frameMs?: number }

export class GraphView {
  readonly root: HTMLElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private tooltip: HTMLElement;
  private panel: HTMLElement;
  private searchInfo: HTMLElement;
  vnodes = new Map<string, RNode>();
  vedges = new Map<string, REdge>();
  private pairs = new Map<string, REdge[]>();
  private posMemo = new Map<string, { x: number; y: number }>();
  private cam = { k: 1, tx: 0, ty: 0 };
  private w = 0; private h = 0; private dpr = 1;
  private autoFit = true;
  private dirty = false;
  private raf = 0;
  private hoverNode: RNode | null = null;
  private hoverEdge: REdge | null = null;
  private selected: string | null = null;
  private query = '';
  private filterOnly = false;
  grouping: GroupMode = 'none';
  private collapsed = new Set<string>(); // group keys
  private worker: Worker | null = null;
  private density: DensityLayer;
  private posEpoch = 0;
  private jobId = 0;
  private jobNodes: RNode[] = [];
  private dark = false;
  visible = true;
  noLayout = false;
  forceFlush = false; // bench: read back a pixel so raster cost is included in timings
  onSelect: (id: string | null) => void = () => {};

  constructor(root: HTMLElement, private model: Model) {
    this.root = root;
    root.innerHTML = `
      <div class="toolbar">
        <input type="search" id="search" data-testid="search" placeholder="Search name, pid or port" autocomplete="off">
        <label class="chk"><input type="checkbox" id="filter-only" data-testid="filter-only"> only matches</label>
        <span id="search-info" data-testid="search-info" class="muted"></span>
        <span class="sep"></span>
        <label>Group <select id="group-by" data-testid="group-by">
          <option value="none">none</option><option value="name">process name</option>
          <option value="type">type</option><option value="container">container</option></select></label>
        <button id="collapse-all" data-testid="collapse-all" title="Collapse every group">Collapse all</button>
        <button id="expand-all" data-testid="expand-all" title="Expand every group">Expand all</button>
        <span class="sep"></span>
        <button id="pause" data-testid="pause" aria-pressed="false">Pause</button>
        <button id="zoom-in" data-testid="zoom-in" title="Zoom in">+</button>
        <button id="zoom-out" data-testid="zoom-out" title="Zoom out">−</button>
        <button id="fit" data-testid="fit" title="Fit the graph">Fit</button>
      </div>
      <div class="graph-wrap">
        <canvas id="graph-density" aria-hidden="true"></canvas>
        <canvas id="graph-canvas" data-testid="graph-canvas"></canvas>
        <div class="tooltip" id="tooltip" data-testid="tooltip" hidden></div>
        <div class="legend" id="legend" data-testid="legend"></div>
        <aside class="panel" id="side-panel" data-testid="side-panel" hidden></aside>
      </div>`;
    this.canvas = root.querySelector('#graph-canvas')!;
    this.ctx = this.canvas.getContext('2d')!;
    this.density = new DensityLayer(root.querySelector('#graph-density')!);
    this.tooltip = root.querySelector('#tooltip')!;
    this.panel = root.querySelector('#side-panel')!;
    this.searchInfo = root.querySelector('#search-info')!;
    this.buildLegend();
    sprites.onUpdate = () => { this.buildLegend(); this.requestDraw(); };
    const mq = matchMedia('(prefers-color-scheme: dark)');
    this.dark = mq.matches;
    mq.addEventListener('change', () => { this.dark = mq.matches; this.requestDraw(); });
    new ResizeObserver(() => this.resize()).observe(this.canvas.parentElement!);
    this.resize();
    this.density.warmUp(Math.round(this.w * this.dpr), Math.round(this.h * this.dpr));
    this.warmUp();
    this.bindInput();
    model.onChange((c) => this.onModelChange(c));
  }

  // ---------- toolbar / input ----------
  private bindInput() {
    const q = (s: string) => this.root.querySelector(s) as HTMLInputElement;
    q('#search').addEventListener('input', (e) => { this.query = (e.target as HTMLInputElement).value.trim().toLowerCase(); this.applySearch(); this.requestDraw(); });
    q('#filter-only').addEventListener('change', (e) => { this.filterOnly = (e.target as HTMLInputElement).checked; this.applySearch(); this.requestDraw(); });
    q('#group-by').addEventListener('change', (e) => this.setGrouping((e.target as HTMLSelectElement).value as GroupMode));
    q('#collapse-all').addEventListener('click', () => this.collapseAll(true));
    q('#expand-all').addEventListener('click', () => this.collapseAll(false));
    q('#zoom-in').addEventListener('click', () => this.zoomAt(this.w / 2, this.h / 2, 1.4));
    q('#zoom-out').addEventListener('click', () => this.zoomAt(this.w / 2, this.h / 2, 1 / 1.4));
    q('#fit').addEventListener('click', () => { this.fit(); this.requestDraw(); });

    const c = this.canvas;
    let drag: { mode: 'pan' | 'node'; x: number; y: number; node?: RNode; moved: boolean } | null = null;
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoomAt(e.offsetX, e.offsetY, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
    c.addEventListener('pointerdown', (e) => {
      const n = this.nodeAt(e.offsetX, e.offsetY);
      drag = { mode: n ? 'node' : 'pan', x: e.offsetX, y: e.offsetY, node: n ?? undefined, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener('pointermove', (e) => {
      if (drag) {
        const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (!drag.moved) return;
        this.autoFit = false;
        if (drag.mode === 'pan') { this.cam.tx += dx; this.cam.ty += dy; }
        else if (drag.node) { drag.node.x += dx / this.cam.k; drag.node.y += dy / this.cam.k; this.stopLayout(); this.posEpoch++; }
        drag.x = e.offsetX; drag.y = e.offsetY;
        this.requestDraw();
        return;
      }
      this.hover(e.offsetX, e.offsetY);
    });
    c.addEventListener('pointerup', (e) => {
      if (drag && !drag.moved) {
        const n = this.nodeAt(e.offsetX, e.offsetY);
        this.select(n ? n.id : null);
      }
      drag = null;
    });
    c.addEventListener('dblclick', (e) => {
      const n = this.nodeAt(e.offsetX, e.offsetY);
      if (n?.group) this.toggleGroup(n.group.key, false);
    });
    c.addEventListener('pointerleave', () => { this.hoverNode = this.hoverEdge = null; this.tooltip.hidden = true; this.requestDraw(); });
  }

  private buildLegend() {
    const L = this.root.querySelector('#legend')!;
    const names: Record<string, string> = { app: 'app', service: 'service', database: 'database', message_broker: 'message broker (mq)',
      cache: 'cache', load_balancer: 'load balancer (lb)', external: 'external endpoint', qt_desktop: 'Qt desktop', unknown: 'unknown owner', group: 'collapsed group' };
    L.innerHTML = `<div class="legend-title">Legend</div>` + GLYPH_TYPES.map((t) =>
      `<div class="legend-row"><img alt="" src="${sprites.url(t)}" width="14" height="14"> ${names[t]}</div>`).join('') +
      `<div class="legend-row"><span class="swatch tcp"></span> TCP</div>` +
      `<div class="legend-row"><span class="swatch udp"></span> UDP</div>` +
      `<div class="legend-row"><span class="swatch unk"></span> dashed ring: owner not visible</div>` +
      `<div class="legend-row muted">thicker line: more traffic</div>` +
      `<div class="legend-row muted">arrow: client → server</div>`;
  }

  private resize() {
    const p = this.canvas.parentElement!;
    const w = p.clientWidth, h = p.clientHeight;
    if (!w || !h) return;
    // setting canvas.width discards the bitmap: only when the size really changed
    if (w === this.w && h === this.h && this.dpr === (window.devicePixelRatio || 1)) return;
    this.dpr = window.devicePixelRatio || 1;
    this.w = w; this.h = h;
    this.canvas.width = Math.round(w * this.dpr);
    this.canvas.height = Math.round(h * this.dpr);
    this.canvas.style.width = w + 'px';
    this.canvas.style.height = h + 'px';
    this.density.canvas.style.width = w + 'px';
    this.density.canvas.style.height = h + 'px';
    if (this.autoFit) this.fit();
    this.draw();
  }

  /** Exercise the 2D paths the first frame uses (rects, lines, arcs, sprites, text) and read a
   *  pixel back, so the first real frame does not pay for cold code and buffer setup. */
  private warmUp() {
    const ctx = this.ctx;
    const cols = Object.values(TYPE_COLORS);
    for (let pass = 0; pass < 2; pass++) {
      ctx.clearRect(0, 0, this.w, this.h);
      for (let c = 0; c < cols.length; c++) {
        ctx.fillStyle = cols[c];
        ctx.beginPath();
        for (let i = 0; i < 200; i++) ctx.rect((i * 37 + c * 11) % this.w, (i * 53 + c * 7) % this.h, 3, 3);
        ctx.fill();
      }
      ctx.strokeStyle = cols[0]; ctx.lineWidth = 1;
      ctx.beginPath();
      for (let i = 0; i < 300; i++) { ctx.moveTo(i * 3, 0); ctx.lineTo(this.w - i * 3, this.h); }
      ctx.stroke();
      ctx.beginPath(); ctx.arc(50, 50, 10, 0, 6.28); ctx.stroke();
      ctx.drawImage(sprites.get('app'), 10, 10, 20, 20);
      ctx.font = '11px system-ui, sans-serif'; ctx.fillText('warm', 40, 40);
      ctx.getImageData(0, 0, 1, 1);
    }
    ctx.clearRect(0, 0, this.w, this.h);
  }

  // ---------- model -> view ----------
  private groupKeyOf(n: GNode): string | null {
    switch (this.grouping) {
      case 'name': return n.kind === 'process' ? (n.name || n.label) : n.kind === 'external' ? '(external)' : '(unknown)';
      case 'type': return n.type || 'app';
      case 'container': return n.container ?? (n.kind === 'process' ? '(host)' : n.kind === 'external' ? '(external)' : '(unknown)');
      default: return null;
    }
  }

  private onModelChange(c: Change) {
    if (this.grouping !== 'none') { this.rebuildGrouped(false); return; }
    for (const e of c.removedEdges) this.removeEdge(e.id);
    for (const n of c.removedNodes) this.removeNode(n.id);
    for (const n of c.addedNodes) this.addNode(n.id, n);
    for (const n of c.updatedNodes) {
      const v = this.vnodes.get(n.id);
      if (v) { v.node = n; v.type = n.type; v.kind = n.kind; v.label = nodeLabel(n); }
      else this.addNode(n.id, n);
    }
    for (const e of c.addedEdges) this.addEdge(e.id, e.from, e.to, e.proto, [e]);
    for (const e of c.updatedEdges) {
      const v = this.vedges.get(e.id);
      if (v && v.s.id === e.from && v.t.id === e.to) {
        v.edges = [e]; v.count = e.count; v.rate = edgeRate(e);
        if (v.rz && (densityWeight(v.rate) !== v.rw || e.proto !== v.proto)) this.density.remove(v);
        v.proto = e.proto;
      }
      else { this.removeEdge(e.id); this.addEdge(e.id, e.from, e.to, e.proto, [e]); }
    }
    this.afterChange(c.full || c.addedNodes.length > 0);
  }

  private addNode(id: string, n?: GNode, g?: GroupData): RNode {
    const memo = this.posMemo.get(id);
    const v: RNode = {
      id, x: memo?.x ?? 0, y: memo?.y ?? 0, r: 10, placed: !!memo,
      type: g ? 'group' : n!.type, kind: g ? 'group' : n!.kind,
      label: g ? `${g.key} ×${g.members.length}` : nodeLabel(n!),
      node: n, group: g, deg: 0, match: false, hidden: false, ix: 0,
    };
    this.vnodes.set(id, v);
    return v;
  }

  private removeNode(id: string) {
    const v = this.vnodes.get(id);
    if (!v) return;
    if (v.placed) this.posMemo.set(id, { x: v.x, y: v.y });
    this.vnodes.delete(id);
    if (this.selected === id) this.select(null);
  }

  private addEdge(id: string, from: string, to: string, proto: string, edges: GEdge[]) {
    const s = this.vnodes.get(from), t = this.vnodes.get(to);
    if (!s || !t) return;
    let count = 0, rate = -1;
    for (const e of edges) { count += e.count; const r = edgeRate(e); if (r >= 0) rate = Math.max(0, rate) + r; }
    const pairKey = from < to ? from + '\u0000' + to : to + '\u0000' + from;
    const v: REdge = { id, s, t, proto, count, rate, edges, pairKey, curv: 0, hidden: false, match: false, rz: null, rw: 0, rp: 0 };
    this.vedges.set(id, v);
    s.deg++; t.deg++;
    let p = this.pairs.get(pairKey);
    if (!p) this.pairs.set(pairKey, (p = []));
    p.push(v);
    this.touchedPairs.add(pairKey);
  }

  private removeEdge(id: string) {
    const v = this.vedges.get(id);
    if (!v) return;
    this.vedges.delete(id);
    if (v.rz) this.density.remove(v);
    v.s.deg--; v.t.deg--;
    const p = this.pairs.get(v.pairKey);
    if (p) {
      const i = p.indexOf(v);
      if (i >= 0) p.splice(i, 1);
      if (!p.length) this.pairs.delete(v.pairKey); else this.touchedPairs.add(v.pairKey);
    }
  }

  private touchedPairs = new Set<string>();

  private afterChange(newNodes: boolean) {
    // curvature for multi-edges between the same two nodes
    for (const k of this.touchedPairs) {
      const p = this.pairs.get(k);
      if (!p) continue;
      const n = p.length;
      if (n === 1) { p[0].curv = 0; continue; }
      p.sort((a, b) => (a.id < b.id ? -1 : 1));
      for (let i = 0; i < n; i++) {
        const e = p[i];
        const c = n === 1 ? 0 : (i - (n - 1) / 2) * 0.35;
        e.curv = e.s.id < e.t.id ? c : -c; // same bend side regardless of direction
      }
    }
    this.touchedPairs.clear();
    let maxRate = 0;
    for (const e of this.vedges.values()) if (e.rate > maxRate) maxRate = e.rate;
    this.maxRate = maxRate;
    for (const n of this.vnodes.values()) n.r = nodeRadius(n);
    if (newNodes) this.placeNew();
    if (this.query) this.applySearch();
    this.updateCounts();
    if (this.selected) this.onSelect(this.selected);
  }

  private shownCounts = '';
  private updateCounts() {
    const key = `${this.vnodes.size}/${this.vedges.size}`;
    if (key === this.shownCounts) return; // avoid a DOM write (and style work) per update
    this.shownCounts = key;
    document.getElementById('node-count')!.textContent = String(this.vnodes.size);
    document.getElementById('edge-count')!.textContent = String(this.vedges.size);
  }

  /** Place unplaced nodes: near their placed neighbours, else as a fresh seeded layout. */
  private placeNew() {
    const pending: RNode[] = [];
    let placedCount = 0;
    for (const n of this.vnodes.values()) if (!n.placed) pending.push(n); else placedCount++;
    if (!pending.length) return;
    if (placedCount === 0) { this.initialLayout(); return; }
    // neighbour lists for pending nodes
    const nb = new Map<RNode, RNode[]>();
    for (const n of pending) nb.set(n, []);
    for (const e of this.vedges.values()) {
      if (!e.s.placed || !e.t.placed) {
        nb.get(e.s)?.push(e.t);
        nb.get(e.t)?.push(e.s);
      }
    }
    let rest = pending;
    for (let pass = 0; pass < 4 && rest.length; pass++) {
      const next: RNode[] = [];
      for (const n of rest) {
        let sx = 0, sy = 0, k = 0;
        for (const m of nb.get(n)!) if (m.placed) { sx += m.x; sy += m.y; k++; }
        if (!k) { next.push(n); continue; }
        const a = Math.random() * Math.PI * 2, r = SPACING * (0.8 + Math.random() * 0.8);
        n.x = sx / k + Math.cos(a) * r; n.y = sy / k + Math.sin(a) * r; n.placed = true;
      }
      if (next.length === rest.length) break;
      rest = next;
    }
    if (rest.length) {
      // unconnected newcomers: seed them as a block just outside the current drawing
      const b = this.bounds(true);
      const idx = new Map<RNode, number>(); rest.forEach((n, i) => idx.set(n, i));
      const nbrs = rest.map((n) => nb.get(n)!.map((m) => idx.get(m)).filter((i): i is number => i !== undefined));
      const xs = new Float64Array(rest.length), ys = new Float64Array(rest.length);
      seedLayout(rest.length, nbrs, xs, ys);
      let minx = Infinity, miny = Infinity;
      for (let i = 0; i < rest.length; i++) { minx = Math.min(minx, xs[i]); miny = Math.min(miny, ys[i]); }
      rest.forEach((n, i) => { n.x = xs[i] - minx + b.x1 + SPACING * 2; n.y = ys[i] - miny + b.y0; n.placed = true; });
    }
  }

  timings = { seedMs: 0, rasterMs: 0, flushMs: 0, readbackMs: 0, readbackMainMs: 0 };

  initialLayout() {
    const ts = performance.now();
    const nodes = [...this.vnodes.values()];
    nodes.forEach((n, i) => (n.ix = i));
    const nbrs: number[][] = nodes.map(() => []);
    for (const e of this.vedges.values()) { nbrs[e.s.ix].push(e.t.ix); nbrs[e.t.ix].push(e.s.ix); }
    const xs = new Float64Array(nodes.length), ys = new Float64Array(nodes.length);
    seedLayout(nodes.length, nbrs, xs, ys);
    nodes.forEach((n, i) => { n.x = xs[i]; n.y = ys[i]; n.placed = true; });
    this.timings.seedMs = performance.now() - ts;
    if (this.autoFit) this.fit();
    if (!this.noLayout) setTimeout(() => this.startLayout(nodes.filter((n) => this.vnodes.get(n.id) === n), 300), 0);
  }

  private startLayout(nodes: RNode[], iterations: number) {
    if (nodes.length < 3) return;
    if (!this.worker) {
      this.worker = new Worker(new URL('./layout.worker.ts', import.meta.url), { type: 'module' });
      this.worker.onmessage = (ev) => this.onLayout(ev.data);
    }
    nodes.forEach((n, i) => (n.ix = i));
    const x = new Float32Array(nodes.length), y = new Float32Array(nodes.length);
    nodes.forEach((n, i) => { x[i] = n.x; y[i] = n.y; });
    const es = [...this.vedges.values()].filter((e) => nodes[e.s.ix] === e.s && nodes[e.t.ix] === e.t);
    const src = new Uint32Array(es.length), dst = new Uint32Array(es.length);
    es.forEach((e, i) => { src[i] = e.s.ix; dst[i] = e.t.ix; });
    this.jobNodes = nodes;
    const id = ++this.jobId;
    let rs = 0;
    for (const n of nodes) rs += n.r;
    const K = Math.max(40, 4 * (rs / nodes.length)); // bigger nodes (groups) need longer edges
    this.worker.postMessage({ type: 'run', job: { x, y, src, dst, fixed: new Uint8Array(nodes.length), iterations, id, K } }, [x.buffer, y.buffer, src.buffer, dst.buffer]);
  }

  stopLayout() {
    if (this.worker && this.jobNodes.length) { this.worker.postMessage({ type: 'stop' }); this.jobNodes = []; this.jobId++; }
  }

  get layoutRunning() { return this.jobNodes.length > 0; }

  private onLayout(m: { id: number; x: Float32Array; y: Float32Array; done: boolean }) {
    if (m.id !== this.jobId) return;
    const nodes = this.jobNodes;
    for (let i = 0; i < nodes.length; i++) { nodes[i].x = m.x[i]; nodes[i].y = m.y[i]; }
    this.posEpoch++;
    if (m.done) this.jobNodes = [];
    if (this.autoFit) this.fit();
    this.requestDraw();
  }

  // ---------- grouping ----------
  setGrouping(mode: GroupMode) {
    this.grouping = mode;
    this.collapsed.clear();
    if (mode !== 'none') {
      // collapse every group with more than one member: that is the point at scale
      const counts = new Map<string, number>();
      for (const n of this.model.nodes.values()) { const k = this.groupKeyOf(n)!; counts.set(k, (counts.get(k) ?? 0) + 1); }
      for (const [k, c] of counts) if (c > 1) this.collapsed.add(k);
    }
    this.rebuildGrouped();
    this.requestDraw();
  }

  collapseAll(collapse: boolean) {
    if (this.grouping === 'none') { (this.root.querySelector('#group-by') as HTMLSelectElement).value = 'name'; this.grouping = 'name'; }
    this.collapsed.clear();
    if (collapse) for (const n of this.model.nodes.values()) this.collapsed.add(this.groupKeyOf(n)!);
    this.rebuildGrouped();
    this.requestDraw();
  }

  toggleGroup(key: string, collapse: boolean) {
    if (collapse) this.collapsed.add(key); else this.collapsed.delete(key);
    this.rebuildGrouped();
    this.requestDraw();
  }

  /** Recompute the aggregated view from the model and sync it into the renderer, keeping positions. */
  private rebuildGrouped(relayout = true) {
    const rep = new Map<string, string>();
    const groups = new Map<string, GroupData>();
    for (const n of this.model.nodes.values()) {
      const k = this.groupKeyOf(n);
      if (k !== null && this.collapsed.has(k)) {
        const gid = 'group:' + k;
        let g = groups.get(gid);
        if (!g) groups.set(gid, (g = { key: k, mode: this.grouping, members: [] }));
        g.members.push(n.id);
        rep.set(n.id, gid);
      } else rep.set(n.id, n.id);
    }
    const wantE = new Map<string, { from: string; to: string; proto: string; edges: GEdge[] }>();
    for (const e of this.model.edges.values()) {
      const a = rep.get(e.from)!, b = rep.get(e.to)!;
      if (a === e.from && b === e.to) { wantE.set(e.id, { from: a, to: b, proto: e.proto, edges: [e] }); continue; }
      if (a === b) continue; // inside one collapsed group
      const id = `agg:${a}>${b}/${e.proto}`;
      const w = wantE.get(id);
      if (w) w.edges.push(e); else wantE.set(id, { from: a, to: b, proto: e.proto, edges: [e] });
    }
    // nodes: remove what is gone, remember member positions for group centroids
    for (const [id, v] of this.vnodes) {
      if (v.group ? !groups.has(id) : rep.get(id) !== id) {
        // dropped edges first so degrees stay right
        this.removeNode(id);
      }
    }
    for (const [id, v] of this.vedges) if (!wantE.has(id) || !this.vnodes.has(v.s.id) || !this.vnodes.has(v.t.id)) this.removeEdge(id);
    let added = false;
    for (const n of this.model.nodes.values()) {
      if (rep.get(n.id) !== n.id) continue;
      const v = this.vnodes.get(n.id);
      if (v) { v.node = n; v.type = n.type; v.kind = n.kind; v.label = nodeLabel(n); }
      else { this.addNode(n.id, n); added = true; }
    }
    for (const [gid, g] of groups) {
      const v = this.vnodes.get(gid);
      if (v) { v.group = g; v.label = `${g.key} ×${g.members.length}`; continue; }
      const nv = this.addNode(gid, undefined, g);
      if (!nv.placed) {
        let sx = 0, sy = 0, k = 0;
        for (const m of g.members) { const p = this.posMemo.get(m); if (p) { sx += p.x; sy += p.y; k++; } }
        if (k) { nv.x = sx / k; nv.y = sy / k; nv.placed = true; }
      }
      added = true;
    }
    // expanded members come back around where their group was
    for (const [id, v] of this.vedges) {
      const w = wantE.get(id)!;
      v.edges = w.edges; v.count = 0; v.rate = -1;
      for (const e of w.edges) { v.count += e.count; const r = edgeRate(e); if (r >= 0) v.rate = Math.max(0, v.rate) + r; }
      if (v.rz && densityWeight(v.rate) !== v.rw) this.density.remove(v);
    }
    for (const [id, w] of wantE) if (!this.vedges.has(id)) this.addEdge(id, w.from, w.to, w.proto, w.edges);
    this.afterChange(added);
    // a new set of groups: lay the (now much smaller) view out again; it is a user action
    if (relayout && added && this.vnodes.size <= 3000 && this.grouping !== 'none') {
      this.autoFit = true;
      this.startLayout([...this.vnodes.values()], 200);
    }
    if (this.autoFit) this.fit();
  }

  // ---------- search ----------
  private applySearch() {
    const q = this.query;
    let count = 0;
    if (!q) {
      for (const n of this.vnodes.values()) { n.match = false; n.hidden = false; }
      for (const e of this.vedges.values()) { e.match = false; e.hidden = false; }
      this.searchInfo.textContent = '';
      return;
    }
    const num = /^\d+$/.test(q) ? Number(q) : NaN;
    for (const n of this.vnodes.values()) {
      n.match = nodeMatches(n, q, num);
    }
    for (const e of this.vedges.values()) {
      e.match = !isNaN(num) && e.edges.some((x) => x.serverPort === num);
      if (e.match) { e.s.match = true; e.t.match = true; }
    }
    for (const n of this.vnodes.values()) { n.hidden = this.filterOnly && !n.match; if (n.match) count++; }
    for (const e of this.vedges.values()) e.hidden = e.s.hidden || e.t.hidden;
    this.searchInfo.textContent = `${count} match${count === 1 ? '' : 'es'}`;
  }

  // ---------- camera ----------
  private bounds(all = false) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of this.vnodes.values()) {
      if (!n.placed || (!all && n.hidden)) continue;
      if (n.x - n.r < x0) x0 = n.x - n.r; if (n.x + n.r > x1) x1 = n.x + n.r;
      if (n.y - n.r < y0) y0 = n.y - n.r; if (n.y + n.r > y1) y1 = n.y + n.r;
    }
    if (x0 === Infinity) return { x0: -100, y0: -100, x1: 100, y1: 100 };
    return { x0, y0, x1, y1 };
  }

  fit() {
    if (!this.w) return;
    const b = this.bounds();
    const bw = Math.max(b.x1 - b.x0, 50), bh = Math.max(b.y1 - b.y0, 50);
    const k = Math.min(2, Math.min((this.w - 40) / bw, (this.h - 60) / bh));
    this.cam.k = k;
    this.cam.tx = this.w / 2 - ((b.x0 + b.x1) / 2) * k;
    this.cam.ty = this.h / 2 - ((b.y0 + b.y1) / 2) * k;
  }

  private zoomAt(sx: number, sy: number, f: number) {
    this.autoFit = false;
    const k = Math.max(0.01, Math.min(20, this.cam.k * f));
    const wx = (sx - this.cam.tx) / this.cam.k, wy = (sy - this.cam.ty) / this.cam.k;
    this.cam.k = k;
    this.cam.tx = sx - wx * k; this.cam.ty = sy - wy * k;
    this.requestDraw();
  }

  get zoom() { return this.cam.k; }

  screenPos(id: string) {
    const n = this.vnodes.get(id);
    return n ? { x: n.x * this.cam.k + this.cam.tx, y: n.y * this.cam.k + this.cam.ty } : null;
  }

  focus(id: string) {
    const n = this.vnodes.get(id);
    if (!n) return;
    this.autoFit = false;
    this.cam.k = Math.max(this.cam.k, 1.2);
    this.cam.tx = this.w / 2 - n.x * this.cam.k; this.cam.ty = this.h / 2 - n.y * this.cam.k;
    this.requestDraw();
  }

  // ---------- hit testing ----------
  nodeAt(sx: number, sy: number): RNode | null {
    const wx = (sx - this.cam.tx) / this.cam.k, wy = (sy - this.cam.ty) / this.cam.k;
    const slack = 3 / this.cam.k;
    let best: RNode | null = null, bd = Infinity;
    for (const n of this.vnodes.values()) {
      if (n.hidden) continue;
      const dx = n.x - wx, dy = n.y - wy, d = dx * dx + dy * dy, rr = n.r + slack;
      if (d < rr * rr && d < bd) { bd = d; best = n; }
    }
    return best;
  }

  private edgeAt(sx: number, sy: number): REdge | null {
    const wx = (sx - this.cam.tx) / this.cam.k, wy = (sy - this.cam.ty) / this.cam.k;
    const tol = 5 / this.cam.k;
    let best: REdge | null = null, bd = tol * tol;
    for (const e of this.vedges.values()) {
      if (e.hidden) continue;
      const { s, t } = e;
      const minx = Math.min(s.x, t.x) - tol - Math.abs(e.curv) * 400, maxx = Math.max(s.x, t.x) + tol + Math.abs(e.curv) * 400;
      if (wx < minx || wx > maxx) continue;
      let d: number;
      if (e.curv === 0) d = segDist2(wx, wy, s.x, s.y, t.x, t.y);
      else {
        const [cx, cy] = ctrl(e);
        d = Infinity;
        let px = s.x, py = s.y;
        for (let i = 1; i <= 8; i++) {
          const u = i / 8, a = (1 - u) * (1 - u), b = 2 * u * (1 - u), c = u * u;
          const qx = a * s.x + b * cx + c * t.x, qy = a * s.y + b * cy + c * t.y;
          d = Math.min(d, segDist2(wx, wy, px, py, qx, qy));
          px = qx; py = qy;
        }
      }
      if (d < bd) { bd = d; best = e; }
    }
    return best;
  }

  private hover(sx: number, sy: number) {
    const n = this.nodeAt(sx, sy);
    const e = n ? null : this.edgeAt(sx, sy);
    if (n !== this.hoverNode || e !== this.hoverEdge) {
      this.hoverNode = n; this.hoverEdge = e;
      if (n) this.tooltip.innerHTML = nodeTooltip(n);
      else if (e) this.tooltip.innerHTML = edgeTooltip(e, this.model);
      this.tooltip.hidden = !(n || e);
      this.canvas.style.cursor = n ? 'pointer' : '';
      this.requestDraw();
    }
    if (n || e) {
      const tw = this.tooltip.offsetWidth, th = this.tooltip.offsetHeight;
      this.tooltip.style.left = Math.min(sx + 14, this.w - tw - 4) + 'px';
      this.tooltip.style.top = Math.min(sy + 14, this.h - th - 4) + 'px';
    }
  }

  select(id: string | null) {
    this.selected = id;
    this.onSelect(id);
    this.requestDraw();
  }

  get selectedId() { return this.selected; }
  get panelEl() { return this.panel; }

  // ---------- drawing ----------
  requestDraw() {
    if (this.dirty) return;
    this.dirty = true;
    this.raf = requestAnimationFrame(() => { this.raf = 0; if (this.dirty) this.draw(); });
  }

  private edgeBuckets: REdge[][] = Array.from({ length: 2 * 4 * 2 }, () => []);
  private maxRate = 0;
  private arrowBuckets: REdge[][] = Array.from({ length: 2 * 2 }, () => []);

  draw() {
    this.dirty = false;
    if (this.raf) { cancelAnimationFrame(this.raf); this.raf = 0; }
    if (!this.visible || !this.w) return;
    const ctx = this.ctx, { k, tx, ty } = this.cam, dpr = this.dpr;
    const dark = this.dark;
    const searching = !!this.query;
    const sel = this.selected, hov = this.hoverNode;
    const busy = searching || sel !== null || hov !== null || this.hoverEdge !== null;
    // big graph at overview zoom: all edges in the density layer; highlighted ones (search match,
    // selection, hover) are drawn on top as hairlines, the rest dimmed by a veil — same look
    // whether or not something is highlighted, so hovering does not restyle the whole drawing
    const dense = !(searching && this.filterOnly) && this.vedges.size > 2000 && k < 0.5;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (dense) {
      ctx.clearRect(0, 0, this.w, this.h);
      this.drawDensity();
      if (searching || sel !== null) { ctx.fillStyle = dark ? 'rgba(15,23,42,0.75)' : 'rgba(248,250,252,0.75)'; ctx.fillRect(0, 0, this.w, this.h); }
    } else {
      if (this.density.active) { this.density.active = false; this.density.canvas.style.visibility = 'hidden'; }
      ctx.fillStyle = dark ? '#0f172a' : '#f8fafc';
      ctx.fillRect(0, 0, this.w, this.h);
    }
    ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
    const vx0 = -tx / k, vy0 = -ty / k, vx1 = (this.w - tx) / k, vy1 = (this.h - ty) / k;

    // Edges: hairlines only (device width 1 px is Skia's fast path; a 2 px stroke costs ~10x in
    // software raster). Traffic width = extra parallel hairlines. Batched by colour in chunks.
    const B = this.edgeBuckets, A = this.arrowBuckets;
    for (const b of B) b.length = 0;
    for (const b of A) b.length = 0;
    const arrowsOn = k > 0.35;
    const minArrowLen = 28 / k;
    const maxRate = this.maxRate;
    for (const e of this.vedges.values()) {
      if (e.hidden) continue;
      const s = e.s, t = e.t;
      if (e.curv === 0 && ((s.x < vx0 && t.x < vx0) || (s.x > vx1 && t.x > vx1) || (s.y < vy0 && t.y < vy0) || (s.y > vy1 && t.y > vy1))) continue;
      const emph = (searching && (e.match || s.match || t.match)) || (sel !== null && (s.id === sel || t.id === sel)) || (hov !== null && (s === hov || t === hov)) || e === this.hoverEdge;
      if (dense && !emph) continue;
      const dim = (searching && !e.match && !(s.match && t.match)) && !emph;
      const p = e.proto === 'udp' ? 1 : 0;
      const focus = (sel !== null && (s.id === sel || t.id === sel)) || (hov !== null && (s === hov || t === hov)) || e === this.hoverEdge;
      const extra = dim ? 0 : Math.min(3, (e.rate > 0 && maxRate > 0 ? Math.floor((3 * e.rate) / maxRate) : 0) + (focus ? 1 : 0));
      B[(p * 4 + extra) * 2 + (dim ? 1 : 0)].push(e);
      if (arrowsOn && !dim) {
        const dx = t.x - s.x, dy = t.y - s.y;
        if (dx * dx + dy * dy > minArrowLen * minArrowLen) A[p * 2 + (emph ? 1 : 0)].push(e);
      }
    }
    const px = 1 / (k * dpr); // one device pixel in world units
    ctx.lineWidth = px;
    ctx.lineCap = 'butt';
    const baseAlpha = this.vedges.size > 3000 ? 0.35 : this.vedges.size > 500 ? 0.5 : 0.7;
    for (let bi = 0; bi < B.length; bi++) {
      const list = B[bi];
      if (!list.length) continue;
      const dim = bi & 1, extra = (bi >> 1) % 4, p = Math.floor((bi >> 1) / 4);
      ctx.strokeStyle = p ? (dark ? COLORS.udpDark : COLORS.udp) : (dark ? COLORS.tcpDark : COLORS.tcp);
      ctx.globalAlpha = dim ? 0.07 : busy ? 0.9 : (extra ? Math.min(1, baseAlpha + 0.3) : baseAlpha);
      for (let line = 0; line <= extra; line++) {
        // offsets 0, +1, -1, +2 device px along the edge normal
        const off = (line === 0 ? 0 : line % 2 ? (line + 1) / 2 : -line / 2) * px;
        for (let c0 = 0; c0 < list.length; c0 += 200) {
          ctx.beginPath();
          const c1 = Math.min(list.length, c0 + 200);
          for (let i = c0; i < c1; i++) {
            const e = list[i];
            let ox = 0, oy = 0;
            if (off) {
              const dx = e.t.x - e.s.x, dy = e.t.y - e.s.y, l = Math.sqrt(dx * dx + dy * dy) || 1;
              ox = (-dy / l) * off; oy = (dx / l) * off;
            }
            ctx.moveTo(e.s.x + ox, e.s.y + oy);
            if (e.curv === 0) ctx.lineTo(e.t.x + ox, e.t.y + oy);
            else { const [cx, cy] = ctrl(e); ctx.quadraticCurveTo(cx + ox, cy + oy, e.t.x + ox, e.t.y + oy); }
          }
          ctx.stroke();
        }
      }
    }
    // Edges whose connections retransmitted: a dashed red outline on top.
    drawRetransmitEdges(ctx, this.vedges.values(), k, (e) => {
      ctx.moveTo(e.s.x, e.s.y);
      if (e.curv === 0) ctx.lineTo(e.t.x, e.t.y);
      else { const [cx, cy] = ctrl(e); ctx.quadraticCurveTo(cx, cy, e.t.x, e.t.y); }
    });
    ctx.globalAlpha = 1;
    for (let ai = 0; ai < A.length; ai++) {
      const list = A[ai];
      if (!list.length) continue;
      const p = ai >> 1, emph = ai & 1;
      ctx.fillStyle = p ? (dark ? COLORS.udpDark : COLORS.udp) : (dark ? COLORS.tcpDark : COLORS.tcp);
      ctx.globalAlpha = emph ? 1 : 0.8;
      const al = (emph ? 9 : 7) / k, aw = (emph ? 4.5 : 3.5) / k;
      ctx.beginPath();
      for (const e of list) {
        const t = e.t;
        let fx = e.s.x, fy = e.s.y;
        if (e.curv !== 0) [fx, fy] = ctrl(e);
        let dx = t.x - fx, dy = t.y - fy;
        const l = Math.sqrt(dx * dx + dy * dy) || 1;
        dx /= l; dy /= l;
        const tipx = t.x - dx * (t.r + 1 / k), tipy = t.y - dy * (t.r + 1 / k);
        ctx.moveTo(tipx, tipy);
        ctx.lineTo(tipx - dx * al - dy * aw, tipy - dy * al + dx * aw);
        ctx.lineTo(tipx - dx * al + dy * aw, tipy - dy * al - dx * aw);
        ctx.closePath();
      }
      ctx.fill();
    }
    ctx.globalAlpha = 1;

    // nodes: tiny -> batched squares per colour; otherwise sprites
    const tiny = k * 10 < 3;
    const ring: RNode[] = [];
    if (tiny) {
      const byColor = new Map<string, RNode[]>();
      for (const n of this.vnodes.values()) {
        if (n.hidden || n.x < vx0 - n.r || n.x > vx1 + n.r || n.y < vy0 - n.r || n.y > vy1 + n.r) continue;
        const c = typeColor(n.type === 'group' ? 'group' : n.kind === 'unknown' ? 'unknown' : n.kind === 'external' ? 'external' : n.type);
        let l = byColor.get(c); if (!l) byColor.set(c, (l = [])); l.push(n);
        if (n.match || n.id === sel) ring.push(n);
      }
      const m = 1.5 / k;
      for (const [c, l] of byColor) {
        ctx.fillStyle = c;
        for (const pass of searching ? [false, true] : [true]) {
          ctx.globalAlpha = searching && !pass ? 0.25 : 1;
          ctx.beginPath();
          for (const n of l) {
            if (searching && n.match !== pass) continue;
            const r = Math.max(n.r, m); ctx.rect(n.x - r, n.y - r, 2 * r, 2 * r);
          }
          ctx.fill();
        }
      }
      ctx.globalAlpha = 1;
    } else {
      for (const n of this.vnodes.values()) {
        if (n.hidden || n.x < vx0 - n.r || n.x > vx1 + n.r || n.y < vy0 - n.r || n.y > vy1 + n.r) continue;
        const dimmed = searching && !n.match;
        if (dimmed) ctx.globalAlpha = 0.25;
        const st = n.group ? 'group' : n.kind === 'unknown' ? 'unknown' : n.kind === 'external' ? (glyphType(n.type) === 'app' ? 'external' : n.type) : n.type;
        ctx.drawImage(sprites.get(st), n.x - n.r, n.y - n.r, 2 * n.r, 2 * n.r);
        if (dimmed) ctx.globalAlpha = 1;
        if (n.match || n.id === sel || n === hov || n.kind === 'unknown') ring.push(n);
      }
    }
    // rings: unknown = dashed red, match = amber, selected = theme
    for (const n of ring) {
      ctx.beginPath();
      ctx.arc(n.x, n.y, n.r + 3 / k, 0, Math.PI * 2);
      if (n.kind === 'unknown' && !(n.match || n.id === sel || n === hov)) {
        ctx.setLineDash([3 / k, 2 / k]); ctx.strokeStyle = '#dc2626'; ctx.lineWidth = 1.5 / k;
      } else {
        ctx.setLineDash([]); ctx.strokeStyle = n.id === sel ? (dark ? '#f8fafc' : '#0f172a') : '#f59e0b'; ctx.lineWidth = 2.5 / k;
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);

    // labels in screen space, only when nodes are big enough to read; in crowded views only the
    // biggest nodes (hubs) get one, and the halo is dropped (strokeText is costly in software)
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (k * 10 >= 6 || this.vnodes.size <= 60) {
      const cand: RNode[] = [];
      for (const n of this.vnodes.values()) {
        if (n.hidden || (searching && !n.match)) continue;
        const sx = n.x * k + tx, sy = n.y * k + ty;
        if (sx < -80 || sx > this.w + 80 || sy < -20 || sy > this.h + 20) continue;
        cand.push(n);
      }
      const crowded = cand.length > 250;
      if (crowded) cand.sort((a, b) => b.r - a.r || b.deg - a.deg);
      const budget = crowded ? 120 : cand.length;
      ctx.font = '11px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      ctx.lineWidth = 3;
      ctx.strokeStyle = dark ? '#0f172a' : '#f8fafc';
      ctx.fillStyle = dark ? '#e2e8f0' : '#1e293b';
      for (let i = 0; i < budget && i < cand.length; i++) {
        const n = cand[i];
        const sx = n.x * k + tx, sy = (n.y + n.r) * k + ty + 2;
        const text = n.label.length > 28 ? n.label.slice(0, 27) + '…' : n.label;
        if (!crowded) ctx.strokeText(text, sx, sy);
        ctx.fillText(text, sx, sy);
      }
    }
    const tr = performance.now();
    if (this.forceFlush) { ctx.getImageData(0, 0, 1, 1); this.timings.readbackMainMs = performance.now() - tr; if (dense) this.density.readback(); }
    this.timings.readbackMs = performance.now() - tr;
  }

  /** Large graph at overview zoom: incremental JS-rasterised density layer (see density.ts). */
  private drawDensity() {
    const d = this.density, dpr = this.dpr, { k, tx, ty } = this.cam;
    const W = Math.round(this.w * dpr), H = Math.round(this.h * dpr);
    const dark = this.dark;
    const bg: [number, number, number] = dark ? [15, 23, 42] : [248, 250, 252];
    const cols: [number, number, number][] = dark ? [[96, 165, 250], [251, 191, 36]] : [[37, 99, 235], [245, 158, 11]];
    const full = d.configure(W, H, bg, cols, 0.3, `${k},${tx},${ty},${this.posEpoch}`) || !d.active;
    if (!d.active) { d.active = true; d.canvas.style.visibility = 'visible'; }
    const sx = k * dpr, ox = tx * dpr, oy = ty * dpr;
    const t0 = performance.now();
    if (full) d.clearAll();
    for (const e of this.vedges.values()) {
      if (e.rz && !full) continue;
      const s = e.s, t = e.t;
      let cx = NaN, cy = NaN;
      if (e.curv !== 0) { const c = ctrl(e); cx = c[0] * sx + ox; cy = c[1] * sx + oy; }
      d.add(e, s.x * sx + ox, s.y * sx + oy, cx, cy, t.x * sx + ox, t.y * sx + oy, densityWeight(e.rate), e.proto === 'udp' ? 1 : 0);
    }
    const t1 = performance.now();
    d.flush();
    const t2 = performance.now();
    this.timings.rasterMs = t1 - t0; this.timings.flushMs = t2 - t1;
  }
}

// ---------- helpers ----------
export function nodeLabel(n: GNode): string {
  if (n.kind === 'unknown') return `? ${n.label || 'unknown'} (${n.reason ?? 'unknown'})`;
  if (n.kind === 'process' && n.pid !== undefined) return `${n.label} · ${n.pid}`;
  return n.label;
}

function nodeMatches(n: RNode, q: string, num: number): boolean {
  if (n.label.toLowerCase().includes(q)) return true;
  const g = n.node;
  if (g) {
    if (g.name && g.name.toLowerCase().includes(q)) return true;
    if (!isNaN(num)) {
      if (g.pid === num) return true;
      if (g.listeners?.some((l) => l.port === num)) return true;
    }
    if (g.address && g.address.includes(q)) return true;
  }
  if (n.group && n.group.key.toLowerCase().includes(q)) return true;
  return false;
}

function densityWeight(rate: number): number {
  return rate > 1048576 ? 3 : rate > 65536 ? 2 : 1;
}

function edgeRate(e: GEdge): number {
  if (e.txRate === undefined && e.rxRate === undefined) return -1;
  return (e.txRate ?? 0) + (e.rxRate ?? 0);
}

function ctrl(e: REdge): [number, number] {
  const s = e.s, t = e.t;
  const mx = (s.x + t.x) / 2, my = (s.y + t.y) / 2;
  const dx = t.x - s.x, dy = t.y - s.y;
  // e.curv already carries the sign that makes opposite-direction edges bend apart
  return [mx - dy * e.curv, my + dx * e.curv];
}

function segDist2(px: number, py: number, ax: number, ay: number, bx: number, by: number) {
  const dx = bx - ax, dy = by - ay, l = dx * dx + dy * dy;
  let u = l ? ((px - ax) * dx + (py - ay) * dy) / l : 0;
  u = Math.max(0, Math.min(1, u));
  const x = ax + u * dx - px, y = ay + u * dy - py;
  return x * x + y * y;
}

function nodeTooltip(n: RNode): string {
  if (n.group) return `<b>${esc(n.group.key)}</b><br>group of ${n.group.members.length} (${esc(n.group.mode)})<br><span class="muted">double-click to expand</span>`;
  const g = n.node!;
  const rows: string[] = [`<b>${esc(g.label)}</b>`];
  if (g.kind === 'process') rows.push(`pid ${g.pid ?? '?'} · ${esc(g.name ?? '')} · ${esc(g.type)}`);
  if (g.kind === 'external') rows.push(`external ${esc(g.address ?? g.id)}`);
  if (g.kind === 'unknown') rows.push(`<span class="warn">owner not visible: ${esc(g.reason ?? 'unknown')}</span>`);
  if (g.container) rows.push(`container ${esc(g.container)}`);
  if (g.rxRate !== undefined || g.txRate !== undefined) rows.push(`rx ${fmtRate(g.rxRate)} · tx ${fmtRate(g.txRate)}`);
  return rows.join('<br>');
}

function edgeTooltip(e: REdge, model: Model): string {
  const name = (id: string) => { const n = model.nodes.get(id); return n ? esc(nodeLabel(n)) : esc(id); };
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

void el;
