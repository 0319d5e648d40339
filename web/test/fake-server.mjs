// A stand-in for `procnet serve` (loopback only): serves web/dist plus canned /api/graph,
// /api/connections, /api/events (SSE: graph on connect, status, then live diffs) and /icons.
//   node test/fake-server.mjs [--port 8765] [--synthetic 2000,10000] [--tick 1000] [--rules-error MSG]
// As a module: const s = await startFakeServer({...}); s.url; s.sendDiff(d); await s.close();
import http from 'node:http';
import { readFileSync, existsSync, statSync, readdirSync } from 'node:fs';
import { join, extname, normalize, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SlotEncoder, wantsAddedCols, wantsSlots } from './diff-wire.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json' };

export function loadFixtures(dir = join(here, 'fixtures')) {
  return {
    graph: JSON.parse(readFileSync(join(dir, 'graph.json'), 'utf8')),
    connections: JSON.parse(readFileSync(join(dir, 'connections.json'), 'utf8')),
  };
}

/** Diff that adds (on) or removes (off) a short-lived `curl` talking to nginx, like a real probe. */
export function togglingProbe(doc, on) {
  const node = { id: 'pid:5000', kind: 'process', pid: 5000, name: 'curl', type: 'app', label: 'curl', cmdline: 'curl http://127.0.0.1/', startTime: 1764005000, user: 'alice', uid: 1001, ppid: 3000 };
  const edge = { id: 'pid:5000>pid:1200/tcp/80', from: 'pid:5000', to: 'pid:1200', proto: 'tcp', serverPort: 80, count: 1, states: { ESTABLISHED: 1 }, sockets: [{ client: '127.0.0.1:52000', server: '127.0.0.1:80', state: 'ESTABLISHED' }] };
  const seq = doc.seq + 1;
  const d = { seq, base: doc.seq, timestamp: new Date().toISOString(), addedNodes: [], updatedNodes: [], removedNodes: [], addedEdges: [], updatedEdges: [], removedEdges: [] };
  if (on) { d.addedNodes.push(node); d.addedEdges.push(edge); doc.nodes.push(node); doc.edges.push(edge); }
  else { d.removedNodes.push(node.id); d.removedEdges.push(edge.id); doc.nodes = doc.nodes.filter((n) => n.id !== node.id); doc.edges = doc.edges.filter((e) => e.id !== edge.id); }
  doc.seq = seq; doc.timestamp = d.timestamp;
  return d;
}

export async function startFakeServer(opts = {}) {
  const dist = opts.dist ?? join(here, '..', 'dist');
  let graph = opts.graph; let connections = opts.connections;
  if (!graph) ({ graph, connections } = loadFixtures());
  const status = opts.status ?? { rulesError: null, warnings: [] };
  const clients = new Set();
  const iconsDir = opts.iconsDir;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const p = url.pathname;
    const json = (obj) => { res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }); res.end(typeof obj === 'string' ? obj : JSON.stringify(obj)); };
    if (p === '/api/graph') return json(opts.graphJson?.() ?? graph);
    if (p === '/api/connections') return json(connections);
    if (p === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`event: status\ndata: ${JSON.stringify(status)}\n\n`);
      // ?diff=slots: as the real server, this stream's diffs go out as `diffs` events (its
      // slots made before the graph event goes, as there, so a bench does not time them)
      if (wantsSlots(req.url)) res.slots = new SlotEncoder(opts.graphDoc?.() ?? (opts.graphJson ? JSON.parse(opts.graphJson()) : graph), { addedCols: wantsAddedCols(req.url) });
      res.write(`event: graph\ndata: ${opts.graphJson?.() ?? JSON.stringify(graph)}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    if (p === '/api/icons') { // as the real server: the PNGs the icons directory has
      const types = iconsDir ? readdirSync(iconsDir).filter((n) => n.endsWith('.png')).map((n) => n.slice(0, -4)) : [];
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return res.end(JSON.stringify({ types, fallback: types.includes('service') }));
    }
    if (p.startsWith('/icons/')) {
      const f = iconsDir && join(iconsDir, normalize(p.slice(7)).replace(/^(\.\.[/\\])+/, ''));
      if (f && existsSync(f)) { res.writeHead(200, { 'content-type': 'image/png' }); return res.end(readFileSync(f)); }
      res.writeHead(404, { 'content-type': 'text/plain' }); return res.end('no icon');
    }
    let f = join(dist, normalize(p).replace(/^(\.\.[/\\])+/, ''));
    if (p === '/' || !existsSync(f) || statSync(f).isDirectory()) f = join(dist, 'index.html');
    if (!existsSync(f)) { res.writeHead(500); return res.end('web/dist missing: run npm run build'); }
    const immutable = p.startsWith('/assets/');
    res.writeHead(200, { 'content-type': TYPES[extname(f)] ?? 'application/octet-stream', 'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-store' });
    res.end(readFileSync(f));
  });
  await new Promise((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const send = (event, data) => { const s = `event: ${event}\ndata: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`; for (const c of clients) c.write(s); };
  /** A diff to every stream, in the encoding it asked for; a slots stream the diff does not
   *  follow ends (as on the real server: its client reconnects for a new graph). */
  const sendDiff = (d) => {
    let plain = null;
    for (const c of clients) {
      if (!c.slots) { c.write(plain ??= `event: diff\ndata: ${JSON.stringify(d)}\n\n`); continue; }
      let enc;
      try { enc = c.slots.encode(d); } catch { clients.delete(c); c.end(); continue; }
      c.write(`event: diffs\ndata: ${JSON.stringify(enc)}\n\n`);
    }
  };
  let timer = null;
  if (opts.tick) {
    let on = false;
    timer = setInterval(() => { on = !on; sendDiff(togglingProbe(graph, on)); }, opts.tick);
  }
  return {
    url, server,
    get clients() { return clients.size; },
    sendDiff,
    sendGraph: (doc) => send('graph', doc),
    sendStatus: (s) => send('status', s),
    setGraph: (g) => { graph = g; },
    setConnections: (c) => { connections = c; },
    close: () => new Promise((r) => { clearInterval(timer); for (const c of clients) c.end(); server.closeAllConnections?.(); server.close(r); }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && !process.env.NODE_TEST_CONTEXT) {
  const args = process.argv.slice(2);
  const arg = (k) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const opts = { port: Number(arg('--port') ?? 8765), tick: Number(arg('--tick') ?? 1000) };
  if (arg('--rules-error')) opts.status = { rulesError: arg('--rules-error'), warnings: [] };
  if (arg('--synthetic')) {
    const [n, e] = arg('--synthetic').split(',').map(Number);
    const { Synth } = await import('./synth.mjs');
    const s = new Synth(n, e);
    opts.graph = s.doc(); opts.connections = s.connections(); opts.tick = 0;
    const srv = await startFakeServer(opts);
    setInterval(() => { const d = s.diff(0.05); srv.setGraph(s.doc()); srv.sendDiff(d); }, 1000);
    console.log(`fake procnet (synthetic ${n}/${e}) on ${srv.url}`);
  } else {
    const srv = await startFakeServer(opts);
    console.log(`fake procnet on ${srv.url}`);
  }
}
