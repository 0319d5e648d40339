// The live process graph: our own canvas renderer with level-of-detail, batched paths,
// incremental diff application, stable positions and worker-based layout refinement.
// This class owns the state and the DOM; each job lives in its own module under graph/:
// scene (view data), camera, input, hit-testing, search, grouping, placement, tooltips and
// the pure drawing of a frame (graph/draw.ts, `drawEdges` for the edges).
import type { Change, Model } from './model.ts';
import type { EdgeColumns, GEdge, GNode } from './types.ts';
import { sprites, GLYPH_TYPES, TYPE_COLORS } from './glyphs.ts';
import { DensityLayer } from './density.ts';
import { bindInput } from './graph/input.ts';
import { bounds, centreOn, fitCamera, toScreen, zoomAt, type Camera } from './graph/camera.ts';
import { nodeAt, edgeAt } from './graph/hittest.ts';
import { applySearch, searchInfoText } from './graph/search.ts';
import { defaultCollapsed, fleetDefault, groupKeyOf, groupLabel, groupView } from './graph/grouping.ts';
import { placeNew, seedAll } from './graph/placement.ts';
import { nodeTooltip, edgeTooltip } from './graph/tooltip.ts';
import { Buckets, drawFrame } from './graph/draw.ts';
import {
  bendPair, ctrl, densityWeight, edgeRate, nodeLabel, nodeRadius, nodeRate, rateWidth, sumEdges,
  RATE_LEGEND, type GroupData, type GroupMode, type RNode, type REdge,
} from './graph/scene.ts';
import { TalkersPanel } from './talkers.ts';
import { EdgeTable } from './graph/edgetable.ts';
import { joinPair, leavePair } from './graph/pairs.ts';
import { hasRetransmits } from './health.ts';

export { nodeLabel };
export type { GroupMode, RNode, REdge };

/** One update's timings (ms): `applyMs` is the model's and the view's, `viewMs` the view's part
 *  of it (`onModelChange`). */
export interface PerfRecord { seq: number; parseMs: number; applyMs: number; viewMs?: number; drawMs: number; totalMs: number; frameMs?: number }

export class GraphView {
  readonly root: HTMLElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private tooltip: HTMLElement;
  private panel: HTMLElement;
  private searchInfo: HTMLElement;
  vnodes = new Map<string, RNode>();
  vedges = new EdgeTable();
  private touchedPairs = new Set<REdge[]>();
  /** the drawn edge of each edge slot of the event stream (model.ts), ungrouped view only: how
   *  a `diffs` update finds its edges (no lookup by id); checked on use (`raw`), a miss falls
   *  back to the id index */
  private bySlot: (REdge | undefined)[] = [];
  /** every drawn edge is in bySlot (indexSlots ran on the slots the stream set) */
  private slotsIndexed = false;
  /** the first document into an empty view: per-edge bookkeeping is left to one pass at the end */
  private bulk = false;
  // What an update touched, so its work follows the change, not the graph:
  /** nodes whose radius may have changed (degree, rate, members) */
  private touchedNodes: RNode[] = [];
  /** marks the nodes in touchedNodes (RNode.tm), so each is queued once without a set */
  private touchMark = 1;
  /** every node's radius is due (a rebuild or a whole document) */
  private allTouched = false;
  /** nodes added without a position, and the edges added next to an unplaced node */
  private newNodes: RNode[] = [];
  private newEdges: REdge[] = [];
  /** shown edges whose connections retransmitted (drawn outlined) */
  private retrans = new Set<REdge>();
  /** edges the density layer has yet to rasterise (added, or re-weighted) */
  private unrastered: REdge[] = [];
  /** the queue was dropped: the next dense frame rasterises every edge */
  private densityStale = false;
  private posMemo = new Map<string, { x: number; y: number }>();
  private cam: Camera = { k: 1, tx: 0, ty: 0 };
  private w = 0; private h = 0; private dpr = 1;
  private autoFit = true;
  private dirty = false;
  private raf = 0;
  private hoverNode: RNode | null = null;
  private hoverEdge: REdge | null = null;
  private selected: string | null = null;
  /** lower-case search query; '' when none */
  query = '';
  filterOnly = false;
  /** the default folds workers and backends under their service (nginx master, postmaster);
   *  a fleet map opens grouped by host instead (`fleetDefault`) */
  grouping: GroupMode = 'service';
  /** the grouping the map opens with is settled: by the user (the selector, the URL's
   *  `?group=`), or by the first document with nodes (fleet or not); later documents never
   *  change it under the user */
  private groupingSettled = false;
  private collapsed = new Set<string>(); // group keys
  /** services the user expanded: under `service` every other multi-process service is folded,
   *  also the ones that appear later */
  private expanded = new Set<string>();
  /** raw node id → drawn id, while a grouped view is drawn (null: every node is itself) */
  private rep: Map<string, string> | null = null;
  /** raw edge id → drawn edge id (itself or `agg:…`), while a grouped view is drawn */
  private edgeRep = new Map<string, string>();
  readonly talkers: TalkersPanel;
  /** how model changes reached a grouped view: applied in place, or by a rebuild */
  readonly groupedUpdates = { inPlace: 0, rebuilt: 0 };
  private worker: Worker | null = null;
  private density: DensityLayer;
  private posEpoch = 0;
  private jobId = 0;
  private jobNodes: RNode[] = [];
  private dark = false;
  private buckets = new Buckets();
  private shownCounts = '';
  visible = true;
  noLayout = false;
  forceFlush = false; // bench: read back a pixel so raster cost is included in timings
  onSelect: (id: string | null) => void = () => {};
  /** After every frame, with its camera: the compare overlay (compare-overlay.ts) draws over it. */
  onFrame: (cam: Readonly<Camera>) => void = () => {};
  timings = { seedMs: 0, rasterMs: 0, flushMs: 0, readbackMs: 0, readbackMainMs: 0 };

