/**
 * After a recording stopped (docs/recording.md, "After stop"): three durable jobs, each recorded on
 * the row before the next is queued in the same transaction, so a restart resumes where it was.
 *
 *   recording_compose    → the MP4 in the spool (redone from the raw tracks if a restart cut it off)
 *   recording_transcribe → the transcript of its audio, when asked for (a failure does not fail the recording)
 *   recording_upload     → every file to storage, each confirmed by its size; storage down: retried with
 *                          backoff; then the row is ready, recording.finished, and the spool copy goes.
 */
import { createReadStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordingConfig } from '../config/schema.ts';
import { inTransaction, type Database, type Tx } from '../db/database.ts';
import type { RecordingRow } from '../db/schema.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { ObjectStorage } from '../storage/types.ts';
import { planComposition, runComposition, type ComposeSegment } from './compose.ts';
import { recordingKeys } from './dto.ts';
import { extractAudio, probe } from './ffmpeg.ts';
import { RECORDING_TRANSCRIBE, RECORDING_UPLOAD, type RecordingCapturePort, type RecordingJob } from './ports.ts';
import type { RecordingService } from './service.ts';
import type { Spool } from './spool.ts';
import { transcribe, TranscriptionError } from './transcribe.ts';

export interface PipelineDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  jobs: JobQueue;
  storage: ObjectStorage;
  spool: Spool;
  capture: RecordingCapturePort;
  recordings: RecordingService;
  config: RecordingConfig;
}

const COMPOSED = 'composed.mp4';
const TRANSCRIPT_AUDIO = 'transcript.m4a';
const TRANSCRIBE_ATTEMPTS = 5;

export class RecordingPipeline {
  constructor(private readonly deps: PipelineDeps) {}

  private get ffmpeg(): string {
    return this.deps.config.ffmpeg_path ?? 'ffmpeg';
  }

  private get ffprobe(): string {
    return this.deps.config.ffprobe_path ?? 'ffprobe';
  }

  async compose({ recording_id: id }: RecordingJob): Promise<void> {
    const row = await this.row(id);
    if (!row || row.status !== 'processing') return; // replayed job
    // A stop in this process: its recorders finish their files first.
    await this.deps.capture.settled(id);
    const dir = this.deps.spool.pathFor(id);
    const out = join(dir, COMPOSED);
    if (row.composed_at && (await exists(out))) return this.next(row);

    const segments: ComposeSegment[] = [];
    const tracks = await this.deps.db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', id).orderBy('offset_ms').execute();
    for (const track of tracks) {
      const file = join(dir, track.file);
      // Sizes on the rows may be missing (a process killed while capturing): the file decides.
      if (!(await exists(file))) continue;
      const probed = await probe(this.ffprobe, file).catch(() => null);
      if (!probed || probed.streams.length === 0) continue;
      segments.push({ file, kind: track.kind, participantId: track.participant_id, offsetMs: track.offset_ms, startTimeSeconds: probed.startTimeSeconds });
    }
    if (segments.length === 0) return this.fail(row, 'no_media', 'nothing was captured');

    const durationMs = Math.max(1, (row.ended_at ?? this.deps.clock.now()).getTime() - row.started_at.getTime());
    const plan = planComposition(segments, durationMs, this.deps.config.compose, row.audio);
    const partial = join(dir, `${COMPOSED}.partial`);
    const began = Date.now();
    try {
      await runComposition(this.ffmpeg, plan, partial);
    } catch (error) {
      this.deps.logger.error({ err: error, recordingId: id }, 'composition failed');
      return this.fail(row, 'compose_failed', (error as Error).message);
    }
    await rename(partial, out);
    const [size, probed] = await Promise.all([stat(out), probe(this.ffprobe, out)]);
    this.deps.logger.info({ recordingId: id, segments: segments.length, durationMs, tookMs: Date.now() - began }, 'recording composed');
    await inTransaction(this.deps.db, async (tx) => {
      const updated = await tx
        .updateTable('recordings')
        .set({
          composed_at: this.deps.clock.now(),
          media_key: recordingKeys(row.call_id, row.started_at).media,
          media_content_type: plan.contentType,
          media_size_bytes: size.size,
          media_duration_ms: probed.durationMs ?? durationMs,
          updated_at: this.deps.clock.now(),
        })
        .where('id', '=', id)
        .where('status', '=', 'processing')
        .returningAll()
        .executeTakeFirst();
      if (updated) await this.queueAfterCompose(tx, updated);
    });
  }

