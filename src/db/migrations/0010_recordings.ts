import { sql, type Kysely } from 'kysely';

/**
 * Recordings (docs/recording.md):
 * - `recordings`: one row per recording of a call, its lifecycle status (recording → processing →
 *   ready | failed), what was asked (audio, video, transcript), the composed file and the transcript.
 *   At most one recording per call is `recording` at a time (a partial unique index).
 * - `recording_tracks`: one row per captured segment of one producer (a new segment after ffmpeg
 *   restarted), with its start offset from the recording's start, its spool file and its storage key.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('recordings')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('call_id', 'text', (c) => c.notNull().references('calls.id'))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('recording', 'processing', 'ready', 'failed')`))
    .addColumn('audio', 'boolean', (c) => c.notNull())
    .addColumn('video', 'boolean', (c) => c.notNull())
    .addColumn('started_by', 'text')
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ended_at', 'timestamptz')
    .addColumn('stop_reason', 'text')
    .addColumn('failure_reason', 'text')
    .addColumn('composed_at', 'timestamptz')
    .addColumn('media_key', 'text')
    .addColumn('media_content_type', 'text')
    .addColumn('media_size_bytes', 'bigint')
    .addColumn('media_duration_ms', 'integer')
    .addColumn('media_uploaded_at', 'timestamptz')
    .addColumn('upload_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_upload_error', 'text')
    .addColumn('transcript_status', 'text', (c) => c.check(sql`transcript_status in ('pending', 'running', 'ready', 'failed')`))
    .addColumn('transcript_text', 'text')
    .addColumn('transcript_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('recordings_call_idx').on('recordings').columns(['call_id', 'started_at']).execute();
  await sql`create unique index recordings_one_running_idx on recordings (call_id) where status = 'recording'`.execute(db);

  await db.schema
    .createTable('recording_tracks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('recording_id', 'text', (c) => c.notNull().references('recordings.id').onDelete('cascade'))
    .addColumn('participant_id', 'text', (c) => c.notNull())
    .addColumn('producer_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('audio', 'video')`))
    .addColumn('segment', 'integer', (c) => c.notNull())
    .addColumn('codec', 'text', (c) => c.notNull())
    .addColumn('offset_ms', 'integer', (c) => c.notNull())
    .addColumn('end_offset_ms', 'integer')
    .addColumn('file', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint')
    .addColumn('uploaded_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('recording_tracks_recording_idx').on('recording_tracks').columns(['recording_id', 'offset_ms']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('recording_tracks').execute();
  await db.schema.dropTable('recordings').execute();
}
