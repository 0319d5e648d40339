// Hit-testing: which node or edge is under a screen point. Pure: it reads positions only.
import type { Camera } from './camera.ts';
import { ctrl, type RNode, type REdge } from './scene.ts';

/** The visible node whose disc (plus 3 screen px of slack) contains (sx, sy), nearest first. */
export function nodeAt(nodes: Iterable<RNode>, cam: Camera, sx: number, sy: number): RNode | null {
  const wx = (sx - cam.tx) / cam.k, wy = (sy - cam.ty) / cam.k;
  const slack = 3 / cam.k;
  let best: RNode | null = null, bd = Infinity;
  for (const n of nodes) {
    if (n.hidden) continue;
    const dx = n.x - wx, dy = n.y - wy, d = dx * dx + dy * dy, rr = n.r + slack;
    if (d < rr * rr && d < bd) { bd = d; best = n; }
  }
  return best;
}

/** The visible edge within 5 screen px of (sx, sy), nearest first; curves as 8 segments. */
export function edgeAt(edges: Iterable<REdge>, cam: Camera, sx: number, sy: number): REdge | null {
  const wx = (sx - cam.tx) / cam.k, wy = (sy - cam.ty) / cam.k;
  const tol = 5 / cam.k;
  let best: REdge | null = null, bd = tol * tol;
  for (const e of edges) {
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

/** Squared distance from point p to segment ab. */
export function segDist2(px: number, py: number, ax: number, ay: number, bx: number, by: number) {
  const dx = bx - ax, dy = by - ay, l = dx * dx + dy * dy;
  let u = l ? ((px - ax) * dx + (py - ay) * dy) / l : 0;
  u = Math.max(0, Math.min(1, u));
  const x = ax + u * dx - px, y = ay + u * dy - py;
  return x * x + y * y;
}
