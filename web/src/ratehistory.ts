// The Top talkers sparklines' data: the last minutes of a node's or edge's rate, kept by the
// server (`GET /api/rates`, src/serve/recent_rates.rs) from every published sample, so a page
// opened now shows the minutes before it opened. Asked for only the ids on screen, at most every
// few seconds; between fetches the panel shows the last series it got.
import type { RateHistory } from './graph/talkers';
import type { RatesDoc } from './types';

/** How often the series are fetched again while the panel shows them. */
const REFRESH_MS = 5000;

export class RecentRates implements RateHistory {
  private byId = new Map<string, number[]>();
  private asked = '';
  private fetchedAt = 0;
  private inFlight = false;

  /** `onData` re-renders the panel when new series arrive. */
  constructor(private onData: () => void) {}

  series(id: string): number[] | null { return this.byId.get(id) ?? null; }

  /** The ids on screen now: fetches their series when the set changed or the last is old. */
  want(ids: string[]) {
    const key = [...ids].sort().join('\n');
    const fresh = performance.now() - this.fetchedAt < REFRESH_MS;
    if (this.inFlight || ids.length === 0 || (key === this.asked && fresh)) return;
    this.asked = key;
    this.inFlight = true;
    const query = ids.map((id) => `id=${encodeURIComponent(id)}`).join('&');
    void fetch(`/api/rates?${query}`, { credentials: 'same-origin', cache: 'no-store' })
      .then((r) => (r.ok ? (r.json() as Promise<RatesDoc>) : null))
      .then((doc) => {
        if (!doc) return;
        this.byId = new Map(Object.entries(doc.series).filter((e): e is [string, number[]] => e[1] !== undefined));
        this.onData();
      })
      .catch(() => { /* no sparkline this time; the rates themselves still show */ })
      .finally(() => { this.inFlight = false; this.fetchedAt = performance.now(); });
  }
}
