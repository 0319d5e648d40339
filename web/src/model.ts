import type { GEdge, GNode, GraphDiff, GraphDoc, SlotDiff } from './types';
import { ModelEdges } from './model-edges.ts';

/** A normalised change set, as applied to the model. */
export interface Change {
  addedNodes: GNode[];
  updatedNodes: GNode[];
  removedNodes: GNode[];
  addedEdges: GEdge[];
  updatedEdges: GEdge[];
  removedEdges: GEdge[];
  full: boolean;
  /** From a `diffs` event: the edges it updated in place, by column (a view reads the new
   *  counters and slots from here, with no lookup by id). */
  updatedCols?: UpdatedColumns;
  /** From a `diffs` event: the slot of each removed edge */
  removedEdgeSlots?: number[];
  /** From a `diffs` event: the slot of each added edge (a view indexes what it draws by slot) */
  addedEdgeSlots?: number[];
}

/** The edge as the model keeps it: every field present, in one order, so that all edges share
 *  one shape and the code that reads them (or updates them in place, `applySlotDiff`) stays on
 *  V8's fast path; edges parsed from JSON come in as many shapes as there are optional fields.
 *  Lists every field of `GEdge` (test/unit/diff-wire.test.mjs checks it against the server's). */
export function edgeRecord(e: GEdge): GEdge {
  return {
    id: e.id, from: e.from, to: e.to, proto: e.proto, serverPort: e.serverPort, count: e.count,
    states: e.states, sockets: e.sockets, txBytes: e.txBytes, rxBytes: e.rxBytes,
    txRate: e.txRate, rxRate: e.rxRate, rttMs: e.rttMs, retransmits: e.retransmits,
  };
}

/** The columns of a `diffs` event's updated edges, for `Change.updatedEdges` from `start` on. */
export interface UpdatedColumns { start: number; cols: SlotDiff['updatedEdges'] }

/** The `diffs` event's slots on the client side (src/serve/diff_wire.rs, docs/contract.md):
 *  what each slot holds and the free list, for nodes and for edges. */
class Slots<T> {
  at: (T | undefined)[] = [];
  free: number[] = [];
  reset(items: T[]) { this.at = items.slice(); this.free = []; }
  take(x: T): number {
    const s = this.free.length ? this.free.pop()! : this.at.length;
    this.at[s] = x;
    return s;
  }
  /** what slot `s` held (now free), undefined when it held nothing */
  release(s: number): T | undefined {
    const x = this.at[s];
    if (x === undefined) return undefined;
    this.at[s] = undefined;
    this.free.push(s);
    return x;
  }
}

/** The raw graph as the server describes it, plus an adjacency index. */
export class Model {
  nodes = new Map<string, GNode>();
  /** by id, and by the stream's slots while they are live (model-edges.ts) */
  readonly edges = new ModelEdges();
  /** node id -> ids of edges touching it (built lazily: not needed for the first frame) */
  private adjMap: Map<string, Set<string>> | null = null;
  get adj(): Map<string, Set<string>> {
    if (!this.adjMap) {
      this.adjMap = new Map();
      this.queued.length = 0; this.queuedAdd.length = 0;
      for (const e of this.edges.values()) this.linkNow(this.adjMap, e);
    }
    // the changes since the last read, in order (an update does not pay for them unless
    // something reads the adjacency: the side panel of a selected node)
    const adj = this.adjMap, q = this.queued, add = this.queuedAdd;
    for (let i = 0; i < q.length; i++) {
      const e = q[i];
      if (add[i]) this.linkNow(adj, e);
      else { adj.get(e.from)?.delete(e.id); adj.get(e.to)?.delete(e.id); }
    }
    q.length = 0; add.length = 0;
    return adj;
  }
  /** adjacency changes not applied yet: the edge, and whether it was linked or unlinked */
  private queued: GEdge[] = [];
  private queuedAdd: boolean[] = [];
  seq = -1;
  timestamp = '';
  private nodeSlots = new Slots<GNode>();
  private edgeSlots = new Slots<GEdge>();
  /** the slots follow the event stream: set by `startSlots` from the stream's `graph` event,
   *  lost with any other document or a plain diff (the caller then reconnects the stream) */
  private slotsLive = false;
  private listeners: ((c: Change) => void)[] = [];
  /** The first document's edges, in the shape JSON.parse gave them: `normalizeSome` gives them
   *  the record shape (`edgeRecord`) after the first frame, so that frame does not pay for a
   *  copy of every edge (at 2,000 / 10,000 the copy and the collection it brings on were most of
   *  the 15–25 ms the first frame lost to the compact diff's change). `normIdx`: the next one. */
  private unshaped: GEdge[] | null = null;
  private normIdx = 0;
  private replacedListeners: ((old: GEdge, rec: GEdge, slot: number) => void)[] = [];

