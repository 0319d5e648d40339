#!/usr/bin/env node
// UI performance bench: 2,000 nodes / 10,000 edges, 5 % churn per update, in headless Debian
// Chromium (software rendering). Serves the built UI (web/dist) and fake /api/graph + /api/events
// from a loopback-only Node server, and reports median time to first frame and median time to
// apply one update including painting it (a 1-pixel read-back forces the raster work into the
// measurement). Optionally measures sigma.js + graphology (+ ForceAtlas2 worker) the same way.
//
//   cd web && npm ci && npm run build && node ../bench/ui.mjs [--runs 5] [--updates 30] [--no-sigma] [--services N] [--write]
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
const RUNS = opt('--runs', 5), UPDATES = opt('--updates', 30), NODES = opt('--nodes', 2000), EDGES = opt('--edges', 10000);
const CHURN = 0.05;
const withSigma = !args.includes('--no-sigma');
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length ? (s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : NaN; };
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const r1 = (x) => Math.round(x * 10) / 10;

if (!existsSync(join(web, 'dist', 'index.html'))) { console.error('web/dist missing: cd web && npm ci && npm run build'); process.exit(2); }

// ---- data: one initial document and a fixed chain of diffs, shared by every run ----
const synth = new Synth(NODES, EDGES, 42);
const initial = synth.doc();
// --services N: every N synthetic processes share one `service` (the first of them heads it), so
// the default grouping folds them (workers under their master, as on a real host)
const SERVICES = opt('--services', 0);
if (SERVICES > 1) { const ps = initial.nodes.filter((n) => n.kind === 'process'); ps.forEach((n, i) => { n.service = ps[i - (i % SERVICES)].id; }); }
const initialJson = JSON.stringify(initial);
const diffs = [];
for (let i = 0; i < UPDATES; i++) diffs.push(synth.diff(CHURN));
const d0 = diffs[0];
console.log(`graph ${initial.nodes.length} nodes / ${initial.edges.length} edges (${(initialJson.length / 1e6).toFixed(1)} MB JSON); ` +
  `per update ≈ ${d0.addedNodes.length}+${d0.removedNodes.length} nodes, ${d0.addedEdges.length}+${d0.removedEdges.length} edges added+removed, ${d0.updatedEdges.length} edges updated`);

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

async function measure(label, dist, query, browser) {
  const srv = await startFakeServer({ dist, graphJson: () => initialJson, connections: { listeners: [], connections: [] } });
  let p0First = null;
  const first = [], firstNav = [], upd = [], updFrame = [], updApply = [], updDraw = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
      const page = await ctx.newPage();
      const errs = [];
      page.on('pageerror', (e) => errs.push(String(e)));
      await page.goto(`${srv.url}/${query}`);
      await page.waitForFunction(() => window.__procnet?.perf?.firstFrameMs >= 0 || window.__procnet?.perf?.error, null, { timeout: 120000 });
      const p0 = await page.evaluate(() => window.__procnet.perf);
      if (p0.error) throw new Error(`${label}: ${p0.error}`);
      first.push(p0.firstFrameMs); firstNav.push(p0.firstFrameSinceNavMs); p0First = p0.firstBreakdown;
      if (run === 0) {
        // updates: after the initial layout has settled (or 4 s), one diff at a time
        await page.waitForFunction(() => !window.__procnet.layoutRunning, null, { timeout: 15000 }).catch(() => {});
        await page.waitForTimeout(300);
        for (const d of diffs) {
          srv.sendDiff(d);
          await page.waitForFunction((s) => window.__procnet.lastSeq === s || window.__procnet.perf.error, d.seq, { timeout: 10000, polling: 5 });
          const err = await page.evaluate(() => window.__procnet.perf.error);
          if (err) throw new Error(`${label}: ${err}`);
          await page.waitForTimeout(120);
        }
        const p = await page.evaluate(() => window.__procnet.perf.updates);
        if (p.length < diffs.length) throw new Error(`${label}: only ${p.length} updates applied`);
        for (const u of p) { upd.push(u.totalMs); updFrame.push(u.frameMs ?? NaN); updApply.push(u.parseMs + u.applyMs); updDraw.push(u.drawMs); }
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
    updateParseApplyMedianMs: r1(median(updApply)), updateDrawMedianMs: r1(median(updDraw)), updateToNextFrameMedianMs: r1(median(updFrame)), firstBreakdown: p0First,
  };
  console.log(JSON.stringify(res));
  return res;
}

// The machine is shared (2 cores): wait (bounded) for a quiet moment and record the load.
const os = await import('node:os');
for (let i = 0; i < 24 && os.loadavg()[0] > 1.2; i++) await new Promise((r) => setTimeout(r, 5000));
const loadBefore = os.loadavg()[0];
const extra = withSigma ? ['--enable-unsafe-swiftshader'] : [];
const browser = await launch(extra);
const version = browser.version();
const results = [];
try {
  results.push(await measure('procnet canvas renderer', join(web, 'dist'), '?bench=1', browser));
  if (withSigma) {
    const ver = (name) => JSON.parse(readFileSync(join(web, 'node_modules', name, 'package.json'), 'utf8')).version;
    const sv = ver('sigma'), gv = ver('graphology');
    results.push(await measure(`sigma ${sv} + graphology ${gv} (FA2 worker)`, sigmaDist, '', browser));
  }
} finally { await browser.close(); }

