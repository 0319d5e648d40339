// Compiles the DOM-free graph modules (tsconfig.unit.json) to target/web-unit, marked as ES
// modules, so the *.test.mjs files beside this one can import them with plain node.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(web, '..', 'target', 'web-unit');
execFileSync(process.execPath, [join(web, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(web, 'tsconfig.unit.json')], { stdio: 'inherit' });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
