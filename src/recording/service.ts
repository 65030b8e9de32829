/**
 * Recordings of calls (docs/api.md, "Recording"; docs/recording.md): start, stop, read, and every
 * lifecycle change through the one transition table (machine.ts), applied in one transaction with
 * its webhook events and jobs; capture starts and stops after the commit.
 */
import { Type, type Static } from '@sinclair/typebox';
import { sql } from 'kysely';
import { inTransaction, type Database, type Tx } from '../db/database.ts';
import type { CallRow, RecordingRow } from '../db/schema.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { ObjectStorage } from '../storage/types.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { Strict } from '../shared/schema.ts';
import type { Actor, EventOutbox } from '../calls/ports.ts';
import { POWER, type RoomService, type SettingsService } from '../calls/room/rooms.ts';
import { toRecordingDto, type RecordingDto } from './dto.ts';
import { transition, type FailureReason, type RecordingEffect, type RecordingEvent, type RecordingFacts, type StopReason } from './machine.ts';
import { RECORDING_COMPOSE, type RecordingCapturePort } from './ports.ts';

export const StartRecordingBody = Strict({
  audio: Type.Optional(Type.Boolean({ default: true })),
  video: Type.Optional(Type.Boolean({ default: true })),
  transcript: Type.Optional(Type.Boolean({ default: false })),
});
export type StartRecordingInput = Static<typeof StartRecordingBody>;

export interface RecordingServiceDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  rooms: RoomService;
  settings: SettingsService;
  events: EventOutbox;
  jobs: JobQueue;
  storage: ObjectStorage;
  urlTtlSeconds: number;
  /** Bytes in the spool now, and the cap. */
  spool: { full(): Promise<boolean> };
}

const LIVE_STATUS = 'active';

export class RecordingService {
  #capture: RecordingCapturePort | null = null;

  constructor(private readonly deps: RecordingServiceDeps) {}

  /** The capture is built after the service (it reports failures back here); context.ts attaches it. */
  attachCapture(capture: RecordingCapturePort): void {
    this.#capture = capture;
  }

  async start(actor: Actor, callId: string, input: StartRecordingInput): Promise<RecordingDto> {
    const call = await this.call(callId);
    const audio = input.audio ?? true;
    const video = input.video ?? true;
    if (!audio && !video) throw new AppError('validation_failed', 'A recording needs audio, video or both', { errors: [{ in: 'body', path: '', message: 'audio and video are both false' }] });
    const mayRecord = await this.mayRecord(actor, call);
    const facts = await this.facts(call, mayRecord);
    const id = newId();
    const now = this.deps.clock.now();
    try {
      await this.apply(null, { type: 'start' }, facts, async (tx) => {
        await tx
          .insertInto('recordings')
          .values({ id, call_id: call.id, status: 'recording', audio, video, started_by: actor.userId, started_at: now, transcript_status: input.transcript ? 'pending' : null, updated_at: now })
          .execute();
        return { id, call_id: call.id, audio, video, started_at: now };
      });
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw new AppError('invalid_state', 'This call is already being recorded; stop that recording first');
      throw error;
    }
    return this.dto(id);
  }

  async stop(actor: Actor, callId: string): Promise<RecordingDto> {
    const call = await this.call(callId);
    const running = await this.running(call.id);
    if (!running) {
      await this.authorizeRead(actor, call);
      throw new AppError('invalid_state', 'This call has no recording in progress');
    }
    const facts = await this.facts(call, await this.mayRecord(actor, call));
    await this.stopRow(running, 'stopped', facts);
    return this.dto(running.id);
  }

  /** The call ended (or its session closed): its running recording stops, unauthorized. */
  async callEnded(callId: string, reason: StopReason = 'call_ended'): Promise<void> {
    const running = await this.running(callId);
    if (!running) return;
    await this.stopRow(running, reason, null).catch((error: unknown) => {
      if (!(error instanceof AppError && error.code === 'invalid_state')) throw error;
    });
  }

  /**
   * Start-up, before jobs run: a recording still `recording` lost its capture with the previous
   * process; it stops now and what was captured is composed.
   */
  async reconcile(): Promise<number> {
    const rows = await this.deps.db.selectFrom('recordings').selectAll().where('status', '=', 'recording').execute();
    for (const row of rows) await this.stopRow(row, 'server_restarted', null);
    if (rows.length > 0) this.deps.logger.info({ recordings: rows.length }, 'recordings cut off by the restart were stopped; composing what was captured');
    return rows.length;
  }

  /** The spool reached recording.spool_max_bytes: running recordings stop (what they captured is composed and uploaded). */
  async stopForFullSpool(recordingIds: string[]): Promise<void> {
    for (const id of recordingIds) {
      const row = await this.row(id);
      if (row?.status !== 'recording') continue;
      this.deps.logger.warn({ recordingId: id }, 'recording spool full: stopping the recording');
      await this.stopRow(row, 'spool_full', null);
    }
  }

