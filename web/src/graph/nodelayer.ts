// Node layer for big graphs at overview zoom, where every node is a square of a few pixels:
// the squares are written with integer fills into a JS pixel buffer and put on a CPU canvas
// that the frame blits in one `drawImage`. Skia filling a path of 10,000 anti-aliased rects in
// software cost more per frame than the whole update budget; this costs one buffer clear, a few
// pixel writes per node and two copies of the bitmap, whatever changed.
import type { Camera } from './camera.ts';
import type { RNode } from './scene.ts';

/** '#rrggbb' as the little-endian RGBA word an ImageData's Uint32 view holds, with alpha `a`. */
export function rgbaWord(hex: string, a = 255): number {
  const v = parseInt(hex.slice(1), 16);
  return ((a << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;
}

/** Fill the squares of `nodes` into a W×H pixel buffer (device pixels). Each node is the square
 *  of half-side max(r·k, `minHalf`) CSS px, rounded to whole device pixels; `colour(n)` gives its
 *  RGBA word (0: not drawn). `drawn` lists the spans (start, end index pairs) the last call
 *  filled: only they are cleared, so the cost follows the nodes, not the canvas; it is returned
 *  refilled (grown when needed). Pure: node tests call it. */
export function fillSquares(out: Uint32Array, W: number, H: number, nodes: Iterable<RNode>, cam: Camera, dpr: number,
  minHalf: number, colour: (n: RNode) => number, drawn: Int32Array | null = null, drawnLen = 0): { drawn: Int32Array; len: number } {
  if (drawn) for (let i = 0; i < drawnLen; i += 2) for (let j = drawn[i], e = drawn[i + 1]; j < e; j++) out[j] = 0;
  else out.fill(0);
  let spans = drawn ?? new Int32Array(4096), len = 0;
  const sx = cam.k * dpr, ox = cam.tx * dpr, oy = cam.ty * dpr, m = minHalf * dpr;
  for (const n of nodes) {
    if (n.hidden) continue;
    const c = colour(n);
    if (c === 0) continue;
    const h = Math.max(n.r * sx, m);
    const cx = n.x * sx + ox, cy = n.y * sx + oy;
    let x0 = Math.round(cx - h), x1 = Math.round(cx + h), y0 = Math.round(cy - h), y1 = Math.round(cy + h);
    if (x1 <= 0 || y1 <= 0 || x0 >= W || y0 >= H) continue;
    if (x0 < 0) x0 = 0; if (y0 < 0) y0 = 0; if (x1 > W) x1 = W; if (y1 > H) y1 = H;
    if (len + 2 * (y1 - y0) > spans.length) { const g = new Int32Array(Math.max(spans.length * 2, len + 2 * (y1 - y0))); g.set(spans.subarray(0, len)); spans = g; }
    // a few pixels a row: a plain loop beats a call to fill()
    for (let y = y0; y < y1; y++) {
      const a = y * W + x0, b = y * W + x1;
      for (let i = a; i < b; i++) out[i] = c;
      spans[len++] = a; spans[len++] = b;
    }
  }
  return { drawn: spans, len };
}

export class NodeLayer {
  private canvas: HTMLCanvasElement | null = null;
  private ctx: CanvasRenderingContext2D | null = null;
  private img: ImageData | null = null;
  private out = new Uint32Array(0);
  private W = 0; private H = 0;
  private words = new Map<string, number>();
  private spans: Int32Array | null = null;
  private spansLen = 0;

  /** The RGBA word for a CSS hex colour at alpha `a` (cached). */
  word(hex: string, a = 255): number {
    const key = hex + a;
    let w = this.words.get(key);
    if (w === undefined) this.words.set(key, (w = rgbaWord(hex, a)));
    return w;
  }

  /** Draw the squares onto `ctx` (whose transform is reset here and left at identity).
   *  `replace`: the frame has drawn nothing on `ctx` that the squares go over, so the bitmap is
   *  put straight onto it (replacing every pixel: the cleared canvas and the squares in one
   *  copy), with no clear, no second bitmap and no composite of a full-canvas `drawImage`. */
  draw(ctx: CanvasRenderingContext2D, W: number, H: number, nodes: Iterable<RNode>, cam: Camera, dpr: number,
    minHalf: number, colour: (n: RNode) => number, replace = false): void {
    if (replace && !this.canvas) {
      // (the first frame that replaces: no bitmap of our own is needed)
      if (!this.img || W !== this.W || H !== this.H) this.alloc(W, H, ctx);
    } else if (!this.canvas || W !== this.W || H !== this.H) {
      this.canvas ??= document.createElement('canvas');
      this.canvas.width = W; this.canvas.height = H;
      this.ctx = this.canvas.getContext('2d', { willReadFrequently: true })!; // CPU bitmap: putImageData is a memcpy
      this.img = this.ctx.createImageData(W, H);
      this.out = new Uint32Array(this.img.data.buffer);
      this.W = W; this.H = H;
      this.spans = null; // a new buffer is all zero
    }
    const r = fillSquares(this.out, W, H, nodes, cam, dpr, minHalf, colour, this.spans, this.spansLen);
    this.spans = r.drawn; this.spansLen = r.len;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (replace) { ctx.putImageData(this.img!, 0, 0); return; }
    this.ctx!.putImageData(this.img!, 0, 0);
    ctx.drawImage(this.canvas!, 0, 0);
  }

  /** A pixel buffer of W×H (all zero) made by `ctx`, with no canvas of our own. */
  private alloc(W: number, H: number, ctx: CanvasRenderingContext2D) {
    this.img = ctx.createImageData(W, H);
    this.out = new Uint32Array(this.img.data.buffer);
    this.W = W; this.H = H;
    this.spans = null;
  }
}
