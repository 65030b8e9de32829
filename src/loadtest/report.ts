/**
 * The load test's report (docs/loadtest.md, "The report"): built from every peer's track counters
 * and two scrapes of the target's /metrics, printed as a table, written as JSON, and compared
 * between two runs.
 */
import type { MediaKind } from '../protocol/signaling.ts';
import { round, type ServerFigures } from './server-metrics.ts';
import type { TrackSnapshot } from './track-stats.ts';

export interface LoadtestConfig {
  url: string;
  rooms: number;
  publishers: number;
  subscribers: number;
  media: 'audio' | 'video' | 'both';
  video_bitrate_kbps: number;
  simulcast: boolean;
  engine: 'werift' | 'wrtc';
  /** werift subscribers' receive path (docs/loadtest.md, "Receivers"); absent in reports from before the option. */
  receiver?: 'full' | 'light';
  duration_s: number;
  ramp_peers_per_s: number;
}

type PerKind = { audio: number | null; video: number | null };

export interface LoadtestReport {
  config: LoadtestConfig;
  started_at: string;
  duration_s: number;
  peers: { expected: number; joined: number; failed: number };
  join_ms: { p50: number | null; p95: number | null; p99: number | null };
  tracks: { expected: number; received: number; received_pct: number };
  bitrate_kbps: PerKind;
  packet_loss_pct: PerKind;
  jitter_ms: PerKind;
  packets: { received: number; lost: number };
  /** Every receiver's packets over the measured span, per second: what the SFU forwarded to them. */
  received_packets_per_s: number;
  server: ServerFigures;
  load_tester: { cpu_pct: number; rss_mb: number };
  errors: string[];
  interrupted: boolean;
}

export function kindsOf(media: LoadtestConfig['media']): MediaKind[] {
  return media === 'both' ? ['audio', 'video'] : [media];
}

/** Every peer receives every track of every other publisher in its room. */
export function expectedTracks(config: Pick<LoadtestConfig, 'rooms' | 'publishers' | 'subscribers' | 'media'>): number {
  const { rooms, publishers, subscribers } = config;
  return rooms * publishers * kindsOf(config.media).length * (publishers - 1 + subscribers);
}

export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!, 1);
}

/** A track counts as received when at least one of its packets arrived. */
export function isReceived(track: TrackSnapshot): boolean {
  return track.packets > 0;
}

export function trackFigures(tracks: TrackSnapshot[]): Pick<LoadtestReport, 'bitrate_kbps' | 'packet_loss_pct' | 'jitter_ms' | 'packets'> {
  const perKind = (kind: MediaKind) => {
    const of = tracks.filter((t) => t.kind === kind && isReceived(t));
    if (of.length === 0) return { bitrate: null, loss: null, jitter: null };
    const measured = of.filter((t) => t.spanMs > 0);
    const bitrate = measured.length ? measured.reduce((s, t) => s + (t.bytes * 8) / t.spanMs, 0) / measured.length : null; // bits/ms = kbit/s
    const expected = of.reduce((s, t) => s + t.expected, 0);
    const lost = of.reduce((s, t) => s + t.lost, 0);
    return {
      bitrate: bitrate === null ? null : round(bitrate, 1),
      loss: expected > 0 ? round((lost / expected) * 100, 3) : 0,
      jitter: round(of.reduce((s, t) => s + t.jitterMs, 0) / of.length, 2),
    };
  };
  const audio = perKind('audio');
  const video = perKind('video');
  return {
    bitrate_kbps: { audio: audio.bitrate, video: video.bitrate },
    packet_loss_pct: { audio: audio.loss, video: video.loss },
    jitter_ms: { audio: audio.jitter, video: video.jitter },
    packets: { received: tracks.reduce((s, t) => s + t.packets, 0), lost: tracks.reduce((s, t) => s + t.lost, 0) },
  };
}

const show = (value: number | null | undefined, unit = ''): string => (value === null || value === undefined ? '-' : `${value}${unit}`);

