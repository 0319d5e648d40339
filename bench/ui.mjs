#!/usr/bin/env node
// UI performance bench, in headless Debian Chromium (software rendering), at two sizes by default:
// 2,000 nodes / 10,000 edges (a busy host) and 10,000 nodes / 50,000 edges (a fleet map), 5 % churn
// per update. Serves the built UI (web/dist) and fake /api/graph + /api/events from a loopback-only
// Node server (a page that asks /api/events?diff=slots gets `diffs` events, encoded as the real
// server does: web/test/diff-wire.mjs), and reports median time to first frame, median time to apply one update including
// painting it (a 1-pixel read-back forces the raster work into the measurement) and the page's
// memory after the updates (JS heap, and the proportional set size of the renderer and GPU
// processes). Measures sigma.js + graphology (+ ForceAtlas2 worker) the same way in the same run.
//
//   cd web && npm ci && npm run build && node ../bench/ui.mjs [--runs 5] [--updates 30]
//       [--sizes 2000x10000,10000x50000] [--no-sigma] [--services N] [--write]
// --services N: every N synthetic processes share one `service` (the first of them heads it), so
// the default grouping folds them (workers under their master, as on a real host).
// --profile FILE: a Chromium CPU profile (DevTools protocol) of our renderer's updates at the last
// size is written to FILE (.cpuprofile, open in DevTools) and its top self-time functions printed;
// build with `npx vite build --minify false` to get readable names.
// --write appends the tables to bench/RESULTS.md under a new heading (--heading TEXT) at its end.
// --no-wait: do not wait (up to 2 min) for a 1-min load average under 1.2 before measuring.
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const web = join(root, 'web');
const require = createRequire(join(web, 'package.json'));
const { startFakeServer } = await import(join(web, 'test', 'fake-server.mjs'));
const { Synth } = await import(join(web, 'test', 'synth.mjs'));
const { launch } = await import(join(web, 'test', 'helpers.mjs'));

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? Number(args[i + 1]) : d; };
const RUNS = opt('--runs', args.includes('--ab') ? 1 : 5), UPDATES = opt('--updates', 30);
const sizesArg = (() => { const i = args.indexOf('--sizes'); return i >= 0 ? args[i + 1] : null; })();
// --nodes/--edges (one size) are still accepted.
const SIZES = sizesArg ? sizesArg.split(',').map((x) => x.split('x').map(Number))
  : args.includes('--nodes') || args.includes('--edges') ? [[opt('--nodes', 2000), opt('--edges', 10000)]]
  : [[2000, 10000], [10000, 50000]];
const headingArg = (() => { const i = args.indexOf('--heading'); return i >= 0 ? args[i + 1] : null; })();
/** The targets per size: a busy host (≤ 200 ms / < 16 ms) and a fleet map (≤ 1 s / < 16 ms). */
const target = (nodes) => (nodes > 5000 ? { first: 1000, update: 16 } : { first: 200, update: 16 });
const CHURN = 0.05;
// --dist DIR: measure another build of the UI (e.g. one from an older commit) as "ours".
const oursDist = (() => { const i = args.indexOf('--dist'); return i >= 0 ? args[i + 1] : join(web, 'dist'); })();
const withSigma = !args.includes('--no-sigma') && !args.includes('--ab');
const abDist = (() => { const i = args.indexOf('--ab'); return i >= 0 ? args[i + 1] : null; })();
const ROUNDS = opt('--rounds', 3);
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length ? (s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : NaN; };
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const r1 = (x) => Math.round(x * 10) / 10;

if (!existsSync(join(oursDist, 'index.html'))) { console.error('web/dist missing: cd web && npm ci && npm run build'); process.exit(2); }

const SERVICES = opt('--services', 0);
const profileFile = (() => { const i = args.indexOf('--profile'); return i >= 0 ? args[i + 1] : null; })();