  async transcribe({ recording_id: id, attempt = 1 }: RecordingJob): Promise<void> {
    const row = await this.row(id);
    if (!row || row.status !== 'processing') return;
    if (row.transcript_status !== 'pending' && row.transcript_status !== 'running') return this.queueUpload(row);
    await this.deps.db.updateTable('recordings').set({ transcript_status: 'running', updated_at: this.deps.clock.now() }).where('id', '=', id).execute();
    const dir = this.deps.spool.pathFor(id);
    const audio = join(dir, TRANSCRIPT_AUDIO);
    let text: string | null = null;
    let problem: string | null = null;
    try {
      if (row.media_content_type === 'video/mp4' && !row.audio) throw new TranscriptionError('the recording has no audio', false);
      await extractAudio(this.ffmpeg, join(dir, COMPOSED), audio);
      text = await transcribe(this.deps.config.transcription, audio);
    } catch (error) {
      problem = (error as Error).message.slice(0, 500);
      if (error instanceof TranscriptionError && error.retryable && attempt < TRANSCRIBE_ATTEMPTS) {
        const delay = Math.min(this.deps.config.upload_retry_max_ms, this.deps.config.upload_retry_initial_ms * 2 ** (attempt - 1));
        this.deps.logger.warn({ recordingId: id, err: error, attempt, retryInMs: delay }, 'transcription failed; retrying');
        await inTransaction(this.deps.db, async (tx) => {
          await tx.updateTable('recordings').set({ transcript_status: 'pending', transcript_error: problem }).where('id', '=', id).execute();
          await this.deps.jobs.add(tx, RECORDING_TRANSCRIBE, { recording_id: id, attempt: attempt + 1 }, { runAt: new Date(Date.now() + delay), jobKey: `recording_transcribe:${id}` });
        });
        return;
      }
      this.deps.logger.warn({ recordingId: id, err: error }, 'transcription failed; the recording goes on without it');
    } finally {
      await rm(audio, { force: true });
    }
    await inTransaction(this.deps.db, async (tx) => {
      await tx
        .updateTable('recordings')
        .set({ transcript_status: text === null ? 'failed' : 'ready', transcript_text: text, transcript_error: problem, updated_at: this.deps.clock.now() })
        .where('id', '=', id)
        .execute();
      await this.deps.jobs.add(tx, RECORDING_UPLOAD, { recording_id: id }, { jobKey: `recording_upload:${id}` });
    });
  }

  async upload({ recording_id: id }: RecordingJob): Promise<void> {
    const row = await this.row(id);
    if (!row || row.status !== 'processing' || !row.composed_at || !row.media_key) return;
    const dir = this.deps.spool.pathFor(id);
    try {
      await this.put(join(dir, COMPOSED), row.media_key, row.media_content_type ?? 'video/mp4');
      const tracks = await this.deps.db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', id).where('uploaded_at', 'is', null).execute();
      for (const track of tracks) {
        const file = join(dir, track.file);
        if (!(await exists(file))) {
          // Nothing was written for this segment (it is not part of the recording): dropped from the listing.
          await this.deps.db.deleteFrom('recording_tracks').where('id', '=', track.id).execute();
          continue;
        }
        const size = await this.put(file, track.key, track.kind === 'video' ? 'video/x-matroska' : 'audio/x-matroska');
        await this.deps.db.updateTable('recording_tracks').set({ uploaded_at: this.deps.clock.now(), size_bytes: size }).where('id', '=', track.id).execute();
      }
    } catch (error) {
      await this.retryUpload(row, error);
      return;
    }
    await inTransaction(this.deps.db, async (tx, onCommit) => {
      const done = await tx
        .updateTable('recordings')
        .set({ media_uploaded_at: this.deps.clock.now(), last_upload_error: null, updated_at: this.deps.clock.now() })
        .where('id', '=', id)
        .where('status', '=', 'processing')
        .returningAll()
        .executeTakeFirst();
      if (!done) return;
      await this.deps.recordings.finished(tx, done);
      // Only now, with every file confirmed and the row ready, does the spool copy go.
      onCommit(() => this.deps.spool.remove(id));
    });
    this.deps.logger.info({ recordingId: id, key: row.media_key }, 'recording uploaded: ready');
  }

