import type { GEdge, GNode, GraphDiff, GraphDoc } from './types';

/** A normalised change set, as applied to the model. */
export interface Change {
  addedNodes: GNode[];
  updatedNodes: GNode[];
  removedNodes: GNode[];
  addedEdges: GEdge[];
  updatedEdges: GEdge[];
  removedEdges: GEdge[];
  full: boolean;
}

/** The raw graph as the server describes it, plus an adjacency index. */
export class Model {
  nodes = new Map<string, GNode>();
  edges = new Map<string, GEdge>();
  /** node id -> ids of edges touching it (built lazily: not needed for the first frame) */
  private adjMap: Map<string, Set<string>> | null = null;
  get adj(): Map<string, Set<string>> {
    if (!this.adjMap) {
      this.adjMap = new Map();
      for (const e of this.edges.values()) this.link(e);
    }
    return this.adjMap;
  }
  seq = -1;
  timestamp = '';
  private listeners: ((c: Change) => void)[] = [];

  onChange(fn: (c: Change) => void) { this.listeners.push(fn); }

  private link(e: GEdge) {
    const adj = this.adjMap;
    if (!adj) return;
    let s = adj.get(e.from);
    if (!s) adj.set(e.from, (s = new Set()));
    s.add(e.id);
    let t = adj.get(e.to);
    if (!t) adj.set(e.to, (t = new Set()));
    t.add(e.id);
  }
  private unlink(e: GEdge) {
    const adj = this.adjMap;
    if (!adj) return;
    adj.get(e.from)?.delete(e.id);
    adj.get(e.to)?.delete(e.id);
  }

  /** Apply a server diff. Returns false when it does not apply (base mismatch). */
  applyDiff(d: GraphDiff): boolean {
    if (d.base !== this.seq) return false;
    this.commit(d, false);
    return true;
  }

  /** Replace the whole graph, expressed as a diff against what we have so positions survive. */
  loadDoc(doc: GraphDoc) {
    if (this.nodes.size === 0 && this.edges.size === 0) {
      this.commit({ seq: doc.seq, base: this.seq, timestamp: doc.timestamp, addedNodes: doc.nodes, updatedNodes: [], removedNodes: [], addedEdges: doc.edges, updatedEdges: [], removedEdges: [] }, true);
      return;
    }
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
      // Edges left dangling by a removed node go too.
      const s = this.adj.get(id);
      if (s) for (const eid of [...s]) {
        const e = this.edges.get(eid);
        if (e) { this.edges.delete(eid); this.unlink(e); c.removedEdges.push(e); }
      }
      this.adj.delete(id);
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
