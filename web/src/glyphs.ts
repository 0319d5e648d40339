// Built-in icon glyphs, drawn here (no third-party art). A PNG from /icons/<type>.png overrides.

export const TYPE_ALIASES: Record<string, string> = {
  mq: 'message_broker', lb: 'load_balancer', db: 'database',
  // psys processIconType values
  postgres: 'database', mysql: 'database', mongo: 'database', redis: 'cache',
  node: 'service', next: 'service', apache: 'service', ssh: 'service', psys: 'service', generic: 'app',
};

export const GLYPH_TYPES = ['app', 'service', 'database', 'message_broker', 'cache', 'load_balancer',
  'external', 'qt_desktop', 'unknown', 'group'] as const;

export const TYPE_COLORS: Record<string, string> = {
  app: '#6366f1', service: '#0284c7', database: '#059669', message_broker: '#9333ea',
  cache: '#dc2626', load_balancer: '#ea580c', external: '#64748b', qt_desktop: '#16a34a',
  unknown: '#9ca3af', group: '#0f766e',
};

export function canonicalType(t: string | undefined): string {
  if (!t) return 'app';
  const k = t.toLowerCase();
  return TYPE_ALIASES[k] ?? k;
}

export function glyphType(t: string | undefined): string {
  const c = canonicalType(t);
  return (TYPE_COLORS[c] ? c : 'app');
}

export function typeColor(t: string | undefined): string {
  return TYPE_COLORS[glyphType(t)];
}

type Ctx = CanvasRenderingContext2D;

/** Draw the white glyph for a type in a unit box centred on 0,0 spanning -1..1. */
function drawGlyph(ctx: Ctx, type: string) {
  ctx.strokeStyle = '#fff';
  ctx.fillStyle = '#fff';
  ctx.lineWidth = 0.13;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  const s = 0.55;
  switch (type) {
    case 'app': { // window
      ctx.strokeRect(-s, -s * 0.8, 2 * s, 1.6 * s);
      ctx.beginPath(); ctx.moveTo(-s, -s * 0.35); ctx.lineTo(s, -s * 0.35); ctx.stroke();
      break;
    }
    case 'service': { // gear
      ctx.beginPath();
      for (let i = 0; i < 16; i++) {
        const a = (i / 16) * Math.PI * 2;
        const r = i % 2 ? 0.42 : 0.6;
        const a2 = a + Math.PI / 8;
        ctx.lineTo(Math.cos(a) * r, Math.sin(a) * r);
        ctx.lineTo(Math.cos(a2) * r, Math.sin(a2) * r);
      }
      ctx.closePath(); ctx.fill();
      ctx.globalCompositeOperation = 'destination-out';
      ctx.beginPath(); ctx.arc(0, 0, 0.2, 0, Math.PI * 2); ctx.fill();
      ctx.globalCompositeOperation = 'source-over';
      break;
    }
    case 'database': { // cylinder
      const w = 0.5, h = 0.55, ry = 0.16;
      ctx.beginPath(); ctx.ellipse(0, -h, w, ry, 0, 0, Math.PI * 2); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(-w, -h); ctx.lineTo(-w, h);
      ctx.ellipse(0, h, w, ry, 0, Math.PI, 0, true); ctx.lineTo(w, -h); ctx.stroke();
      ctx.beginPath(); ctx.ellipse(0, 0, w, ry, 0, 0, Math.PI); ctx.stroke();
      break;
    }
    case 'message_broker': { // queue: envelope-ish stacked messages
      for (let i = 0; i < 3; i++) {
        const y = -0.5 + i * 0.38;
        ctx.strokeRect(-0.55 + i * 0.08, y, 0.9, 0.26);
      }
      break;
    }
    case 'cache': { // lightning bolt
      ctx.beginPath();
      ctx.moveTo(0.12, -0.7); ctx.lineTo(-0.4, 0.1); ctx.lineTo(-0.02, 0.1);
      ctx.lineTo(-0.14, 0.7); ctx.lineTo(0.42, -0.12); ctx.lineTo(0.04, -0.12); ctx.closePath();
      ctx.fill();
      break;
    }
    case 'load_balancer': { // one in, three out
      ctx.beginPath(); ctx.arc(-0.45, 0, 0.13, 0, Math.PI * 2); ctx.fill();
      ctx.beginPath();
      for (const y of [-0.5, 0, 0.5]) { ctx.moveTo(-0.35, 0); ctx.lineTo(0.35, y); }
      ctx.stroke();
      for (const y of [-0.5, 0, 0.5]) { ctx.beginPath(); ctx.arc(0.45, y, 0.11, 0, Math.PI * 2); ctx.fill(); }
      break;
    }
    case 'external': { // globe
      ctx.beginPath(); ctx.arc(0, 0, 0.6, 0, Math.PI * 2); ctx.stroke();
      ctx.beginPath(); ctx.ellipse(0, 0, 0.25, 0.6, 0, 0, Math.PI * 2); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(-0.6, 0); ctx.lineTo(0.6, 0); ctx.stroke();
      break;
    }
    case 'qt_desktop': { // monitor
      ctx.strokeRect(-0.6, -0.5, 1.2, 0.8);
      ctx.beginPath(); ctx.moveTo(0, 0.3); ctx.lineTo(0, 0.55); ctx.moveTo(-0.3, 0.6); ctx.lineTo(0.3, 0.6); ctx.stroke();
      break;
    }
    case 'group': { // three dots
      for (const [x, y] of [[-0.3, 0.25], [0.3, 0.25], [0, -0.28]]) {
        ctx.beginPath(); ctx.arc(x, y, 0.2, 0, Math.PI * 2); ctx.fill();
      }
      break;
    }
    default: { // unknown: question mark
      ctx.font = 'bold 1.3px sans-serif';
      ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.fillText('?', 0, 0.05);
    }
  }
}

