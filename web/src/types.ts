// Wire types: exactly what the server sends (serde camelCase). See src/graph/model.rs.
export type Proto = 'tcp' | 'udp';
export type NodeKind = 'process' | 'external' | 'unknown';

export interface ListenAddr { proto: Proto; address: string; port: number }

export interface GNode {
  id: string;
  kind: NodeKind;
  pid?: number;
  name?: string;
  type: string;
  label: string;
  cmdline?: string;
  startTime?: number;
  user?: string;
  uid?: number;
  ppid?: number;
  exe?: string;
  address?: string;
  reason?: string;
  container?: string;
  listeners?: ListenAddr[];
  rxBytes?: number;
  txBytes?: number;
  rxRate?: number;
  txRate?: number;
}

export interface EdgeSocket { client: string; server: string; state: string }

export interface GEdge {
  id: string;
  from: string;
  to: string;
  proto: Proto;
  serverPort: number;
  count: number;
  states?: Record<string, number>;
  sockets?: EdgeSocket[];
  txBytes?: number;
  rxBytes?: number;
  txRate?: number;
  rxRate?: number;
  /** Largest smoothed RTT (ms, kernel) of the edge's connections; TCP, when known. */
  rttMs?: number;
  /** Segments retransmitted by the edge's open connections, both directions; TCP, when known. */
  retransmits?: number;
}

export interface GraphDoc {
  seq: number; timestamp: string; nodes: GNode[]; edges: GEdge[];
  /** With --p2p-only: edges to unknown owners that were left out. */
  p2pHiddenEdges?: number;
}

export interface GraphDiff {
  seq: number;
  base: number;
  timestamp: string;
  addedNodes: GNode[];
  updatedNodes: GNode[];
  removedNodes: string[];
  addedEdges: GEdge[];
  updatedEdges: GEdge[];
  removedEdges: string[];
  /** Present when the --p2p-only hidden-edge count changed. */
  p2pHiddenEdges?: number;
}

export interface Listener {
  pid: number;
  processName: string;
  /** The process's one label (the graph node's): rule label, else name; serviceLabel when unseen. */
  label?: string;
  serviceLabel?: string;
  containerName?: string;
  processIconType?: string;
  address: string;
  addressDescription: string;
  port: number;
  cmdline?: string;
  proto: Proto;
  pids?: number[];
  reason?: string;
}

export interface Connection {
  fromPid: number;
  fromProcessName: string;
  fromAddress: string;
  fromPort: number;
  toAddress: string;
  toPort: number;
  toLabel?: string;
  proto: Proto;
  state: string;
  /** `client`: an outgoing connection; `server`: accepted on one of its listeners. */
  role?: 'client' | 'server';
  toPid?: number;
  /** The label of the local process at the other end (the same as its listeners' and node's). */
  toProcessLabel?: string;
  txBytes?: number;
  rxBytes?: number;
  /** This socket's smoothed RTT in ms (kernel); TCP, when known. */
  rttMs?: number;
  /** Segments this socket retransmitted; TCP, when known. */
  retransmits?: number;
}

export interface ConnectionsDoc { listeners: Listener[]; connections: Connection[] }

export interface StatusEvent { rulesError: string | null; warnings: string[] }
