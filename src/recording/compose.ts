/**
 * Composition (docs/recording.md, "Composition"): the raw segments of a recording into one MP4,
 * H.264 + AAC with +faststart. Video segments are placed on a grid (one tile per participant, in
 * the order they first appeared) over a black canvas, each at its true offset; all audio is mixed,
 * each at its offset, gaps filled with silence. The file lasts exactly the recording's span. With
 * no video segment the result is audio only (audio/mp4).
 */
import ffmpeg from 'fluent-ffmpeg';
import type { RecordingConfig } from '../config/schema.ts';

export interface ComposeSegment {
  file: string;
  kind: 'audio' | 'video';
  participantId: string;
  offsetMs: number;
  /** The first timestamp in the file (ffprobe's start_time), subtracted so the segment starts at its offset. */
  startTimeSeconds: number;
}

export interface ComposePlan {
  inputs: string[];
  filter: string;
  outputOptions: string[];
  audioOnly: boolean;
  contentType: 'video/mp4' | 'audio/mp4';
}

type ComposeSettings = RecordingConfig['compose'];

const sec = (ms: number): string => (ms / 1000).toFixed(3);
const even = (n: number): number => Math.max(2, Math.floor(n / 2) * 2);

/** Tiles of the grid: columns = ceil(sqrt(n)), rows to fit; each tile keeps the canvas' aspect. */
export function gridLayout(count: number, width: number, height: number): Array<{ x: number; y: number; w: number; h: number }> {
  if (count === 0) return [];
  const cols = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / cols);
  const w = even(width / cols);
  const h = even(height / rows);
  return Array.from({ length: count }, (_, i) => ({ x: (i % cols) * w, y: Math.floor(i / cols) * h, w, h }));
}

/** The ffmpeg inputs, filter graph and output options; pure, so the layout and offsets are tested without ffmpeg. */
export function planComposition(segments: ComposeSegment[], durationMs: number, settings: ComposeSettings, wantAudio: boolean): ComposePlan {
  const duration = sec(durationMs);
  const inputs = segments.map((s) => s.file);
  const video = segments.map((s, index) => ({ ...s, index })).filter((s) => s.kind === 'video');
  const audio = segments.map((s, index) => ({ ...s, index })).filter((s) => s.kind === 'audio');
  const chains: string[] = [];
  const maps: string[] = [];

  const tiles = [...new Set([...video].sort((a, b) => a.offsetMs - b.offsetMs).map((s) => s.participantId))];
  if (video.length > 0) {
    const layout = gridLayout(tiles.length, settings.width, settings.height);
    chains.push(`color=c=black:s=${settings.width}x${settings.height}:r=${settings.fps}:d=${duration}[base0]`);
    // Later segments of a participant go on top of earlier ones (a restarted recorder).
    const ordered = [...video].sort((a, b) => a.offsetMs - b.offsetMs);
    ordered.forEach((s, i) => {
      const tile = layout[tiles.indexOf(s.participantId)]!;
      chains.push(
        `[${s.index}:v]setpts=PTS-${s.startTimeSeconds.toFixed(3)}/TB+${sec(s.offsetMs)}/TB,` +
          `scale=${tile.w}:${tile.h}:force_original_aspect_ratio=decrease,pad=${tile.w}:${tile.h}:(ow-iw)/2:(oh-ih)/2,setsar=1[v${i}]`,
      );
      chains.push(`[base${i}][v${i}]overlay=${tile.x}:${tile.y}:eof_action=pass[base${i + 1}]`);
    });
    chains.push(`[base${ordered.length}]fps=${settings.fps},format=yuv420p[vout]`);
    maps.push('-map', '[vout]');
  }

  if (audio.length > 0) {
    audio.forEach((s, i) => {
      // async=1 with first_pts=0: silence from 0 to the offset, and in any gap (a paused producer).
      chains.push(`[${s.index}:a]asetpts=PTS-${s.startTimeSeconds.toFixed(3)}/TB+${sec(s.offsetMs)}/TB,aresample=48000:async=1:first_pts=0[a${i}]`);
    });
    const labels = audio.map((_, i) => `[a${i}]`).join('');
    const mix = audio.length === 1 ? '[a0]' : `${labels}amix=inputs=${audio.length}:duration=longest:normalize=0,`;
    chains.push(`${mix}apad,atrim=0:${duration}[aout]`);
    maps.push('-map', '[aout]');
  } else if (wantAudio && video.length > 0) {
    // Audio was asked for but nobody published any: a silent track keeps the file's shape (H.264 + AAC).
    chains.push(`anullsrc=r=48000:cl=stereo,atrim=0:${duration}[aout]`);
    maps.push('-map', '[aout]');
  }

  const hasAudioOut = maps.includes('[aout]');
  const outputOptions = [
    ...maps,
    ...(video.length > 0 ? ['-c:v', 'libx264', '-preset', settings.preset, '-crf', String(settings.crf), '-pix_fmt', 'yuv420p', '-r', String(settings.fps)] : ['-vn']),
    ...(hasAudioOut ? ['-c:a', 'aac', '-b:a', `${settings.audio_bitrate_kbps}k`, '-ac', '2', '-ar', '48000'] : []),
    '-movflags',
    '+faststart',
    '-t',
    duration,
  ];
  return {
    inputs,
    filter: chains.join(';'),
    outputOptions,
    audioOnly: video.length === 0,
    contentType: video.length === 0 ? 'audio/mp4' : 'video/mp4',
  };
}

/** Runs the plan with ffmpeg into `outFile` (MP4). Rejects with ffmpeg's last lines. */
export function runComposition(ffmpegPath: string, plan: ComposePlan, outFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const command = ffmpeg({ stdoutLines: 20 }).setFfmpegPath(ffmpegPath);
    for (const input of plan.inputs) command.input(input);
    command
      .complexFilter(plan.filter)
      .outputOptions(plan.outputOptions)
      .format('mp4')
      .output(outFile)
      .on('end', () => resolve())
      .on('error', (error: Error, _stdout: string | null, stderr: string | null) => {
        const last = (stderr ?? '').split('\n').filter(Boolean).slice(-4).join(' | ');
        reject(new Error(`composition failed: ${error.message}${last ? `: ${last}` : ''}`));
      })
      .run();
  });
}
