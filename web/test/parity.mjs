// Parity with psys and Procnet Live (issue 15), in Chromium against a REAL procnet server and
// real processes started by tests/browser_ui.rs (`ui_parity_with_psys_and_procnet_live`):
// the table's two badge columns, one label per process in the diagram, containers as icons,
// and the --p2p-only status line. Skipped when PROCNET_URL is not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openUI, switchView, screenshot } from './helpers.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const p2pUrl = process.env.PROCNET_P2P_URL?.replace(/\/$/, '');
const env = (k) => Number(process.env[k]);
let browser;

before(async () => { if (url || p2pUrl) browser = await launch(); });
after(async () => { await browser?.close(); });

/** Rows of the listener table with both badge columns. */
const rows = (page) => page.$$eval('[data-testid="listener-row"]', (rs) => rs.map((r) => ({
  pid: Number(r.dataset.pid), port: Number(r.dataset.port),
  clients: [...r.querySelectorAll('[data-testid="client-badge"]')].map((b) => b.textContent),
  clientsMore: r.querySelector('[data-testid="client-badge-more"]')?.textContent ?? null,
  targets: [...r.querySelectorAll('[data-testid="badge"]')].map((b) => b.textContent),
  targetsMore: r.querySelector('[data-testid="badge-more"]')?.textContent ?? null,
  container: r.querySelector('[data-testid="container"]') ? { icon: !!r.querySelector('[data-testid="container"] [data-testid="container-icon"]'), text: r.querySelector('[data-testid="container-name"]')?.textContent } : null,
})));

async function waitRow(page, pred, what) {
  for (let i = 0; i < 50; i++) {
    const row = (await rows(page)).find(pred);
    if (row) return row;
    await page.waitForTimeout(200);
  }
  assert.fail(`no table row: ${what}\n${JSON.stringify(await rows(page))}`);
}

test('table: clients of a listener and where its process connects to, 5 badges then +N', { skip: !url, timeout: 60000 }, async () => {
  const [dbPid, dbPort, webPid, webPort, dockerPort] = ['DB_PID', 'DB_PORT', 'WEB_PID', 'WEB_PORT', 'DOCKER_PORT'].map((k) => env(`PARITY_${k}`));
  const { page, context, errors } = await openUI(browser, url, { hash: '#table', width: 1600, height: 800 });
  try {
    await switchView(page, 'table');
    // The database row lists who connects to it (psys: the postgres row shows its clients).
    const db = await waitRow(page, (r) => r.pid === dbPid && r.port === dbPort && r.clients.length === 5, 'db with 5 client badges');
    assert.deepEqual(db.clients, Array(5).fill('webapp'));
    assert.equal(db.clientsMore, '+2');
    assert.deepEqual(db.targets, [], 'the database connects nowhere');
    // The client's row: where it connects to, by the target's one label.
    const web = await waitRow(page, (r) => r.pid === webPid && r.port === webPort && r.targets.length === 5, 'webapp with 5 target badges');
    assert.equal(web.targetsMore, '+3');
    assert.ok(web.targets.includes('DB (Public)'), JSON.stringify(web.targets));
    assert.ok(!web.targets.includes('dbproxy'), 'no second name for the same process');
    assert.deepEqual(web.clients, []);
    // A container is an icon with its name, not a text tag.
    const docker = await waitRow(page, (r) => r.port === dockerPort, 'docker-proxy row');
    assert.ok(docker.container?.icon, JSON.stringify(docker));
    assert.equal(docker.container.text, 'container 172.17.0.2:80');
    await page.fill('[data-testid="table-filter"]', 'webapp');
    assert.ok((await rows(page)).some((r) => r.pid === dbPid), 'the filter finds a listener by its clients');
    await page.fill('[data-testid="table-filter"]', '');
    await page.click('[data-testid="sort-clients"]');
    await page.click('[data-testid="sort-clients"]'); // most clients first
    // (other tests' servers may be listening too: check the order, not who is first)
    const counts = (await rows(page)).map((r) => r.clients.length + Number(r.clientsMore?.slice(1) ?? 0));
    assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
    assert.ok(counts[0] >= 7);
    await screenshot(page, 'parity-table');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('diagram: one label per process on both sides; containers as icons', { skip: !url, timeout: 60000 }, async () => {
  const [dbPort, dockerPort] = [env('PARITY_DB_PORT'), env('PARITY_DOCKER_PORT')];
  const { page, context, errors } = await openUI(browser, url, { hash: '#diagram', width: 1400, height: 900 });
  try {
    await switchView(page, 'diagram');
    await page.waitForSelector('[data-testid="diagram-listener"]', { timeout: 10000 });
    const read = () => page.evaluate(() => {
      const nodes = (kind) => [...document.querySelectorAll(`[data-testid="diagram-${kind}"]`)].map((g) => ({
        label: g.querySelector('[data-testid="diagram-label"]').textContent,
        text: g.textContent,
        icon: !!g.querySelector('[data-testid="container-icon"]'),
      }));
      return { listeners: nodes('listener'), targets: nodes('target') };
    });
    let d;
    for (let i = 0; i < 50; i++) {
      d = await read();
      if (d.targets.some((t) => t.text.includes(`:${dbPort}`)) && d.targets.some((t) => t.text.includes(`:${dockerPort}`))) break;
      await page.waitForTimeout(200);
    }
    const dbListener = d.listeners.find((l) => l.text.includes(`:${dbPort}`));
    const dbTarget = d.targets.find((t) => t.text.includes(`:${dbPort}`));
    assert.ok(dbListener && dbTarget, JSON.stringify(d));
    assert.equal(dbListener.label, 'DB (Public)');
    assert.equal(dbTarget.label, dbListener.label, 'the target is called what its listener is called');
    const dockerListener = d.listeners.find((l) => l.text.includes(`:${dockerPort}`));
    const dockerTarget = d.targets.find((t) => t.text.includes(`:${dockerPort}`));
    assert.ok(dockerListener.icon && dockerTarget.icon, 'container icons');
    assert.equal(dockerTarget.label, dockerListener.label);
    assert.ok(d.listeners.every((l) => !l.text.includes('[container]')), 'no text tag');
    // zoom in on the db listener for a readable screenshot
    await page.click('[data-testid="diagram-fit"]');
    await screenshot(page, 'parity-diagram');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('--p2p-only: the status line says how many edges to unknown owners are hidden', { skip: !p2pUrl, timeout: 60000 }, async () => {
  const { page, context, errors } = await openUI(browser, p2pUrl);
  try {
    await page.waitForSelector('[data-testid="p2p-hidden"]:not([hidden])', { timeout: 10000 });
    const text = await page.textContent('[data-testid="p2p-hidden"]');
    assert.match(text, /^[1-9]\d* edges? to unknown owners hidden \(--p2p-only\)$/);
    const ids = await page.evaluate(() => window.__procnet.edges().flatMap((e) => [e.from, e.to]));
    assert.ok(ids.length > 0 && ids.every((id) => id.startsWith('pid:')), JSON.stringify(ids));
    await screenshot(page, 'parity-p2p');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
