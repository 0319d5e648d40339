// The camera: world ↔ screen transform (scale k, then translate tx/ty in CSS pixels), fitting
// a set of nodes into the viewport and zooming about a screen point. Pure.
import type { RNode } from './scene.ts';

export interface Camera { k: number; tx: number; ty: number }
export interface Bounds { x0: number; y0: number; x1: number; y1: number }

/** Extent of the placed nodes (hidden ones too when `all`); a default box when there are none. */
export function bounds(nodes: Iterable<RNode>, all = false): Bounds {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const n of nodes) {
    if (!n.placed || (!all && n.hidden)) continue;
    if (n.x - n.r < x0) x0 = n.x - n.r; if (n.x + n.r > x1) x1 = n.x + n.r;
    if (n.y - n.r < y0) y0 = n.y - n.r; if (n.y + n.r > y1) y1 = n.y + n.r;
  }
  if (x0 === Infinity) return { x0: -100, y0: -100, x1: 100, y1: 100 };
  return { x0, y0, x1, y1 };
}

/** Centre `b` in a w×h viewport with a margin, never zooming in past 2×. */
export function fitCamera(cam: Camera, b: Bounds, w: number, h: number) {
  const bw = Math.max(b.x1 - b.x0, 50), bh = Math.max(b.y1 - b.y0, 50);
  const k = Math.min(2, Math.min((w - 40) / bw, (h - 60) / bh));
  cam.k = k;
  cam.tx = w / 2 - ((b.x0 + b.x1) / 2) * k;
  cam.ty = h / 2 - ((b.y0 + b.y1) / 2) * k;
}

/** Zoom by factor `f` keeping the world point under screen (sx, sy) fixed; k stays in [0.01, 20]. */
export function zoomAt(cam: Camera, sx: number, sy: number, f: number) {
  const k = Math.max(0.01, Math.min(20, cam.k * f));
  const wx = (sx - cam.tx) / cam.k, wy = (sy - cam.ty) / cam.k;
  cam.k = k;
  cam.tx = sx - wx * k; cam.ty = sy - wy * k;
}

/** Centre the world point (x, y) in a w×h viewport, zooming in to at least 1.2×. */
export function centreOn(cam: Camera, x: number, y: number, w: number, h: number) {
  cam.k = Math.max(cam.k, 1.2);
  cam.tx = w / 2 - x * cam.k; cam.ty = h / 2 - y * cam.k;
}

export function toScreen(cam: Camera, x: number, y: number) {
  return { x: x * cam.k + cam.tx, y: y * cam.k + cam.ty };
}
