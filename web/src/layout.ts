// Layout: an O(N+E) seed placement for the first frame, then a Barnes-Hut force
// refinement in a web worker (layout.worker.ts) that streams positions back.

export interface LNode { x: number; y: number; fixed?: boolean }

const GOLDEN = Math.PI * (3 - Math.sqrt(5));
export const SPACING = 40;

/** Place nodes that have no position: hubs first, neighbours in a phyllotaxis around their hub,
 *  connected components packed on a sunflower. `nbrs(i)` gives neighbour indices. */
export function seedLayout(n: number, nbrs: number[][], xs: Float64Array, ys: Float64Array) {
  const deg = new Int32Array(n);
  for (let i = 0; i < n; i++) deg[i] = nbrs[i].length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => deg[b] - deg[a]);
  const comp = new Int32Array(n).fill(-1);
  const comps: number[][] = [];
  // BFS from the highest-degree unvisited node.
  for (const root of order) {
    if (comp[root] >= 0) continue;
    const id = comps.length, members = [root];
    comp[root] = id;
    for (let h = 0; h < members.length; h++) {
      for (const v of nbrs[members[h]]) if (comp[v] < 0) { comp[v] = id; members.push(v); }
    }
    comps.push(members);
  }
  // Lay out each component locally, then pack components.
  const lx = new Float64Array(n), ly = new Float64Array(n);
  const placed = new Uint8Array(n);
  const kids = new Int32Array(n);
  const compR: number[] = [];
  for (const members of comps) {
    const root = members[0];
    lx[root] = 0; ly[root] = 0; placed[root] = 1;
    let r2max = 0;
    for (const u of members) {
      const base = SPACING * (deg[u] > 8 ? 1.4 : 1);
      for (const v of nbrs[u]) {
        if (placed[v]) continue;
        const k = ++kids[u];
        const r = base * Math.sqrt(k + 1);
        const a = k * GOLDEN + u;
        lx[v] = lx[u] + Math.cos(a) * r; ly[v] = ly[u] + Math.sin(a) * r;
        placed[v] = 1;
        const d2 = lx[v] * lx[v] + ly[v] * ly[v];
        if (d2 > r2max) r2max = d2;
      }
    }
    compR.push(Math.sqrt(r2max) + SPACING);
  }
  // Pack: big components in the middle, small ones around on a sunflower grid.
  let ring = 0;
  const maxR = compR.length ? compR[0] : 0;
  for (let c = 0; c < comps.length; c++) {
    let cx = 0, cy = 0;
    if (c > 0) {
      ring++;
      const cell = Math.max(compR[c], SPACING) * 2.2;
      const r = maxR + cell * Math.sqrt(ring) * 1.2;
      const a = ring * GOLDEN;
      cx = Math.cos(a) * r; cy = Math.sin(a) * r;
    }
    for (const i of comps[c]) { xs[i] = cx + lx[i]; ys[i] = cy + ly[i]; }
  }
}

export interface LayoutJob {
  x: Float32Array; y: Float32Array; src: Uint32Array; dst: Uint32Array;
  fixed: Uint8Array; iterations: number; id: number;
}