const SPRITE = 64;

/** Per-type sprites (coloured disc + glyph), overridden by server PNGs when present. */
export class Sprites {
  private sprites = new Map<string, HTMLCanvasElement | HTMLImageElement>();
  private urls = new Map<string, string>();
  private tried = new Set<string>();
  onUpdate: () => void = () => {};

  private build(gt: string): HTMLCanvasElement {
    const c = document.createElement('canvas');
    c.width = c.height = SPRITE;
    const ctx = c.getContext('2d')!;
    ctx.translate(SPRITE / 2, SPRITE / 2);
    ctx.scale(SPRITE / 2, SPRITE / 2);
    ctx.fillStyle = TYPE_COLORS[gt] ?? TYPE_COLORS.app;
    if (gt === 'external') { // external endpoints: rounded square, distinct from process discs
      ctx.beginPath(); ctx.roundRect(-0.92, -0.92, 1.84, 1.84, 0.35); ctx.fill();
    } else {
      ctx.beginPath(); ctx.arc(0, 0, 0.96, 0, Math.PI * 2); ctx.fill();
    }
    drawGlyph(ctx, gt);
    return c;
  }

  /** Sprite for a node type (raw type string as the server sent it). */
  get(type: string): HTMLCanvasElement | HTMLImageElement {
    const key = type || 'app';
    let s = this.sprites.get(key);
    if (s) return s;
    s = this.build(glyphType(key));
    this.sprites.set(key, s);
    this.tryPng(key);
    return s;
  }

  /** URL usable in <img> for a type. */
  url(type: string): string {
    const key = type || 'app';
    const u = this.urls.get(key);
    if (u) return u;
    const s = this.get(key);
    const url = s instanceof HTMLCanvasElement ? s.toDataURL() : s.src;
    this.urls.set(key, url);
    return url;
  }

  /** Which PNGs the server has (`/api/icons`), asked once: only those are requested. */
  private index: Promise<IconIndex> | null = null;

  private iconIndex(): Promise<IconIndex> {
    this.index ??= fetch('/api/icons', { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : { types: [], fallback: false }))
      .then((j: IconIndex) => ({ types: j.types ?? [], fallback: !!j.fallback }))
      .catch(() => ({ types: [], fallback: false }));
    return this.index;
  }

  private tryPng(type: string) {
    if (this.tried.has(type) || type === 'group' || !/^[A-Za-z0-9_.-]+$/.test(type)) return;
    this.tried.add(type);
    if ((globalThis as { __procnetNoIcons?: boolean }).__procnetNoIcons) return;
    void this.iconIndex().then((index) => {
      if (index.fallback || index.types.includes(type)) this.loadPng(type);
    });
  }

  private loadPng(type: string) {
    const img = new Image();
    img.onload = () => {
      if (!img.naturalWidth) return;
      const c = document.createElement('canvas');
      c.width = c.height = SPRITE;
      const ctx = c.getContext('2d')!;
      ctx.beginPath(); ctx.arc(SPRITE / 2, SPRITE / 2, SPRITE / 2 - 1, 0, Math.PI * 2); ctx.clip();
      ctx.fillStyle = '#fff'; ctx.fill();
      ctx.drawImage(img, 4, 4, SPRITE - 8, SPRITE - 8);
      this.sprites.set(type, c);
      this.urls.set(type, `/icons/${type}.png`);
      this.onUpdate();
    };
    img.onerror = () => {}; // removed since the index was read: keep the built-in glyph
    img.src = `/icons/${encodeURIComponent(type)}.png`;
  }
}

/** `GET /api/icons`: the types with their own PNG, and whether `service.png` stands in for the rest. */
interface IconIndex {
  types: string[];
  fallback: boolean;
}

export const sprites = new Sprites();
