// Comparison page for bench/ui.mjs: the same data, fed the same way, rendered by sigma.js +
// graphology with ForceAtlas2 in a web worker, diffs applied in one batch then refresh().
import Graph from 'graphology';
import Sigma from 'sigma';
import FA2Layout from 'graphology-layout-forceatlas2/worker';
import forceAtlas2 from 'graphology-layout-forceatlas2';

const perf = { firstFrameMs: -1, firstFrameSinceNavMs: -1, updates: [], error: null };
let lastSeq = -1, layoutRunning = false;
window.__procnet = { perf, get lastSeq() { return lastSeq; }, get layoutRunning() { return layoutRunning; } };
const container = document.getElementById('c');
const COLORS = { tcp: '#2563eb', udp: '#f59e0b' };
let graph, renderer, fa2;

function flush() {
  // force the GL work (edges, nodes) and the 2D label layer out, like the 1-pixel read-back in ours
  for (const c of Object.values(renderer.getCanvases())) {
    const gl = c.getContext('webgl2') || c.getContext('webgl');
    if (gl) { const px = new Uint8Array(4); gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); }
    else c.getContext('2d')?.getImageData(0, 0, 1, 1);
  }
}
function nodeAttrs(n, x, y) { return { x, y, size: 3, label: n.label, color: n.kind === 'external' ? '#64748b' : n.kind === 'unknown' ? '#9ca3af' : '#6366f1' }; }

const es = new EventSource('/api/events');
es.addEventListener('graph', (ev) => {
  if (graph) return;
  try {
    const t0 = performance.now();
    const doc = JSON.parse(ev.data);
    graph = new Graph({ multi: true, type: 'directed', allowSelfLoops: true });
    graph.import({
      nodes: doc.nodes.map((n) => ({ key: n.id, attributes: nodeAttrs(n, Math.random() * 1000, Math.random() * 1000) })),
      edges: doc.edges.map((e) => ({ key: e.id, source: e.from, target: e.to, attributes: { size: 1, color: COLORS[e.proto] } })),
    });
    renderer = new Sigma(graph, container, { renderLabels: true, defaultEdgeType: 'arrow' });
    renderer.refresh();
    flush();
    perf.firstFrameMs = performance.now() - t0;
    perf.firstFrameSinceNavMs = performance.now();
    lastSeq = doc.seq;
    fa2 = new FA2Layout(graph, { settings: forceAtlas2.inferSettings(graph) });
    fa2.start(); layoutRunning = true;
    setTimeout(() => { fa2.kill(); layoutRunning = false; }, 3000);
  } catch (e) { perf.error = String(e && e.stack || e); }
});
es.addEventListener('diff', (ev) => {
  try {
    const t0 = performance.now();
    const d = JSON.parse(ev.data);
    const t1 = performance.now();
    if (d.base !== lastSeq) return;
    // One batch: edit a detached copy (no renderer listeners fire per edit), then swap it in.
    // Editing the live graph one item at a time is far slower with sigma (each edit is an event).
    graph = graph.copy();
    for (const id of d.removedEdges) if (graph.hasEdge(id)) graph.dropEdge(id);
    for (const id of d.removedNodes) if (graph.hasNode(id)) graph.dropNode(id);
    // place new nodes near a neighbour, as our renderer does
    const near = new Map();
    for (const e of d.addedEdges) { near.set(e.from, e.to); near.set(e.to, e.from); }
    const nodes = d.addedNodes.map((n) => {
      const m = near.get(n.id);
      const p = m && graph.hasNode(m) ? graph.getNodeAttributes(m) : { x: Math.random() * 1000, y: Math.random() * 1000 };
      return { key: n.id, attributes: nodeAttrs(n, p.x + Math.random() * 10, p.y + Math.random() * 10) };
    });
    graph.import({ nodes, edges: d.addedEdges.map((e) => ({ key: e.id, source: e.from, target: e.to, attributes: { size: 1, color: COLORS[e.proto] } })) }, true);
    for (const e of d.updatedEdges) if (graph.hasEdge(e.id)) graph.mergeEdgeAttributes(e.id, { size: 1 + Math.min(3, Math.log10(1 + (e.txRate ?? 0) + (e.rxRate ?? 0)) / 2) });
    const t2 = performance.now();
    renderer.setGraph(graph);
    renderer.refresh();
    flush();
    const t3 = performance.now();
    lastSeq = d.seq;
    const rec = { seq: d.seq, parseMs: t1 - t0, applyMs: t2 - t1, drawMs: t3 - t2, totalMs: t3 - t0 };
    perf.updates.push(rec);
    requestAnimationFrame(() => { rec.frameMs = performance.now() - t0; });
  } catch (e) { perf.error = String(e && e.stack || e); }
});
