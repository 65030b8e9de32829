/**
 * Live capture of recordings (docs/recording.md, "Capture"): every producer the recording asked for
 * is tapped into a PlainTransport and written by its own ffmpeg, without re-encoding, into one
 * Matroska file per segment in the spool. A segment's row (recording_tracks) holds its offset from
 * the recording's start. ffmpeg is supervised: when it dies while its track is wanted, the track
 * goes on as a new segment after recording.restart_delay_ms.
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from '../db/database.ts';
import type { Clock } from '../shared/clock.ts';
import { newId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { RecordableTrack, RecordingTap, RecordingTapPorts } from '../sfu/index.ts';
import { recordingKeys } from './dto.ts';
import { captureSdp, spawnCapture, type CaptureProcess } from './ffmpeg.ts';
import type { CaptureTarget, RecordingCapturePort } from './ports.ts';
import { CapturePorts, udpBound, type PortBlock } from './ports-allocator.ts';
import type { Spool } from './spool.ts';

/** The SFU's side of a recording (implemented by sfu/registry.ts). */
export interface MediaTapPort {
  recordableTracks(callId: string): RecordableTrack[];
  openRecordingTap(callId: string, producerId: string, ports: RecordingTapPorts): Promise<RecordingTap>;
}

export interface CaptureDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  media: MediaTapPort;
  spool: Spool;
  ports: CapturePorts;
  ffmpegPath: string;
  restartDelayMs: number;
  /** How long ffmpeg may take to bind its ports before the segment is abandoned (and retried). */
  bindTimeoutMs?: number;
  /** A recording none of whose tracks could be captured at all (no ffmpeg, no ports): it fails. */
  onCaptureFailed?: (recordingId: string, detail: string) => void;
}

/** Segments in a row that never got going (ffmpeg did not start or bind) before a track gives up. */
const MAX_FAILED_STARTS = 5;

interface ActiveRecording {
  target: CaptureTarget;
  tracks: Map<string, TrackCapture>;
  stopping: Promise<void> | null;
}

const BIND_POLL_MS = 25;

export class RecordingCapture implements RecordingCapturePort {
  readonly #recordings = new Map<string, ActiveRecording>();

  constructor(private readonly deps: CaptureDeps) {}

