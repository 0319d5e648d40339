// Pure drawing of one frame onto a Canvas 2D context: background, edges (hairlines batched by
// colour, or only the highlighted ones over the density layer), arrows, nodes (sprites, or
// batched squares when tiny, a JS-filled bitmap when there are many), rings and labels. It reads
// the scene and the camera, and owns no state except reusable buckets and bitmaps.
import { sprites, typeColor, glyphType } from '../glyphs.ts';
import type { Camera } from './camera.ts';
import { ctrl, rateWidth, ringWidth, LABEL_ALL_MAX, type RNode, type REdge } from './scene.ts';
import { fmtRate } from '../util.ts';
import { drawRetransmitEdges, hasRetransmits } from '../health.ts';
import { NodeLayer } from './nodelayer.ts';
import { placeLabels, type LabelBox, type LabelCand } from './labels.ts';

export const COLORS = { tcp: '#2563eb', udp: '#f59e0b', tcpDark: '#60a5fa', udpDark: '#fbbf24' };

/** Everything one frame depends on. */
export interface Frame {
  ctx: CanvasRenderingContext2D;
  w: number; h: number; dpr: number;
  cam: Camera;
  dark: boolean;
  nodes: Map<string, RNode>;
  edges: { readonly size: number; values(): Iterable<REdge> };
  /** the shown edges whose connections retransmitted (kept up to date on change, not scanned) */
  retrans: Iterable<REdge>;
  /** lower-case search query ('' when none) */
  query: string;
  filterOnly: boolean;
  selected: string | null;
  hoverNode: RNode | null;
  hoverEdge: REdge | null;
}

/** Edge widths are drawn in half-pixel steps from 1 to 9 CSS px (8 plus the focus pixel). */
const WIDTH_STEPS = 17;

/** Reused per frame so drawing allocates nothing per edge. */
export class Buckets {
  /** by protocol × width step × dimmed */
  edges: REdge[][] = Array.from({ length: 2 * WIDTH_STEPS * 2 }, () => []);
  /** by protocol × emphasised */
  arrows: REdge[][] = Array.from({ length: 2 * 2 }, () => []);
  /** the rates the last frame wrote on edges (edge id, text), for tests and the hook */
  rateLabels: { id: string; text: string }[] = [];
  /** the edges the last frame gave a width (`wpx` > 0), so the next one resets only those */
  drawn: REdge[] = [];
  /** tiny nodes of a big graph, as a bitmap */
  nodeLayer = new NodeLayer();
  /** the node labels the last frame drew, screen boxes in CSS px (tests read them) */
  labels: LabelBox[] = [];
  /** measured label widths by text (labels rarely change) */
  labelWidths = new Map<string, number>();
}

/** Above this many nodes the tiny squares are filled into a bitmap instead of a Skia path. */
export const NODE_BITMAP_MIN = 1000;

/** Big graph at overview zoom: all edges go to the density layer; highlighted ones (search match,
 *  selection, hover) are drawn on top as hairlines, the rest dimmed by a veil — same look
 *  whether or not something is highlighted, so hovering does not restyle the whole drawing. */
export function isDense(f: Frame): boolean {
  return !(!!f.query && f.filterOnly) && f.edges.size > 2000 && f.cam.k < 0.5;
}

/** Draw the frame; `drawDensity` paints the density layer when the frame is dense. */
export function drawFrame(f: Frame, b: Buckets, drawDensity: () => void, hideDensity: () => void) {
  const { ctx, dpr, dark } = f, { k, tx, ty } = f.cam;
  const searching = !!f.query;
  const dense = isDense(f);
  // the node bitmap replaces the canvas when nothing is drawn under the nodes (no clear needed)
  const replace = dense && !busyFrame(f) && f.nodes.size > NODE_BITMAP_MIN && f.cam.k * 10 < 3 && !anyRetransmitShown(f.retrans);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (dense) {
    if (!replace) ctx.clearRect(0, 0, f.w, f.h);
    drawDensity();
    if (searching || f.selected !== null) { ctx.fillStyle = dark ? 'rgba(15,23,42,0.75)' : 'rgba(248,250,252,0.75)'; ctx.fillRect(0, 0, f.w, f.h); }
  } else {
    hideDensity();
    ctx.fillStyle = dark ? '#0f172a' : '#f8fafc';
    ctx.fillRect(0, 0, f.w, f.h);
  }
  ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
  drawEdges(f, b, dense);
  drawNodes(f, b, replace);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawRateLabels(f, b, dense);
  drawLabels(f, b);
  return dense;
}

