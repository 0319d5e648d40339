// Diagram view (as psys): listeners on the left, their targets on the right, one edge per
// listener–target pair; zoom (wheel/buttons), pan (drag), and a minimap. A process has one label on
// both sides (a target that is a local process is called what its listener is called), and a
// container is an icon.
import type { ConnectionsDoc } from './types';
import type { Model } from './model';
import { sprites } from './glyphs';
import { badgeLabel, containerIcon, iconTypeFor, listenerLabel } from './table';
import { esc } from './util';

const LW = 230, TW = 230, NH = 44, GAP = 14, COLGAP = 220, X0 = 40, Y0 = 40;

interface Box { x: number; y: number; w: number; h: number; kind: 'listener' | 'target' }

export class DiagramView {
  private svg: SVGSVGElement;
  private g: SVGGElement;
  private mini: HTMLCanvasElement;
  private boxes: Box[] = [];
  private edgesXY: [number, number, number, number][] = [];
  private cam = { k: 1, tx: 0, ty: 0 };
  private size = { w: 0, h: 0 };
  private fitted = false;
  private lastKey = '';

  constructor(private root: HTMLElement, private model: Model) {
    root.innerHTML = `
      <div class="toolbar">
        <button data-testid="diagram-zoom-in" class="zin">+</button>
        <button data-testid="diagram-zoom-out" class="zout">−</button>
        <button data-testid="diagram-fit" class="zfit">Fit</button>
        <span class="muted" data-testid="diagram-info" id="diagram-info"></span>
      </div>
      <div class="diagram-wrap">
        <svg data-testid="diagram-svg" id="diagram-svg"><defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrow"></path></marker></defs><g></g></svg>
        <canvas class="minimap" data-testid="minimap" width="180" height="130"></canvas>
      </div>`;
    this.svg = root.querySelector('svg')!;
    this.g = this.svg.querySelector('g')!;
    this.mini = root.querySelector('canvas')!;
    root.querySelector('.zin')!.addEventListener('click', () => this.zoom(1.25));
    root.querySelector('.zout')!.addEventListener('click', () => this.zoom(0.8));
    root.querySelector('.zfit')!.addEventListener('click', () => this.fit());
    this.svg.addEventListener('wheel', (e) => {
      e.preventDefault();
      const r = this.svg.getBoundingClientRect();
      this.zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    let drag: { x: number; y: number } | null = null;
    this.svg.addEventListener('pointerdown', (e) => { drag = { x: e.clientX, y: e.clientY }; this.svg.setPointerCapture(e.pointerId); });
    this.svg.addEventListener('pointermove', (e) => {
      if (!drag) return;
      this.cam.tx += e.clientX - drag.x; this.cam.ty += e.clientY - drag.y;
      drag = { x: e.clientX, y: e.clientY }; this.apply();
    });
    this.svg.addEventListener('pointerup', () => (drag = null));
    const miniNav = (e: PointerEvent) => {
      const b = this.world(), s = this.miniScale(b);
      const r = this.mini.getBoundingClientRect();
      const wx = (e.clientX - r.left - s.ox) / s.k + b.x0, wy = (e.clientY - r.top - s.oy) / s.k + b.y0;
      this.cam.tx = this.size.w / 2 - wx * this.cam.k; this.cam.ty = this.size.h / 2 - wy * this.cam.k;
      this.apply();
    };
    let miniDrag = false;
    this.mini.addEventListener('pointerdown', (e) => { miniDrag = true; this.mini.setPointerCapture(e.pointerId); miniNav(e); });
    this.mini.addEventListener('pointermove', (e) => { if (miniDrag) miniNav(e); });
    this.mini.addEventListener('pointerup', () => (miniDrag = false));
    new ResizeObserver(() => { const r = this.svg.getBoundingClientRect(); this.size = { w: r.width, h: r.height }; if (!this.fitted && r.width) this.fit(); else this.apply(); }).observe(this.svg);
  }

  setData(doc: ConnectionsDoc) {
    const key = JSON.stringify([doc.listeners.map((l) => [l.pid, l.port, l.address, l.proto, listenerLabel(l), l.containerName]),
      doc.connections.map((c) => [c.fromPid, c.toAddress, c.toPort, c.toLabel, c.toProcessLabel, c.role])]);
    if (key === this.lastKey) return; // nothing visible changed: keep the DOM (and the user's view)
    this.lastKey = key;
    const targets = new Map<string, { label: string; service?: string; container?: string; addr: string; port: number; ys: number[] }>();
    // Ports a container publishes here, for the icon on a target that reaches one.
    const published = new Map<string, string>();
    for (const l of doc.listeners) if (l.containerName) published.set(`${l.proto}:${l.port}`, l.containerName);
    const pairs = new Set<string>();
    const edges: [number, string][] = [];
    doc.listeners.forEach((l, i) => {
      if (!l.pid) return;
      for (const c of doc.connections) {
        if (c.fromPid !== l.pid || c.role === 'server') continue;
        const tid = `${c.toAddress}:${c.toPort}`;
        let t = targets.get(tid);
        if (!t) {
          const label = badgeLabel(c);
          const container = c.toPid !== undefined ? published.get(`${c.proto}:${c.toPort}`) : undefined;
          // psys's own name for the target (service, container), when it is not the label itself
          const service = c.toLabel && c.toLabel !== label ? c.toLabel : undefined;
          targets.set(tid, (t = { label, service, container, addr: c.toAddress, port: c.toPort, ys: [] }));
        }
        const pk = i + '|' + tid;
        if (pairs.has(pk)) continue; // one edge per listener–target pair
        pairs.add(pk); t.ys.push(i); edges.push([i, tid]);
      }
    });
    // order targets by the mean row of their listeners to limit crossings
    const tl = [...targets.entries()].sort((a, b) => avg(a[1].ys) - avg(b[1].ys));
    const tIndex = new Map(tl.map(([id], i) => [id, i]));
    const yOf = (i: number) => Y0 + i * (NH + GAP);
    const tx = X0 + LW + COLGAP;
    this.boxes = [];
    this.edgesXY = [];
    const parts: string[] = [];
    for (const [li, tid] of edges) {
      const y1 = yOf(li) + NH / 2, y2 = yOf(tIndex.get(tid)!) + NH / 2;
      const x1 = X0 + LW, x2 = tx;
      this.edgesXY.push([x1, y1, x2, y2]);
      const mx = (x1 + x2) / 2;
      parts.push(`<path class="dedge" data-testid="diagram-edge" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}" marker-end="url(#arrow)"></path>`);
    }
    doc.listeners.forEach((l, i) => {
      const y = yOf(i);
      this.boxes.push({ x: X0, y, w: LW, h: NH, kind: 'listener' });
      const label = listenerLabel(l);
      const t = iconTypeFor(l, this.model);
      const tw = l.containerName ? 20 : 24;
      parts.push(`<g class="dnode listener" data-testid="diagram-listener" transform="translate(${X0},${y})">
        <rect width="${LW}" height="${NH}" rx="4"></rect>
        <image href="${sprites.url(t)}" x="8" y="${NH / 2 - 11}" width="22" height="22"></image>
        <text x="38" y="18" class="t1" data-testid="diagram-label">${esc(trunc(label, tw))}</text>
        ${l.containerName ? containerIcon(`container: ${l.containerName}`, 18, `x="${LW - 26}" y="4"`) : ''}
        <text x="38" y="34" class="t2">${l.proto.toUpperCase()} ${esc(trunc(l.address, 18))}:${l.port}${l.pid ? ' · pid ' + l.pid : ''}</text>
        <title>${esc(`${label} (pid ${l.pid}) ${l.address}:${l.port} ${l.addressDescription}${l.containerName ? '\ncontainer: ' + l.containerName : ''}${l.cmdline ? '\n' + l.cmdline : ''}`)}</title></g>`);
    });
    tl.forEach(([, t], i) => {
      const y = yOf(i);
      this.boxes.push({ x: tx, y, w: TW, h: NH, kind: 'target' });
      const where = `${t.addr}:${t.port}`;
      const sub = [t.service, t.label !== where ? where : ''].filter(Boolean).join(' · ');
      parts.push(`<g class="dnode target" data-testid="diagram-target" transform="translate(${tx},${y})">
        <rect width="${TW}" height="${NH}" rx="${NH / 2}"></rect>
        <text x="16" y="${sub ? 18 : 27}" class="t1" data-testid="diagram-label">${esc(trunc(t.label, t.container ? 22 : 26))}</text>
        ${sub ? `<text x="16" y="34" class="t2">${esc(trunc(sub, 32))}</text>` : ''}
        ${t.container ? containerIcon(`container: ${t.container}`, 18, `x="${TW - 34}" y="${NH / 2 - 9}"`) : ''}
        <title>${esc(`${t.label}${t.service ? ` (${t.service})` : ''} ${where}${t.container ? '\ncontainer: ' + t.container : ''}`)}</title></g>`);
    });
    if (!doc.listeners.length) parts.push(`<text x="${X0}" y="${Y0 + 20}" class="t2">No listeners.</text>`);
    this.g.innerHTML = parts.join('');
    (this.root.querySelector('#diagram-info') as HTMLElement).textContent =
      `${doc.listeners.length} listeners · ${targets.size} targets · ${edges.length} edges`;
    if (!this.fitted) this.fit(); else this.apply();
  }

  private world() {
    const x0 = 0, y0 = 0;
    let x1 = X0 + LW + COLGAP + TW + X0, y1 = 200;
    for (const b of this.boxes) { x1 = Math.max(x1, b.x + b.w + X0); y1 = Math.max(y1, b.y + b.h + Y0); }
    return { x0, y0, x1, y1 };
  }

  fit() {
    if (!this.size.w) return;
    const b = this.world();
    const k = Math.min(1.2, this.size.w / (b.x1 - b.x0), this.size.h / (b.y1 - b.y0));
    // tall diagrams: fit the width and start at the top rather than shrinking to dots
    const kk = Math.max(k, Math.min(1, this.size.w / (b.x1 - b.x0)) * 0.6);
    this.cam.k = kk;
    this.cam.tx = (this.size.w - (b.x1 - b.x0) * kk) / 2;
    this.cam.ty = k === kk ? (this.size.h - (b.y1 - b.y0) * kk) / 2 : 0;
    this.fitted = true;
    this.apply();
  }

  private zoom(f: number, sx = this.size.w / 2, sy = this.size.h / 2) {
    const k = Math.max(0.05, Math.min(4, this.cam.k * f));
    const wx = (sx - this.cam.tx) / this.cam.k, wy = (sy - this.cam.ty) / this.cam.k;
    this.cam.k = k; this.cam.tx = sx - wx * k; this.cam.ty = sy - wy * k;
    this.apply();
  }

  private miniScale(b: { x0: number; y0: number; x1: number; y1: number }) {
    const W = this.mini.width, H = this.mini.height;
    const k = Math.min((W - 8) / (b.x1 - b.x0), (H - 8) / (b.y1 - b.y0));
    return { k, ox: (W - (b.x1 - b.x0) * k) / 2, oy: (H - (b.y1 - b.y0) * k) / 2 };
  }

  private apply() {
    this.g.setAttribute('transform', `translate(${this.cam.tx},${this.cam.ty}) scale(${this.cam.k})`);
    // minimap
    const ctx = this.mini.getContext('2d')!;
    const W = this.mini.width, H = this.mini.height;
    const dark = matchMedia('(prefers-color-scheme: dark)').matches;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = dark ? 'rgba(30,41,59,.92)' : 'rgba(255,255,255,.92)';
    ctx.fillRect(0, 0, W, H);
    const b = this.world(), s = this.miniScale(b);
    const X = (x: number) => s.ox + (x - b.x0) * s.k, Y = (y: number) => s.oy + (y - b.y0) * s.k;
    ctx.strokeStyle = dark ? 'rgba(148,163,184,.5)' : 'rgba(100,116,139,.4)';
    ctx.beginPath();
    for (const [x1, y1, x2, y2] of this.edgesXY) { ctx.moveTo(X(x1), Y(y1)); ctx.lineTo(X(x2), Y(y2)); }
    ctx.stroke();
    for (const bx of this.boxes) {
      ctx.fillStyle = bx.kind === 'listener' ? '#6366f1' : '#0d9488';
      ctx.fillRect(X(bx.x), Y(bx.y), Math.max(2, bx.w * s.k), Math.max(1, bx.h * s.k));
    }
    const vx0 = -this.cam.tx / this.cam.k, vy0 = -this.cam.ty / this.cam.k;
    ctx.strokeStyle = '#f59e0b'; ctx.lineWidth = 1.5;
    ctx.strokeRect(X(vx0), Y(vy0), (this.size.w / this.cam.k) * s.k, (this.size.h / this.cam.k) * s.k);
  }
}

function avg(a: number[]) { let s = 0; for (const x of a) s += x; return a.length ? s / a.length : 0; }
function trunc(s: string, n: number) { return s.length > n ? s.slice(0, n - 1) + '…' : s; }
