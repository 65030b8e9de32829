/** The recording object of the API (docs/api.md, "Recording"): GET /v1/calls/{id}/recordings and a call's `recordings`. */
import { Type, type Static } from '@sinclair/typebox';
import type { RecordingRow, RecordingTrackRow } from '../db/schema.ts';

const Time = Type.String({ format: 'date-time' });
const NullableTime = Type.Union([Time, Type.Null()]);

export const RecordingTranscriptSchema = Type.Object({
  status: Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('ready'), Type.Literal('failed')]),
  text: Type.Optional(Type.String()),
});

export const RecordingMediaSchema = Type.Object({
  /** recordings/<call_id>/<timestamp>.mp4 */
  key: Type.String(),
  /** A presigned download URL, valid for recording.url_ttl_seconds; needs no other credential. */
  url: Type.String(),
  content_type: Type.Union([Type.Literal('video/mp4'), Type.Literal('audio/mp4')]),
  size_bytes: Type.Integer({ minimum: 0 }),
});

export const RecordingTrackSchema = Type.Object({
  participant_id: Type.String(),
  kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
  /** When this track (segment) starts, from the recording's start. */
  offset_ms: Type.Integer({ minimum: 0 }),
  /** The raw track (Matroska, as captured) beside the MP4. */
  key: Type.String(),
});

export const RecordingSchema = Type.Object(
  {
    id: Type.String(),
    call_id: Type.String(),
    status: Type.Union([Type.Literal('recording'), Type.Literal('processing'), Type.Literal('ready'), Type.Literal('failed')]),
    audio: Type.Boolean(),
    video: Type.Boolean(),
    transcript: Type.Union([RecordingTranscriptSchema, Type.Null()]),
    started_at: Time,
    ended_at: NullableTime,
    duration_seconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    media: Type.Union([RecordingMediaSchema, Type.Null()]),
    tracks: Type.Array(RecordingTrackSchema),
    failure_reason: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'Recording' },
);
export type RecordingDto = Static<typeof RecordingSchema>;

/** `url`: the signed download URL of the composed file, when it is in storage. */
export function toRecordingDto(row: RecordingRow, tracks: RecordingTrackRow[], url: string | null): RecordingDto {
  const durationMs = row.media_duration_ms ?? (row.ended_at ? row.ended_at.getTime() - row.started_at.getTime() : null);
  return {
    id: row.id,
    call_id: row.call_id,
    status: row.status,
    audio: row.audio,
    video: row.video,
    transcript: row.transcript_status === null ? null : { status: row.transcript_status, ...(row.transcript_text !== null ? { text: row.transcript_text } : {}) },
    started_at: row.started_at.toISOString(),
    ended_at: row.ended_at?.toISOString() ?? null,
    duration_seconds: durationMs === null ? null : Math.round(durationMs) / 1000,
    media:
      row.status === 'ready' && row.media_key && url
        ? { key: row.media_key, url, content_type: row.media_content_type === 'audio/mp4' ? 'audio/mp4' : 'video/mp4', size_bytes: Number(row.media_size_bytes ?? 0) }
        : null,
    tracks: tracks.map((t) => ({ participant_id: t.participant_id, kind: t.kind, offset_ms: t.offset_ms, key: t.key })),
    failure_reason: row.failure_reason,
  };
}

/** The storage keys of a recording: `recordings/<call_id>/<timestamp>.mp4`, its raw tracks in `<timestamp>.tracks/` beside it. */
export function recordingKeys(callId: string, startedAt: Date): { media: string; track: (file: string) => string } {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, '$1Z');
  const base = `recordings/${callId}/${stamp}`;
  return { media: `${base}.mp4`, track: (file) => `${base}.tracks/${file}` };
}