/** Something is highlighted (search, selection, hover): edges are drawn over the density layer. */
function busyFrame(f: Frame): boolean {
  return !!f.query || f.selected !== null || f.hoverNode !== null || f.hoverEdge !== null;
}

/** Whether `drawRetransmitEdges` draws an outline this frame. */
function anyRetransmitShown(edges: Iterable<REdge>): boolean {
  for (const e of edges) if (!e.hidden && hasRetransmits(e.edges)) return true;
  return false;
}

/** Edges, their width on a log scale of their rate (`rateWidth`), +1 px when in focus. A 1 px
 *  edge is a device hairline (Skia's fast path); only edges that carry traffic pay for a wide
 *  stroke. Batched by colour and width in chunks. */
export function drawEdges(f: Frame, b: Buckets, dense: boolean) {
  const { ctx, dpr, dark } = f, { k, tx, ty } = f.cam;
  const searching = !!f.query;
  const sel = f.selected, hov = f.hoverNode, hovE = f.hoverEdge;
  const busy = busyFrame(f);
  const vx0 = -tx / k, vy0 = -ty / k, vx1 = (f.w - tx) / k, vy1 = (f.h - ty) / k;
  const B = b.edges, A = b.arrows;
  for (const l of B) l.length = 0;
  for (const l of A) l.length = 0;
  for (const e of b.drawn) e.wpx = 0;
  b.drawn.length = 0;
  const arrowsOn = k > 0.35;
  const minArrowLen = 28 / k;
  // over the density layer with nothing highlighted no edge is drawn here: no pass over them
  if (!(dense && !busy)) for (const e of f.edges.values()) {
    if (e.hidden) continue;
    const s = e.s, t = e.t;
    if (e.curv === 0 && ((s.x < vx0 && t.x < vx0) || (s.x > vx1 && t.x > vx1) || (s.y < vy0 && t.y < vy0) || (s.y > vy1 && t.y > vy1))) continue;
    const emph = (searching && (e.match || s.match || t.match)) || (sel !== null && (s.id === sel || t.id === sel)) || (hov !== null && (s === hov || t === hov)) || e === hovE;
    if (dense && !emph) continue;
    const dim = (searching && !e.match && !(s.match && t.match)) && !emph;
    const p = e.proto === 'udp' ? 1 : 0;
    const focus = (sel !== null && (s.id === sel || t.id === sel)) || (hov !== null && (s === hov || t === hov)) || e === hovE;
    // over the density layer a highlighted edge stays a hairline (the layer shows the weight)
    const step = dense ? (focus ? 2 : 0) : Math.round((rateWidth(e.rate) - 1) * 2) + (focus && !dim ? 2 : 0);
    e.wpx = 1 + step / 2;
    b.drawn.push(e);
    B[(p * WIDTH_STEPS + step) * 2 + (dim ? 1 : 0)].push(e);
    if (arrowsOn && !dim) {
      const dx = t.x - s.x, dy = t.y - s.y;
      if (dx * dx + dy * dy > minArrowLen * minArrowLen) A[p * 2 + (emph ? 1 : 0)].push(e);
    }
  }
  const px = 1 / (k * dpr); // one device pixel in world units
  ctx.lineCap = 'butt';
  const baseAlpha = f.edges.size > 3000 ? 0.35 : f.edges.size > 500 ? 0.5 : 0.7;
  for (let bi = 0; bi < B.length; bi++) {
    const list = B[bi];
    if (!list.length) continue;
    const dim = bi & 1, step = (bi >> 1) % WIDTH_STEPS, p = Math.floor((bi >> 1) / WIDTH_STEPS);
    ctx.strokeStyle = p ? (dark ? COLORS.udpDark : COLORS.udp) : (dark ? COLORS.tcpDark : COLORS.tcp);
    ctx.globalAlpha = dim ? 0.07 : busy ? 0.9 : (step ? Math.min(1, baseAlpha + 0.2) : baseAlpha);
    ctx.lineWidth = step ? (1 + step / 2) / k : px;
    for (let c0 = 0; c0 < list.length; c0 += 200) {
      ctx.beginPath();
      const c1 = Math.min(list.length, c0 + 200);
      for (let i = c0; i < c1; i++) {
        const e = list[i];
        ctx.moveTo(e.s.x, e.s.y);
        if (e.curv === 0) ctx.lineTo(e.t.x, e.t.y);
        else { const [cx, cy] = ctrl(e); ctx.quadraticCurveTo(cx, cy, e.t.x, e.t.y); }
      }
      ctx.stroke();
    }
  }
  // Edges whose connections retransmitted: a dashed red outline on top.
  drawRetransmitEdges(ctx, f.retrans, k, (e) => {
    ctx.moveTo(e.s.x, e.s.y);
    if (e.curv === 0) ctx.lineTo(e.t.x, e.t.y);
    else { const [cx, cy] = ctrl(e); ctx.quadraticCurveTo(cx, cy, e.t.x, e.t.y); }
  });
  ctx.globalAlpha = 1;
  drawArrows(ctx, A, k, dark);
}

