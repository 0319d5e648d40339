// The Top talkers panel over the graph: the busiest processes and edges by bytes/s, refreshed
// at most twice a second while it is open (ranking 10k nodes per SSE update would cost the frame
// budget). A row's click selects and centres the process (or the service node it is folded in).
import type { Model } from './model';
import { esc, fmtRate } from './util';
import { sparkline, topEdges, topProcesses, type RateHistory, type Talker } from './graph/talkers';
import { RecentRates } from './ratehistory';

/** What the panel needs from the graph view. */
export interface TalkersHost { reveal(rawId: string): void }

const REFRESH_MS = 500;

export class TalkersPanel {
  private timer = 0;
  private last = 0;
  /** the rows as last rendered, for the test hook */
  shown: { processes: Talker[]; edges: Talker[] } = { processes: [], edges: [] };

  /** the sparklines' series; by default the server's last minutes (`/api/rates`) */
  private readonly history: RateHistory & { want?(ids: string[]): void };

  constructor(private el: HTMLDetailsElement, private model: Model, host: TalkersHost, history?: RateHistory) {
    this.history = history ?? new RecentRates(() => this.render());
    el.innerHTML = `<summary>Top talkers</summary>
      <div class="talkers-h">Processes</div><ol class="talkers-list" data-testid="talkers-processes"></ol>
      <div class="talkers-h">Edges</div><ol class="talkers-list" data-testid="talkers-edges"></ol>`;
    el.addEventListener('toggle', () => this.schedule());
    el.addEventListener('click', (ev) => {
      const li = (ev.target as HTMLElement).closest<HTMLElement>('li[data-reveal]');
      if (li) host.reveal(li.dataset.reveal!);
    });
    model.onChange(() => this.schedule());
  }

  /** Render now if the last render is old enough, else once the interval has passed. */
  schedule() {
    if (this.timer || !this.el.open) return;
    const wait = Math.max(0, this.last + REFRESH_MS - performance.now());
    this.timer = window.setTimeout(() => { this.timer = 0; this.render(); }, wait);
  }

  render() {
    this.last = performance.now();
    if (!this.el.open) return;
    const processes = topProcesses(this.model.nodes.values(), 10);
    const edges = topEdges(this.model.edges.values(), this.model.nodes, 10);
    this.shown = { processes, edges };
    this.history.want?.([...processes, ...edges].map((t) => t.id));
    const row = (t: Talker, kind: 'process' | 'edge', reveal: string) => {
      const split = t.tx !== undefined || t.rx !== undefined ? ` title="out ${esc(fmtRate(t.tx))} · in ${esc(fmtRate(t.rx))}"` : '';
      return `<li data-testid="talker-${kind}" data-id="${esc(t.id)}" data-rate="${t.rate}" data-reveal="${esc(reveal)}"${split}>` +
        `<span class="talker-label">${esc(t.label)}</span>${sparkline(this.history.series(t.id))}<span class="talker-rate">${esc(fmtRate(t.rate))}</span></li>`;
    };
    const none = '<li class="muted">no traffic measured</li>';
    this.el.querySelector('[data-testid="talkers-processes"]')!.innerHTML = processes.map((t) => row(t, 'process', t.id)).join('') || none;
    this.el.querySelector('[data-testid="talkers-edges"]')!.innerHTML =
      edges.map((t) => row(t, 'edge', t.from ?? t.id)).join('') || none;
  }
}