/** The functions with the most self time in a CPU profile (ms), for a quick look in the terminal. */
function topSelf(profile, n = 30) {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map();
  const dts = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const nd = byId.get(profile.samples[i]);
    const cf = nd.callFrame;
    const k = `${cf.functionName || '(anon)'} ${cf.url.split('/').pop()}:${cf.lineNumber + 1}`;
    self.set(k, (self.get(k) ?? 0) + (dts[i] ?? 0) / 1000);
  }
  // inclusive time: a sample counts once for every distinct function on its stack
  const parent = new Map();
  for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const incl = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const seen = new Set();
    for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id).callFrame;
      const k = `${cf.functionName || '(anon)'} ${cf.url.split('/').pop()}:${cf.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + (dts[i] ?? 0) / 1000);
    }
  }
  console.log('top inclusive time:\n' + [...incl].filter(([k]) => !k.startsWith('(root)')).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => `${r1(ms).toString().padStart(8)} ms  ${k}`).join('\n'));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => `${r1(ms).toString().padStart(8)} ms ${(100 * ms / total).toFixed(1).padStart(5)} %  ${k}`).join('\n');
}

// ---- data: per size, one initial document and a fixed chain of diffs, shared by every run ----
function makeData(nodes, edges) {
  const synth = new Synth(nodes, edges, 42);
  const initial = synth.doc();
  if (SERVICES > 1) { const ps = initial.nodes.filter((n) => n.kind === 'process'); ps.forEach((n, i) => { n.service = ps[i - (i % SERVICES)].id; }); }
  const initialJson = JSON.stringify(initial);
  const diffs = [];
  for (let i = 0; i < UPDATES; i++) diffs.push(synth.diff(CHURN));
  const d0 = diffs[0];
  console.log(`graph ${initial.nodes.length} nodes / ${initial.edges.length} edges (${(initialJson.length / 1e6).toFixed(1)} MB JSON); ` +
    `per update ≈ ${d0.addedNodes.length}+${d0.removedNodes.length} nodes, ${d0.addedEdges.length}+${d0.removedEdges.length} edges added+removed, ${d0.updatedEdges.length} edges updated`);
  return { nodes: initial.nodes.length, edges: initial.edges.length, initial, initialJson, diffs, d0 };
}

/** Proportional set size (kB) of this bench's Chromium renderer and GPU processes: the page's
 *  memory in the browser (one page is open at a time; the GPU process holds sigma's WebGL). */
function browserPss() {
  const { readdirSync, readFileSync: rf } = require('node:fs');
  const procs = new Map();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = rf(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      procs.set(Number(pid), { ppid, cmd: rf(`/proc/${pid}/cmdline`, 'utf8') });
    } catch { /* gone */ }
  }
  const mine = (pid) => { for (let p = pid, i = 0; p > 1 && i < 20; i++) { if (p === process.pid) return true; p = procs.get(p)?.ppid ?? 0; } return false; };
  let renderer = 0, gpu = 0;
  for (const [pid, p] of procs) {
    const kind = /--type=renderer/.test(p.cmd) ? 'renderer' : /--type=gpu-process/.test(p.cmd) ? 'gpu' : null;
    if (!kind || !mine(pid)) continue;
    let pss = 0;
    try { pss = Number(/^Pss:\s+(\d+)/m.exec(rf(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
    if (kind === 'renderer') renderer = Math.max(renderer, pss); else gpu += pss;
  }
  return { renderer, gpu };
}

// ---- the sigma comparison page, bundled with Vite from bench/ui.sigma-page.js ----
let sigmaDist = null;
if (withSigma) {
  const vite = await import(require.resolve('vite'));
  sigmaDist = join(root, 'target', 'bench-sigma');
  const entryDir = join(sigmaDist, 'src');
  mkdirSync(entryDir, { recursive: true });
  writeFileSync(join(entryDir, 'index.html'), `<!doctype html><html><head><meta charset="utf-8"><style>html,body,#c{margin:0;width:100%;height:100%}</style></head><body><div id="c"></div><script type="module" src="./page.js"></script></body></html>`);
  writeFileSync(join(entryDir, 'page.js'), readFileSync(join(here, 'ui.sigma-page.js'), 'utf8'));
  await vite.build({ root: entryDir, logLevel: 'error', configFile: false, resolve: { alias: {} },
    build: { outDir: join(sigmaDist, 'dist'), emptyOutDir: true }, worker: { format: 'es' },
    // resolve packages from web/node_modules
    plugins: [{ name: 'resolve-web-modules', resolveId(id, imp) { if (!id.startsWith('.') && !id.startsWith('/') && !id.includes('\0') && imp) { try { return require.resolve(id); } catch { return null; } } return null; } }] });
  sigmaDist = join(sigmaDist, 'dist');
}

