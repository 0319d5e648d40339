// The model's edges by id, and by the event stream's slots while they are live. At 10,000 nodes
// / 50,000 edges an update of 5 % churn adds and removes ≈ 4,400 edges: as hash operations on a
// 50,000-entry map of id strings they cost ≈ 1 µs each (most of it cache misses), a quarter of
// the model's part of the update. While the slots are live the edges are kept by slot (an
// array store per edge added or removed), and the map by id is built only when something asks
// by id (the side panel, a test); it is kept up to date while it is asked for between updates,
// and dropped by an update that finds it was not (`startUpdate`).
import type { GEdge } from './types';

export class ModelEdges implements Iterable<[string, GEdge]> {
  /** id → edge; in slot mode null until asked for (then kept up to date until `startUpdate`
   *  finds it unused) */
  private byId: Map<string, GEdge> | null = new Map();
  /** slot mode: the edge the model holds in each edge slot of the stream (undefined: none; a
   *  slot can hold an edge the model dropped as dangling, which is not here) */
  private held: (GEdge | undefined)[] | null = null;
  private count = 0;
  /** the index by id was read since the last `startUpdate` */
  private asked = false;

  get size(): number { return this.held ? this.count : this.byId!.size; }

  private index(): Map<string, GEdge> {
    this.asked = true;
    if (this.byId) return this.byId;
    const m = new Map<string, GEdge>();
    const h = this.held!;
    for (let s = 0; s < h.length; s++) {
      const e = h[s];
      if (!e) continue;
      const size = m.size;
      m.set(e.id, e);
      // an id in two slots (the stream never sends one, docs/contract.md): the later one holds
      if (m.size === size) this.dropOlder(e, s);
    }
    return (this.byId = m);
  }

  /** Another slot before `s` holds an edge with `e`'s id: it is not the model's any more. */
  private dropOlder(e: GEdge, s: number) {
    const h = this.held!;
    for (let k = 0; k < s; k++) if (h[k] !== undefined && h[k]!.id === e.id) { h[k] = undefined; this.count--; return; }
  }

  get(id: string): GEdge | undefined { return this.index().get(id); }
  has(id: string): boolean { return this.index().has(id); }

  values(): IterableIterator<GEdge> { return this.held ? heldValues(this.held) : this.byId!.values(); }
  *keys(): IterableIterator<string> { for (const e of this.values()) yield e.id; }
  *entries(): IterableIterator<[string, GEdge]> { for (const e of this.values()) yield [e.id, e]; }
  [Symbol.iterator](): IterableIterator<[string, GEdge]> { return this.entries(); }

  // ---- by id (the plain diffs and whole documents): the slots go first ----
  set(id: string, e: GEdge): this { this.endSlots(); this.byId!.set(id, e); return this; }
  delete(id: string): boolean { this.endSlots(); return this.byId!.delete(id); }

  // ---- by slot ----
  /** The stream's slots start: `bySlot[s]` is the edge in slot `s`; those the model holds stay
   *  (the others were dropped as dangling), the rest go. */
  startSlots(bySlot: readonly (GEdge | undefined)[]) {
    const m = this.index();
    const h: (GEdge | undefined)[] = new Array(bySlot.length);
    let n = 0;
    for (let s = 0; s < bySlot.length; s++) {
      const e = bySlot[s];
      if (e && m.get(e.id) === e) { h[s] = e; n++; }
    }
    if (n !== m.size) { const keep = new Map<string, GEdge>(); for (const e of h) if (e) keep.set(e.id, e); this.byId = keep; }
    this.held = h;
    this.count = n;
    this.asked = false;
  }

  /** The slots are lost: the edges are kept by id only from now on. */
  endSlots() {
    if (!this.held) return;
    this.index();
    this.held = null;
    this.count = 0;
  }

  /** A slot update begins: the index by id goes unless it was read since the last one. */
  startUpdate() {
    if (this.held && !this.asked) this.byId = null;
    this.asked = false;
  }

  /** Slot `s` holds `e` no more; false when the model did not hold it there. */
  takeAt(s: number, e: GEdge): boolean {
    const h = this.held!;
    if (h[s] !== e) return false;
    h[s] = undefined;
    this.count--;
    if (this.byId?.get(e.id) === e) this.byId.delete(e.id);
    return true;
  }

  /** Slot `s` holds `e`. Returns the edge it replaces when the model already held one with its
   *  id (seen only while the index by id is kept: the stream never sends one). */
  putAt(s: number, e: GEdge): GEdge | undefined {
    const h = this.held!;
    let old: GEdge | undefined;
    if (this.byId) {
      old = this.byId.get(e.id);
      this.byId.set(e.id, e);
      if (old) { const k = h.indexOf(old); if (k >= 0) { h[k] = undefined; this.count--; } }
    }
    if (h[s] !== undefined) this.count--;
    h[s] = e;
    this.count++;
    return old;
  }

  /** `rec` stands for `old` (same id), in slot `s` (-1: not by slot). */
  replace(old: GEdge, rec: GEdge, s: number) {
    if (this.held) {
      if (s < 0 || this.held[s] !== old) return;
      this.held[s] = rec;
      if (this.byId?.get(old.id) === old) this.byId.set(old.id, rec);
    } else if (this.byId!.get(old.id) === old) this.byId!.set(old.id, rec);
  }

  /** Whether the model holds `e` (in slot `s`, when by slot). */
  holds(e: GEdge, s: number): boolean {
    return this.held ? s >= 0 && this.held[s] === e : this.byId!.get(e.id) === e;
  }
}

function* heldValues(h: readonly (GEdge | undefined)[]): IterableIterator<GEdge> {
  for (let s = 0; s < h.length; s++) { const e = h[s]; if (e) yield e; }
}
