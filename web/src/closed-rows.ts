// The "Closed connections" view without the DOM (unit-tested with node --test): which window of
// `/api/flows` the time bar's state asks for, the page addresses, and the search and sort over
// the rows (done here: /api/flows pages by time only, and a window holds at most MAX_ROWS).
import { fmtCount } from './pager.ts';

/** One end of a closed connection (`/api/flows`). */
export interface FlowEnd { address: string; port: number; pid?: number; startTime?: number; processName?: string }
/** A closed connection, in the shape of Zeek's conn.log (`FlowRecord`, src/history/flows.rs). */
export interface FlowRecord {
  start: string; end: string; startMs: number; endMs: number; duration: number; proto: string;
  client: FlowEnd; server: FlowEnd; clientBytes?: number; serverBytes?: number; state: string; short?: boolean;
}
/** One page of `GET /api/flows`. */
export interface FlowsPage { since: string | null; until: string | null; total: number; offset: number; limit: number; flows: FlowRecord[] }

/** Rows per request (the server's most). */
export const FLOWS_PAGE = 10000;
/** Rows a window loads at most (the indicator says when there are more). */
export const MAX_ROWS = 100000;

/** What the time bar shows, as far as the closed connections care. */
export interface TimeState { atMs: number | null; range: { fromMs: number; toMs: number } | null; compare: boolean }
/** A window of `/api/flows`: `since`/`until` as the API takes them (`until` '' : up to now). */
export interface FlowWindow { since: string; until: string; text: string }

const secs = (ms: number) => (ms / 1000).toFixed(3);
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/**
 * The window of closed connections for the time bar's state: a range's own, ends included (a
 * connection logged as closed at the range's first sample may still be an edge of that sample's
 * graph: its last socket lingered); compare at one moment, from it to now; at a past moment,
 * the `minutes` before it; live, the last `minutes`.
 */
export function flowWindow(s: TimeState, minutes: number): FlowWindow {
  if (s.range) return { since: secs(s.range.fromMs), until: secs(s.range.toMs), text: `closed between ${clock(s.range.fromMs)} and ${clock(s.range.toMs)} UTC` };
  if (s.atMs !== null && s.compare) return { since: secs(s.atMs), until: '', text: `closed since ${clock(s.atMs)} UTC` };
  if (s.atMs !== null) return { since: secs(s.atMs - minutes * 60000), until: secs(s.atMs), text: `closed in the ${minutes} min before ${clock(s.atMs)} UTC` };
  return { since: `${minutes}m`, until: '', text: `closed in the last ${minutes} min (live)` };
}

/** The address of one page of a window. */
export function flowsUrl(w: FlowWindow, offset: number, limit = FLOWS_PAGE): string {
  const p = new URLSearchParams();
  p.set('since', w.since);
  if (w.until) p.set('until', w.until);
  p.set('limit', String(limit));
  p.set('offset', String(offset));
  return `/api/flows?${p.toString()}`;
}

const who = (e: FlowEnd) => e.processName ?? '';
/** The value each sortable column sorts by. */
export const SORT_KEYS: Record<string, (f: FlowRecord) => string | number> = {
  start: (f) => f.startMs,
  end: (f) => f.endMs,
  duration: (f) => f.duration,
  proto: (f) => f.proto,
  client: (f) => who(f.client),
  clientPid: (f) => f.client.pid ?? -1,
  clientAddr: (f) => `${f.client.address}:${f.client.port}`,
  server: (f) => who(f.server),
  serverPid: (f) => f.server.pid ?? -1,
  serverAddr: (f) => `${f.server.address}:${f.server.port}`,
  clientBytes: (f) => f.clientBytes ?? -1,
  serverBytes: (f) => f.serverBytes ?? -1,
  state: (f) => f.state,
};

/** Sorted copy by `sort` (a SORT_KEYS name, `-name` descending; '' or unknown: as given, oldest first). Stable. */
export function sortFlows(flows: readonly FlowRecord[], sort: string): FlowRecord[] {
  const desc = sort.startsWith('-');
  const key = SORT_KEYS[desc ? sort.slice(1) : sort];
  if (!key) return flows.slice();
  const dir = desc ? -1 : 1;
  return flows.map((f, i) => ({ f, i, k: key(f) })).sort((a, b) => {
    const c = typeof a.k === 'number' && typeof b.k === 'number' ? a.k - b.k : String(a.k).localeCompare(String(b.k));
    return c !== 0 ? c * dir : a.i - b.i;
  }).map((x) => x.f);
}

/** The words a row is found by: names, pids, addresses, ports, proto, state. */
export function flowText(f: FlowRecord): string {
  const end = (e: FlowEnd) => `${e.processName ?? ''} ${e.pid ?? ''} ${e.address}:${e.port}`;
  return `${end(f.client)} ${end(f.server)} ${f.proto} ${f.state}${f.short ? ' short' : ''}`.toLowerCase();
}

/** The rows with every word of `q` (case-insensitive) somewhere in them. */
export function filterFlows(flows: readonly FlowRecord[], q: string): FlowRecord[] {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return flows.slice();
  return flows.filter((f) => { const t = flowText(f); return words.every((w) => t.includes(w)); });
}

/** 0.1 → "100 ms", 75 → "1 min 15 s". */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The indicator: how many rows, how many match, and whether the window had more than were loaded. */
export function closedStatus(s: { loaded: number; total: number; shown: number; q: string; loading: boolean }): string {
  if (s.total < 0) return 'loading closed connections…';
  const more = s.total > s.loaded ? ` (the first ${fmtCount(s.loaded)} of ${fmtCount(s.total)} loaded)` : '';
  const base = s.q ? `${fmtCount(s.shown)} of ${fmtCount(s.loaded)} closed connections match` : `${fmtCount(s.loaded)} closed connections`;
  return base + more + (s.loading ? ' · loading…' : '');
}
