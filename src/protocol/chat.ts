/**
 * Chat's wire contract (docs/api.md, "Chat"): the REST objects and the chat WebSocket's frames
 * (/v1/chat/ws?token=<access_token>), shared by the server, the demo client and the tests.
 */
import { Type, type Static } from '@sinclair/typebox';

const Id = Type.String({ pattern: '^[0-9A-HJKMNP-TV-Z]{26}$', description: 'ULID' });
const Time = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String | typeof Type.Integer>>(schema: T) => Type.Union([schema, Type.Null()]);

export const ChatMessageSchema = Type.Object(
  {
    id: Id,
    conversation_id: Id,
    sender_id: Id,
    body: Type.String(),
    type: Type.Union([Type.Literal('text'), Type.Literal('file')]),
    file_url: Nullable(Type.String()),
    file_name: Nullable(Type.String()),
    file_size: Nullable(Type.Integer()),
    file_type: Nullable(Type.String()),
    created_at: Time,
  },
  { title: 'ChatMessage' },
);
export type ChatMessage = Static<typeof ChatMessageSchema>;

export const ChatParticipantSchema = Type.Object({ id: Id, display_name: Type.String(), avatar_url: Nullable(Type.String()) });

export const ChatConversationSchema = Type.Object(
  {
    id: Id,
    participant: ChatParticipantSchema,
    last_message: Type.Union([Type.Object({ body: Type.String(), type: Type.Union([Type.Literal('text'), Type.Literal('file')]), sent_at: Time }), Type.Null()]),
    unread_count: Type.Integer({ minimum: 0 }),
    created_at: Time,
    updated_at: Time,
  },
  { title: 'ChatConversation' },
);
export type ChatConversation = Static<typeof ChatConversationSchema>;

export const FollowSchema = Type.Object({ host_id: Id, user_id: Id, created_at: Time }, { title: 'Follow' });
export type Follow = Static<typeof FollowSchema>;

export const BroadcastSchema = Type.Object({ id: Id, body: Type.String(), recipients: Type.Integer({ minimum: 0 }), created_at: Time }, { title: 'Broadcast' });
export type Broadcast = Static<typeof BroadcastSchema>;

export const UploadSchema = Type.Object(
  {
    upload_url: Type.String(),
    method: Type.Literal('PUT'),
    headers: Type.Record(Type.String(), Type.String()),
    file_url: Type.String(),
    expires_at: Time,
  },
  { title: 'ChatUpload' },
);
export type Upload = Static<typeof UploadSchema>;

/** Close codes of the chat socket (as on the other sockets). */
export const ChatSocketClose = { unauthorized: 4001, flooding: 4008, goingAway: 1001 } as const;

/** Any client frame: `type` names it; each type's own schema is checked after. */
export const ChatClientEnvelope = Type.Object({ type: Type.String({ minLength: 1, maxLength: 32 }) });

/** The client frames' schemas; `maxChars` is chat.max_message_chars. */
export function chatClientFrames(maxChars: number) {
  return {
    message: Type.Object(
      {
        type: Type.Literal('message'),
        conversation_id: Id,
        body: Type.String({ minLength: 1, maxLength: maxChars }),
        client_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      },
      { additionalProperties: false },
    ),
    typing: Type.Object({ type: Type.Literal('typing'), conversation_id: Id }, { additionalProperties: false }),
    read: Type.Object({ type: Type.Literal('read'), conversation_id: Id }, { additionalProperties: false }),
  };
}

export type ChatServerFrame =
  | { type: 'new_message'; message: ChatMessage; client_id?: string }
  | { type: 'typing'; conversation_id: string; user_id: string }
  | { type: 'read_receipt'; conversation_id: string; user_id: string }
  | { type: 'error'; code: string; message: string; conversation_id?: string };