  onChange(fn: (c: Change) => void) { this.listeners.push(fn); }
  /** `fn(old, rec, slot)`: edge `old` is now the object `rec` (same fields, record shape), in
   *  the event stream's edge slot `slot` (-1: none). */
  onReplace(fn: (old: GEdge, rec: GEdge, slot: number) => void) { this.replacedListeners.push(fn); }

  /** Give up to `max` of the first document's edges the record shape; true when none is left. */
  normalizeSome(max = Infinity): boolean {
    const q = this.unshaped;
    if (!q) return true;
    const at = this.edgeSlots.at;
    let i = this.normIdx;
    for (const end = Math.min(q.length, i + max); i < end; i++) {
      const e = q[i];
      // the document's `i`-th edge took slot `i` (startSlots); the slot may hold another by now
      const slot = this.slotsLive && at[i] === e ? i : -1;
      if (!this.edges.holds(e, slot)) continue; // gone, or replaced by a diff
      const r = edgeRecord(e);
      this.edges.replace(e, r, slot);
      q[i] = r;
      if (at[i] === e) at[i] = r;
      for (const fn of this.replacedListeners) fn(e, r, slot);
    }
    this.normIdx = i;
    if (i < q.length) return false;
    this.unshaped = null;
    return true;
  }

  private linkNow(adj: Map<string, Set<string>>, e: GEdge) {
    let s = adj.get(e.from);
    if (!s) adj.set(e.from, (s = new Set()));
    s.add(e.id);
    let t = adj.get(e.to);
    if (!t) adj.set(e.to, (t = new Set()));
    t.add(e.id);
  }
  private link(e: GEdge) { this.queue(e, true); }
  private unlink(e: GEdge) { this.queue(e, false); }
  private queue(e: GEdge, add: boolean) {
    if (!this.adjMap) return; // built from the edges when first read
    // never read for long (no panel open): building it again is cheaper than the queue
    if (this.queued.length > this.edges.size / 2 + 1000) { this.adjMap = null; this.queued.length = 0; this.queuedAdd.length = 0; return; }
    this.queued.push(e); this.queuedAdd.push(add);
  }

  /** Apply a server diff. Returns false when it does not apply (base mismatch). */
  applyDiff(d: GraphDiff): boolean {
    if (d.base !== this.seq) return false;
    this.endSlots();
    d = { ...d, addedEdges: d.addedEdges.map(edgeRecord), updatedEdges: d.updatedEdges.map(edgeRecord) };
    this.commit(d, false);
    return true;
  }

  /** What each edge slot of the event stream holds (empty while the slots are lost). */
  get slotEdges(): readonly (GEdge | undefined)[] { return this.slotsLive ? this.edgeSlots.at : []; }

  /** The event stream's `graph` event was just loaded (`loadDoc`): its order gives the slots. */
  startSlots(doc: GraphDoc) {
    this.nodeSlots.reset(doc.nodes);
    this.edgeSlots.reset(doc.edges);
    this.edges.startSlots(doc.edges);
    this.slotsLive = true;
  }

  /** The slots are lost (another document, a plain diff, a `diffs` event that does not apply). */
  private endSlots() {
    this.slotsLive = false;
    this.edges.endSlots();
  }

