import './style.css';
import { Model } from './model';
import { GraphView, type GroupMode, type PerfRecord } from './graph';
import { TableView, refreshTable as refreshTableData } from './table';
import { DiagramView } from './diagram';
import { renderPanel } from './panel';
import { TimeBar } from './timebar';
import { CompareOverlay } from './compare-overlay';
import { ClosedTable } from './closed';
import type { ConnectionsDoc, GraphDiff, GraphDoc, SlotDiff, StatusEvent } from './types';

type ViewName = 'graph' | 'table' | 'diagram' | 'closed';
const VIEWS: ViewName[] = ['graph', 'table', 'diagram', 'closed'];

const model = new Model();
const graph = new GraphView(document.getElementById('view-graph')!, model);
const table = new TableView(document.getElementById('view-table')!, model);
const diagram = new DiagramView(document.getElementById('view-diagram')!, model);
const params = new URLSearchParams(location.search);
graph.forceFlush = params.has('bench');
graph.noLayout = params.has('nolayout');
// `?group=MODE` opens the map grouped so (as the Group selector would), whatever the default
const GROUP_MODES: readonly GroupMode[] = ['service', 'none', 'name', 'type', 'container', 'host'];
const groupParam = params.get('group') as GroupMode | null;
if (groupParam !== null && GROUP_MODES.includes(groupParam)) graph.setGrouping(groupParam);
if (params.has('bench')) (window as unknown as { __procnetDebug: unknown }).__procnetDebug = { graph, model };

let view: ViewName = 'graph';
/** The views that show /api/connections (the closed-connections view reads /api/flows). */
const connView = () => view === 'table' || view === 'diagram';
let paused = false;
let connDoc: ConnectionsDoc | null = null;
let connTimer = 0;
const liveEl = document.getElementById('live-status')!;
// Status line: with --p2p-only, how many edges to unknown owners are left out (not silence).
const hiddenEl = document.createElement('span');
hiddenEl.className = 'p2p-hidden';
hiddenEl.dataset.testid = 'p2p-hidden';
hiddenEl.hidden = true;
liveEl.before(hiddenEl);
function setHidden(n: number | undefined) {
  hiddenEl.hidden = !n;
  hiddenEl.textContent = n ? `${n} ${n === 1 ? 'edge' : 'edges'} to unknown owners hidden (--p2p-only)` : '';
  hiddenEl.title = n ? 'Sockets whose owner cannot be seen (another user, closed, another namespace); run without --p2p-only to see them' : '';
}
const perf = { firstBreakdown: {} as Record<string, number>, firstFrameMs: -1, firstFrameSinceNavMs: -1, firstDocParseMs: -1, updates: [] as PerfRecord[], resyncs: 0 };

graph.onSelect = (id) => renderPanel(graph, model, id);

// ---------- time bar: the past pauses live updates; Live resumes them ----------
const timebar = new TimeBar({
  showPast(doc, atMs) {
    paused = true;
    applyFull(doc, performance.now(), 0);
    setLive(`past · ${new Date(atMs).toISOString()}`, 'paused');
    if (connView()) void refreshConnections();
  },
  goLive() {
    paused = false;
    (document.getElementById('pause') as HTMLButtonElement).textContent = 'Pause';
    setLive('live', 'ok');
    void resync();
    if (connView()) void refreshConnections();
  },
  showChanges(changes, fromMs, toMs) { overlay.set(changes, fromMs, toMs); },
});
const overlay = new CompareOverlay(graph);
const closed = new ClosedTable(document.getElementById('view-closed')!, timebar);
// The past is unmistakable from the first moment it is chosen, before its documents arrive.
timebar.onChange = () => {
  closed.reload();
  if (timebar.atMs !== null) { paused = true; setLive(`past · ${new Date(timebar.atMs).toISOString()}`, 'paused'); }
};


// ---------- tabs ----------
function show(v: ViewName) {
  view = v;
  for (const name of VIEWS) {
    document.getElementById(`view-${name}`)!.hidden = name !== v;
    document.getElementById(`tab-${name}`)!.setAttribute('aria-selected', String(name === v));
  }
  graph.visible = v === 'graph';
  table.connections.visible = v === 'table';
  closed.setVisible(v === 'closed');
  if (v === 'graph') graph.draw();
  if (connView()) refreshConnections();
  if (location.hash !== '#' + v) history.replaceState(null, '', '#' + v);
}
document.querySelectorAll<HTMLButtonElement>('.tabs button').forEach((b) => b.addEventListener('click', () => show(b.dataset.view as ViewName)));
const initialView = location.hash.slice(1);
if (initialView === 'table' || initialView === 'diagram' || initialView === 'closed') show(initialView);