  /** The capture could not start at all (no ffmpeg, no port): the recording fails. */
  async captureFailed(recordingId: string, detail: string): Promise<void> {
    const row = await this.row(recordingId);
    if (!row || row.status !== 'recording') return;
    this.deps.logger.error({ recordingId, detail }, 'recording capture failed');
    await this.apply(row, { type: 'capture_failed' }, null, async (tx) => {
      await tx.updateTable('recordings').set({ status: 'failed', failure_reason: 'capture_failed', ended_at: this.deps.clock.now(), updated_at: this.deps.clock.now() }).where('id', '=', row.id).execute();
      return row;
    });
  }

  /** Pipeline end: storage confirmed everything; in `tx` the row becomes ready and recording.finished is recorded. */
  async finished(tx: Tx, row: RecordingRow): Promise<void> {
    await this.applyIn(tx, row, { type: 'finished' }, { ...NO_FACTS, uploaded: row.media_uploaded_at !== null }, async () => {
      await tx.updateTable('recordings').set({ status: 'ready', updated_at: this.deps.clock.now() }).where('id', '=', row.id).execute();
      return row;
    });
  }

  async failed(tx: Tx, row: RecordingRow, reason: FailureReason): Promise<void> {
    await this.applyIn(tx, row, { type: 'failed', reason }, NO_FACTS, async () => {
      await tx.updateTable('recordings').set({ status: 'failed', failure_reason: reason, updated_at: this.deps.clock.now() }).where('id', '=', row.id).execute();
      return row;
    });
  }

  async list(actor: Actor, callId: string, page: number, perPage: number): Promise<{ rows: RecordingDto[]; total: number }> {
    const call = await this.call(callId);
    await this.authorizeRead(actor, call);
    const [rows, count] = await Promise.all([
      this.deps.db.selectFrom('recordings').selectAll().where('call_id', '=', call.id).orderBy('started_at').orderBy('id').limit(perPage).offset((page - 1) * perPage).execute(),
      this.deps.db.selectFrom('recordings').select(sql<number>`count(*)::int`.as('total')).where('call_id', '=', call.id).executeTakeFirstOrThrow(),
    ]);
    return { rows: await Promise.all(rows.map((row) => this.toDto(row))), total: count.total };
  }

  /** Every recording of the call (a call's `recordings`; the caller authorized reading the call). */
  async forCall(callId: string): Promise<RecordingDto[]> {
    const rows = await this.deps.db.selectFrom('recordings').selectAll().where('call_id', '=', callId).orderBy('started_at').orderBy('id').execute();
    return Promise.all(rows.map((row) => this.toDto(row)));
  }

  async dto(recordingId: string): Promise<RecordingDto> {
    const row = await this.row(recordingId);
    if (!row) throw new AppError('not_found', `Recording ${recordingId} not found`);
    return this.toDto(row);
  }

  private async toDto(row: RecordingRow): Promise<RecordingDto> {
    const tracks = await this.deps.db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', row.id).orderBy('offset_ms').orderBy('id').execute();
    let url: string | null = null;
    if (row.status === 'ready' && row.media_key) {
      url = await this.deps.storage.signedGetUrl(row.media_key, { expiresInSeconds: this.deps.urlTtlSeconds }).catch((error: unknown) => {
        this.deps.logger.warn({ err: error, recordingId: row.id }, 'could not sign a recording URL');
        return null;
      });
    }
    return toRecordingDto(row, tracks, url);
  }

  private async stopRow(row: RecordingRow, reason: StopReason, facts: RecordingFacts | null): Promise<void> {
    await this.apply(row, { type: 'stop', reason }, facts, async (tx) => {
      const now = this.deps.clock.now();
      await tx.updateTable('recordings').set({ status: 'processing', ended_at: now, stop_reason: reason, updated_at: now }).where('id', '=', row.id).execute();
      return row;
    });
  }

  /** Runs one transition in a transaction of its own; capture effects run after the commit. */
  private async apply(
    row: RecordingRow | null,
    event: RecordingEvent,
    facts: RecordingFacts | null,
    write: (tx: Tx) => Promise<Pick<RecordingRow, 'id' | 'call_id' | 'audio' | 'video' | 'started_at'>>,
  ): Promise<void> {
    await inTransaction(
      this.deps.db,
      async (tx, onCommit) => {
        const fx = await this.applyIn(tx, row, event, facts ?? NO_FACTS, () => write(tx));
        onCommit(() => this.runCaptureEffects(fx.effects, fx.target));
      },
      (error) => this.deps.logger.error({ err: error }, 'recording capture effect failed'),
    );
  }