  /** Apply a `diffs` event. Returns false, having changed nothing or only slots, when it does
   *  not apply (base mismatch, slots lost or not what the stream says): the caller reconnects. */
  applySlotDiff(d: SlotDiff): boolean {
    if (!this.slotsLive || d.base !== this.seq) return false;
    const ns = this.nodeSlots, es = this.edgeSlots, edges = this.edges;
    const fail = () => { this.endSlots(); return false; };
    // check before changing anything: every slot named holds something
    for (const s of d.removedNodes) if (ns.at[s] === undefined) return fail();
    for (const s of d.removedEdges) if (es.at[s] === undefined) return fail();
    for (const s of d.updatedNodeSlots) if (ns.at[s] === undefined) return fail();
    const u = d.updatedEdges;
    for (const s of u.slot) if (es.at[s] === undefined) return fail();
    for (const k of u.cold) if (!(k < u.slot.length)) return fail();
    const ac = d.addedEdgeCols;
    if (d.addedEdgeEnds.length !== 2 * (d.addedEdges.length + (ac ? ac.id.length : 0))) return fail();
    const c: Change = {
      addedNodes: [], updatedNodes: [], removedNodes: [],
      addedEdges: [], updatedEdges: [], removedEdges: [], full: false,
    };
    const rs: number[] = c.removedEdgeSlots = [];
    const as: number[] = c.addedEdgeSlots = [];
    edges.startUpdate();
    for (const s of d.removedEdges) {
      const e = es.release(s)!;
      if (!edges.takeAt(s, e)) continue; // dropped as dangling before
      this.unlink(e); c.removedEdges.push(e); rs.push(s);
    }
    for (const s of d.removedNodes) {
      const n = ns.release(s)!;
      if (!this.nodes.delete(n.id)) continue;
      c.removedNodes.push(n);
      // (no edge is left dangling: the stream's diffs list every edge that goes, and the
      // adjacency is not read here, so the update does not pay for it)
    }
    for (const n of d.addedNodes) {
      ns.take(n);
      const size = this.nodes.size;
      this.nodes.set(n.id, n);
      (this.nodes.size > size ? c.addedNodes : c.updatedNodes).push(n);
    }
    d.updatedNodes.forEach((n, i) => {
      ns.at[d.updatedNodeSlots[i]] = n;
      if (this.nodes.has(n.id)) c.updatedNodes.push(n); else c.addedNodes.push(n);
      this.nodes.set(n.id, n);
    });
    const ends = d.addedEdgeEnds;
    /** the `i`-th added edge (whole, or from the columns), its slot taken */
    const added = (e: GEdge, i: number) => {
      const f = ns.at[ends[2 * i]], t = ns.at[ends[2 * i + 1]];
      const slot = es.take(e);
      if (!f || !t) return; // never draw a dangling edge (the slot is the stream's all the same)
      // the ends' own strings: later lookups by them find a hashed, identical key
      e.from = f.id; e.to = t.id;
      if (edges.putAt(slot, e) === undefined) { c.addedEdges.push(e); as.push(slot); this.link(e); return; }
      // an id the stream had not removed (it never sends one): the adjacency is built again
      c.updatedEdges.push(e);
      this.adjMap = null;
    };
    const na = d.addedEdges.length;
    for (let i = 0; i < na; i++) added(edgeRecord(d.addedEdges[i]), i);
    const none = <T>(x: T | null) => (x === null ? undefined : x);
    // as columns (`added=cols`): each edge built once, in the record's shape (no parsed object
    // per edge to copy); the ends are set from their slots
    if (ac) for (let i = 0; i < ac.id.length; i++) {
      added({
        id: ac.id[i], from: '', to: '', proto: ac.proto[i], serverPort: ac.serverPort[i], count: ac.count[i],
        states: ac.states[i], sockets: ac.sockets[i], txBytes: none(ac.txBytes[i]), rxBytes: none(ac.rxBytes[i]),
        txRate: none(ac.txRate[i]), rxRate: none(ac.rxRate[i]), rttMs: none(ac.rttMs[i]), retransmits: none(ac.retransmits[i]),
      }, na + i);
    }
    // updated edges: the counters change in place (no object per edge, no lookup by id)
    c.updatedCols = { start: c.updatedEdges.length, cols: u };
    for (let i = 0; i < u.slot.length; i++) {
      const e = es.at[u.slot[i]]!;
      e.count = u.count[i];
      e.txBytes = none(u.txBytes[i]); e.rxBytes = none(u.rxBytes[i]);
      e.txRate = none(u.txRate[i]); e.rxRate = none(u.rxRate[i]);
      e.rttMs = none(u.rttMs[i]); e.retransmits = none(u.retransmits[i]);
      c.updatedEdges.push(e);
    }
    // states and sockets only of the edges whose own changed (the others keep theirs)
    for (let k = 0; k < u.cold.length; k++) {
      const e = es.at[u.slot[u.cold[k]]]!;
      e.states = u.states[k];
      e.sockets = u.sockets[k];
    }
    this.seq = d.seq;
    this.timestamp = d.timestamp;
    for (const fn of this.listeners) fn(c);
    return true;
  }

