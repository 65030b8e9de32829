/** Helpers for recording tests: a room call with publishers, ffprobe on files. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { NodePeer } from './node-peer.ts';
import { createAccount, type TestAccount, type TestServer } from './server.ts';

const run = promisify(execFile);

export interface ProbeResult {
  duration: number;
  streams: Array<{ codec_type: string; codec_name: string; width?: number; height?: number; nb_read_packets?: string }>;
}

export async function ffprobe(file: string): Promise<ProbeResult> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'format=duration:stream=codec_type,codec_name,width,height,nb_read_packets', '-of', 'json', file]);
  const parsed = JSON.parse(stdout) as { format: { duration?: string }; streams: ProbeResult['streams'] };
  return { duration: Number(parsed.format.duration ?? 'NaN'), streams: parsed.streams };
}

/** A room with `owner` (power 100) and `members`, and a live video call initiated by the owner. */
export async function roomCall(server: TestServer, names: string[]): Promise<{ callId: string; accounts: TestAccount[]; join(i: number): Promise<{ signaling_url: string; signaling_token: string }> }> {
  const accounts: TestAccount[] = [];
  for (const name of names) accounts.push(await createAccount(server, 'user', name));
  const [owner, ...members] = accounts;
  const room = await server.api('/v1/rooms', { method: 'POST', token: owner!.token, body: { name: 'Recorded', members: members.map((m) => ({ user_id: m.id })) } });
  const call = await server.api('/v1/calls/initiate', { method: 'POST', token: owner!.token, body: { room_id: room.body.room.id, type: 'video' } });
  if (call.status !== 201) throw new Error(`initiate: ${JSON.stringify(call.body)}`);
  let first: { signaling_url: string; signaling_token: string } | null = call.body;
  return {
    callId: call.body.call.id,
    accounts,
    async join(i: number) {
      if (i === 0 && first) {
        const answer = first;
        first = null;
        return answer;
      }
      const joined = await server.api(`/v1/calls/${call.body.call.id}/${i === 0 ? 'token' : 'join'}`, { method: 'POST', token: accounts[i]!.token });
      return joined.body;
    },
  };
}

export async function publisher(t: Test, answer: { signaling_url: string; signaling_token: string }, produce: { audio?: boolean; video?: boolean }, consume = true): Promise<NodePeer> {
  const peer = await NodePeer.connect({ signalingUrl: answer.signaling_url, token: answer.signaling_token, produce, consume });
  t.teardown(() => peer.close({ leave: false }).then(() => undefined));
  await peer.sendConnected();
  return peer;
}

/** The mean luma (0..255) of a region of the frame at `atSeconds` of a video file. */
export async function regionLuma(file: string, atSeconds: number, region: { x: number; y: number; w: number; h: number }): Promise<number> {
  const { stderr } = await run('ffmpeg', [
    '-v', 'info', '-ss', atSeconds.toFixed(3), '-i', file, '-frames:v', '1',
    '-vf', `crop=${region.w}:${region.h}:${region.x}:${region.y},signalstats,metadata=print:key=lavfi.signalstats.YAVG`,
    '-f', 'null', '-',
  ]);
  const match = /lavfi\.signalstats\.YAVG=([\d.]+)/.exec(stderr);
  if (!match) throw new Error(`no YAVG for ${file} at ${atSeconds}s: ${stderr.slice(-300)}`);
  return Number(match[1]);
}

/** Seconds of media ffprobe reads in a (possibly still growing) Matroska file; 0 while it has none. */
export async function capturedSeconds(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file]).catch(() => ({ stdout: '' }));
  const times = stdout.split('\n').map(Number).filter((n) => Number.isFinite(n) && n > 0);
  return times.length === 0 ? 0 : Math.max(...times) - Math.min(...times);
}

export async function download(url: string, file: string): Promise<Headers> {
  const { writeFile } = await import('node:fs/promises');
  const response = await fetch(url);
  if (!response.ok) throw new Error(`download ${response.status}`);
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
  return response.headers;
}

/** One frame of `file` at `atSeconds` (of its own timeline), through `filter`, as a PNG. */
export async function frameAt(file: string, atSeconds: number, filter: string, out: string): Promise<string> {
  await run('ffmpeg', ['-v', 'error', '-y', '-ss', atSeconds.toFixed(3), '-i', file, '-frames:v', '1', '-vf', filter, out]);
  return out;
}

/** PSNR (dB) between two images of the same size: higher is more alike. */
export async function psnr(a: string, b: string): Promise<number> {
  const { stderr } = await run('ffmpeg', ['-v', 'info', '-i', a, '-i', b, '-lavfi', 'psnr', '-f', 'null', '-']);
  const match = /average:([\d.]+|inf)/.exec(stderr);
  if (!match) throw new Error(`no PSNR: ${stderr.slice(-300)}`);
  return match[1] === 'inf' ? 100 : Number(match[1]);
}

/** The first timestamp of a media file (ffprobe's format start_time). */
export async function startTime(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=start_time', '-of', 'csv=p=0', file]);
  return Number(stdout.trim()) || 0;
}