/** Zoomed in this far (a world unit at least a screen pixel), every edge with traffic says its rate. */
export const RATE_LABEL_ZOOM = 1;
/** At most this many rate labels a frame (the busiest edges first). */
const RATE_LABEL_BUDGET = 150;

/** The rate written at the middle of an edge: on the hovered edge and the edges of the hovered or
 *  selected node always, on every edge with traffic when zoomed in. Not over the density layer. */
function drawRateLabels(f: Frame, b: Buckets, dense: boolean) {
  b.rateLabels.length = 0;
  if (dense) return;
  const { ctx, dark } = f, { k, tx, ty } = f.cam;
  const sel = f.selected, hov = f.hoverNode, hovE = f.hoverEdge;
  const zoomed = k >= RATE_LABEL_ZOOM;
  if (!zoomed && sel === null && hov === null && hovE === null) return;
  const cand: REdge[] = [];
  for (const e of f.edges.values()) {
    if (!e.wpx || e.rate <= 0) continue;
    const focus = e === hovE || (hov !== null && (e.s === hov || e.t === hov)) || (sel !== null && (e.s.id === sel || e.t.id === sel));
    if (zoomed || focus) cand.push(e);
  }
  if (cand.length > RATE_LABEL_BUDGET) cand.sort((a, c) => c.rate - a.rate);
  ctx.font = '10px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.lineWidth = 3;
  ctx.strokeStyle = dark ? '#0f172a' : '#f8fafc';
  ctx.fillStyle = dark ? '#cbd5e1' : '#334155';
  for (let i = 0; i < cand.length && i < RATE_LABEL_BUDGET; i++) {
    const e = cand[i];
    let mx = (e.s.x + e.t.x) / 2, my = (e.s.y + e.t.y) / 2;
    if (e.curv !== 0) { const [cx, cy] = ctrl(e); mx = (mx + cx) / 2; my = (my + cy) / 2; } // Bézier at t = ½
    // beside the line (along its normal), clear of the stroke
    const dx = (e.t.x - e.s.x) * k, dy = (e.t.y - e.s.y) * k, len = Math.hypot(dx, dy) || 1;
    const focus = e === hovE || (hov !== null && (e.s === hov || e.t === hov)) || (sel !== null && (e.s.id === sel || e.t.id === sel));
    // an edge shorter on screen than its label (between the two node sprites) only says it in focus
    if (!focus && len - (e.s.r + e.t.r) * k < 56) continue;
    // the normal that points up the screen; a steep edge's label sits beside it, clear of its width
    let nx = -dy / len, ny = dx / len;
    if (ny > 0 || (ny === 0 && nx > 0)) { nx = -nx; ny = -ny; }
    const off = (e.wpx ?? 1) / 2 + 7 + 22 * Math.abs(nx);
    const sx = mx * k + tx + nx * off, sy = my * k + ty + ny * off;
    if (sx < -40 || sx > f.w + 40 || sy < -10 || sy > f.h + 10) continue;
    const text = fmtRate(e.rate);
    ctx.strokeText(text, sx, sy);
    ctx.fillText(text, sx, sy);
    b.rateLabels.push({ id: e.id, text });
  }
}

