// Browser checks against a REAL procnet server and real processes, driven by
// tests/browser_ui.rs (which starts both and passes their pids and ports).
// Skipped when PROCNET_URL is not set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { launch, openUI, switchView, screenshot, waitForGraph, tableRows } from './helpers.mjs';

const url = process.env.PROCNET_URL?.replace(/\/$/, '');
const env = (k) => Number(process.env[k]);
let browser;

before(async () => { if (url) browser = await launch(); });
after(async () => { await browser?.close(); });

test('the graph shows a new connection within 3 s and drops it after it closes', { skip: !url, timeout: 60000 }, async () => {
  const serverPid = env('PROCNET_SERVER_PID');
  const serverPort = env('PROCNET_SERVER_PORT');
  const { page, context, errors } = await openUI(browser, url);
  try {
    await waitForGraph(page, (p, id) => p.nodeIds().includes(id), 10000, `pid:${serverPid}`);
    // This node process is the client.
    const sock = net.connect(serverPort, '127.0.0.1');
    await once(sock, 'connect');
    const edgeId = `tcp:pid:${process.pid}->pid:${serverPid}:${serverPort}`;
    const shownAfter = await waitForGraph(page, (p, id) => p.edgeIds().includes(id), 3000, edgeId);
    assert.ok((await page.evaluate(() => window.__procnet.nodeIds())).includes(`pid:${process.pid}`), 'client node shown');
    console.log(`edge shown ${shownAfter} ms after the connection opened`);
    await page.click('[data-testid="fit"]');
    await page.waitForTimeout(800);
    await screenshot(page, 'graph');
    sock.destroy();
    const goneAfter = await waitForGraph(page, (p, id) => !p.edgeIds().includes(id), 3000, edgeId);
    console.log(`edge dropped ${goneAfter} ms after the connection closed`);
    // the changes came as the compact diff (`diffs`, /api/events?diff=slots), applied by slot
    const events = await page.evaluate(() => window.__procnet.diffEvents);
    assert.ok(events.diffs >= 2 && events.diff === 0 && events.reconnects === 0, `diffs events applied: ${JSON.stringify(events)}`);
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});

test('the table shows "connects to" badges and +N; the diagram renders', { skip: !url, timeout: 60000 }, async () => {
  const hubPid = env('PROCNET_HUB_PID');
  const hubPort = env('PROCNET_HUB_PORT');
  const { page, context, errors } = await openUI(browser, url, { hash: '#table' });
  try {
    await switchView(page, 'table');
    await page.waitForSelector('[data-testid="listener-row"]');
    let row;
    for (let i = 0; i < 30 && !row; i++) {
      row = (await tableRows(page)).find((r) => r.pid === hubPid && r.port === hubPort && r.badges.length === 5);
      if (!row) await page.waitForTimeout(200);
    }
    assert.ok(row, 'the hub listener row with 5 badges');
    assert.equal(row.more, '+2');
    // The traffic column is there and sortable.
    const before = (await tableRows(page)).length;
    await page.click('[data-testid="sort-traffic"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="sort-traffic"]').getAttribute('aria-sort') !== 'none');
    assert.equal((await tableRows(page)).length, before);
    assert.ok(await page.locator('[data-testid="traffic"]').count() >= before);
    await screenshot(page, 'table');
    await switchView(page, 'diagram');
    await page.waitForSelector('[data-testid="diagram-listener"]', { timeout: 5000 });
    await screenshot(page, 'diagram');
    assert.deepEqual(errors, []);
  } finally { await context.close(); }
});
