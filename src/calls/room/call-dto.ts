import { Type, type Static } from '@sinclair/typebox';
import type { CallRow, ParticipantRow } from '../../db/schema.ts';
import type { ParticipantMedia } from '../ports.ts';
import { RecordingSchema, type RecordingDto } from '../../recording/dto.ts';

const NullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const ParticipantSchema = Type.Object({
  participant_id: Type.String(),
  user_id: Type.String(),
  display_name: Type.String(),
  role: Type.String(),
  state: Type.String(),
  joined_at: NullableTime,
  left_at: NullableTime,
  video_on: Type.Boolean(),
  audio_on: Type.Boolean(),
});

export const CallSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    room_id: Type.Union([Type.String(), Type.Null()]),
    type: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
    status: Type.String(),
    initiator_id: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    started_at: NullableTime,
    ended_at: NullableTime,
    end_reason: Type.Union([Type.String(), Type.Null()]),
    participants: Type.Array(ParticipantSchema),
    recordings: Type.Array(RecordingSchema),
  },
  { title: 'Call' },
);
export type CallDto = Static<typeof CallSchema>;

export function toCallDto(call: CallRow, participants: Array<ParticipantRow & { display_name: string }>, media: Map<string, ParticipantMedia>, recordings: RecordingDto[] = []): CallDto {
  return {
    id: call.id,
    kind: call.kind,
    room_id: call.room_id,
    type: call.media_type,
    status: call.status,
    initiator_id: call.initiator_id,
    created_at: call.created_at.toISOString(),
    started_at: call.started_at?.toISOString() ?? null,
    ended_at: call.ended_at?.toISOString() ?? null,
    end_reason: call.end_reason,
    participants: participants.map((p) => {
      const live = media.get(p.id);
      return {
        participant_id: p.id,
        user_id: p.user_id,
        display_name: p.display_name,
        role: p.role,
        state: p.state,
        joined_at: p.joined_at?.toISOString() ?? null,
        left_at: p.left_at?.toISOString() ?? null,
        video_on: live?.video_on ?? false,
        audio_on: live?.audio_on ?? false,
      };
    }),
    recordings,
  };
}
