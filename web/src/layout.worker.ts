// Barnes-Hut force refinement (Fruchterman-Reingold flavour with gravity and cooling).
// Receives arrays, posts positions every ~50 ms, then a final 'done'.

interface Job { x: Float32Array; y: Float32Array; src: Uint32Array; dst: Uint32Array; fixed: Uint8Array; iterations: number; id: number }

let current = 0;

self.onmessage = (ev: MessageEvent) => {
  const m = ev.data;
  if (m.type === 'stop') { current = -1; return; }
  if (m.type === 'run') run(m.job as Job);
};

// Quadtree stored in flat arrays.
const MAXQ = 1 << 17;
let qx = new Float64Array(MAXQ), qy = new Float64Array(MAXQ), qm = new Float64Array(MAXQ);
let qsize = new Float64Array(MAXQ), qcx = new Float64Array(MAXQ), qcy = new Float64Array(MAXQ);
let qchild = new Int32Array(MAXQ * 4), qbody = new Int32Array(MAXQ);
let qn = 0;

function newCell(cx: number, cy: number, size: number) {
  const i = qn++;
  qcx[i] = cx; qcy[i] = cy; qsize[i] = size; qm[i] = 0; qx[i] = 0; qy[i] = 0;
  qbody[i] = -1; qchild[i * 4] = qchild[i * 4 + 1] = qchild[i * 4 + 2] = qchild[i * 4 + 3] = -1;
  return i;
}

async function run(job: Job) {
  const id = job.id; current = id;
  const { x, y, src, dst, fixed } = job;
  const n = x.length, m = src.length;
  if (qchild.length < n * 8 * 4) {
    const cap = n * 8;
    qx = new Float64Array(cap); qy = new Float64Array(cap); qm = new Float64Array(cap);
    qsize = new Float64Array(cap); qcx = new Float64Array(cap); qcy = new Float64Array(cap);
    qchild = new Int32Array(cap * 4); qbody = new Int32Array(cap);
  }
  const deg = new Float64Array(n);
  for (let e = 0; e < m; e++) { deg[src[e]]++; deg[dst[e]]++; }
  const dx = new Float64Array(n), dy = new Float64Array(n), mass = new Float64Array(n);
  for (let i = 0; i < n; i++) mass[i] = 1 + Math.sqrt(deg[i]) * 0.5;
  const K = (job as { K?: number }).K ?? 40; // ideal edge length
  const G = 1;
  let temp = K * 2;
  const cool = Math.pow(0.02, 1 / Math.max(1, job.iterations));
  let last = performance.now();
  const theta2 = 0.8 * 0.8;
  const stack = new Int32Array(4096);

  for (let it = 0; it < job.iterations; it++) {
    if (current !== id) return;
    // build tree
    let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
    for (let i = 0; i < n; i++) {
      if (x[i] < minx) minx = x[i]; if (x[i] > maxx) maxx = x[i];
      if (y[i] < miny) miny = y[i]; if (y[i] > maxy) maxy = y[i];
    }
    const size = Math.max(maxx - minx, maxy - miny, 1) * 1.01;
    qn = 0;
    const root = newCell((minx + maxx) / 2, (miny + maxy) / 2, size);
    for (let i = 0; i < n; i++) insert(root, i, x, y, mass, 0);
    // forces
    for (let i = 0; i < n; i++) { dx[i] = 0; dy[i] = 0; }
    for (let i = 0; i < n; i++) {
      if (fixed[i]) continue;
      const xi = x[i], yi = y[i];
      let fx = 0, fy = 0, sp = 0;
      stack[sp++] = root;
      while (sp > 0) {
        const c = stack[--sp];
        if (qm[c] === 0) continue;
        const cxm = qx[c] / qm[c], cym = qy[c] / qm[c];
        let ddx = xi - cxm, ddy = yi - cym;
        let d2 = ddx * ddx + ddy * ddy;
        const b = qbody[c];
        const leaf = b >= 0 || b === -2;
        if (leaf || (qsize[c] * qsize[c]) < theta2 * d2) {
          if (b === i) continue;
          if (d2 < 0.01) { ddx = (Math.random() - 0.5); ddy = (Math.random() - 0.5); d2 = ddx * ddx + ddy * ddy; }
          const f = (K * K * qm[c] * mass[i]) / d2; // FR repulsion k^2/d, along unit vector => /d^2 * d
          fx += ddx * f; fy += ddy * f;
        } else {
          const base = c * 4;
          for (let q = 0; q < 4; q++) { const ch = qchild[base + q]; if (ch >= 0 && sp < stack.length) stack[sp++] = ch; }
        }
      }
      // gravity towards the origin keeps components together
      fx -= xi * mass[i] * G; fy -= yi * mass[i] * G;
      dx[i] += fx; dy[i] += fy;
    }
    for (let e = 0; e < m; e++) {
      const a = src[e], b = dst[e];
      if (a === b) continue;
      const ddx = x[a] - x[b], ddy = y[a] - y[b];
      const d = Math.sqrt(ddx * ddx + ddy * ddy) + 0.01;
      const f = d / K; // FR attraction d^2/k along unit vector
      const fx = ddx * f, fy = ddy * f;
      dx[a] -= fx / mass[a]; dy[a] -= fy / mass[a];
      dx[b] += fx / mass[b]; dy[b] += fy / mass[b];
    }
    for (let i = 0; i < n; i++) {
      if (fixed[i]) continue;
      const l = Math.sqrt(dx[i] * dx[i] + dy[i] * dy[i]);
      if (l > 0) {
        const s = Math.min(l, temp) / l;
        x[i] += dx[i] * s; y[i] += dy[i] * s;
      }
    }
    temp *= cool;
    const now = performance.now();
    if (now - last > 50 || it === job.iterations - 1) {
      last = now;
      (self as unknown as Worker).postMessage({ type: 'pos', id, x: x.slice(), y: y.slice(), done: it === job.iterations - 1 });
      await new Promise((r) => setTimeout(r, 0)); // let 'stop' messages in
    }
  }
}

function insert(c: number, i: number, x: Float32Array, y: Float32Array, mass: Float64Array, depth: number) {
  const mi = mass[i];
  for (;;) {
    const b = qbody[c];
    if (qm[c] === 0 && b === -1) { // empty leaf
      qbody[c] = i; qm[c] = mi; qx[c] = x[i] * mi; qy[c] = y[i] * mi; return;
    }
    if (b === -2 || (b >= 0 && (depth > 40 || qn + 4 >= qbody.length))) {
      qbody[c] = -2; qm[c] += mi; qx[c] += x[i] * mi; qy[c] += y[i] * mi; return; // aggregate leaf
    }
    if (b >= 0) { // split: push the resident body down
      qbody[c] = -1;
      const ch = child(c, quad(c, x[b], y[b]));
      const mb = mass[b];
      qbody[ch] = b; qm[ch] = mb; qx[ch] = x[b] * mb; qy[ch] = y[b] * mb;
    }
    qm[c] += mi; qx[c] += x[i] * mi; qy[c] += y[i] * mi;
    c = child(c, quad(c, x[i], y[i])); depth++;
  }
}
function quad(c: number, px: number, py: number) { return (px >= qcx[c] ? 1 : 0) + (py >= qcy[c] ? 2 : 0); }
function child(c: number, q: number) {
  let ch = qchild[c * 4 + q];
  if (ch < 0) {
    const h = qsize[c] / 4;
    ch = newCell(qcx[c] + (q & 1 ? h : -h), qcy[c] + (q & 2 ? h : -h), qsize[c] / 2);
    qchild[c * 4 + q] = ch;
  }
  return ch;
}
