// Synthetic procnet graphs and churn diffs (deterministic), shaped like the server's JSON.
// Used by the fake server (--synthetic) and by bench/ui.mjs.

export function rng(seed = 1) {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

const NAMES = ['nginx', 'node', 'python3', 'postgres', 'redis-server', 'java', 'envoy', 'beam.smp', 'chrome', 'sshd', 'dockerd', 'containerd', 'go-api', 'ruby', 'php-fpm', 'haproxy', 'memcached', 'kafka', 'zookeeper', 'grafana'];
const TYPES = ['app', 'service', 'database', 'message_broker', 'cache', 'load_balancer', 'qt_desktop'];
const PORTS = [80, 443, 5432, 6379, 3000, 8080, 9092, 5672, 27017, 3306, 11211, 9200, 2181, 8443, 53];

export class Synth {
  constructor(nodes = 2000, edges = 10000, seed = 42) {
    this.r = rng(seed);
    this.targetNodes = nodes; this.targetEdges = edges;
    this.nodes = new Map(); this.edges = new Map();
    this.nextPid = 1000; this.nextExt = 1; this.seq = 1;
    this.servers = []; // ids preferred as servers (power law)
    for (let i = 0; i < nodes; i++) this.addNode();
    let guard = 0;
    while (this.edges.size < edges && guard++ < edges * 5) this.addRandomEdge();
  }
  pick(a) { return a[Math.floor(this.r() * a.length)]; }
  addNode() {
    const r = this.r();
    let n;
    if (r < 0.18) {
      const a = `${10 + Math.floor(this.r() * 200)}.${Math.floor(this.r() * 255)}.${Math.floor(this.r() * 255)}.${this.nextExt++ % 255}`;
      n = { id: `ext:${a}`, kind: 'external', address: a, type: 'external', label: a };
    } else if (r < 0.2) {
      const reason = this.pick(['permission', 'exited', 'netns', 'unknown']);
      n = { id: `unknown:${reason}:${this.nextPid++}`, kind: 'unknown', type: 'unknown', label: 'unknown', reason };
    } else {
      const pid = this.nextPid++;
      const name = this.pick(NAMES);
      const type = this.r() < 0.6 ? 'app' : this.pick(TYPES);
      n = { id: `pid:${pid}`, kind: 'process', pid, name, type, label: name, cmdline: `/usr/bin/${name} --worker ${pid}`,
        startTime: 1764000000 + pid, user: this.r() < 0.5 ? 'root' : 'app', uid: 1000, ppid: 1,
        listeners: this.r() < 0.2 ? [{ proto: 'tcp', address: '0.0.0.0', port: this.pick(PORTS) }] : undefined,
        container: this.r() < 0.15 ? `ctr-${Math.floor(this.r() * 12)}` : undefined };
      if (!n.listeners) delete n.listeners; if (!n.container) delete n.container;
    }
    if (this.nodes.has(n.id)) return null;
    this.nodes.set(n.id, n);
    if (n.kind !== 'unknown' && this.r() < 0.12) this.servers.push(n.id);
    return n;
  }
  serverFor() {
    // Zipf-ish: low indices much more likely
    for (let t = 0; t < 5; t++) {
      const i = Math.floor(Math.pow(this.r(), 2.2) * this.servers.length);
      const id = this.servers[i];
      if (this.nodes.has(id)) return id;
    }
    return this.pick([...this.nodes.keys()]);
  }
  makeEdge(from, to) {
    const proto = this.r() < 0.12 ? 'udp' : 'tcp';
    const port = this.pick(PORTS);
    const id = `${from}>${to}/${proto}/${port}`;
    if (from === to || this.edges.has(id)) return null;
    const count = 1 + Math.floor(Math.pow(this.r(), 4) * 20);
    const e = { id, from, to, proto, serverPort: port, count,
      states: proto === 'tcp' ? { ESTABLISHED: count } : { UNCONN: count },
      sockets: [{ client: `127.0.0.1:${40000 + Math.floor(this.r() * 20000)}`, server: `127.0.0.1:${port}`, state: proto === 'tcp' ? 'ESTABLISHED' : 'UNCONN' }],
      txBytes: Math.floor(this.r() * 1e7), rxBytes: Math.floor(this.r() * 1e7),
      txRate: Math.floor(Math.pow(this.r(), 3) * 1e6), rxRate: Math.floor(Math.pow(this.r(), 3) * 1e6) };
    return e;
  }
  addRandomEdge(fromId) {
    const keys = [...this.nodes.keys()];
    const from = fromId ?? keys[Math.floor(this.r() * keys.length)];
    const to = this.serverFor();
    const e = this.makeEdge(from, to);
    if (!e) return null;
    this.edges.set(e.id, e);
    return e;
  }
  doc() {
    return { seq: this.seq, timestamp: new Date(1764000000000 + this.seq * 1000).toISOString(), nodes: [...this.nodes.values()], edges: [...this.edges.values()] };
  }
  /** One update: `churn` of the nodes replaced (half removed, half added), edges of removed nodes
   *  replaced by as many new edges, and `churn` of the edges updated in place. */
  diff(churn = 0.05) {
    const base = this.seq, seq = ++this.seq;
    const d = { seq, base, timestamp: new Date(1764000000000 + seq * 1000).toISOString(), addedNodes: [], updatedNodes: [], removedNodes: [], addedEdges: [], updatedEdges: [], removedEdges: [] };
    const nChange = Math.round(this.targetNodes * churn / 2);
    const keys = [...this.nodes.keys()];
    const removed = new Set();
    for (let i = 0; i < nChange; i++) {
      const id = keys[Math.floor(this.r() * keys.length)];
      const si = this.servers.indexOf(id);
      if (removed.has(id) || (si >= 0 && si < 20)) continue; // keep big hubs
      removed.add(id);
    }
    for (const [eid, e] of this.edges) if (removed.has(e.from) || removed.has(e.to)) { d.removedEdges.push(eid); this.edges.delete(eid); }
    for (const id of removed) { d.removedNodes.push(id); this.nodes.delete(id); }
    for (let i = 0; i < removed.size; i++) { const n = this.addNode(); if (n) d.addedNodes.push(n); }
    let guard = 0;
    while (this.edges.size < this.targetEdges && guard++ < 20000) {
      const from = d.addedNodes.length && this.r() < 0.7 ? this.pick(d.addedNodes).id : undefined;
      const e = this.addRandomEdge(from);
      if (e) d.addedEdges.push(e);
    }
    const eKeys = [...this.edges.keys()];
    const nUpd = Math.round(this.targetEdges * churn);
    const upd = new Set();
    for (let i = 0; i < nUpd; i++) upd.add(eKeys[Math.floor(this.r() * eKeys.length)]);
    const addedIds = new Set(d.addedEdges.map((e) => e.id));
    for (const id of upd) {
      if (addedIds.has(id)) continue;
      const e = this.edges.get(id);
      const count = Math.max(1, e.count + (this.r() < 0.5 ? -1 : 1));
      const ne = { ...e, count, states: { ...e.states }, txRate: Math.floor(this.r() * 1e5), rxRate: Math.floor(this.r() * 1e5) };
      this.edges.set(id, ne);
      d.updatedEdges.push(ne);
    }
    return d;
  }
  connections() {
    const listeners = [], connections = [];
    for (const n of this.nodes.values()) {
      for (const l of n.listeners ?? []) listeners.push({ pid: n.pid, processName: n.name, address: l.address, addressDescription: 'Listening on all IPv4 interfaces', port: l.port, cmdline: n.cmdline, proto: l.proto });
    }
    for (const e of this.edges.values()) {
      const f = this.nodes.get(e.from), t = this.nodes.get(e.to);
      if (f?.kind !== 'process') continue;
      connections.push({ fromPid: f.pid, fromProcessName: f.name, fromAddress: '127.0.0.1', fromPort: 40000, toAddress: t?.address ?? '127.0.0.1', toPort: e.serverPort, toLabel: t?.label, proto: e.proto, state: 'ESTABLISHED' });
    }
    return { listeners: listeners.slice(0, 300), connections };
  }
}