  constructor(root: HTMLElement, private model: Model) {
    this.root = root;
    root.innerHTML = `
      <div class="toolbar">
        <input type="search" id="search" data-testid="search" placeholder="Search name, pid or port" autocomplete="off">
        <label class="chk"><input type="checkbox" id="filter-only" data-testid="filter-only"> only matches</label>
        <span id="search-info" data-testid="search-info" class="muted"></span>
        <span class="sep"></span>
        <label>Group <select id="group-by" data-testid="group-by">
          <option value="service" selected>service</option><option value="none">none</option><option value="name">process name</option>
          <option value="type">type</option><option value="container">container</option><option value="host">host (fleet)</option></select></label>
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
        <details class="talkers" id="talkers" data-testid="talkers" open></details>
        <aside class="panel" id="side-panel" data-testid="side-panel" hidden></aside>
      </div>`;
    this.canvas = root.querySelector('#graph-canvas')!;
    this.ctx = this.canvas.getContext('2d')!;
    this.density = new DensityLayer(root.querySelector('#graph-density')!);
    this.tooltip = root.querySelector('#tooltip')!;
    this.panel = root.querySelector('#side-panel')!;
    this.searchInfo = root.querySelector('#search-info')!;
    this.buildLegend();
    this.talkers = new TalkersPanel(root.querySelector('#talkers')!, model, this);
    sprites.onUpdate = () => { this.buildLegend(); this.requestDraw(); };
    const mq = matchMedia('(prefers-color-scheme: dark)');
    this.dark = mq.matches;
    mq.addEventListener('change', () => { this.dark = mq.matches; this.requestDraw(); });
    new ResizeObserver(() => this.resize()).observe(this.canvas.parentElement!);
    this.resize();
    this.density.warmUp(Math.round(this.w * this.dpr), Math.round(this.h * this.dpr));
    this.warmUp();
    bindInput(this);
    model.onChange((c) => this.onModelChange(c));
    model.onReplace((old, rec, slot) => this.replaceRaw(old, rec, slot));
  }

  /** The model gave raw edge `old` the record shape (`rec`, model.normalizeSome): the drawn
   *  edge that stands for it refers to the record from now on. */
  private replaceRaw(old: GEdge, rec: GEdge, slot: number) {
    const h = !this.rep && slot >= 0 ? this.bySlot[slot] : undefined;
    const d = this.rep ? this.edgeRep.get(old.id) : old.id;
    const v = h && h.raw === old ? h : d === undefined ? undefined : this.vedges.get(d);
    if (!v) return;
    const i = v.edges.indexOf(old);
    if (i >= 0) v.edges[i] = rec;
    if (v.raw === old) v.raw = rec;
  }

  // ---------- DOM ----------
  get canvasEl() { return this.canvas; }
  get width() { return this.w; }
  get height() { return this.h; }

