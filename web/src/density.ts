// Density edge layer for large graphs at overview zoom: every edge is a 1-device-pixel line
// rasterised in JS into per-protocol per-pixel counters; colour = 1-(1-a)^n over the background,
// i.e. what alpha-blended hairlines look like. Because counters add and subtract exactly, an update
// only rasterises the edges it adds or removes (±1) and repaints the dirty rectangle — the cost is
// proportional to the churn, not to the graph.

/** What the layer keeps on an edge it rasterised: the device coordinates it used (integers, so
 *  the removal hits the same pixels) as plain fields, not an array per edge (an update adds
 *  and removes thousands: no allocation for the collector to pay later). The coordinates are
 *  small integers (int32: at overview zoom, where the layer is used, they are within a few
 *  canvases of the view) and whether the edge is curved is a flag, so the fields stay small
 *  integers: a field that once held NaN or -0 would hold a boxed number in every edge. */
export interface RasterEdge {
  rw: number;              // weight (1 + traffic emphasis); 0: not rasterised
  rp: number;              // 0 tcp, 1 udp
  rx0: number; ry0: number; rcx: number; rcy: number; rx1: number; ry1: number;
  rc: boolean;             // curved (through rcx, rcy)
}

const CAP = 31;

export class DensityLayer {
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private W = 0; private H = 0;
  private cnt: Uint16Array[] = [new Uint16Array(0), new Uint16Array(0)];
  private img: ImageData | null = null;
  private out = new Uint32Array(0);
  private lut = new Uint32Array((CAP + 1) * (CAP + 1));
  private dx0 = 0; private dy0 = 0; private dx1 = -1; private dy1 = -1;
  private key = '';
  active = false;

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { alpha: false, willReadFrequently: true })!; // CPU bitmap: putImageData is a memcpy
  }

  /** Set geometry/theme; returns true when everything must be rasterised again. */
  configure(W: number, H: number, bg: [number, number, number], cols: [number, number, number][], alpha: number, camKey: string): boolean {
    const key = `${W}x${H}|${bg}|${cols}|${alpha}|${camKey}`;
    if (key === this.key) return false;
    this.bgFill = `rgb(${bg[0]},${bg[1]},${bg[2]})`;
    const resized = W !== this.W || H !== this.H;
    this.key = key;
    if (resized) {
      this.W = W; this.H = H;
      this.canvas.width = W; this.canvas.height = H;
      this.cnt = [new Uint16Array(W * H), new Uint16Array(W * H)];
      this.lastRect = null;
      this.img = this.ctx.createImageData(W, H);
      this.out = new Uint32Array(this.img.data.buffer);
    }
    // LUT: composite tcp then udp over the background
    for (let a = 0; a <= CAP; a++) for (let b = 0; b <= CAP; b++) {
      const A = 1 - Math.pow(1 - alpha, a), Bq = 1 - Math.pow(1 - alpha, b);
      const c = [0, 1, 2].map((i) => { const t = bg[i] * (1 - A) + cols[0][i] * A; return Math.round(t * (1 - Bq) + cols[1][i] * Bq); });
      this.lut[a * (CAP + 1) + b] = (255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0];
    }
    return true;
  }

  private bgFill = '';
  private needBg = false;
  private lastRect: [number, number, number, number] | null = null;

  clearAll() {
    // only the rectangle that had lines needs zeroing; the rest is painted with a native fill
    const r = this.lastRect;
    if (r) for (let y = r[1]; y <= r[3]; y++) { this.cnt[0].fill(0, y * this.W + r[0], y * this.W + r[2] + 1); this.cnt[1].fill(0, y * this.W + r[0], y * this.W + r[2] + 1); }
    this.lastRect = null;
    this.needBg = true;
    this.dx0 = this.W; this.dy0 = this.H; this.dx1 = -1; this.dy1 = -1;
  }

  add(e: RasterEdge, x0: number, y0: number, cx: number, cy: number, x1: number, y1: number, w: number, p: number) {
    const curved = !Number.isNaN(cx);
    e.rx0 = Math.round(x0) | 0; e.ry0 = Math.round(y0) | 0; e.rx1 = Math.round(x1) | 0; e.ry1 = Math.round(y1) | 0;
    e.rc = curved; e.rcx = curved ? Math.round(cx) | 0 : 0; e.rcy = curved ? Math.round(cy) | 0 : 0;
    e.rw = w; e.rp = p;
    this.raster(e, w);
  }

  remove(e: RasterEdge) {
    if (e.rw <= 0) return;
    this.raster(e, -e.rw);
    e.rw = 0;
  }

  private raster(e: RasterEdge, w: number) {
    const c = this.cnt[e.rp];
    const x0 = e.rx0, y0 = e.ry0, cx = e.rcx, cy = e.rcy, x1 = e.rx1, y1 = e.ry1;
    if (!e.rc) { this.line(c, x0, y0, x1, y1, w); return; }
    // quadratic curve as a 6-segment polyline (integer vertices: exact on removal)
    let px = x0, py = y0;
    for (let i = 1; i <= 6; i++) {
      const u = i / 6, a = (1 - u) * (1 - u), b = 2 * u * (1 - u), d = u * u;
      const qx = Math.round(a * x0 + b * cx + d * x1), qy = Math.round(a * y0 + b * cy + d * y1);
      this.line(c, px, py, qx, qy, w);
      px = qx; py = qy;
    }
  }

  /** Bresenham with Liang–Barsky clipping to the buffer. */
  private line(c: Uint16Array, x0: number, y0: number, x1: number, y1: number, w: number) {
    const W = this.W, H = this.H;
    const dx = x1 - x0, dy = y1 - y0;
    let t0 = 0, t1 = 1;
    if (x0 < 0 || x0 > W - 1 || x1 < 0 || x1 > W - 1 || y0 < 0 || y0 > H - 1 || y1 < 0 || y1 > H - 1) {
      // Liang–Barsky, unrolled (no closure: this runs for every edge segment of every update)
      const ps = [-dx, dx, -dy, dy], qs = [x0, W - 1 - x0, y0, H - 1 - y0];
      for (let i = 0; i < 4; i++) {
        const p = ps[i], q = qs[i];
        if (p === 0) { if (q < 0) return; continue; }
        const r = q / p;
        if (p < 0) { if (r > t1) return; if (r > t0) t0 = r; }
        else { if (r < t0) return; if (r < t1) t1 = r; }
      }
    }
    const ax = Math.round(x0 + t0 * dx), ay = Math.round(y0 + t0 * dy);
    const bx = Math.round(x0 + t1 * dx), by = Math.round(y0 + t1 * dy);
    if (ax < this.dx0) this.dx0 = ax; if (bx < this.dx0) this.dx0 = bx;
    if (ax > this.dx1) this.dx1 = ax; if (bx > this.dx1) this.dx1 = bx;
    if (ay < this.dy0) this.dy0 = ay; if (by < this.dy0) this.dy0 = by;
    if (ay > this.dy1) this.dy1 = ay; if (by > this.dy1) this.dy1 = by;
    // fixed-point DDA along the major axis (integer maths: removal hits the same pixels)
    const ddx = bx - ax, ddy = by - ay;
    const n = Math.max(Math.abs(ddx), Math.abs(ddy));
    if (n === 0) { c[ay * W + ax] += w; return; }
    if (Math.abs(ddx) >= Math.abs(ddy)) {
      const sx = ddx > 0 ? 1 : -1;
      const slope = Math.trunc((ddy * 65536) / n);
      let yf = ay * 65536 + 32768, x = ax;
      for (let k = 0; k <= n; k++) { c[(yf >> 16) * W + x] += w; x += sx; yf += slope; }
    } else {
      const sy = ddy > 0 ? W : -W;
      const slope = Math.trunc((ddx * 65536) / n);
      let xf = ax * 65536 + 32768, row = ay * W;
      for (let k = 0; k <= n; k++) { c[row + (xf >> 16)] += w; row += sy; xf += slope; }
    }
  }

  /** Colour the dirty rectangle and put it on the canvas. */
  flush() {
    if (this.needBg) { this.ctx.fillStyle = this.bgFill; this.ctx.fillRect(0, 0, this.W, this.H); this.needBg = false; }
    if (this.dx1 < this.dx0 || !this.img) return;
    const W = this.W, x0 = Math.max(0, this.dx0), x1 = Math.min(W - 1, this.dx1), y0 = Math.max(0, this.dy0), y1 = Math.min(this.H - 1, this.dy1);
    const r = this.lastRect;
    this.lastRect = r ? [Math.min(r[0], x0), Math.min(r[1], y0), Math.max(r[2], x1), Math.max(r[3], y1)] : [x0, y0, x1, y1];
    const a = this.cnt[0], b = this.cnt[1], out = this.out, lut = this.lut;
    for (let y = y0; y <= y1; y++) {
      let i = y * W + x0;
      const e = y * W + x1;
      for (; i <= e; i++) {
        let p = a[i], q = b[i];
        if (p > CAP) p = CAP; if (q > CAP) q = CAP;
        out[i] = lut[(p << 5) | q];
      }
    }
    this.ctx.putImageData(this.img, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    this.dx0 = W; this.dy0 = this.H; this.dx1 = -1; this.dy1 = -1;
  }

  readback() { this.ctx.getImageData(0, 0, 1, 1); }

  /** Allocate buffers and get the rasteriser compiled before the first graph arrives. */
  warmUp(W: number, H: number) {
    this.configure(W, H, [0, 0, 0], [[0, 0, 0], [0, 0, 0]], 0.3, 'warm');
    const e: RasterEdge = { rw: 0, rp: 0, rx0: 0, ry0: 0, rcx: 0, rcy: 0, rx1: 0, ry1: 0, rc: false };
    for (let pass = 0; pass < 2; pass++) {
    this.clearAll();
    for (let i = 0; i < 3000; i++) {
      const a = i * 2.399, r = (i % 200) + 10;
      this.add(e, W / 2, H / 2, i % 7 ? NaN : W / 2 + 30, H / 2 + 30, W / 2 + Math.cos(a) * r, H / 2 + Math.sin(a) * r, 1, i & 1);
      this.remove(e);
    }
    this.add(e, 0, 0, NaN, 0, W - 1, H - 1, 1, 0); // leave something to paint
    this.flush();
    this.readback();
    this.remove(e);
    }
    this.clearAll();
    this.key = '';
  }
}