  /** Uploads one file (unless storage has it already) and confirms it with a HEAD of the same size; returns the size. */
  private async put(file: string, key: string, contentType: string): Promise<number> {
    const { size } = await stat(file);
    // A restart mid-upload: what storage already holds in full is not sent again.
    if ((await this.deps.storage.head(key))?.size === size) return size;
    await this.deps.storage.upload(key, createReadStream(file), { contentType });
    const head = await this.deps.storage.head(key);
    if (!head || head.size !== size) throw new Error(`storage did not confirm ${key} (${head?.size ?? 'missing'} of ${size} bytes)`);
    return size;
  }

  /** Storage is down (or refused): try again later, doubling the delay up to upload_retry_max_ms; the spool keeps the files. */
  private async retryUpload(row: RecordingRow, error: unknown): Promise<void> {
    const { upload_retry_initial_ms: initial, upload_retry_max_ms: max } = this.deps.config;
    const attempts = row.upload_attempts + 1;
    const delay = Math.min(max, initial * 2 ** Math.min(attempts - 1, 20));
    this.deps.logger.warn({ err: error, recordingId: row.id, attempts, retryInMs: delay }, 'recording upload failed; retrying');
    await inTransaction(this.deps.db, async (tx) => {
      await tx.updateTable('recordings').set({ upload_attempts: attempts, last_upload_error: String((error as Error).message ?? error).slice(0, 500) }).where('id', '=', row.id).execute();
      await this.deps.jobs.add(tx, RECORDING_UPLOAD, { recording_id: row.id }, { runAt: new Date(Date.now() + delay), jobKey: `recording_upload:${row.id}` });
    });
  }

  private async next(row: RecordingRow): Promise<void> {
    await inTransaction(this.deps.db, (tx) => this.queueAfterCompose(tx, row));
  }

  private async queueAfterCompose(tx: Tx, row: RecordingRow): Promise<void> {
    if (row.transcript_status === 'pending' || row.transcript_status === 'running') {
      await this.deps.jobs.add(tx, RECORDING_TRANSCRIBE, { recording_id: row.id }, { jobKey: `recording_transcribe:${row.id}` });
    } else {
      await this.deps.jobs.add(tx, RECORDING_UPLOAD, { recording_id: row.id }, { jobKey: `recording_upload:${row.id}` });
    }
  }

  private async queueUpload(row: RecordingRow): Promise<void> {
    await this.deps.jobs.add(this.deps.db, RECORDING_UPLOAD, { recording_id: row.id }, { jobKey: `recording_upload:${row.id}` });
  }

  private async fail(row: RecordingRow, reason: 'no_media' | 'compose_failed', detail: string): Promise<void> {
    this.deps.logger.warn({ recordingId: row.id, reason, detail }, 'recording failed');
    await inTransaction(this.deps.db, (tx) => this.deps.recordings.failed(tx, row, reason)).catch((error: unknown) => {
      this.deps.logger.warn({ err: error, recordingId: row.id }, 'recording was no longer processing');
    });
  }

  private row(id: string): Promise<RecordingRow | undefined> {
    return this.deps.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
  }
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => null)) !== null;
}
