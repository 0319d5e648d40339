// Fleet mode in the UI: nodes group by the host they are on (`host`, set by `serve --fleet`).
import { test } from 'node:test';
import assert from 'node:assert/strict';

const lib = new URL('../../../target/web-unit/graph/', import.meta.url);
const { groupKeyOf, defaultCollapsed } = await import(new URL('grouping.js', lib));

test('fleet nodes group by host; placeholders without procnet form their own group', () => {
  const n = [
    { id: 'svc:A/api', kind: 'process', type: 'app', label: 'api@A', name: 'api', host: 'A' },
    { id: 'svc:A/web', kind: 'process', type: 'app', label: 'web@A', name: 'web', host: 'A' },
    { id: 'svc:B/postgres', kind: 'process', type: 'app', label: 'postgres@B', name: 'postgres', host: 'B' },
    { id: 'ext:198.18.0.99', kind: 'external', type: 'external', label: '198.18.0.99' },
  ];
  assert.deepEqual(n.map((x) => groupKeyOf(x, 'host')), ['A', 'A', 'B', '(no procnet)']);
  assert.deepEqual([...defaultCollapsed(n, 'host')], ['A']);
});

test('a fleet map opens grouped by host: expanded while every node can be labelled, else collapsed', async () => {
  const { fleetDefault } = await import(new URL('grouping.js', lib));
  const { LABEL_ALL_MAX } = await import(new URL('scene.js', lib));
  const fleet = (hosts, per) => Array.from({ length: hosts * per }, (_, i) => {
    const h = `h${Math.floor(i / per)}`;
    return { id: `svc:${h}/p${i % per}`, kind: 'process', type: 'app', label: `p${i % per}@${h}`, name: `p${i % per}`, host: h };
  });
  // a single host's map (no `host`) keeps its default
  assert.equal(fleetDefault([{ id: 'pid:1', kind: 'process', type: 'app', label: 'a' }]), null);
  const small = fleetDefault(fleet(10, 3));
  assert.equal(small.mode, 'host');
  assert.deepEqual([...small.collapsed], []);
  const edge = fleetDefault(fleet(10, LABEL_ALL_MAX / 10));
  assert.deepEqual([...edge.collapsed], [], `${LABEL_ALL_MAX} nodes: still expanded`);
  const big = fleetDefault([...fleet(12, 8), { id: 'ext:198.18.0.9', kind: 'external', type: 'external', label: '198.18.0.9' }]);
  assert.equal(big.mode, 'host');
  // every host folded; the lone placeholder is a group of one, drawn as itself
  assert.deepEqual([...big.collapsed].sort(), Array.from({ length: 12 }, (_, i) => `h${i}`).sort());
});