// ---------- connections (table + diagram) ----------
async function refreshConnections() {
  clearTimeout(connTimer);
  try {
    if (view === 'table') await refreshTable();
    else {
      const r = await fetch('/api/connections' + timebar.query(), { credentials: 'same-origin', cache: 'no-store' });
      if (r.ok) {
        connDoc = await r.json() as ConnectionsDoc;
        table.setData(connDoc);
        diagram.setData(connDoc);
      }
    }
  } catch { /* server gone: try again later */ }
  if (connView()) connTimer = window.setTimeout(refreshConnections, 2000);
}

/** The table view: the connections table pages itself; the listeners come whole only when the
 *  document is small enough for their badges (see refreshTable in table.ts). */
async function refreshTable() {
  const doc = await refreshTableData(table, timebar.atParam());
  if (doc) { connDoc = doc; diagram.setData(doc); }
}

// ---------- live graph ----------
function setLive(text: string, cls: string) { liveEl.textContent = text; liveEl.className = 'live ' + cls; }

function applyFull(doc: GraphDoc, t0: number, parseMs: number) {
  const first = model.seq < 0 && model.nodes.size === 0;
  const tm = performance.now();
  model.loadDoc(doc);
  setHidden(doc.p2pHiddenEdges);
  const tl = performance.now();
  graph.draw();
  const t1 = performance.now();
  if (first && perf.firstFrameMs < 0) {
    perf.firstBreakdown = { parseMs: parseMs, modelAndViewMs: tl - tm - graph.timings.seedMs, seedLayoutMs: graph.timings.seedMs, drawMs: t1 - tl, zoom: graph.zoom, ...graph.timings };
    perf.firstFrameMs = t1 - t0;
    perf.firstDocParseMs = parseMs;
    perf.firstFrameSinceNavMs = t1;
    setTimeout(() => void model.adj, 30); // build the adjacency index after the first frame
    // and give the document's edges the record shape, a chunk at a time (model.normalizeSome)
    const shape = () => { if (!model.normalizeSome(5000)) setTimeout(shape, 0); };
    setTimeout(shape, 40);
  } else perf.resyncs++;
}

let resyncing = false;
async function resync() {
  // a stream that sends `diffs` re-syncs by starting again: its `graph` event resets the slots
  if (slotStream && !paused) { reconnect(); return; }
  if (resyncing) return;
  resyncing = true;
  try {
    const t0 = performance.now();
    const r = await fetch('/api/graph', { credentials: 'same-origin', cache: 'no-store' });
    if (r.ok) {
      const doc = await r.json() as GraphDoc;
      if (!paused) applyFull(doc, t0, performance.now() - t0);
    }
  } catch { /* next event will tell */ } finally { resyncing = false; }
}

let es: EventSource | null = null;
let gotGraph = false;
/** the server sends `diffs` (slots, src/serve/diff_wire.rs); an older one ignores the ask */
let slotStream = false;
/** how the diffs came, and how often the stream started again for lost slots (test hook) */
const diffEvents = { diff: 0, diffs: 0, reconnects: 0 };
function reconnect() {
  diffEvents.reconnects++;
  es?.close();
  connect();
}
function connect() {
  es = new EventSource('/api/events?diff=slots&added=cols', { withCredentials: true });
  es.addEventListener('open', () => setLive(paused ? 'paused' : 'live', paused ? 'paused' : 'ok'));
  es.addEventListener('error', () => { if (!paused) setLive('reconnecting…', 'bad'); });
  es.addEventListener('graph', (ev) => {
    gotGraph = true;
    if (paused) return;
    const t0 = performance.now();
    const doc = JSON.parse((ev as MessageEvent).data) as GraphDoc;
    applyFull(doc, t0, performance.now() - t0);
    model.startSlots(doc);
    setTimeout(() => graph.indexSlots(), 60); // after the first frame
    setLive('live', 'ok');
  });
  es.addEventListener('diff', (ev) => {
    if (paused) return;
    const t0 = performance.now();
    const d = JSON.parse((ev as MessageEvent).data) as GraphDiff;
    const t1 = performance.now();
    if (!model.applyDiff(d)) { resync(); return; }
    diffEvents.diff++;
    shown(d, t0, t1);
  });
  es.addEventListener('diffs', (ev) => {
    slotStream = true;
    // while paused the diffs go by: the slots are lost, and resuming starts the stream again
    if (paused) return;
    const t0 = performance.now();
    const d = JSON.parse((ev as MessageEvent).data) as SlotDiff;
    const t1 = performance.now();
    if (!model.applySlotDiff(d)) { reconnect(); return; }
    diffEvents.diffs++;
    shown(d, t0, t1);
  });
  /** Draw the frame that shows an applied diff, and time it. */
  function shown(d: { seq: number; p2pHiddenEdges?: number }, t0: number, t1: number) {
    if (d.p2pHiddenEdges !== undefined) setHidden(d.p2pHiddenEdges);
    const t2 = performance.now();
    graph.draw(); // the one frame that shows this update
    const t3 = performance.now();
    const rec: PerfRecord = { seq: d.seq, parseMs: t1 - t0, applyMs: t2 - t1, viewMs: graph.lastChangeMs, drawMs: t3 - t2, totalMs: t3 - t0 };
    perf.updates.push(rec);
    if (perf.updates.length > 500) perf.updates.shift();
    requestAnimationFrame(() => { rec.frameMs = performance.now() - t0; });
  }
  es.addEventListener('status', (ev) => {
    const s = JSON.parse((ev as MessageEvent).data) as StatusEvent;
    const b = document.getElementById('banner')!;
    b.hidden = !s.rulesError;
    b.textContent = s.rulesError ? `Rules error: ${s.rulesError}` : '';
    const w = document.getElementById('warnings')!;
    w.hidden = !s.warnings?.length;
    w.innerHTML = '';
    for (const msg of s.warnings ?? []) { const d = document.createElement('div'); d.textContent = msg; w.appendChild(d); }
  });
}
connect();
// If the server never sends a graph event (no SSE, or a proxy that buffers it), fall back to
// polling the document; stops as soon as the event stream delivers.
setTimeout(() => {
  if (gotGraph) return;
  resync();
  const poll = window.setInterval(() => { if (gotGraph) clearInterval(poll); else if (!paused) resync(); }, 2000);
}, 3000);

