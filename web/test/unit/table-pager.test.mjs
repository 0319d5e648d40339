// The connections table's paging (web/src/pager.ts): which rows are on screen, which pages
// hold them, the page addresses and the indicator's words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK, blocksFor, fmtCount, nextSort, pageUrl, statusText, visibleRange } from '../../../target/web-unit/pager.js';

test('the visible range follows the scroll position, clamped to the rows there are', () => {
  assert.deepEqual(visibleRange(0, 520, 26, 100000, 10), { first: 0, last: 30 });
  assert.deepEqual(visibleRange(26 * 5000, 520, 26, 100000, 10), { first: 4990, last: 5030 });
  assert.deepEqual(visibleRange(26 * 99995, 520, 26, 100000, 10), { first: 99985, last: 100000 });
  assert.deepEqual(visibleRange(0, 520, 26, 0), { first: 0, last: 0 });
  // Nonsense in, an empty or clamped range out, never NaN.
  assert.deepEqual(visibleRange(NaN, -5, 26, 10, 0), { first: 0, last: 0 });
  assert.deepEqual(visibleRange(1e12, 500, 26, 10), { first: 10, last: 10 });
});

test('the blocks that hold a range', () => {
  assert.equal(BLOCK, 200);
  assert.deepEqual(blocksFor(0, 30), [0]);
  assert.deepEqual(blocksFor(190, 230), [0, 1]);
  assert.deepEqual(blocksFor(400, 400), []);
  assert.deepEqual(blocksFor(4990, 5030), [24, 25]);
});

test('page addresses carry only what is set, encoded', () => {
  assert.equal(pageUrl('/api/connections', { offset: 0, limit: 200 }), '/api/connections?limit=200&offset=0');
  assert.equal(pageUrl('/api/connections', { q: 'psql 10.0.0.1:5432', sort: '-txBytes', offset: 400, limit: 200 }),
    '/api/connections?q=psql+10.0.0.1%3A5432&sort=-txBytes&limit=200&offset=400');
  assert.equal(pageUrl('/x', { rows: 'listeners', offset: 0, limit: 1 }), '/x?rows=listeners&limit=1&offset=0');
});

test('sorting toggles ascending then descending', () => {
  assert.equal(nextSort('', 'fromPort'), 'fromPort');
  assert.equal(nextSort('fromPort', 'fromPort'), '-fromPort');
  assert.equal(nextSort('-fromPort', 'fromPort'), 'fromPort');
  assert.equal(nextSort('-fromPort', 'txBytes'), 'txBytes');
});

test('the loading indicator says what is loading out of how many', () => {
  assert.equal(fmtCount(108000), '108,000');
  assert.equal(fmtCount(999), '999');
  assert.equal(statusText({ total: -1, unfiltered: -1, first: 0, last: 0, loading: true, q: '' }), 'loading connections…');
  assert.equal(statusText({ total: 108000, unfiltered: 108000, first: 1000, last: 1040, loading: true, q: '' }), 'loading 1,001–1,040 of 108,000…');
  assert.equal(statusText({ total: 108000, unfiltered: 108000, first: 0, last: 30, loading: false, q: '' }), '108,000 connections');
  assert.equal(statusText({ total: 12, unfiltered: 108000, first: 0, last: 12, loading: false, q: 'psql' }), '12 of 108,000 connections match');
});
