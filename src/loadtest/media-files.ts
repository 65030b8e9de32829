/**
 * Pre-encoded media for the werift engine: VP8 in IVF and Opus in Ogg, made once with ffmpeg and
 * cached outside the checkout (${XDG_CACHE_HOME:-~/.cache}/callplane/loadtest-media-v1/, the way the
 * setup script caches the mediasoup worker). The VP8 file has a key frame every second, so a
 * publisher answers a PLI by restarting the file from its first (key) frame.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const VIDEO_FPS = 30;
export const AUDIO_FRAME_MS = 20;
const CLIP_SECONDS = 10;

export function mediaCacheDir(): string {
  const root = process.env.XDG_CACHE_HOME && isAbsolute(process.env.XDG_CACHE_HOME) ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(root, 'callplane', 'loadtest-media-v1');
}

/** The picture size that suits a bitrate (roughly what a browser's encoder would pick). */
function sizeFor(kbps: number): string {
  if (kbps <= 300) return '320x180';
  if (kbps <= 1200) return '640x360';
  return '1280x720';
}

export function videoFixturePath(kbps: number): string {
  return join(mediaCacheDir(), `vp8-${kbps}k.ivf`);
}

export function audioFixturePath(): string {
  return join(mediaCacheDir(), 'opus-32k.ogg');
}

async function generate(path: string, args: string[]): Promise<boolean> {
  if (existsSync(path)) return false;
  mkdirSync(mediaCacheDir(), { recursive: true });
  // Written aside and renamed, so two runs generating at once never read half a file.
  const partial = `${path}.${process.pid}.part`;
  try {
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, '-f', path.endsWith('.ivf') ? 'ivf' : 'ogg', partial], { timeout: 180_000 });
  } catch (error) {
    throw new Error(`could not make the load tester's media with ffmpeg (${path}): ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  renameSync(partial, path);
  return true;
}

/** Makes the VP8 clip for `kbps` and the Opus clip when missing; true when it made something. */
export async function ensureMediaFixtures(kbps: number): Promise<boolean> {
  const video = await generate(videoFixturePath(kbps), [
    '-f', 'lavfi', '-i', `testsrc2=size=${sizeFor(kbps)}:rate=${VIDEO_FPS}`, '-t', String(CLIP_SECONDS),
    '-c:v', 'libvpx', '-b:v', `${kbps}k`, '-minrate', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${kbps}k`,
    '-g', String(VIDEO_FPS), '-keyint_min', String(VIDEO_FPS), '-deadline', 'realtime', '-cpu-used', '8',
    '-auto-alt-ref', '0', '-lag-in-frames', '0', '-error-resilient', '1',
  ]);
  const audio = await generate(audioFixturePath(), [
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', String(CLIP_SECONDS),
    '-c:a', 'libopus', '-b:a', '32k', '-ac', '1', '-frame_duration', String(AUDIO_FRAME_MS), '-application', 'voip',
  ]);
  return video || audio;
}

export interface EncodedFrame {
  data: Buffer;
  keyFrame: boolean;
}

/** The frames of an IVF file (32-byte file header, then a 12-byte header before each frame). */
export function readIvf(path: string): EncodedFrame[] {
  const file = readFileSync(path);
  if (file.toString('latin1', 0, 4) !== 'DKIF') throw new Error(`${path} is not an IVF file`);
  const headerSize = file.readUInt16LE(6);
  const frames: EncodedFrame[] = [];
  for (let offset = headerSize; offset + 12 <= file.length; ) {
    const size = file.readUInt32LE(offset);
    const data = file.subarray(offset + 12, offset + 12 + size);
    // VP8 frame tag: bit 0 of the first byte is 0 for a key frame (RFC 6386, 9.1).
    frames.push({ data, keyFrame: (data[0]! & 0x01) === 0 });
    offset += 12 + size;
  }
  if (frames.length === 0 || !frames[0]!.keyFrame) throw new Error(`${path} has no frames or does not start with a key frame`);
  return frames;
}

/** The Opus packets of an Ogg file, without the OpusHead and OpusTags header packets (RFC 7845). */
export function readOggOpus(path: string): Buffer[] {
  const file = readFileSync(path);
  const packets: Buffer[] = [];
  let current: Buffer[] = [];
  for (let offset = 0; offset + 27 <= file.length; ) {
    if (file.toString('latin1', offset, offset + 4) !== 'OggS') throw new Error(`${path}: not an Ogg page at byte ${offset}`);
    const segments = file[offset + 26]!;
    const table = file.subarray(offset + 27, offset + 27 + segments);
    let data = offset + 27 + segments;
    for (const length of table) {
      current.push(file.subarray(data, data + length));
      data += length;
      if (length < 255) {
        packets.push(Buffer.concat(current));
        current = [];
      }
    }
    offset = data;
  }
  const audio = packets.filter((p) => !p.toString('latin1', 0, 8).startsWith('Opus'));
  if (audio.length === 0) throw new Error(`${path} holds no Opus packets`);
  return audio;
}
