/**
 * Debian's ffmpeg through fluent-ffmpeg (docs/recording.md): the SDP of one capture, the capture
 * process (RTP in, the same packets out into Matroska: no re-encoding), and ffprobe.
 */
import ffmpeg from 'fluent-ffmpeg';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { TapCodec } from '../sfu/index.ts';

/** An SDP that tells ffmpeg where to listen and what the RTP carries. */
export function captureSdp(kind: 'audio' | 'video', codec: TapCodec, ports: { rtp: number; rtcp: number }): string {
  const [, name = ''] = codec.mimeType.split('/');
  const rtpmap = kind === 'audio' ? `${name}/${codec.clockRate}/${codec.channels ?? 1}` : `${name}/${codec.clockRate}`;
  const fmtp = Object.entries(codec.parameters).map(([key, value]) => `${key}=${String(value)}`).join(';');
  return [
    'v=0',
    'o=- 0 0 IN IP4 127.0.0.1',
    's=callplane recording',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=${kind} ${ports.rtp} RTP/AVP ${codec.payloadType}`,
    `a=rtcp:${ports.rtcp}`,
    `a=rtpmap:${codec.payloadType} ${rtpmap}`,
    ...(fmtp ? [`a=fmtp:${codec.payloadType} ${fmtp}`] : []),
    'a=recvonly',
    '',
  ].join('\r\n');
}

export interface CaptureProcess {
  readonly pid: number | undefined;
  /** Resolves when ffmpeg exited: `code` null when a signal killed it. */
  readonly exited: Promise<{ code: number | null; signal: string | null; stderrTail: string }>;
  /**
   * Ends the capture with the file complete: an RTCP BYE to ffmpeg's RTCP port (its RTP demuxer
   * ends the stream: EOF, trailer, exit 0), then SIGINT, then SIGKILL, `graceMs` apart. SIGINT alone
   * is not enough: ffmpeg waits in its read while no packet comes (a producer that closed).
   */
  stop(graceMs?: number): Promise<void>;
}

/** ffmpeg -protocol_whitelist file,udp,rtp -i <sdp> -map 0 -c copy -f matroska <file> */
export function spawnCapture(ffmpegPath: string, sdpFile: string, outFile: string, rtcpPort: number): CaptureProcess {
  let resolveExit!: (value: { code: number | null; signal: string | null; stderrTail: string }) => void;
  const exited = new Promise<{ code: number | null; signal: string | null; stderrTail: string }>((resolve) => (resolveExit = resolve));
  const command = ffmpeg({ stdoutLines: 20 })
    .setFfmpegPath(ffmpegPath)
    .input(sdpFile)
    .inputOptions(['-protocol_whitelist', 'file,udp,rtp', '-fflags', '+genpts', '-analyzeduration', '2000000', '-probesize', '1000000'])
    .outputOptions(['-map', '0', '-c', 'copy', '-flush_packets', '1', '-cluster_time_limit', '1000'])
    .format('matroska')
    .output(outFile)
    .on('end', (_stdout: string | null, stderr: string | null) => resolveExit({ code: 0, signal: null, stderrTail: tail(stderr) }))
    .on('error', (error: Error, _stdout: string | null, stderr: string | null) => {
      const signal = /signal (\w+)/.exec(error.message)?.[1] ?? null;
      const code = /code (\d+)/.exec(error.message)?.[1];
      resolveExit({ code: code === undefined ? null : Number(code), signal, stderrTail: tail(stderr) || error.message });
    });
  // fluent-ffmpeg spawns asynchronously (after resolving the binary): the process exists from 'start' on.
  let started = false;
  const spawned = new Promise<void>((resolve) =>
    command.on('start', () => {
      started = true;
      resolve();
    }),
  );
  command.run();
  const proc = (): ChildProcess | undefined => (started ? (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc : undefined);
  let done = false;
  let stopping: Promise<void> | null = null;
  void exited.then(() => (done = true));
  return {
    get pid() {
      return proc()?.pid;
    },
    exited,
    stop(graceMs = 5000) {
      // Once: a second SIGINT makes ffmpeg exit at once, without writing the file's trailer.
      stopping ??= (async () => {
        if (done) return;
        // Not spawned yet: 'start' comes first, then the signal.
        await Promise.race([spawned, exited]);
        const exitedWithin = (ms: number) => Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
        await sendRtcpBye(rtcpPort);
        if (done || (await exitedWithin(graceMs))) return;
        proc()?.kill('SIGINT');
        if (await exitedWithin(graceMs)) return;
        proc()?.kill('SIGKILL');
        await exited;
      })();
      return stopping;
    },
  };
}

/** RTCP BYE (RFC 3550 §6.6) with two SSRCs (ffmpeg's RTP demuxer ignores packets under 12 bytes): V=2, SC=2, PT=203, length 2. */
function sendRtcpBye(port: number): Promise<void> {
  const bye = Buffer.from([0x82, 0xcb, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02]);
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve();
    });
    socket.send(bye, port, '127.0.0.1', () => socket.close(() => resolve()));
  });
}

function tail(text: string | null | undefined): string {
  return (text ?? '').split('\n').slice(-6).join('\n').trim();
}

export interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
}

export interface Probe {
  durationMs: number | null;
  startTimeSeconds: number;
  streams: ProbedStream[];
}

export function probe(ffprobePath: string, file: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const command = ffmpeg(file).setFfprobePath(ffprobePath);
    command.ffprobe((error: Error | null, data: ffmpeg.FfprobeData) => {
      if (error) return reject(error);
      const duration = Number(data.format.duration);
      const start = Number(data.format.start_time);
      resolve({
        durationMs: Number.isFinite(duration) ? Math.round(duration * 1000) : null,
        startTimeSeconds: Number.isFinite(start) ? start : 0,
        streams: data.streams.map((s) => ({ codec_type: s.codec_type ?? '', codec_name: s.codec_name ?? '', ...(s.width ? { width: s.width } : {}), ...(s.height ? { height: s.height } : {}) })),
      });
    });
  });
}

/** The audio of a composed MP4 as its own M4A (AAC copied, not re-encoded): what the transcription engine gets. */
export function extractAudio(ffmpegPath: string, mp4: string, outFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ffmpeg(mp4)
      .setFfmpegPath(ffmpegPath)
      .outputOptions(['-vn', '-map', '0:a:0', '-c:a', 'copy', '-movflags', '+faststart'])
      .format('ipod')
      .output(outFile)
      .on('end', () => resolve())
      .on('error', (error: Error) => reject(error))
      .run();
  });
}

/**
 * ffmpeg processes must not outlive a server that was killed (they would hold their ports and
 * files): when util-linux's setpriv is there, ffmpeg runs through a wrapper that gives it
 * PDEATHSIG=KILL (it dies with its parent). Returns the path fluent-ffmpeg should run.
 */
export async function ffmpegTiedToParent(ffmpegPath: string, dir: string): Promise<string> {
  const { access, mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const setpriv = '/usr/bin/setpriv';
  if (!(await access(setpriv).then(() => true, () => false))) return ffmpegPath;
  await mkdir(dir, { recursive: true });
  const wrapper = join(dir, 'ffmpeg');
  await writeFile(wrapper, `#!/bin/sh\nexec ${setpriv} --pdeathsig KILL -- ${JSON.stringify(ffmpegPath)} "$@"\n`, { mode: 0o755 });
  return wrapper;
}
