// The connections table's paging, without the DOM (unit-tested with node --test): which rows
// are on screen, which pages of the server's `/api/connections?q=&sort=&limit=&offset=` hold
// them, and the words for the loading indicator. At 100k sockets the table asks for the few
// hundred rows it shows, never the 24 MB document.

/** Rows per request: a few screens, so scrolling a little needs no new request. */
export const BLOCK = 200;

/** The rows [first, last) that a viewport shows, with `overscan` rows either side. */
export function visibleRange(scrollTop: number, viewport: number, rowHeight: number, total: number, overscan = 10): { first: number; last: number } {
  if (!(total > 0) || !(rowHeight > 0)) return { first: 0, last: 0 };
  const y = Number.isFinite(scrollTop) ? Math.max(0, scrollTop) : 0;
  const h = Number.isFinite(viewport) ? Math.max(0, viewport) : 0;
  const first = Math.min(total, Math.max(0, Math.floor(y / rowHeight) - overscan));
  const last = Math.min(total, Math.ceil((y + h) / rowHeight) + overscan);
  return { first, last: Math.max(first, last) };
}

/** The blocks (index × BLOCK = offset) that hold rows [first, last). */
export function blocksFor(first: number, last: number, block = BLOCK): number[] {
  const out: number[] = [];
  if (last <= first) return out;
  for (let b = Math.floor(first / block); b * block < last; b++) out.push(b);
  return out;
}

/** The address of one page: only the parameters that are set. */
export function pageUrl(base: string, p: { q?: string; sort?: string; offset: number; limit: number; rows?: 'connections' | 'listeners'; at?: string }): string {
  const s = new URLSearchParams();
  if (p.at) s.set('at', p.at);
  if (p.rows && p.rows !== 'connections') s.set('rows', p.rows);
  if (p.q) s.set('q', p.q);
  if (p.sort) s.set('sort', p.sort);
  s.set('limit', String(p.limit));
  s.set('offset', String(p.offset));
  return `${base}?${s.toString()}`;
}

/** The next sort when a column header is clicked: ascending, then descending, by server field name. */
export function nextSort(current: string, field: string): string {
  return current === field ? `-${field}` : field;
}

/** 108000 → "108,000" (the same on every machine, whatever its locale). */
export function fmtCount(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** The indicator's text: what is loading and out of how many, or what is shown. */
export function statusText(s: { total: number; unfiltered: number; first: number; last: number; loading: boolean; q: string }): string {
  if (s.total < 0) return 'loading connections…';
  if (s.loading) {
    if (s.last <= s.first) return `loading ${fmtCount(s.total)} connections…`;
    return `loading ${fmtCount(s.first + 1)}–${fmtCount(s.last)} of ${fmtCount(s.total)}…`;
  }
  if (s.q) return `${fmtCount(s.total)} of ${fmtCount(s.unfiltered)} connections match`;
  return `${fmtCount(s.total)} connections`;
}
