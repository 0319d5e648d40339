// The `slots` encoding of the live diff (`/api/events?diff=slots`, SSE event `diffs`), for the
// fake server and bench/ui.mjs: a port of src/serve/diff_wire.rs (`SlotEncoder`), kept equal to
// it by test/unit/diff-wire.test.mjs, which encodes the server's own fixture
// (test/fixtures/diff-wire.json, written by the Rust tests) and compares the output.
// One encoder per event stream: slots are given by a rule both ends follow (docs/contract.md).

class SlotTable {
  constructor(ids) {
    this.slotOf = new Map();
    this.free = [];
    this.len = 0;
    for (const id of ids) this.slotOf.set(id, this.len++);
  }
  remove(id) {
    const s = this.slotOf.get(id);
    if (s === undefined) throw new Error(`unknown id ${id}`);
    this.slotOf.delete(id);
    this.free.push(s);
    return s;
  }
  add(id) {
    if (this.slotOf.has(id)) throw new Error(`duplicate id ${id}`);
    const s = this.free.length ? this.free.pop() : this.len++;
    this.slotOf.set(id, s);
    return s;
  }
  get(id) {
    const s = this.slotOf.get(id);
    if (s === undefined) throw new Error(`unknown id ${id}`);
    return s;
  }
}

/** What identifies an edge's states and sockets (the server hashes the same fields). */
const coldKey = (e) => JSON.stringify([Object.entries(e.states ?? {}).sort(), (e.sockets ?? []).map((x) => [x.client, x.server, x.state])]);

export class SlotEncoder {
  /** @param doc the `graph` event the stream starts with (a GraphDoc)
   *  @param opts.addedCols the added edges as columns (`addedEdgeCols`, asked by `added=cols`) */
  constructor(doc, { addedCols = false } = {}) {
    this.addedCols = addedCols;
    this.seq = doc.seq;
    this.nodes = new SlotTable(doc.nodes.map((n) => n.id));
    this.edges = new SlotTable(doc.edges.map((e) => e.id));
    /** per edge slot: the states and sockets the client has (as JSON) */
    this.cold = doc.edges.map(coldKey);
  }

  /** A GraphDiff in slots (a SlotDiff); throws when it does not follow this stream. */
  encode(d) {
    if (d.base !== this.seq) throw new Error(`diff from seq ${d.base}, the stream is at seq ${this.seq}`);
    const out = { seq: d.seq, base: d.base, timestamp: d.timestamp };
    if (d.p2pHiddenEdges !== undefined && d.p2pHiddenEdges !== null) out.p2pHiddenEdges = d.p2pHiddenEdges;
    out.removedNodes = d.removedNodes.map((id) => this.nodes.remove(id));
    out.removedEdges = d.removedEdges.map((id) => this.edges.remove(id));
    for (const n of d.addedNodes) this.nodes.add(n.id);
    out.addedNodes = d.addedNodes;
    out.updatedNodes = d.updatedNodes;
    out.updatedNodeSlots = d.updatedNodes.map((n) => this.nodes.get(n.id));
    out.addedEdges = this.addedCols ? [] : d.addedEdges;
    if (this.addedCols) {
      const a = { id: [], proto: [], serverPort: [], count: [], txBytes: [], rxBytes: [], txRate: [], rxRate: [], rttMs: [], retransmits: [], states: [], sockets: [] };
      for (const e of d.addedEdges) {
        a.id.push(e.id); a.proto.push(e.proto); a.serverPort.push(e.serverPort); a.count.push(e.count);
        for (const k of ['txBytes', 'rxBytes', 'txRate', 'rxRate', 'rttMs', 'retransmits']) a[k].push(e[k] ?? null);
        a.states.push(e.states ?? {}); a.sockets.push(e.sockets ?? []);
      }
      out.addedEdgeCols = a;
    }
    out.addedEdgeEnds = [];
    for (const e of d.addedEdges) {
      out.addedEdgeEnds.push(this.nodes.get(e.from), this.nodes.get(e.to));
      this.cold[this.edges.add(e.id)] = coldKey(e);
    }
    const c = { slot: [], count: [], txBytes: [], rxBytes: [], txRate: [], rxRate: [], rttMs: [], retransmits: [], cold: [], states: [], sockets: [] };
    for (const e of d.updatedEdges) {
      const s = this.edges.get(e.id);
      c.slot.push(s);
      c.count.push(e.count);
      for (const k of ['txBytes', 'rxBytes', 'txRate', 'rxRate', 'rttMs', 'retransmits']) c[k].push(e[k] ?? null);
      // states and sockets only when they differ from what the client has
      const key = coldKey(e);
      if (this.cold[s] !== key) {
        this.cold[s] = key;
        c.cold.push(c.slot.length - 1);
        c.states.push(e.states ?? {});
        c.sockets.push(e.sockets ?? []);
      }
    }
    out.updatedEdges = c;
    this.seq = d.seq;
    return out;
  }
}

/** Whether an `/api/events` URL asks for the slots encoding. */
export const wantsSlots = (url) => new URL(url, 'http://x').searchParams.getAll('diff').includes('slots');
/** Whether it also asks for the added edges as columns (`added=cols`). */
export const wantsAddedCols = (url) => new URL(url, 'http://x').searchParams.getAll('added').includes('cols');