async function measure(label, dist, query, browser, data) {
  const { initial, initialJson, diffs } = data;
  // graphDoc: a page that asks /api/events?diff=slots gets `diffs` events, as from the real
  // server (test/diff-wire.mjs is its encoder, checked against the server's by a unit test)
  const srv = await startFakeServer({ dist, graphJson: () => initialJson, graphDoc: () => initial, connections: { listeners: [], connections: [] } });
  let p0First = null, memory = null;
  const first = [], firstNav = [], upd = [], updFrame = [], updApply = [], updDraw = [], updParse = [], updView = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
      const page = await ctx.newPage();
      const errs = [];
      page.on('pageerror', (e) => errs.push(String(e)));
      const profFirst = profileFile && run === 0 && label.startsWith('procnet') && data === lastData ? await ctx.newCDPSession(page) : null;
      if (profFirst) { await profFirst.send('Profiler.enable'); await profFirst.send('Profiler.setSamplingInterval', { interval: 200 }); await profFirst.send('Profiler.start'); }
      await page.goto(`${srv.url}/${query}`);
      await page.waitForFunction(() => window.__procnet?.perf?.firstFrameMs >= 0 || window.__procnet?.perf?.error, null, { timeout: 120000 });
      if (profFirst) {
        const { profile } = await profFirst.send('Profiler.stop');
        writeFileSync(profileFile.replace(/(\.cpuprofile)?$/, '.first.cpuprofile'), JSON.stringify(profile));
        console.log(`CPU profile up to the first frame; top self time:\n${topSelf(profile)}`);
      }
      const p0 = await page.evaluate(() => window.__procnet.perf);
      if (p0.error) throw new Error(`${label}: ${p0.error}`);
      first.push(p0.firstFrameMs); firstNav.push(p0.firstFrameSinceNavMs); p0First = p0.firstBreakdown;
      if (run === 0) {
        // updates: after the initial layout has settled (or 4 s), one diff at a time
        // (on a loaded machine the layout of 10,000 nodes takes long: every layout step redraws
        // the whole graph, which an update drawn meanwhile would pay for)
        const tl = Date.now();
        const settled = await page.waitForFunction(() => !window.__procnet.layoutRunning, null, { timeout: 90000 }).then(() => true, () => false);
        console.log(`${label}: layout ${settled ? 'settled' : 'still running'} after ${((Date.now() - tl) / 1000).toFixed(1)} s more`);
        await page.waitForTimeout(300);
        const prof = profileFile && label.startsWith('procnet') && data === lastData ? await ctx.newCDPSession(page) : null;
        if (prof) { await prof.send('Profiler.enable'); await prof.send('Profiler.setSamplingInterval', { interval: 200 }); await prof.send('Profiler.start'); }
        for (const d of diffs) {
          srv.sendDiff(d);
          await page.waitForFunction((s) => window.__procnet.lastSeq === s || window.__procnet.perf.error, d.seq, { timeout: 120000, polling: 5 });
          const err = await page.evaluate(() => window.__procnet.perf.error);
          if (err) throw new Error(`${label}: ${err}`);
          await page.waitForTimeout(120);
        }
        if (prof) {
          const { profile } = await prof.send('Profiler.stop');
          writeFileSync(profileFile, JSON.stringify(profile));
          console.log(`CPU profile of the updates → ${profileFile}; top self time (idle included):\n${topSelf(profile)}`);
        }
        const p = await page.evaluate(() => window.__procnet.perf.updates);
        if (p.length < diffs.length) throw new Error(`${label}: only ${p.length} updates applied`);
        for (const u of p) { upd.push(u.totalMs); updFrame.push(u.frameMs ?? NaN); updApply.push(u.parseMs + u.applyMs); updDraw.push(u.drawMs); updParse.push(u.parseMs); updView.push(u.viewMs ?? NaN); }
        // The page's memory with the whole graph and the updates applied (after a GC).
        const cdp = await ctx.newCDPSession(page);
        await cdp.send('HeapProfiler.collectGarbage');
        await cdp.send('Performance.enable');
        const { metrics } = await cdp.send('Performance.getMetrics');
        const heap = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? NaN;
        memory = { jsHeapMB: r1(heap / 1048576), ...Object.fromEntries(Object.entries(browserPss()).map(([k, kb]) => [`${k}PssMB`, r1(kb / 1024)])) };
      }
      if (errs.length) throw new Error(`${label}: page errors: ${errs.join('; ')}`);
      await ctx.close();
      await new Promise((r) => setTimeout(r, 1500)); // let the closed page's processes go away
    }
  } finally { await srv.close(); }
  const res = {
    label, runs: RUNS, updates: upd.length,
    firstFrameMs: r1(median(first)), firstFrameAllMs: first.map(r1), firstFrameSinceNavMs: r1(median(firstNav)),
    updateMedianMs: r1(median(upd)), updateP90Ms: r1(pct(upd, 0.9)), updateMaxMs: r1(Math.max(...upd)),
    updateParseApplyMedianMs: r1(median(updApply)), updateParseMedianMs: r1(median(updParse)), updateViewMedianMs: r1(median(updView)), updateDrawMedianMs: r1(median(updDraw)), updateToNextFrameMedianMs: r1(median(updFrame)), firstBreakdown: p0First,
    memory, nodes: data.nodes, edges: data.edges,
    // (raw series, for --ab to pool the rounds)
    raw: { first, firstNav, upd, updFrame, updApply, updDraw, updParse, updView },
  };
  console.log(JSON.stringify({ ...res, raw: undefined }));
  return res;
}

