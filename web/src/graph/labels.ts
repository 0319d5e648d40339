// Node label placement without overlaps: greedy by priority over a coarse occupancy grid. Two
// same-named processes side by side used to print "python3 · 30060python3 · 30011" on top of
// each other; now the less important label is left out (its node still has a tooltip). Pure:
// no canvas, node tests call it.

/** A label that wants to be drawn: its box in screen CSS px (`x`, `y` top-left) and priority. */
export interface LabelCand {
  id: string;
  text: string;
  x: number; y: number; w: number; h: number;
  /** higher first */
  priority: number;
  /** hovered or selected: drawn whatever it overlaps */
  force?: boolean;
}

/** A label as drawn. */
export interface LabelBox { id: string; text: string; x: number; y: number; w: number; h: number }

/** Grid cell size in CSS px: about one label height, several per label width. */
const CELL = 24;

const overlaps = (a: LabelBox, b: LabelBox, pad: number) =>
  a.x < b.x + b.w + pad && b.x < a.x + a.w + pad && a.y < b.y + b.h + pad && b.y < a.y + a.h + pad;

/** The labels to draw, at most `budget` of them: forced ones first, then by priority (ties by
 *  id, so a frame and the next agree); a label is skipped when its box (grown by `pad` px)
 *  overlaps one already placed. The grid covers the W×H screen; boxes beyond it share its border
 *  cells, which keeps the lookup exact. Cost: O(c log c) for the sort plus the few cells a
 *  box covers, for c candidates. */
export function placeLabels(cands: LabelCand[], W: number, H: number, budget = Infinity, pad = 2): LabelBox[] {
  const order = cands.slice().sort((a, b) => Number(!!b.force) - Number(!!a.force) || b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const gw = Math.max(1, Math.ceil(W / CELL)), gh = Math.max(1, Math.ceil(H / CELL));
  const grid: (LabelBox[] | undefined)[] = new Array(gw * gh);
  const cx = (x: number) => Math.min(gw - 1, Math.max(0, Math.floor(x / CELL)));
  const cy = (y: number) => Math.min(gh - 1, Math.max(0, Math.floor(y / CELL)));
  const out: LabelBox[] = [];
  for (const c of order) {
    if (out.length >= budget && !c.force) break;
    const box: LabelBox = { id: c.id, text: c.text, x: c.x, y: c.y, w: c.w, h: c.h };
    const i0 = cx(box.x - pad), i1 = cx(box.x + box.w + pad), j0 = cy(box.y - pad), j1 = cy(box.y + box.h + pad);
    let free = true;
    if (!c.force) {
      scan: for (let j = j0; j <= j1; j++) for (let i = i0; i <= i1; i++) {
        const cell = grid[j * gw + i];
        if (cell) for (const o of cell) if (overlaps(box, o, pad)) { free = false; break scan; }
      }
    }
    if (!free) continue;
    out.push(box);
    for (let j = j0; j <= j1; j++) for (let i = i0; i <= i1; i++) (grid[j * gw + i] ??= []).push(box);
  }
  return out;
}

/** Whether any two boxes overlap (tests; O(n²)). */
export function anyOverlap(boxes: LabelBox[]): [LabelBox, LabelBox] | null {
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) if (overlaps(boxes[i], boxes[j], 0)) return [boxes[i], boxes[j]];
  return null;
}