// ---------- pause / resume ----------
const pauseBtn = document.getElementById('pause') as HTMLButtonElement;
pauseBtn.addEventListener('click', () => {
  paused = !paused;
  pauseBtn.textContent = paused ? 'Resume' : 'Pause';
  pauseBtn.setAttribute('aria-pressed', String(paused));
  setLive(paused ? 'paused' : 'live', paused ? 'paused' : 'ok');
  if (!paused) resync(); // catch up in one batch, positions kept
});

// ---------- keep the side panel fresh ----------
model.onChange(() => { if (graph.selectedId) renderPanel(graph, model, graph.selectedId); });

// ---------- read-only test hook ----------
const hook = {
  nodeIds: () => [...model.nodes.keys()],
  edgeIds: () => [...model.edges.keys()],
  edges: () => [...model.edges.values()].map((e) => ({ id: e.id, from: e.from, to: e.to, proto: e.proto, serverPort: e.serverPort, count: e.count })),
  node: (id: string) => { const n = model.nodes.get(id); return n ? JSON.parse(JSON.stringify(n)) : null; },
  findNodes: (pred: { pid?: number; name?: string }) => [...model.nodes.values()].filter((n) => (pred.pid === undefined || n.pid === pred.pid) && (pred.name === undefined || n.name === pred.name)).map((n) => n.id),
  viewNodeIds: () => [...graph.vnodes.keys()],
  viewEdgeIds: () => [...graph.vedges.keys()],
  get lastSeq() { return model.seq; },
  get diffEvents() { return { ...diffEvents }; },
  get view() { return view; },
  get paused() { return paused; },
  get atMs() { return timebar.atMs; },
  /** the moment whose documents are applied (atMs once they arrived), and how many past views were applied */
  get shownAtMs() { return timebar.shownMs; },
  get shownCount() { return timebar.shownCount; },
  get vanishedEdgeIds() { return timebar.changes?.vanishedEdges.map((e) => e.id) ?? []; },
  get timeRange() { return timebar.range ? { ...timebar.range } : null; },
  /** [oldestMs, newestMs] the time bar's strip spans */
  get historySpan() { const h = timebar.history; return h ? [h.oldestMs, h.newestMs] : null; },
  /** the compare overlay's marks as the last frame drew them (CSS px of the graph) */
  get compareMarks() { return overlay.drawn.map((m) => ({ ...m })); },
  get closedConnections() { return JSON.parse(JSON.stringify(closed.state)); },
  get layoutRunning() { return graph.layoutRunning; },
  get grouping() { return graph.grouping; },
  /** drawn edges with the width the last frame used (CSS px), the rates written on edges, the
   *  top-talkers rows, and a drawn node's group (members) and traffic */
  drawnEdges: () => graph.drawnEdges(),
  get rateLabels() { return graph.rateLabels; },
  /** the node labels the last frame drew (text, screen box in CSS px): none overlaps another */
  get labelBoxes() { return graph.labelBoxes; },
  get talkers() { return JSON.parse(JSON.stringify(graph.talkers.shown)); },
  get zoom() { return graph.zoom; },
  get groupedUpdates() { return { ...graph.groupedUpdates }; },
  /** moves the camera only: centres a drawn node (clear of the legend and panels) */
  centre: (id: string) => graph.focus(id),
  viewNode: (id: string) => { const v = graph.vnodes.get(id); return v ? { id: v.id, label: v.label, r: v.r, rate: v.rate ?? -1, members: v.group ? [...v.group.members] : null } : null; },
  position: (id: string) => { const n = graph.vnodes.get(id); return n ? { x: n.x, y: n.y } : null; },
  screenPosition: (id: string) => graph.screenPos(id),
  get connections() { return connDoc; },
  get connectionsTable() { return table.connections.state; },
  perf,
};
Object.defineProperty(window, '__procnet', { value: Object.freeze(hook), writable: false });
