// Input: the toolbar's controls and the canvas's pointer, wheel and double-click handling.
// It turns events into calls on the view; it holds no state beyond the current drag.
import type { GraphView } from '../graph.ts';
import type { GroupMode, RNode } from './scene.ts';

export function bindInput(v: GraphView) {
  const q = (s: string) => v.root.querySelector(s) as HTMLInputElement;
  q('#search').addEventListener('input', (e) => v.setQuery((e.target as HTMLInputElement).value.trim().toLowerCase(), v.filterOnly));
  q('#filter-only').addEventListener('change', (e) => v.setQuery(v.query, (e.target as HTMLInputElement).checked));
  q('#group-by').addEventListener('change', (e) => v.setGrouping((e.target as HTMLSelectElement).value as GroupMode));
  q('#collapse-all').addEventListener('click', () => v.collapseAll(true));
  q('#expand-all').addEventListener('click', () => v.collapseAll(false));
  q('#zoom-in').addEventListener('click', () => v.zoomAt(v.width / 2, v.height / 2, 1.4));
  q('#zoom-out').addEventListener('click', () => v.zoomAt(v.width / 2, v.height / 2, 1 / 1.4));
  q('#fit').addEventListener('click', () => { v.fit(); v.requestDraw(); });

  const c = v.canvasEl;
  let drag: { mode: 'pan' | 'node'; x: number; y: number; node?: RNode; moved: boolean } | null = null;
  c.addEventListener('wheel', (e) => {
    e.preventDefault();
    v.zoomAt(e.offsetX, e.offsetY, Math.exp(-e.deltaY * 0.0015));
  }, { passive: false });
  c.addEventListener('pointerdown', (e) => {
    const n = v.nodeAt(e.offsetX, e.offsetY);
    drag = { mode: n ? 'node' : 'pan', x: e.offsetX, y: e.offsetY, node: n ?? undefined, moved: false };
    c.setPointerCapture(e.pointerId);
  });
  c.addEventListener('pointermove', (e) => {
    if (drag) {
      const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (!drag.moved) return;
      if (drag.mode === 'pan') v.panBy(dx, dy);
      else if (drag.node) v.moveNode(drag.node, dx, dy);
      drag.x = e.offsetX; drag.y = e.offsetY;
      return;
    }
    v.hover(e.offsetX, e.offsetY);
  });
  c.addEventListener('pointerup', (e) => {
    if (drag && !drag.moved) {
      const n = v.nodeAt(e.offsetX, e.offsetY);
      v.select(n ? n.id : null);
    }
    drag = null;
  });
  c.addEventListener('dblclick', (e) => {
    const n = v.nodeAt(e.offsetX, e.offsetY);
    if (n?.group) v.toggleGroup(n.group.key, false);
  });
  c.addEventListener('pointerleave', () => v.hoverOff());
}