// The machine is shared (2 cores): wait (bounded) for a quiet moment and record the load
// (--no-wait: not, for A/B runs alternated back to back, each recording its load).
const os = await import('node:os');
for (let i = 0; i < 24 && os.loadavg()[0] > 1.2 && !args.includes('--no-wait'); i++) await new Promise((r) => setTimeout(r, 5000));
const loadBefore = os.loadavg()[0];
const extra = withSigma ? ['--enable-unsafe-swiftshader'] : [];
const browser = await launch(extra);
const version = browser.version();
const sizes = []; // [{ data, results: [ours, sigma?] }]
let sigmaLabel = null;
let lastData = null; // the size --profile profiles
if (!abDist) try {
  for (const [n, e] of SIZES) {
    const data = makeData(n, e);
    lastData = n === SIZES[SIZES.length - 1][0] ? data : null;
    // --no-layout (profiling only): no force layout after the seed placement
    const results = [await measure('procnet canvas renderer', oursDist, args.includes('--no-layout') ? '?bench=1&nolayout' : '?bench=1', browser, data)];
    if (withSigma) {
      const ver = (name) => JSON.parse(readFileSync(join(web, 'node_modules', name, 'package.json'), 'utf8')).version;
      sigmaLabel = `sigma ${ver('sigma')} + graphology ${ver('graphology')} (FA2 worker)`;
      results.push(await measure(sigmaLabel, sigmaDist, '', browser, data));
    }
    sizes.push({ data, results });
  }
} finally { await browser.close(); }

const fmtN = (x) => x.toLocaleString('en-US');
const mem = (r) => r.memory ? `${r.memory.jsHeapMB} MB heap, ${r.memory.rendererPssMB} MB renderer + ${r.memory.gpuPssMB} MB GPU (PSS)` : '–';