export function summaryTable(report: LoadtestReport): string {
  const c = report.config;
  const rows: Array<[string, string]> = [
    ['target', c.url],
    ['load', `${c.rooms} room(s) × (${c.publishers} publishers + ${c.subscribers} subscribers), ${c.media}, ${c.engine}${c.simulcast ? ', simulcast' : ''}${c.receiver === 'light' ? ', light receivers' : ''}`],
    ['duration', `${report.duration_s} s${report.interrupted ? ' (interrupted)' : ''}`],
    ['peers', `${report.peers.joined}/${report.peers.expected} joined, ${report.peers.failed} failed`],
    ['join time', `p50 ${show(report.join_ms.p50, ' ms')}, p95 ${show(report.join_ms.p95, ' ms')}, p99 ${show(report.join_ms.p99, ' ms')}`],
    ['packets/s', `${report.received_packets_per_s} received (all receivers, measured span)`],
    ['tracks', `${report.tracks.received}/${report.tracks.expected} received (${report.tracks.received_pct}%)`],
    ['bitrate', `audio ${show(report.bitrate_kbps.audio, ' kbps')}, video ${show(report.bitrate_kbps.video, ' kbps')} (mean per track)`],
    ['packet loss', `audio ${show(report.packet_loss_pct.audio, '%')}, video ${show(report.packet_loss_pct.video, '%')}`],
    ['jitter', `audio ${show(report.jitter_ms.audio, ' ms')}, video ${show(report.jitter_ms.video, ' ms')}`],
    ['server cpu', `${show(report.server.cpu_pct, '%')} total (node ${show(report.server.process_cpu_pct, '%')}${report.server.workers.map((w) => `, worker ${w.worker} ${show(w.cpu_pct, '%')}`).join('')})`],
    ['server rss', show(report.server.rss_mb, ' MB')],
    ['load tester', `cpu ${report.load_tester.cpu_pct}%, rss ${report.load_tester.rss_mb} MB`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

/** Numeric fields of two reports side by side, with the change; config differences listed first. */
export function compareReports(a: LoadtestReport, b: LoadtestReport, names: [string, string]): string {
  const lines: string[] = [];
  for (const key of Object.keys({ ...a.config, ...b.config }) as Array<keyof LoadtestConfig>) {
    if (a.config?.[key] !== b.config?.[key]) lines.push(`config.${key}: ${String(a.config?.[key])} → ${String(b.config?.[key])}`);
  }
  const rows: Array<[string, number | null, number | null]> = [];
  const walk = (path: string, x: unknown, y: unknown): void => {
    if (path === 'config' || path === 'errors') return;
    if (typeof x === 'number' || typeof y === 'number') {
      rows.push([path, typeof x === 'number' ? x : null, typeof y === 'number' ? y : null]);
      return;
    }
    if (Array.isArray(x) || Array.isArray(y)) {
      const xs = (Array.isArray(x) ? x : []) as unknown[];
      const ys = (Array.isArray(y) ? y : []) as unknown[];
      for (let i = 0; i < Math.max(xs.length, ys.length); i++) walk(`${path}[${i}]`, xs[i], ys[i]);
      return;
    }
    if ((x && typeof x === 'object') || (y && typeof y === 'object')) {
      const xo = (x ?? {}) as Record<string, unknown>;
      const yo = (y ?? {}) as Record<string, unknown>;
      for (const key of new Set([...Object.keys(xo), ...Object.keys(yo)])) walk(path ? `${path}.${key}` : key, xo[key], yo[key]);
    }
  };
  walk('', a, b);
  const width = Math.max(5, ...rows.map(([p]) => p.length));
  const colA = Math.max(10, names[0].length);
  const colB = Math.max(10, names[1].length);
  lines.push(`${'field'.padEnd(width)}  ${names[0].padStart(colA)}  ${names[1].padStart(colB)}  change`);
  for (const [path, x, y] of rows) {
    const change = x === null || y === null ? '' : x === 0 ? (y === 0 ? '0' : 'new') : `${y - x >= 0 ? '+' : ''}${round(((y - x) / Math.abs(x)) * 100, 1)}%`;
    lines.push(`${path.padEnd(width)}  ${show(x).padStart(colA)}  ${show(y).padStart(colB)}  ${change}`);
  }
  return lines.join('\n') + '\n';
}
