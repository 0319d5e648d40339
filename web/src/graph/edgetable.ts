// The view's drawn edges: a list in insertion order (what drawing, search, hit-testing and
// layout iterate) with an index by id that is built only when something asks by id. An update
// from the event stream finds its edges by slot (GraphView.bySlot), so at 50,000 edges the
// ≈ 4,400 edges added and removed per update cost no hash operation on a 50,000-entry map of
// id strings (≈ 1 µs each there, most of it cache misses); the index is dropped for such an
// update (`dropIndex`) and built again, once, by the next caller that asks by id.
import type { REdge } from './scene.ts';

export class EdgeTable implements Iterable<[string, REdge]> {
  /** the edges in insertion order, with holes (undefined) where one was deleted */
  private list: (REdge | undefined)[] = [];
  private holes = 0;
  /** id → edge; null until asked for (or after `dropIndex`), then kept up to date */
  private byId: Map<string, REdge> | null = null;

  get size(): number { return this.list.length - this.holes; }

  private index(): Map<string, REdge> {
    if (this.byId) return this.byId;
    const m = new Map<string, REdge>();
    for (const e of this.list) if (e) m.set(e.id, e);
    return (this.byId = m);
  }

  get(id: string): REdge | undefined { return this.index().get(id); }
  has(id: string): boolean { return this.index().has(id); }

  /** Stop keeping the index by id (the next lookup by id builds it again). */
  dropIndex() { this.byId = null; }

  /** Add `v` (its id must not be in the table: the callers add only ids they do not draw). */
  add(v: REdge) {
    // (no frame drawn for long, e.g. another view shown: `values` would close them)
    if (this.holes > 1024 && this.holes * 2 > this.list.length) this.compact();
    v.li = this.list.length;
    this.list.push(v);
    this.byId?.set(v.id, v);
  }

  /** Take `v` out; false when it is not in the table. */
  delete(v: REdge): boolean {
    const i = v.li;
    if (i < 0 || this.list[i] !== v) return false;
    this.list[i] = undefined;
    this.holes++;
    v.li = -1;
    if (this.byId?.get(v.id) === v) this.byId.delete(v.id);
    return true;
  }

  /** Close the holes (the order stays). */
  private compact() {
    const l = this.list;
    let k = 0;
    for (let i = 0; i < l.length; i++) {
      const e = l[i];
      if (e) { e.li = k; l[k++] = e; }
    }
    l.length = k;
    this.holes = 0;
  }

  /** The edges in insertion order (an array iterator: the per-frame loops stay fast). Deleting
   *  while iterating leaves a hole the loop would see: such a caller iterates a copy. */
  values(): IterableIterator<REdge> {
    if (this.holes) this.compact();
    return (this.list as REdge[]).values();
  }
  *keys(): IterableIterator<string> { for (const e of this.values()) yield e.id; }
  *entries(): IterableIterator<[string, REdge]> { for (const e of this.values()) yield [e.id, e]; }
  [Symbol.iterator](): IterableIterator<[string, REdge]> { return this.entries(); }
}