// ---- --ab DIR: this build and another (e.g. the baseline's web/dist, built before a change)
// alternated in one run, --rounds N rounds per size (the order swapped every round), so both
// see the same load; the rounds' updates and first frames are pooled per build ----
if (abDist) {
  const browser2 = browser;
  const rows = [];
  try {
    for (const [n, e] of SIZES) {
      const data = makeData(n, e);
      const pooled = { ours: [], base: [] }, loads = [];
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 ? ['base', 'ours'] : ['ours', 'base'];
        for (const which of order) {
          const l0 = os.loadavg()[0];
          pooled[which].push(await measure(`${which} round ${r + 1}`, which === 'ours' ? oursDist : abDist, '?bench=1', browser2, data));
          loads.push(l0);
        }
      }
      for (const which of ['base', 'ours']) {
        const all = (k) => pooled[which].flatMap((x) => x.raw[k]);
        const upd = all('upd'), apply = all('updApply'), view = all('updView');
        rows.push(`| ${fmtN(data.nodes)} / ${fmtN(data.edges)} | ${which === 'ours' ? 'this build' : `baseline (\`${abDist}\`)`} | ${r1(median(all('first')))} ms | ` +
          `**${r1(median(upd))} ms** | ${r1(pct(upd, 0.9))} ms | ${r1(median(apply))} ms | ${r1(median(apply.map((a, i) => a - view[i])))} ms / ${r1(median(view))} ms | ` +
          `${r1(median(all('updDraw')))} ms | ${pooled[which].map((x) => x.updateMedianMs).join(', ')} | ${pooled[which].at(-1).memory ? mem(pooled[which].at(-1)) : '–'} |`);
      }
      rows.push(`| | load (1-min) at each measurement | ${loads.map((x) => x.toFixed(2)).join(', ')} | | | | | | | |`);
    }
  } finally { await browser2.close(); }
  const out = ['', `A/B, ${ROUNDS} rounds alternated, ${UPDATES} updates of 5 % churn per round and build, 1 page load per round (${new Date().toISOString()}; Chromium ${version}):`, '',
    '| size | build | first frame (median) | update median | update p90 | parse+apply | model / view | draw | update median per round | memory (last round) |',
    '|---|---|---|---|---|---|---|---|---|---|', ...rows, ''];
  console.log(out.join('\n'));
  process.exit(0);
}
const lines = [
  headingArg ?? `## UI at ${SIZES.map(([n, e]) => `${fmtN(n)}/${fmtN(e)}`).join(' and ')} nodes/edges, side by side with sigma`, '',
  `Measured by \`node bench/ui.mjs\` (after \`cd web && npm ci && npm run build\`) on ${new Date().toISOString().slice(0, 10)}: headless Debian Chromium ${version}, ` +
  `\`--headless --no-sandbox --disable-gpu\` (software raster${withSigma ? '; `--enable-unsafe-swiftshader` so sigma gets software WebGL' : ''}), 1280×720, ` +
  `machine: 2 cores, shared (1-min load average ${loadBefore.toFixed(2)} at start, ${os.loadavg()[0].toFixed(2)} at end). ${RUNS} page load(s) per renderer and size; ` +
  `${UPDATES} updates of 5 % churn each, fed as SSE \`graph\` + \`diff\` events from a loopback Node server (\`diffs\`, the compact diff, to a page that asks \`?diff=slots\`, as ours does):`,
  '',
  ...sizes.map(({ data: { nodes, edges, initialJson, d0 } }) => `- ${fmtN(nodes)} nodes / ${fmtN(edges)} edges (${(initialJson.length / 1e6).toFixed(1)} MB JSON): per update ≈${d0.removedNodes.length} nodes removed + ${d0.addedNodes.length} added, ≈${d0.addedEdges.length} edges removed + added, ≈${d0.updatedEdges.length} edges updated.`),
  '',
  '- *first frame*: from the `graph` event arriving (before `JSON.parse`) to the first frame drawn with a layout, pixels forced out with a 1-pixel read-back; median of the runs.',
  '- *update*: from the `diff` event arriving (before `JSON.parse`) to the diff applied as one batch and the frame that shows it drawn and read back; median over the updates. "next frame" is the same start to the next `requestAnimationFrame` callback (vsync-bound, ~16.7 ms period).',
  '- *memory*: after the updates and a forced GC: the page\'s used JS heap, and the proportional set size of the renderer process and of the GPU process (where sigma\'s software WebGL lives).',
  '',
  '| size | renderer | first frame (median) | nav → first frame | update median | update p90 | parse+apply | draw | → next frame | memory |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...sizes.flatMap(({ data, results }) => results.map((r) => `| ${fmtN(data.nodes)} / ${fmtN(data.edges)} | ${r.label} | **${r.firstFrameMs} ms** (runs: ${r.firstFrameAllMs.join(', ')}) | ${r.firstFrameSinceNavMs} ms | **${r.updateMedianMs} ms** | ${r.updateP90Ms} ms | ${r.updateParseApplyMedianMs} ms | ${r.updateDrawMedianMs} ms | ${r.updateToNextFrameMedianMs} ms | ${mem(r)} |`)),
  '',
  ...sizes.map(({ data, results: [ours, sig] }) => {
    const t = target(data.nodes);
    return `- ${fmtN(data.nodes)} / ${fmtN(data.edges)}: target first frame ≤ ${t.first} ms, update median < ${t.update} ms → ` +
      `${ours.firstFrameMs <= t.first ? 'met' : `NOT met (${(ours.firstFrameMs / t.first).toFixed(1)}× the target)`} / ` +
      `${ours.updateMedianMs < t.update ? 'met' : `NOT met (${(ours.updateMedianMs / t.update).toFixed(1)}× the target)`}.` +
      (sig ? ` Ratio sigma/ours: first frame ${(sig.firstFrameMs / ours.firstFrameMs).toFixed(1)}×, update ${(sig.updateMedianMs / ours.updateMedianMs).toFixed(1)}×.` : '') +
      ` First-frame breakdown (ours, last run): ${Object.entries(ours.firstBreakdown ?? {}).filter(([k]) => k.endsWith('Ms')).map(([k, v]) => `${k.replace(/Ms$/, '')} ${r1(v)} ms`).join(', ')}.`;
  }),
  '',
];
console.log('\n' + lines.join('\n'));
if (args.includes('--write')) {
  const f = join(root, 'bench', 'RESULTS.md');
  const txt = existsSync(f) ? readFileSync(f, 'utf8') : '# Benchmark results\n';
  writeFileSync(f, txt.replace(/\s*$/, '\n\n') + lines.join('\n'));
  console.log(`wrote ${f}`);
}