  private async applyIn(
    tx: Tx,
    row: RecordingRow | null,
    event: RecordingEvent,
    facts: RecordingFacts,
    write: () => Promise<Pick<RecordingRow, 'id' | 'call_id' | 'audio' | 'video' | 'started_at'>>,
  ): Promise<{ effects: RecordingEffect[]; target: Pick<RecordingRow, 'id' | 'call_id' | 'audio' | 'video' | 'started_at'> }> {
    if (row) {
      // Lock the row and decide on its committed status, not the one read before the transaction.
      const locked = await tx.selectFrom('recordings').select('status').where('id', '=', row.id).forUpdate().executeTakeFirstOrThrow();
      row = { ...row, status: locked.status };
    }
    const result = transition(row?.status ?? null, event, facts);
    if (!result.ok) throw new AppError(result.refusal.code, result.refusal.message, { reason: result.refusal.reason });
    const target = await write();
    for (const effect of result.effects) {
      if (effect.type === 'emit' && effect.event === 'recording.started') {
        await this.deps.events.record(tx, { type: 'recording.started', data: { call_id: target.call_id, recording_id: target.id, audio: target.audio, video: target.video, started_at: target.started_at.toISOString() } });
      } else if (effect.type === 'emit' && effect.event === 'recording.finished') {
        const done = await tx.selectFrom('recordings').selectAll().where('id', '=', target.id).executeTakeFirstOrThrow();
        await this.deps.events.record(tx, {
          type: 'recording.finished',
          data: {
            call_id: done.call_id,
            recording_id: done.id,
            media_key: done.media_key ?? '',
            content_type: done.media_content_type ?? 'video/mp4',
            duration_seconds: (done.media_duration_ms ?? 0) / 1000,
            transcript: done.transcript_status === null ? null : { status: done.transcript_status, ...(done.transcript_text !== null ? { text: done.transcript_text } : {}) },
          },
        });
      } else if (effect.type === 'emit_failed') {
        await this.deps.events.record(tx, { type: 'recording.failed', data: { call_id: target.call_id, recording_id: target.id, reason: effect.reason } });
      } else if (effect.type === 'enqueue_compose') {
        await this.deps.jobs.add(tx, RECORDING_COMPOSE, { recording_id: target.id }, { jobKey: `recording_compose:${target.id}` });
      }
    }
    return { effects: result.effects, target };
  }

  private async runCaptureEffects(effects: RecordingEffect[], target: Pick<RecordingRow, 'id' | 'call_id' | 'audio' | 'video' | 'started_at'>): Promise<void> {
    const capture = this.#capture;
    if (!capture) return;
    for (const effect of effects) {
      if (effect.type === 'start_capture') capture.start({ recordingId: target.id, callId: target.call_id, audio: target.audio, video: target.video, startedAt: target.started_at });
      if (effect.type === 'stop_capture') await capture.stop(target.id);
    }
  }

  private async facts(call: CallRow, mayRecord: boolean): Promise<RecordingFacts> {
    const [recordingEnabled, running, spoolFull] = await Promise.all([this.deps.settings.recordingEnabled(), this.running(call.id), this.deps.spool.full()]);
    return { callEnded: call.status !== LIVE_STATUS || call.ended_at !== null, recordingEnabled, mayRecord, anotherRunning: Boolean(running), spoolFull, uploaded: false };
  }

  /** An admin or the API key; otherwise power 100 in the call's room (a call without a room: admins only). */
  private async mayRecord(actor: Actor, call: CallRow): Promise<boolean> {
    if (actor.isAdmin) return true;
    await this.authorizeRead(actor, call);
    const power = call.room_id ? await this.deps.rooms.powerOf(call.room_id, actor.userId) : null;
    return (power ?? -1) >= POWER.admin;
  }

  /** Participants of the call and members of its room read its recordings; anyone else is refused. */
  private async authorizeRead(actor: Actor, call: CallRow): Promise<void> {
    if (actor.isAdmin) return;
    if (!actor.userId) throw new AppError('forbidden', 'This needs a user access token or the API key');
    const participant = await this.deps.db.selectFrom('call_participants').select('id').where('call_id', '=', call.id).where('user_id', '=', actor.userId).executeTakeFirst();
    if (participant) return;
    if (call.room_id && (await this.deps.rooms.powerOf(call.room_id, actor.userId)) !== null) return;
    throw new AppError('forbidden', 'You are not a participant of this call');
  }

  private async call(callId: string): Promise<CallRow> {
    const call = await this.deps.db.selectFrom('calls').selectAll().where('id', '=', callId).executeTakeFirst();
    if (!call) throw new AppError('not_found', `Call ${callId} not found`);
    return call;
  }

  private running(callId: string): Promise<RecordingRow | undefined> {
    return this.deps.db.selectFrom('recordings').selectAll().where('call_id', '=', callId).where('status', '=', 'recording').executeTakeFirst();
  }

  private row(recordingId: string): Promise<RecordingRow | undefined> {
    return this.deps.db.selectFrom('recordings').selectAll().where('id', '=', recordingId).executeTakeFirst();
  }
}

/** Transitions the system makes (stop on the call's end, pipeline results) have nothing to check but the status. */
const NO_FACTS: RecordingFacts = { callEnded: false, recordingEnabled: true, mayRecord: true, anotherRunning: false, spoolFull: false, uploaded: false };