const ours = results[0], sig = results[1];
const lines = [
  '## UI', '',
  `Measured by \`node bench/ui.mjs\` (after \`cd web && npm ci && npm run build\`) on ${new Date().toISOString().slice(0, 10)}: headless Debian Chromium ${version}, ` +
  `\`--headless --no-sandbox --disable-gpu\` (software raster${withSigma ? '; `--enable-unsafe-swiftshader` so sigma gets software WebGL' : ''}), 1280×720, ` +
  `machine: 2 cores, shared (1-min load average ${loadBefore.toFixed(2)} at start, ${os.loadavg()[0].toFixed(2)} at end). Graph: ${initial.nodes.length} nodes / ${initial.edges.length} edges (${(initialJson.length / 1e6).toFixed(1)} MB JSON), ` +
  `${UPDATES} updates of 5 % churn (≈${d0.addedNodes.length} nodes removed + ${d0.addedNodes.length} added, ≈${d0.addedEdges.length} edges removed + added, ≈${d0.updatedEdges.length} edges updated), fed as SSE \`graph\` + \`diff\` events from a loopback Node server.`,
  '',
  '- *first frame*: from the `graph` event arriving (before `JSON.parse`) to the first frame drawn with a layout, pixels forced out with a 1-pixel read-back; median of the runs.',
  '- *update*: from the `diff` event arriving (before `JSON.parse`) to the diff applied as one batch and the frame that shows it drawn and read back; median over the updates. "next frame" is the same start to the next `requestAnimationFrame` callback (vsync-bound, ~16.7 ms period).',
  '',
  '| renderer | first frame (median) | nav → first frame | update median | update p90 | update max | parse+apply | draw | → next frame |',
  '|---|---|---|---|---|---|---|---|---|',
  ...results.map((r) => `| ${r.label} | **${r.firstFrameMs} ms** (runs: ${r.firstFrameAllMs.join(', ')}) | ${r.firstFrameSinceNavMs} ms | **${r.updateMedianMs} ms** | ${r.updateP90Ms} ms | ${r.updateMaxMs} ms | ${r.updateParseApplyMedianMs} ms | ${r.updateDrawMedianMs} ms | ${r.updateToNextFrameMedianMs} ms |`),
  '',
  `Target: first frame ≤ 200 ms, update median < 16 ms → ${ours.firstFrameMs <= 200 ? 'met' : 'NOT met'} / ${ours.updateMedianMs < 16 ? 'met' : 'NOT met'}.` +
  (sig ? ` Ratio sigma/ours: first frame ${(sig.firstFrameMs / ours.firstFrameMs).toFixed(1)}×, update ${(sig.updateMedianMs / ours.updateMedianMs).toFixed(1)}×.` : ''),
  '',
  'Notes:',
  '- Ours: own Canvas 2D renderer (web/src/graph.ts). First frame = seed layout (O(N+E), hubs first, neighbours around them) + one paint; a Barnes–Hut force pass in a web worker refines it afterwards (not in the number). Canvas buffers and the rasteriser are warmed up while the page waits for data (that cost is in "nav → first frame").',
  '- At overview zoom a big graph\'s edges go to an incremental density layer (web/src/density.ts): 1-px lines rasterised in JS into per-protocol counters; an update rasterises only the edges it adds/removes (±1) and repaints the dirty rectangle, so its cost follows the churn, not the graph. Zoomed in, or with a search/selection/hover, edges are Canvas 2D hairlines (a 2 px stroke costs ~10× a hairline in software raster).',
  '- sigma: nodes start at random positions, ForceAtlas2 runs in its worker for 3 s before the updates; each diff is applied to a copy of the graph which is then swapped in with `setGraph` + `refresh()` (editing the live graph item by item was slower still: seconds per update). Its "parse+apply" alone is close to the 34 ms measured earlier; the difference to the earlier 0.4 s / 34 ms is the frame itself, which here is software WebGL (SwiftShader).',
  '- The machine is shared with other sessions\' builds; numbers move with the load shown above (we saw first-frame medians from ~100 to ~200 ms and update medians from ~9 to ~15 ms across runs).',
  '',
];
console.log('\n' + lines.join('\n'));
if (args.includes('--write')) {
  const f = join(root, 'bench', 'RESULTS.md');
  let txt = existsSync(f) ? readFileSync(f, 'utf8') : '# Benchmark results\n\n';
  const i = txt.indexOf('## UI');
  if (i >= 0) { const j = txt.indexOf('\n## ', i + 5); txt = txt.slice(0, i) + lines.join('\n') + (j >= 0 ? txt.slice(j + 1) : ''); }
  else txt = txt.replace(/\s*$/, '\n\n') + lines.join('\n');
  writeFileSync(f, txt);
  console.log(`wrote ${f}`);
}