/** Arrow heads at the server end (client → server), one filled path per colour. */
function drawArrows(ctx: CanvasRenderingContext2D, A: REdge[][], k: number, dark: boolean) {
  for (let ai = 0; ai < A.length; ai++) {
    const list = A[ai];
    if (!list.length) continue;
    const p = ai >> 1, emph = ai & 1;
    ctx.fillStyle = p ? (dark ? COLORS.udpDark : COLORS.udp) : (dark ? COLORS.tcpDark : COLORS.tcp);
    ctx.globalAlpha = emph ? 1 : 0.8;
    ctx.beginPath();
    for (const e of list) {
      const wx = (e.wpx ?? 1) - 1; // wider edges get bigger heads
      const al = ((emph ? 9 : 7) + 1.5 * wx) / k, aw = ((emph ? 4.5 : 3.5) + wx) / k;
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
}

/** Nodes: tiny → batched squares per colour; otherwise sprites. Then the rings. `replace`: the
 *  node bitmap may replace the canvas (nothing drawn under it this frame). */
function drawNodes(f: Frame, b: Buckets, replace: boolean) {
  const { ctx, dark } = f, { k, tx, ty } = f.cam;
  const searching = !!f.query;
  const sel = f.selected, hov = f.hoverNode;
  const vx0 = -tx / k, vy0 = -ty / k, vx1 = (f.w - tx) / k, vy1 = (f.h - ty) / k;
  const tiny = k * 10 < 3;
  const ring: RNode[] = [];
  const traffic: RNode[] = [];
  if (tiny && f.nodes.size > NODE_BITMAP_MIN) {
    const L = b.nodeLayer;
    // the node's colour word is kept on it while its colour type stays (no string built and
    // looked up per node per frame); dimmed: the same word at alpha 64
    // looked up again only when the raw node or group behind it is another object (an update
    // replaces the raw node): one pointer comparison per node per frame, no string comparison
    const wordOf = (n: RNode) => {
      const src = n.node ?? n.group;
      if (n.cwSrc === src && n.cw) return n.cw;
      const t = n.type === 'group' ? 'group' : n.kind === 'unknown' ? 'unknown' : n.kind === 'external' ? 'external' : n.type;
      n.cwSrc = src;
      return (n.cw = L.word(typeColor(t), 255));
    };
    // the squares of the matches on top of the dimmed rest: two fills when searching
    const order = searching ? [...f.nodes.values()].sort((a, c) => Number(a.match) - Number(c.match)) : f.nodes.values();
    L.draw(ctx, Math.round(f.w * f.dpr), Math.round(f.h * f.dpr), order, f.cam, f.dpr, 1.5,
      searching ? (n) => (n.match ? wordOf(n) : ((wordOf(n) & 0x00ffffff) | (64 << 24)) >>> 0) : wordOf, replace);
    ctx.setTransform(f.dpr * k, 0, 0, f.dpr * k, f.dpr * tx, f.dpr * ty);
    // (a pass over the nodes only when some could be ringed)
    if (searching) { for (const n of f.nodes.values()) if (!n.hidden && (n.match || n.id === sel)) ring.push(n); }
    else if (sel !== null) { const n = f.nodes.get(sel); if (n && !n.hidden) ring.push(n); }
  } else if (tiny) {
    const byColor = new Map<string, RNode[]>();
    for (const n of f.nodes.values()) {
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
    for (const n of f.nodes.values()) {
      if (n.hidden || n.x < vx0 - n.r || n.x > vx1 + n.r || n.y < vy0 - n.r || n.y > vy1 + n.r) continue;
      const dimmed = searching && !n.match;
      if (dimmed) ctx.globalAlpha = 0.25;
      const st = n.group ? 'group' : n.kind === 'unknown' ? 'unknown' : n.kind === 'external' ? (glyphType(n.type) === 'app' ? 'external' : n.type) : n.type;
      ctx.drawImage(sprites.get(st), n.x - n.r, n.y - n.r, 2 * n.r, 2 * n.r);
      if (dimmed) ctx.globalAlpha = 1;
      if (ringWidth(n.rate) > 0) traffic.push(n);
      if (n.match || n.id === sel || n === hov || n.kind === 'unknown') ring.push(n);
    }
  }
  // traffic rings: width on the edges' log scale, so a busy process reads as busy at a glance
  ctx.strokeStyle = dark ? '#34d399' : '#059669';
  ctx.globalAlpha = 0.75;
  for (const n of traffic) {
    const w = ringWidth(n.rate);
    ctx.beginPath();
    ctx.arc(n.x, n.y, n.r + (1 + w / 2) / k, 0, Math.PI * 2);
    ctx.lineWidth = w / k;
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
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
}

/** Labels in screen space, only when nodes are big enough to read (the hovered and selected
 *  node always); in crowded views at most 120, and without the halo (strokeText is costly in
 *  software). No two overlap: `placeLabels` keeps the more important one (forced, search match,
 *  bigger node, more edges). */
function drawLabels(f: Frame, b: Buckets) {
  const { ctx, dark } = f, { k, tx, ty } = f.cam;
  const searching = !!f.query;
  b.labels = [];
  const readable = k * 10 >= 6 || f.nodes.size <= LABEL_ALL_MAX;
  const hov = f.hoverNode, sel = f.selected === null ? null : f.nodes.get(f.selected) ?? null;
  const pick: RNode[] = [];
  if (readable) {
    for (const n of f.nodes.values()) {
      if (n.hidden || (searching && !n.match)) continue;
      const sx = n.x * k + tx, sy = n.y * k + ty;
      if (sx < -80 || sx > f.w + 80 || sy < -20 || sy > f.h + 20) continue;
      pick.push(n);
    }
  } else {
    if (hov && !hov.hidden) pick.push(hov);
    if (sel && sel !== hov && !sel.hidden) pick.push(sel);
  }
  if (!pick.length) return;
  const crowded = pick.length > 250;
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  // the most important first, so in a crowd only they pay for measuring
  if (crowded) pick.sort((a, c) => c.r - a.r || c.deg - a.deg);
  const widths = b.labelWidths;
  if (widths.size > 20000) widths.clear();
  const cands: LabelCand[] = [];
  for (const n of pick.length > 1000 ? pick.slice(0, 1000) : pick) {
    const text = n.label.length > 28 ? n.label.slice(0, 27) + '…' : n.label;
    let w = widths.get(text);
    if (w === undefined) widths.set(text, (w = ctx.measureText(text).width));
    const sx = n.x * k + tx, sy = (n.y + n.r) * k + ty + 2;
    cands.push({ id: n.id, text, x: sx - w / 2, y: sy, w, h: 13, priority: (n.match ? 1e6 : 0) + n.r * 1000 + n.deg, force: n === hov || n === sel });
  }
  const placed = placeLabels(cands, f.w, f.h, crowded ? 120 : Infinity);
  ctx.lineWidth = 3;
  ctx.strokeStyle = dark ? '#0f172a' : '#f8fafc';
  ctx.fillStyle = dark ? '#e2e8f0' : '#1e293b';
  for (const l of placed) {
    const sx = l.x + l.w / 2;
    if (!crowded) ctx.strokeText(l.text, sx, l.y);
    ctx.fillText(l.text, sx, l.y);
  }
  b.labels = placed;
}
