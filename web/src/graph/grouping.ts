// Grouping: which group a raw node belongs to, and the aggregated view (collapsed groups as one
// node, their edges merged per (from, to, proto)) that the renderer then syncs to. Pure.
import type { GEdge, GNode } from '../types.ts';
import { LABEL_ALL_MAX, type GroupData, type GroupMode } from './scene.ts';

/** The group key of a node under `mode`, or null when not grouping. Under `service` a process
 *  keys by the service the server gave it (its head's node id: workers and backends share their
 *  master's); everything else, and a process without one, is its own group of one. */
export function groupKeyOf(n: GNode, mode: GroupMode): string | null {
  switch (mode) {
    case 'service': return n.kind === 'process' ? (n.service ?? n.id) : n.id;
    case 'name': return n.kind === 'process' ? (n.name || n.label) : n.kind === 'external' ? '(external)' : '(unknown)';
    case 'type': return n.type || 'app';
    case 'container': return n.container ?? (n.kind === 'process' ? '(host)' : n.kind === 'external' ? '(external)' : '(unknown)');
    // Fleet mode: the host a node is on; a placeholder outside every fleet host has none.
    case 'host': return n.host ?? (n.kind === 'external' ? '(no procnet)' : '(this host)');
    default: return null;
  }
}

/** Choosing a grouping collapses every group with more than one member: that is the point at
 *  scale. Keys in `expanded` (groups the user opened) stay open. */
export function defaultCollapsed(nodes: Iterable<GNode>, mode: GroupMode, expanded: ReadonlySet<string> = new Set()): Set<string> {
  const out = new Set<string>();
  if (mode === 'none') return out;
  const counts = new Map<string, number>();
  for (const n of nodes) { const k = groupKeyOf(n, mode)!; counts.set(k, (counts.get(k) ?? 0) + 1); }
  for (const [k, c] of counts) if (c > 1 && !expanded.has(k)) out.add(k);
  return out;
}

/** How a map opens when its nodes carry `host` (fleet mode, `serve --fleet`): grouped by host,
 *  which is how a fleet user reads it; null for a single host's map (it keeps `service`).
 *  The host groups start expanded while the whole map is small enough to label every node
 *  (`LABEL_ALL_MAX`): then each `process@host` can be read at once and the host grouping is
 *  one click ("Collapse all") away. A bigger map would open as an unlabelled cloud (its labels
 *  wait for zoom), so its hosts start collapsed: one labelled node per host with the traffic
 *  between hosts summed on their edges, and a double-click opens a host. */
export function fleetDefault(nodes: Iterable<GNode>): { mode: GroupMode; collapsed: Set<string> } | null {
  const all = [...nodes];
  if (!all.some((n) => n.host !== undefined)) return null;
  return { mode: 'host', collapsed: all.length > LABEL_ALL_MAX ? defaultCollapsed(all, 'host') : new Set() };
}

export interface WantedEdge { from: string; to: string; proto: string; edges: GEdge[] }

export interface GroupedView {
  /** raw node id → the id drawn for it (itself, or `group:<key>`) */
  rep: Map<string, string>;
  groups: Map<string, GroupData>;
  /** drawn edges by id: raw ids for untouched edges, `agg:<a>><b>/<proto>` for merged ones */
  edges: Map<string, WantedEdge>;
}

/** The view with the groups in `collapsed` folded; edges inside one group disappear. */
export function groupView(nodes: Iterable<GNode>, edges: Iterable<GEdge>, mode: GroupMode, collapsed: Set<string>): GroupedView {
  const rep = new Map<string, string>();
  const groups = new Map<string, GroupData>();
  for (const n of nodes) {
    const k = groupKeyOf(n, mode);
    if (k !== null && collapsed.has(k)) {
      const gid = 'group:' + k;
      let g = groups.get(gid);
      if (!g) groups.set(gid, (g = { key: k, mode, members: [] }));
      g.members.push(n.id);
      // a service is named after its head (the nginx master, the postmaster), else any member
      if (mode === 'service' && (n.id === k || g.title === undefined)) g.title = n.label;
      rep.set(n.id, gid);
    } else rep.set(n.id, n.id);
  }
  const want = new Map<string, WantedEdge>();
  for (const e of edges) {
    const a = rep.get(e.from)!, b = rep.get(e.to)!;
    if (a === e.from && b === e.to) { want.set(e.id, { from: a, to: b, proto: e.proto, edges: [e] }); continue; }
    if (a === b) continue; // inside one collapsed group
    const id = `agg:${a}>${b}/${e.proto}`;
    const w = want.get(id);
    if (w) w.edges.push(e); else want.set(id, { from: a, to: b, proto: e.proto, edges: [e] });
  }
  return { rep, groups, edges: want };
}

export function groupLabel(g: GroupData): string {
  return `${g.title ?? g.key} ×${g.members.length}`;
}
