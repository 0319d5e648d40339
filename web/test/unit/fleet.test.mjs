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