  /** Edges left dangling by a removed node go too. */
  private dropDangling(id: string, c: Change) {
    const s = this.adj.get(id);
    if (s) for (const eid of [...s]) {
      const e = this.edges.get(eid);
      if (e) { this.edges.delete(eid); this.unlink(e); c.removedEdges.push(e); }
    }
    this.adj.delete(id);
  }

  /** Replace the whole graph, expressed as a diff against what we have so positions survive. */
  loadDoc(doc: GraphDoc) {
    this.endSlots();
    this.normalizeSome(); // (the last document's, if any are left)
    const de = doc.edges;
    if (this.nodes.size === 0 && this.edges.size === 0) {
      // the first document: its edges get the record shape after the first frame (normalizeSome)
      this.unshaped = de; this.normIdx = 0;
      this.commit({ seq: doc.seq, base: this.seq, timestamp: doc.timestamp, addedNodes: doc.nodes, updatedNodes: [], removedNodes: [], addedEdges: doc.edges, updatedEdges: [], removedEdges: [] }, true);
      return;
    }
    // (in the document itself: `startSlots` gives its edges their slots)
    for (let i = 0; i < de.length; i++) de[i] = edgeRecord(de[i]);
    const d: GraphDiff = {
      seq: doc.seq, base: this.seq, timestamp: doc.timestamp,
      addedNodes: [], updatedNodes: [], removedNodes: [],
      addedEdges: [], updatedEdges: [], removedEdges: [],
    };
    const seenN = new Set<string>();
    for (const n of doc.nodes) {
      seenN.add(n.id);
      (this.nodes.has(n.id) ? d.updatedNodes : d.addedNodes).push(n);
    }
    for (const id of this.nodes.keys()) if (!seenN.has(id)) d.removedNodes.push(id);
    const seenE = new Set<string>();
    for (const e of doc.edges) {
      seenE.add(e.id);
      (this.edges.has(e.id) ? d.updatedEdges : d.addedEdges).push(e);
    }
    for (const id of this.edges.keys()) if (!seenE.has(id)) d.removedEdges.push(id);
    this.commit(d, true);
  }

  private commit(d: GraphDiff, full: boolean) {
    const c: Change = {
      addedNodes: [], updatedNodes: [], removedNodes: [],
      addedEdges: [], updatedEdges: [], removedEdges: [], full,
    };
    for (const id of d.removedEdges) {
      const e = this.edges.get(id);
      if (!e) continue;
      this.edges.delete(id); this.unlink(e); c.removedEdges.push(e);
    }
    for (const id of d.removedNodes) {
      const n = this.nodes.get(id);
      if (!n) continue;
      this.nodes.delete(id); c.removedNodes.push(n);
      this.dropDangling(id, c);
    }
    // (one map operation per item, not two: set, then see whether the map grew)
    for (const n of d.addedNodes) {
      const size = this.nodes.size;
      this.nodes.set(n.id, n);
      (this.nodes.size > size ? c.addedNodes : c.updatedNodes).push(n);
    }
    for (const n of d.updatedNodes) {
      if (this.nodes.has(n.id)) c.updatedNodes.push(n); else c.addedNodes.push(n);
      this.nodes.set(n.id, n);
    }
    for (const list of [d.addedEdges, d.updatedEdges]) for (const e of list) {
      if (!this.nodes.has(e.from) || !this.nodes.has(e.to)) continue; // never draw a dangling edge
      // the old edge matters only to relink the adjacency, which is built lazily
      const old = this.adjMap ? this.edges.get(e.id) : undefined;
      const size = this.edges.size;
      this.edges.set(e.id, e);
      if (this.edges.size > size) { c.addedEdges.push(e); this.link(e); continue; }
      c.updatedEdges.push(e);
      if (!old) continue;
      // Most updates change counters, not ends: the adjacency (keyed by id) is already right.
      if (old.from !== e.from || old.to !== e.to) { this.unlink(old); this.link(e); }
    }
    this.seq = d.seq;
    this.timestamp = d.timestamp;
    for (const fn of this.listeners) fn(c);
  }
}
