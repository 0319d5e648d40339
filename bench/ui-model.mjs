#!/usr/bin/env node
// The UI model's part of a live update alone, in node (no browser, no drawing): Model.applySlotDiff
// at 10,000 nodes / 50,000 edges with 5 % churn per update, the diffs encoded as the server does
// (web/test/diff-wire.mjs). 5 models × 20 updates; median, p10 and p90 of the 100 applies.
//   cd web && npm run test:unit   # compiles the model to target/web-unit
//   node bench/ui-model.mjs [path/to/model.js]   # another build's, e.g. a copy from before a change
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lib = process.argv[2] ?? join(root, 'target', 'web-unit', 'model.js');
const { Model } = await import(pathToFileURL(lib).href);
const { Synth } = await import(pathToFileURL(join(root, 'web', 'test', 'synth.mjs')).href);
const { SlotEncoder } = await import(pathToFileURL(join(root, 'web', 'test', 'diff-wire.mjs')).href);
const N = 20;
const synth = new Synth(10000, 50000, 42);
const docJson = JSON.stringify(synth.doc());
const enc = new SlotEncoder(JSON.parse(docJson), { addedCols: true });
const diffs = [];
for (let i = 0; i < N; i++) diffs.push(JSON.stringify(enc.encode(synth.diff(0.05))));
const times = [];
for (let round = 0; round < 5; round++) {
  const m = new Model();
  m.onChange(() => {});
  const d0 = JSON.parse(docJson);
  m.loadDoc(d0); m.startSlots(d0);
  m.normalizeSome();
  void m.adj; // as the page does after its first frame
  for (const s of diffs) {
    const d = JSON.parse(s);
    const t0 = performance.now();
    if (!m.applySlotDiff(d)) throw new Error('a diff did not apply');
    times.push(performance.now() - t0);
  }
}
times.sort((a, b) => a - b);
const at = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(2);
console.log(`Model.applySlotDiff at 10,000 / 50,000, 5 % churn: median ${at(0.5)} ms, p10 ${at(0.1)} ms, p90 ${at(0.9)} ms (n=${times.length})`);