  start(target: CaptureTarget): void {
    if (this.#recordings.has(target.recordingId)) return;
    this.#recordings.set(target.recordingId, { target, tracks: new Map(), stopping: null });
    for (const track of this.deps.media.recordableTracks(target.callId)) this.trackPublished(target.callId, track);
  }

  /** A producer appeared in a call (sfu trackpublished): recordings of that call that want its kind add it. */
  trackPublished(callId: string, track: RecordableTrack): void {
    for (const active of this.#recordings.values()) {
      const { target } = active;
      if (target.callId !== callId || active.stopping || active.tracks.has(track.producerId)) continue;
      if ((track.kind === 'audio' && !target.audio) || (track.kind === 'video' && !target.video)) continue;
      const capture = new TrackCapture(this.deps, target, track);
      active.tracks.set(track.producerId, capture);
      capture.run().catch((error: unknown) => this.deps.logger.error({ err: error, recordingId: target.recordingId, producerId: track.producerId }, 'track capture failed'));
    }
  }

  /** A producer closed: its track ends (its tap reports that too; this covers a producer closed before its tap opened). */
  trackUnpublished(callId: string, producerId: string): void {
    for (const active of this.#recordings.values()) {
      if (active.target.callId === callId) void active.tracks.get(producerId)?.end();
    }
  }

  stop(recordingId: string): Promise<void> {
    const active = this.#recordings.get(recordingId);
    if (!active) return Promise.resolve();
    active.stopping ??= (async () => {
      await Promise.all([...active.tracks.values()].map((track) => track.end()));
      this.#recordings.delete(recordingId);
      this.deps.logger.info({ recordingId, tracks: active.tracks.size }, 'recording capture stopped');
    })();
    return active.stopping;
  }

  settled(recordingId: string): Promise<void> {
    const active = this.#recordings.get(recordingId);
    return active?.stopping ?? (active ? this.stop(recordingId) : Promise.resolve());
  }

  /** Graceful shutdown: every recorder finishes its file. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#recordings.keys()].map((id) => this.stop(id)));
  }

  /** Recording ids with a live capture in this process. */
  get active(): string[] {
    return [...this.#recordings.keys()];
  }

  /** The pids of a recording's running ffmpeg processes (doctor, tests, benchmarks). */
  pids(recordingId: string): number[] {
    const active = this.#recordings.get(recordingId);
    if (!active) return [];
    return [...active.tracks.values()].flatMap((track) => (track.pid === undefined ? [] : [track.pid]));
  }
}

/** One producer of one recording: segments until the track ends. */
class TrackCapture {
  #ended = false;
  #endRequested: (() => void) | null = null;
  readonly #endSignal: Promise<void>;
  #current: { process: CaptureProcess; tap: RecordingTap } | null = null;
  #done: Promise<void> | null = null;

  get pid(): number | undefined {
    return this.#current?.process.pid;
  }

  constructor(
    private readonly deps: CaptureDeps,
    private readonly target: CaptureTarget,
    private readonly track: RecordableTrack,
  ) {
    this.#endSignal = new Promise((resolve) => (this.#endRequested = resolve));
  }

  run(): Promise<void> {
    this.#done ??= this.#loop();
    return this.#done;
  }

  /** Ends the track: its ffmpeg finishes the file; resolves once the last segment is recorded. */
  async end(): Promise<void> {
    this.#ended = true;
    this.#endRequested?.();
    await this.#current?.process.stop();
    await this.#done;
  }

  async #loop(): Promise<void> {
    const log = this.deps.logger.child({ recordingId: this.target.recordingId, participantId: this.track.participantId, kind: this.track.kind });
    let failedStarts = 0;
    let lastProblem = '';
    for (let segment = 1; !this.#ended; segment++) {
      const outcome = await this.#segment(segment, log).catch((error: unknown) => {
        log.warn({ err: error, segment }, 'capture segment failed');
        lastProblem = (error as Error).message;
        return 'failed_start' as const;
      });
      if (outcome === 'track_ended' || this.#ended) return;
      failedStarts = outcome === 'failed_start' ? failedStarts + 1 : 0;
      if (failedStarts >= MAX_FAILED_STARTS) {
        log.error({ attempts: failedStarts, problem: lastProblem }, 'the track could not be captured; giving up on it');
        await this.#giveUp(lastProblem || 'ffmpeg did not start');
        return;
      }
      // ffmpeg died (or could not start) while the track is wanted: a new segment, after a pause.
      await Promise.race([new Promise((resolve) => setTimeout(resolve, this.deps.restartDelayMs).unref()), this.#endSignal]);
    }
  }

  /** A recording with no segment at all (nothing could be captured) fails; one with media goes on without this track. */
  async #giveUp(detail: string): Promise<void> {
    const captured = await this.deps.db.selectFrom('recording_tracks').select('id').where('recording_id', '=', this.target.recordingId).executeTakeFirst();
    if (!captured) this.deps.onCaptureFailed?.(this.target.recordingId, detail);
  }

  /** One ffmpeg run. 'track_ended': the producer or the recording ended; 'retry': ffmpeg died; 'failed_start': it never listened. */
  async #segment(segment: number, log: Logger): Promise<'track_ended' | 'retry' | 'failed_start'> {
    const ports = await this.deps.ports.take();
    let tap: RecordingTap | null = null;
    try {
      tap = await this.deps.media.openRecordingTap(this.target.callId, this.track.producerId, { local: ports.local, rtp: ports.rtp, rtcp: ports.rtcp });
      if (this.#ended) return 'track_ended';
      const dir = await this.deps.spool.dirFor(this.target.recordingId, 'tracks');
      const name = `${this.track.participantId}-${this.track.kind}-${segment}`;
      await writeFile(join(dir, `${name}.sdp`), captureSdp(this.track.kind, tap.codec, ports));
      const file = join(dir, `${name}.mkv`);
      const process = spawnCapture(this.deps.ffmpegPath, join(dir, `${name}.sdp`), file, ports.rtcp);
      this.#current = { process, tap };
      if (!(await this.#bound(ports, process))) {
        await process.stop(300);
        const exit = await Promise.race([process.exited, Promise.resolve(null)]);
        log.warn({ segment, stderr: exit?.stderrTail }, 'ffmpeg did not bind its capture port');
        return 'failed_start';
      }
      // ffmpeg listens: only now does RTP flow, starting with a key frame.
      await tap.resume();
      const offsetMs = Math.max(0, this.deps.clock.now().getTime() - this.target.startedAt.getTime());
      const rowId = newId();
      await this.deps.db
        .insertInto('recording_tracks')
        .values({
          id: rowId,
          recording_id: this.target.recordingId,
          participant_id: this.track.participantId,
          producer_id: this.track.producerId,
          kind: this.track.kind,
          segment,
          codec: tap.codec.mimeType,
          offset_ms: offsetMs,
          file: `tracks/${name}.mkv`,
          key: recordingKeys(this.target.callId, this.target.startedAt).track(`${name}.mkv`),
        })
        .execute();
      log.info({ segment, offsetMs, pid: process.pid, ports: ports.base }, 'capturing track segment');
      const why = await Promise.race([tap.ended.then((reason) => ({ by: 'tap' as const, reason })), process.exited.then((exit) => ({ by: 'ffmpeg' as const, exit }))]);
      if (why.by === 'tap') {
        this.#ended = true;
        await process.stop();
      }
      const exit = await process.exited;
      log.debug({ segment, code: exit.code, signal: exit.signal, stderr: exit.stderrTail }, 'capture ffmpeg exited');
      await this.#closeSegment(rowId, file, offsetMs);
      if (this.#ended) return 'track_ended';
      log.warn({ segment, code: exit.code, signal: exit.signal, stderr: exit.stderrTail }, 'capture ffmpeg died; the track goes on as a new segment');
      return 'retry';
    } finally {
      this.#current = null;
      tap?.close();
      this.deps.ports.release(ports);
    }
  }

  /** Waits until ffmpeg has bound its RTP port (or exited, or the timeout passed). */
  async #bound(ports: PortBlock, process: CaptureProcess): Promise<boolean> {
    let exited = false;
    void process.exited.then(() => (exited = true));
    const deadline = Date.now() + (this.deps.bindTimeoutMs ?? 10_000);
    while (!exited && !this.#ended && Date.now() < deadline) {
      if (await udpBound(ports.rtp)) return true;
      await new Promise((resolve) => setTimeout(resolve, BIND_POLL_MS));
    }
    return false;
  }

  /** The segment's end offset and size; a segment that never got a packet (no file) is dropped. */
  async #closeSegment(rowId: string, file: string, offsetMs: number): Promise<void> {
    const size = (await stat(file).catch(() => null))?.size ?? 0;
    if (size === 0) {
      await this.deps.db.deleteFrom('recording_tracks').where('id', '=', rowId).execute();
      return;
    }
    const endOffset = Math.max(offsetMs, this.deps.clock.now().getTime() - this.target.startedAt.getTime());
    await this.deps.db.updateTable('recording_tracks').set({ end_offset_ms: endOffset, size_bytes: size }).where('id', '=', rowId).execute();
  }
}