  private buildLegend() {
    const L = this.root.querySelector('#legend')!;
    const names: Record<string, string> = { app: 'app', service: 'service', database: 'database', message_broker: 'message broker (mq)',
      cache: 'cache', load_balancer: 'load balancer (lb)', external: 'external endpoint', qt_desktop: 'Qt desktop', unknown: 'unknown owner', group: 'collapsed group' };
    L.innerHTML = `<div class="legend-title">Legend</div>` + GLYPH_TYPES.map((t) =>
      `<div class="legend-row"><img alt="" src="${sprites.url(t)}" width="14" height="14"> ${names[t]}</div>`).join('') +
      `<div class="legend-row"><span class="swatch tcp"></span> TCP</div>` +
      `<div class="legend-row"><span class="swatch udp"></span> UDP</div>` +
      `<div class="legend-row"><span class="swatch unk"></span> dashed ring: owner not visible</div>` +
      `<div class="legend-title legend-sub">Traffic (in + out)</div>` +
      RATE_LEGEND.map(({ label, rate }) => `<div class="legend-row" data-testid="rate-legend"><span class="rate-line" style="height:${rateWidth(rate)}px"></span> ${label}</div>`).join('') +
      `<div class="legend-row"><span class="swatch ring"></span> ring: a busy process</div>` +
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

  private updateCounts() {
    const key = `${this.vnodes.size}/${this.vedges.size}`;
    if (key === this.shownCounts) return; // avoid a DOM write (and style work) per update
    this.shownCounts = key;
    document.getElementById('node-count')!.textContent = String(this.vnodes.size);
    document.getElementById('edge-count')!.textContent = String(this.vedges.size);
  }

  // ---------- model -> view ----------
  /** how long the last model change took the view (ms; PerfRecord.viewMs) */
  lastChangeMs = 0;

  private onModelChange(c: Change) {
    const t0 = performance.now();
    this.applyChange(c);
    this.lastChangeMs = performance.now() - t0;
  }

  private applyChange(c: Change) {
    if (c.full && !this.groupingSettled && this.model.nodes.size > 0) {
      this.groupingSettled = true;
      const d = fleetDefault(this.model.nodes.values());
      if (d) {
        this.grouping = d.mode;
        (this.root.querySelector('#group-by') as HTMLSelectElement).value = d.mode;
        this.collapsed = d.collapsed;
        // (nothing folded: the raw nodes are the view, the plain path below draws them)
        if (d.collapsed.size) { this.rebuildGrouped(false); this.groupedUpdates.rebuilt++; return; }
      }
    }
    let regroup = c.full;
    if (this.grouping === 'service' && (c.full || c.addedNodes.length > 0)) {
      const folded = this.foldedServices();
      if (folded.size !== this.collapsed.size || [...folded].some((k) => !this.collapsed.has(k))) { this.collapsed = folded; regroup = true; }
    }
    // a grouped view follows the change in place, or is rebuilt when its groups change; with
    // nothing folded the raw nodes are the view
    if (this.grouping !== 'none' && (this.collapsed.size > 0 || this.rep !== null)) {
      if (regroup || this.rep === null || !this.applyGrouped(c)) { this.rebuildGrouped(false); this.groupedUpdates.rebuilt++; } else this.groupedUpdates.inPlace++;
      return;
    }
    this.bulk = c.full && this.vnodes.size === 0 && this.vedges.size === 0;
    const rs = c.removedEdgeSlots, as = c.addedEdgeSlots, bySlot = this.bySlot;
    if (!rs && !c.updatedCols) this.unindexSlots(); // not from the event stream's slots
    // from the stream, with every drawn edge indexed by slot: no lookup by id is needed, so the
    // index by id is not kept up to date through the update's ≈ 2 × 5 % edges added and removed
    else if (this.slotsIndexed) this.vedges.dropIndex();
    // (the slots just came, or the view was grouped: index them once; ids serve this update)
    else this.indexSlots();
    // the nodes that go are marked first: their edges then leave no pair lists to keep
    const goneNodes: RNode[] = [];
    for (const n of c.removedNodes) { const v = this.vnodes.get(n.id); if (v) { v.gone = true; goneNodes.push(v); } }
    c.removedEdges.forEach((e, i) => {
      const h = rs ? bySlot[rs[i]] : undefined;
      this.removeEdge(e.id, h && h.raw === e && h.li >= 0 ? h : undefined);
    });
    for (const v of goneNodes) this.removeNode(v.id, v);
    for (const n of c.addedNodes) this.addNode(n.id, n);
    for (const n of c.updatedNodes) {
      const v = this.vnodes.get(n.id);
      if (v) { v.node = n; v.type = n.type; v.kind = n.kind; v.label = nodeLabel(n); v.rate = nodeRate(n); this.touch(v); }
      else this.addNode(n.id, n);
    }
    const ae = c.addedEdges;
    for (let i = 0; i < ae.length; i++) {
      const e = ae[i], v = this.addEdge(e.id, e.from, e.to, e.proto, [e]);
      if (as && v) bySlot[as[i]] = v;
    }
    const uc = c.updatedCols, upd = c.updatedEdges;
    for (let i = 0; i < upd.length; i++) {
      const e = upd[i];
      if (uc && i >= uc.start) { this.updateInPlace(e, uc.cols, i - uc.start); continue; }
      const v = this.vedges.get(e.id);
      if (v && v.s.id === e.from && v.t.id === e.to) {
        v.edges = [e]; v.raw = e; v.count = e.count; v.rate = edgeRate(e);
        if (v.rw > 0 && (densityWeight(v.rate) !== v.rw || e.proto !== v.proto)) this.reraster(v);
        v.proto = e.proto;
        this.syncRetrans(v);
      }
      else { this.removeEdge(e.id); this.addEdge(e.id, e.from, e.to, e.proto, [e]); }
    }
    if (c.full) this.allTouched = true;
    this.afterChange(c.full || c.addedNodes.length > 0);
  }

  /** An edge a `diffs` event updated in place (same ends, protocol and port), from column `j`:
   *  found by slot, its new counters read from the columns (no lookup by id, and no read of the
   *  raw edge, whose shape differs from edge to edge). */
  private updateInPlace(e: GEdge, cols: EdgeColumns, j: number) {
    const slot = cols.slot[j];
    let v = this.bySlot[slot];
    if (!v || v.raw !== e || v.li < 0) {
      v = this.vedges.get(e.id);
      if (!v) return;
      this.bySlot[slot] = v;
    }
    const tx = cols.txRate[j], rx = cols.rxRate[j];
    v.count = cols.count[j];
    v.rate = tx === null && rx === null ? -1 : (tx ?? 0) + (rx ?? 0);
    if (v.rw > 0 && densityWeight(v.rate) !== v.rw) this.reraster(v);
    const r = (cols.retransmits[j] ?? 0) > 0;
    if (r !== !!v.rt) { v.rt = r; if (r) this.retrans.add(v); else this.retrans.delete(v); }
  }

  /** The event stream's slots were set (model.startSlots): index what is drawn for each, in
   *  idle time, so updates find it by slot. */
  indexSlots() {
    if (this.grouping !== 'none' && (this.collapsed.size > 0 || this.rep !== null)) return;
    const at = this.model.slotEdges;
    this.unindexSlots();
    for (let s = 0; s < at.length; s++) {
      const e = at[s];
      if (!e) continue;
      const v = this.vedges.get(e.id);
      if (v && v.raw === e) this.bySlot[s] = v;
    }
    this.slotsIndexed = at.length > 0;
  }

  private unindexSlots() {
    this.bySlot.length = 0;
    this.slotsIndexed = false;
  }

  /** The density layer takes the edge out now and draws it again with the next frame. */
  private reraster(v: REdge) {
    this.density.remove(v);
    this.queueRaster(v);
  }

  /** While no frame is drawn (another view shown) the queue would grow with every update: past
   *  the graph's size the next dense frame rasterises everything instead. */
  private queueRaster(v: REdge) {
    if (this.unrastered.length > this.vedges.size + 1000) { this.unrastered.length = 0; this.densityStale = true; }
    if (!this.densityStale) this.unrastered.push(v);
  }

  /** Keep the set of retransmitting edges right after `v.edges` changed. */
  private syncRetrans(v: REdge) {
    const r = hasRetransmits(v.edges);
    if (r === !!v.rt) return;
    v.rt = r;
    if (r) this.retrans.add(v); else this.retrans.delete(v);
  }

  /** Queue a node's radius for the end of this change. */
  private touch(n: RNode) {
    if (n.tm === this.touchMark) return;
    n.tm = this.touchMark;
    this.touchedNodes.push(n);
  }

  private addNode(id: string, n?: GNode, g?: GroupData): RNode {
    const memo = this.posMemo.get(id);
    const v: RNode = {
      id, x: memo?.x ?? 0, y: memo?.y ?? 0, r: 10, placed: !!memo,
      type: g ? 'group' : n!.type, kind: g ? 'group' : n!.kind,
      label: g ? groupLabel(g) : nodeLabel(n!),
      node: n, group: g, deg: 0, match: false, hidden: false, ix: 0, rate: n ? nodeRate(n) : -1,
      // (every field from the start: one shape for all nodes, for the loops that read them)
      tm: 0, gone: false, cw: 0, cwSrc: undefined, pairs: undefined, pairNodes: undefined, nbr: undefined,
    };
    this.vnodes.set(id, v);
    if (!this.bulk) {
      this.touch(v);
      if (!v.placed) this.newNodes.push(v);
    }
    return v;
  }

  /** `known`: the node drawn for `id`, when the caller has it */
  private removeNode(id: string, known?: RNode) {
    const v = known ?? this.vnodes.get(id);
    if (!v) return;
    if (v.placed) this.posMemo.set(id, { x: v.x, y: v.y });
    this.vnodes.delete(id);
    v.gone = true;
    if (this.selected === id) this.select(null);
  }

  private addEdge(id: string, from: string, to: string, proto: string, edges: GEdge[]): REdge | undefined {
    const s = this.vnodes.get(from), t = this.vnodes.get(to);
    if (!s || !t) return undefined;
    const { count, rate } = sumEdges(edges);
    const v: REdge = { id, s, t, proto, count, rate, edges, raw: edges.length === 1 ? edges[0] : null, pair: null, curv: 0, hidden: false, match: false, rw: 0, rp: 0, rx0: 0, ry0: 0, rcx: 0, rcy: 0, rx1: 0, ry1: 0, rc: false, rt: false, li: -1 };
    this.vedges.add(v);
    s.deg++; t.deg++;
    if (!this.bulk) {
      this.touch(s); this.touch(t);
      if (!s.placed || !t.placed) this.newEdges.push(v);
    }
    this.syncRetrans(v);
    this.queueRaster(v);
    const p = joinPair(v);
    // a pair of one stays straight (curv 0 from the start): only siblings need bending
    if (!this.bulk && p.length > 1) this.touchedPairs.add(p);
    return v;
  }

  /** `known`: the edge drawn for `id`, when the caller has it (saves a lookup) */
  private removeEdge(id: string, known?: REdge) {
    const v = known ?? this.vedges.get(id);
    if (!v || !this.vedges.delete(v)) return;
    if (v.rw > 0) this.density.remove(v);
    v.s.deg--; v.t.deg--;
    this.touch(v.s); this.touch(v.t);
    if (v.rt) { this.retrans.delete(v); v.rt = false; }
    const p = v.pair;
    if (p) {
      if (leavePair(v)) this.touchedPairs.add(p);
      else if (this.touchedPairs.size) this.touchedPairs.delete(p);
    }
  }

  private afterChange(newNodes: boolean) {
    // curvature for multi-edges between the same two nodes
    const bulk = this.bulk;
    if (bulk) {
      // the first document: bend every multi-edge pair once, every node is new
      for (const e of this.vedges.values()) if (e.pair && e.pair.length > 1 && e.pair[0] === e) bendPair(e.pair);
      for (const n of this.vnodes.values()) if (!n.placed) this.newNodes.push(n);
      this.bulk = false;
    }
    for (const p of this.touchedPairs) {
      if (!p.length) continue;
      const before = p.length > 1 || p[0].curv !== 0 ? p.map((e) => e.curv) : null;
      bendPair(p);
      // a sibling came or went: the density layer draws the pair's other curves anew
      if (before) p.forEach((e, i) => { if (e.rw > 0 && e.curv !== before[i]) this.reraster(e); });
    }
    this.touchedPairs.clear();
    if (this.allTouched) for (const n of this.vnodes.values()) n.r = nodeRadius(n);
    else for (const n of this.touchedNodes) if (!n.gone) n.r = nodeRadius(n);
    this.allTouched = false;
    this.touchedNodes.length = 0;
    this.touchMark++;
    // only the newcomers and the edges next to them: what is placed stays where it is
    const pending = this.newNodes.filter((n) => !n.placed && !n.gone);
    const near = bulk ? this.vedges.values() : this.newEdges.filter((e) => e.pair !== null); // (removeEdge leaves pair null)
    this.newNodes = []; this.newEdges = [];
    if (newNodes && pending.length && !placeNew(pending, near, this.vnodes.values())) this.initialLayout();
    if (this.query) this.applySearch();
    this.updateCounts();
    if (this.selected) this.onSelect(this.selected);
  }

  // ---------- layout ----------
  initialLayout() {
    const ts = performance.now();
    const nodes = [...this.vnodes.values()];
    seedAll(nodes, this.vedges.values());
    this.timings.seedMs = performance.now() - ts;
    if (this.autoFit) this.fit();
    if (!this.noLayout) setTimeout(() => this.startLayout(nodes.filter((n) => this.vnodes.get(n.id) === n), 300), 0);
  }

  /** Refine `nodes` for `iterations` steps; nodes in `fixed` keep their place (the others settle
   *  around them). */
  private startLayout(nodes: RNode[], iterations: number, fixed?: Set<RNode>) {
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
    const pin = new Uint8Array(nodes.length);
    if (fixed) nodes.forEach((n, i) => { if (fixed.has(n)) pin[i] = 1; });
    this.worker.postMessage({ type: 'run', job: { x, y, src, dst, fixed: pin, iterations, id, K } }, [x.buffer, y.buffer, src.buffer, dst.buffer]);
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
  /** Group by `mode`, every group of more than one member folded (the selector, `?group=`). */
  setGrouping(mode: GroupMode) {
    this.groupingSettled = true;
    this.grouping = mode;
    (this.root.querySelector('#group-by') as HTMLSelectElement).value = mode;
    this.expanded.clear();
    this.collapsed = mode === 'service' ? this.foldedServices() : defaultCollapsed(this.model.nodes.values(), mode);
    this.rebuildGrouped();
    this.requestDraw();
  }

  /** Under `service`: every service of more than one process, except those the user expanded.
   *  Only nodes whose service is another node count, so a graph without services (or one where
   *  every process heads its own) costs one pass and no map. */
  private foldedServices(): Set<string> {
    const members = new Map<string, number>();
    for (const n of this.model.nodes.values()) {
      if (n.service !== undefined && n.service !== n.id) members.set(n.service, (members.get(n.service) ?? 0) + 1);
    }
    const out = new Set<string>();
    for (const [k, c] of members) if (c + (this.model.nodes.has(k) ? 1 : 0) > 1 && !this.expanded.has(k)) out.add(k);
    return out;
  }

  collapseAll(collapse: boolean) {
    if (this.grouping === 'none') { (this.root.querySelector('#group-by') as HTMLSelectElement).value = 'service'; this.grouping = 'service'; }
    this.collapsed.clear();
    this.expanded.clear();
    if (this.grouping === 'service') {
      if (!collapse) for (const k of this.foldedServices()) this.expanded.add(k);
      this.collapsed = this.foldedServices();
    } else if (collapse) for (const n of this.model.nodes.values()) this.collapsed.add(groupKeyOf(n, this.grouping)!);
    this.rebuildGrouped();
    this.requestDraw();
  }

  toggleGroup(key: string, collapse: boolean) {
    if (collapse) { this.collapsed.add(key); this.expanded.delete(key); } else { this.collapsed.delete(key); this.expanded.add(key); }
    this.rebuildGrouped();
    this.requestDraw();
  }

  /** Recompute the aggregated view from the model and sync it into the renderer. The layout stays
   *  stable: what is drawn before and after keeps its place, a folded group appears at its
   *  members' centroid, an expanded group's members come back where they were (or around the
   *  group), and a user action refines only the newcomers. */
  private rebuildGrouped(relayout = true) {
    this.unindexSlots();
    const { rep, groups, edges: wantE } = groupView(this.model.nodes.values(), this.model.edges.values(), this.grouping, this.collapsed);
    // where each member of a group that is going away was drawn (around its group)
    const home = new Map<string, { x: number; y: number; r: number; i: number; n: number }>();
    for (const [id, v] of this.vnodes) {
      if (v.group && !groups.has(id)) v.group.members.forEach((m, i, all) => home.set(m, { x: v.x, y: v.y, r: v.r, i, n: all.length }));
    }
    // nodes: remove what is gone (their positions are remembered for group centroids)
    for (const [id, v] of this.vnodes) {
      if (v.group ? !groups.has(id) : rep.get(id) !== id) this.removeNode(id);
    }
    for (const v of [...this.vedges.values()]) if (!wantE.has(v.id) || !this.vnodes.has(v.s.id) || !this.vnodes.has(v.t.id)) this.removeEdge(v.id, v);
    // what keeps its place in the refinement: what stays, and what comes back to a remembered place
    const kept = new Set(this.vnodes.values());
    let added = false;
    for (const n of this.model.nodes.values()) {
      if (rep.get(n.id) !== n.id) continue;
      const v = this.vnodes.get(n.id);
      if (v) { v.node = n; v.type = n.type; v.kind = n.kind; v.label = nodeLabel(n); v.rate = nodeRate(n); continue; }
      const nv = this.addNode(n.id, n);
      if (nv.placed) kept.add(nv);
      const h = home.get(n.id);
      if (!nv.placed && h) {
        // evenly round where the group was, far enough apart not to overlap; they stay there
        const a = (2 * Math.PI * h.i) / h.n, r = h.r + 20 + 4 * h.n;
        nv.x = h.x + Math.cos(a) * r; nv.y = h.y + Math.sin(a) * r; nv.placed = true;
        kept.add(nv);
      }
      added = true;
    }
    for (const [gid, g] of groups) {
      let rate = -1;
      for (const m of g.members) { const r = nodeRate(this.model.nodes.get(m)!); if (r >= 0) rate = Math.max(0, rate) + r; }
      const v = this.vnodes.get(gid);
      if (v) { v.group = g; v.label = groupLabel(g); v.rate = rate; continue; }
      const nv = this.addNode(gid, undefined, g);
      nv.rate = rate;
      if (nv.placed) kept.add(nv);
      else {
        let sx = 0, sy = 0, k = 0;
        for (const m of g.members) { const p = this.posMemo.get(m); if (p) { sx += p.x; sy += p.y; k++; } }
        if (k) { nv.x = sx / k; nv.y = sy / k; nv.placed = true; }
      }
      added = true;
    }
    for (const [id, v] of this.vedges) {
      const w = wantE.get(id)!;
      v.edges = w.edges; v.raw = w.edges.length === 1 ? w.edges[0] : null;
      const { count, rate } = sumEdges(w.edges);
      v.count = count; v.rate = rate;
      if (v.rw > 0 && densityWeight(v.rate) !== v.rw) this.reraster(v);
      this.syncRetrans(v);
    }
    for (const [id, w] of wantE) if (!this.vedges.has(id)) this.addEdge(id, w.from, w.to, w.proto, w.edges);
    this.rep = groups.size ? rep : null;
    this.edgeRep.clear();
    if (this.rep) for (const [id, w] of wantE) for (const e of w.edges) this.edgeRep.set(e.id, id);
    this.allTouched = true;
    this.afterChange(added);
    // a user action: settle the newcomers around what stays where it is; when nothing stays (every
    // node folded into a group, e.g. grouping a fleet map by host), the groups start at their
    // members' centroids, which lie close together, and all of them are settled
    if (relayout && added && kept.size < this.vnodes.size && this.vnodes.size <= 3000) {
      this.startLayout([...this.vnodes.values()], 120, kept.size ? kept : undefined);
    }
    if (this.autoFit) this.fit();
  }

  /** One model change applied to the grouped view in place: what `rebuildGrouped` would give,
   *  at a cost that follows the change, not the graph. Returns false, having changed nothing,
   *  when the change needs a group that is not drawn or moves a node to another group: then the
   *  caller rebuilds. */
  private applyGrouped(c: Change): boolean {
    this.unindexSlots();
    const rep = this.rep!;
    const drawnFor = (n: GNode) => { const k = groupKeyOf(n, this.grouping); return k !== null && this.collapsed.has(k) ? 'group:' + k : n.id; };
    for (const n of c.addedNodes) { const d = drawnFor(n); if (d !== n.id && !this.vnodes.has(d)) return false; }
    for (const n of c.updatedNodes) if (rep.get(n.id) !== drawnFor(n)) return false;
    const groupsTouched = new Set<RNode>(), edgesTouched = new Set<REdge>();
    for (const e of c.removedEdges) {
      const d = this.edgeRep.get(e.id);
      if (d === undefined) continue;
      this.edgeRep.delete(e.id);
      const v = this.vedges.get(d);
      if (!v) continue;
      if (d === e.id) { this.removeEdge(d); continue; }
      v.edges = v.edges.filter((x) => x.id !== e.id);
      if (v.edges.length) edgesTouched.add(v); else this.removeEdge(d);
    }
    for (const n of c.removedNodes) {
      const d = rep.get(n.id);
      rep.delete(n.id);
      if (d === undefined) continue;
      if (d === n.id) { this.removeNode(d); continue; }
      const g = this.vnodes.get(d);
      if (!g?.group) continue;
      g.group.members = g.group.members.filter((m) => m !== n.id);
      if (g.group.members.length) groupsTouched.add(g); else this.removeNode(d);
    }
    let added = false;
    for (const n of c.addedNodes) {
      const d = drawnFor(n);
      rep.set(n.id, d);
      if (d === n.id) { this.addNode(n.id, n); added = true; continue; }
      const g = this.vnodes.get(d)!;
      g.group!.members.push(n.id);
      groupsTouched.add(g);
    }
    for (const n of c.updatedNodes) {
      const d = rep.get(n.id)!;
      const v = this.vnodes.get(d);
      if (!v) continue;
      if (d === n.id) { v.node = n; v.type = n.type; v.kind = n.kind; v.label = nodeLabel(n); v.rate = nodeRate(n); this.touch(v); } else groupsTouched.add(v);
    }
    for (const g of groupsTouched) {
      const gd = g.group!;
      let rate = -1;
      if (gd.mode === 'service') gd.title = (this.model.nodes.get(gd.key) ?? this.model.nodes.get(gd.members[0]))?.label;
      for (const m of gd.members) {
        const n = this.model.nodes.get(m);
        if (!n) continue;
        const r = nodeRate(n);
        if (r >= 0) rate = Math.max(0, rate) + r;
      }
      g.rate = rate; g.label = groupLabel(gd);
      this.touch(g);
    }
    for (const e of c.addedEdges) {
      const a = rep.get(e.from), b = rep.get(e.to);
      if (a === undefined || b === undefined || (a === b && a !== e.from)) continue; // inside one group
      const d = a === e.from && b === e.to ? e.id : `agg:${a}>${b}/${e.proto}`;
      this.edgeRep.set(e.id, d);
      const v = this.vedges.get(d);
      if (v && d !== e.id) { v.edges.push(e); edgesTouched.add(v); } else if (!v) this.addEdge(d, a, b, e.proto, [e]);
    }
    for (const e of c.updatedEdges) {
      const d = this.edgeRep.get(e.id);
      const v = d === undefined ? undefined : this.vedges.get(d);
      if (!v) continue;
      if (d === e.id) v.edges = [e];
      else { const i = v.edges.findIndex((x) => x.id === e.id); if (i >= 0) v.edges[i] = e; else v.edges.push(e); }
      edgesTouched.add(v);
    }
    for (const v of edgesTouched) {
      if (this.vedges.get(v.id) !== v) continue;
      v.raw = v.edges.length === 1 ? v.edges[0] : null;
      const { count, rate } = sumEdges(v.edges);
      v.count = count; v.rate = rate;
      if (v.rw > 0 && densityWeight(v.rate) !== v.rw) this.reraster(v);
      this.syncRetrans(v);
    }
    this.afterChange(added);
    return true;
  }

  /** Select and centre a raw node, or the group it is folded into (the top-talkers rows). */
  reveal(rawId: string) {
    const id = this.vnodes.has(rawId) ? rawId : this.rep?.get(rawId);
    if (id === undefined || !this.vnodes.has(id)) return;
    this.select(id);
    this.focus(id);
  }

  /** Every drawn edge with the width the last frame gave it (CSS px; 0 when not drawn). */
  drawnEdges() {
    return [...this.vedges.values()].map((e) => ({ id: e.id, from: e.s.id, to: e.t.id, rate: e.rate, widthPx: e.wpx ?? 0 }));
  }

  /** The rates the last frame wrote on edges. */
  get rateLabels() { return this.buckets.rateLabels.slice(); }

  /** The node labels the last frame drew: text and screen box (CSS px). */
  get labelBoxes() { return this.buckets.labels.map((l) => ({ ...l })); }

  // ---------- search ----------
  /** A new query (lower-case) or "only matches" setting, from the toolbar. */
  setQuery(query: string, filterOnly: boolean) {
    this.query = query;
    this.filterOnly = filterOnly;
    this.applySearch();
    this.requestDraw();
  }

  private applySearch() {
    this.searchInfo.textContent = searchInfoText(applySearch({ nodes: this.vnodes, edges: this.vedges }, this.query, this.filterOnly));
  }

  // ---------- camera ----------
  fit() {
    if (!this.w) return;
    fitCamera(this.cam, bounds(this.vnodes.values()), this.w, this.h);
  }

  zoomAt(sx: number, sy: number, f: number) {
    this.autoFit = false;
    zoomAt(this.cam, sx, sy, f);
    this.requestDraw();
  }

  panBy(dx: number, dy: number) {
    this.autoFit = false;
    this.cam.tx += dx; this.cam.ty += dy;
    this.requestDraw();
  }

  /** Drag a node by (dx, dy) screen px: it stays where the user puts it (the layout stops). */
  moveNode(n: RNode, dx: number, dy: number) {
    this.autoFit = false;
    n.x += dx / this.cam.k; n.y += dy / this.cam.k;
    this.stopLayout();
    this.posEpoch++;
    this.requestDraw();
  }

  get zoom() { return this.cam.k; }

  screenPos(id: string) {
    const n = this.vnodes.get(id);
    return n ? toScreen(this.cam, n.x, n.y) : null;
  }

  focus(id: string) {
    const n = this.vnodes.get(id);
    if (!n) return;
    this.autoFit = false;
    centreOn(this.cam, n.x, n.y, this.w, this.h);
    this.requestDraw();
  }

  // ---------- hit testing, hover, selection ----------
  nodeAt(sx: number, sy: number): RNode | null {
    return nodeAt(this.vnodes.values(), this.cam, sx, sy);
  }

  hover(sx: number, sy: number) {
    const n = this.nodeAt(sx, sy);
    const e = n ? null : edgeAt(this.vedges.values(), this.cam, sx, sy);
    if (n !== this.hoverNode || e !== this.hoverEdge) {
      this.hoverNode = n; this.hoverEdge = e;
      if (n) this.tooltip.innerHTML = nodeTooltip(n);
      else if (e) this.tooltip.innerHTML = edgeTooltip(e, this.model.nodes);
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

  hoverOff() {
    this.hoverNode = this.hoverEdge = null;
    this.tooltip.hidden = true;
    this.requestDraw();
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

  draw() {
    this.dirty = false;
    if (this.raf) { cancelAnimationFrame(this.raf); this.raf = 0; }
    if (!this.visible || !this.w) return;
    const ctx = this.ctx;
    const dense = drawFrame({
      ctx, w: this.w, h: this.h, dpr: this.dpr, cam: this.cam, dark: this.dark,
      nodes: this.vnodes, edges: this.vedges, retrans: this.retrans, query: this.query, filterOnly: this.filterOnly,
      selected: this.selected, hoverNode: this.hoverNode, hoverEdge: this.hoverEdge,
    }, this.buckets, () => this.drawDensity(), () => {
      this.unrastered.length = 0; // a dense frame after this one rasterises everything
      this.densityStale = false;
      if (this.density.active) { this.density.active = false; this.density.canvas.style.visibility = 'hidden'; }
    });
    this.onFrame(this.cam);
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
    const full = d.configure(W, H, bg, cols, 0.3, `${k},${tx},${ty},${this.posEpoch}`) || !d.active || this.densityStale;
    this.densityStale = false;
    if (!d.active) { d.active = true; d.canvas.style.visibility = 'visible'; }
    const sx = k * dpr, ox = tx * dpr, oy = ty * dpr;
    const t0 = performance.now();
    if (full) d.clearAll();
    // a full raster takes every edge; otherwise only those added or re-weighted since the last
    const todo = full ? this.vedges.values() : this.unrastered;
    for (const e of todo) {
      if (!full && (e.rw > 0 || e.pair === null)) continue; // (removeEdge leaves pair null)
      const s = e.s, t = e.t;
      let cx = NaN, cy = NaN;
      if (e.curv !== 0) { const c = ctrl(e); cx = c[0] * sx + ox; cy = c[1] * sx + oy; }
      d.add(e, s.x * sx + ox, s.y * sx + oy, cx, cy, t.x * sx + ox, t.y * sx + oy, densityWeight(e.rate), e.proto === 'udp' ? 1 : 0);
    }
    this.unrastered.length = 0;
    const t1 = performance.now();
    d.flush();
    const t2 = performance.now();
    this.timings.rasterMs = t1 - t0; this.timings.flushMs = t2 - t1;
  }
}
