// Reusable browser-test helpers: headless Debian Chromium via playwright-core (no browser download).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHOT_DIR = join(REPO_ROOT, 'target', 'ui-screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Launching takes a few seconds on a quiet machine and has taken over 30 s on a loaded one.
export async function launch(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], headless: true, timeout: 90000 });
}

/** Open the UI; collects console errors and page errors (a 404 for /icons/<type>.png is expected
 *  by the contract — the UI falls back to its glyph — and is not counted). */
export async function openUI(browser, url, { width = 1280, height = 720, colorScheme = 'light', hash = '' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const loc = m.location()?.url ?? '';
    if (/\/icons\/[^/]+\.png/.test(loc) || /\/icons\/[^/]+\.png/.test(m.text())) return;
    errors.push(m.text() + (loc ? ` (${loc})` : ''));
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => { if (!r.url().includes('/api/events')) errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`); });
  await page.goto(url + '/' + hash, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.__procnet && window.__procnet.lastSeq >= 0, null, { timeout: 15000 });
  return { page, context, errors };
}

export async function switchView(page, name) {
  await page.click(`[data-testid="tab-${name}"]`);
  await page.waitForFunction((n) => window.__procnet.view === n, name);
}

export async function screenshot(page, name) {
  mkdirSync(SHOT_DIR, { recursive: true });
  const path = join(SHOT_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

export const nodeIds = (page) => page.evaluate(() => window.__procnet.nodeIds());
export const edgeIds = (page) => page.evaluate(() => window.__procnet.edgeIds());

/** Wait until a node matching `pred` (a function source run in the page over the raw node ids
 *  plus the view) exists; returns the elapsed ms. Example:
 *  await waitForGraph(page, (p, pid) => p.nodeIds().includes(`pid:${pid}`), 3000, pid) */
export async function waitForGraph(page, pred, timeout = 3000, arg = null) {
  const t0 = Date.now();
  await page.waitForFunction(([src, a]) => (0, eval)(`(${src})`)(window.__procnet, a), [pred.toString(), arg], { timeout, polling: 50 });
  return Date.now() - t0;
}

export const hasNode = (p, id) => p.nodeIds().includes(id);
/** True when an edge from -> to exists (raw graph), optionally on a server port. */
export const hasEdgeBetween = (p, [from, to, port]) => p.edges().some((e) => e.from === from && e.to === to && (port == null || e.serverPort === port));

/** Rows of the listener table: [{pid, port, badges: [text], more: '+N' | null}]. */
export async function tableRows(page) {
  return page.$$eval('[data-testid="listener-row"]', (rows) => rows.map((r) => ({
    pid: Number(r.getAttribute('data-pid')), port: Number(r.getAttribute('data-port')),
    badges: [...r.querySelectorAll('[data-testid="badge"]')].map((b) => b.textContent),
    more: r.querySelector('[data-testid="badge-more"]')?.textContent ?? null,
  })));
}

/** A solid-colour PNG (for icon-override tests), encoded here so no binary fixture is needed. */
export async function solidPng(w, h, [r, g, b]) {
  const { deflateSync } = await import('node:zlib');
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (buf) => { let c = 0xffffffff; for (const x of buf) c = crcTable[(c ^ x) & 255] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const o = y * (w * 3 + 1) + 1 + x * 3; raw[o] = r; raw[o + 1] = g; raw[o + 2] = b; }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
