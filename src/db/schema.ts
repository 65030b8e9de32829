import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export type UserRole = 'guest' | 'user' | 'host' | 'admin';

export interface UsersTable {
  id: string;
  role: UserRole;
  display_name: string;
  first_name: string | null;
  last_name: string | null;
  avatar_url: string | null;
  privacy_mode: number;
  company_name: string | null;
  company_title: string | null;
  avatar3d: ColumnType<Record<string, unknown> | null, string | null, string | null>;
  /** Hosts: default per-minute rate in minor units, and its currency. */
  default_rate_minor: number | null;
  currency: string | null;
  stripe_account_id: string | null;
  /** Hosts: false after PUT /v1/hosts/me/availability {available: false}. */
  accepting_calls: ColumnType<boolean, boolean | undefined, boolean>;
  /** Access tokens of this user issued up to this second are refused (POST /v1/users/{id}/revoke-tokens). */
  tokens_revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface IdempotencyKeysTable {
  caller: string;
  key: string;
  method: string;
  path: string;
  request_hash: string;
  state: 'in_progress' | 'done';
  response_status: number | null;
  response_body: string | null;
  /** The server process holding an in-progress key; any other process's key is abandoned (it died). */
  instance_id: string | null;
  created_at: CreatedAt;
  expires_at: Timestamp;
}

export type CallKind = 'paid' | 'room' | 'direct';
/**
 * Every status a call row can have (a CHECK constraint holds the database to it): the billing
 * machine's states for paid calls, `active` → `ended` for room calls.
 */
export const CALL_STATUSES = ['pending', 'waiting', 'active', 'ending', 'completed', 'cancelled', 'failed', 'ended'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];
export type ParticipantState = 'invited' | 'joined' | 'left' | 'rejected';

export interface TenantSettingsTable {
  key: string;
  value: ColumnType<unknown, string, string>;
  updated_at: Timestamp;
}

export interface RoomsTable {
  id: string;
  name: string;
  created_by: string | null;
  created_at: CreatedAt;
}

export interface RoomMembersTable {
  room_id: string;
  user_id: string;
  power: number;
  created_at: CreatedAt;
}

export interface CallsTable {
  id: string;
  kind: CallKind;
  room_id: string | null;
  media_type: 'audio' | 'video';
  status: CallStatus;
  initiator_id: string;
  end_reason: string | null;
  /** The X-Idempotency-Key of the initiate that created the call (per initiator). */
  idempotency_key: string | null;
  /** The number of the call's last recorded webhook event (docs/webhooks.md, "Order"). */
  event_seq: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  started_at: Timestamp | null;
  ended_at: Timestamp | null;
  updated_at: Timestamp;
}

export interface CallParticipantsTable {
  id: string;
  call_id: string;
  user_id: string;
  role: string;
  state: ParticipantState;
  invited_at: CreatedAt;
  joined_at: Timestamp | null;
  left_at: Timestamp | null;
  /** In the call's SFU session now: participant.joined recorded, participant.left not yet. */
  in_session: ColumnType<boolean, boolean | undefined, boolean>;
  /** Roles a moderator set over signaling (migration 0009); null: the call kind's defaults. */
  permissions: ColumnType<Record<string, boolean> | null, string | null | undefined, string | null>;
}

export interface CallEventsTable {
  id: Generated<string>;
  call_id: string;
  at: Timestamp;
  type: string;
  from_status: string | null;
  to_status: string | null;
  cause: string | null;
  data: ColumnType<unknown, string | null, string | null>;
}

export interface SignalingTokensTable {
  token_hash: string;
  call_id: string;
  participant_id: string;
  created_at: CreatedAt;
  expires_at: Timestamp;
  used_at: Timestamp | null;
}

export interface LinksTable {
  id: string;
  short_code: string;
  host_id: string;
  rate_minor: number;
  currency: string;
  window_size_minutes: number;
  max_uses: number | null;
  uses: ColumnType<number, number | undefined, number>;
  expires_at: Timestamp | null;
  deleted_at: Timestamp | null;
  created_at: CreatedAt;
}

export interface CallBillingTable {
  call_id: string;
  link_id: string;
  host_id: string;
  guest_id: string;
  guest_name: string | null;
  state: string;
  snapshot: ColumnType<unknown, string, string>;
  version: ColumnType<number, number | undefined, number>;
  media_seen_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  updated_at: Timestamp;
}

export type PaymentOpKind = 'hold' | 'capture' | 'release';

export interface PaymentOpsTable {
  idempotency_key: string;
  call_id: string;
  op: PaymentOpKind;
  window: number;
  hold_id: string | null;
  amount_minor: number;
  request: ColumnType<unknown, string, string>;
  status: 'pending' | 'done' | 'failed';
  result: ColumnType<unknown, string | null, string | null>;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
  created_at: CreatedAt;
  done_at: Timestamp | null;
}

/** The `test` payment provider's holds (src/billing/providers/test-stores.ts), as Stripe would keep them. */
export interface TestPaymentHoldsTable {
  hold_id: string;
  call_id: string;
  window: number;
  amount_minor: number;
  currency: string;
  payment_method_id: string;
  destination: ColumnType<{ accountId: string; applicationFeeMinor: number } | null, string | null, string | null>;
  status: 'held' | 'captured' | 'released' | 'failed';
  amount_captured_minor: ColumnType<number, number | undefined, number>;
  released_by: 'caller' | 'provider' | null;
  placed_at: Timestamp;
  settled_at: Timestamp | null;
}

/** The `test` payment provider's idempotency: the first answer to each key. */
export interface TestPaymentRepliesTable {
  idempotency_key: string;
  fingerprint: string;
  outcome: ColumnType<unknown, string | null, string | null>;
  created_at: CreatedAt;
}

// ---- webhooks (src/webhooks/, docs/webhooks.md) ------------------------------------------

/** The webhook outbox: one recorded event, with the exact body that is signed and sent. */
export interface WebhookEventsTable {
  /** evt_<ULID>: the webhook-id header, the same on every attempt. */
  id: string;
  call_id: string;
  /** The event's number within its call (calls.event_seq when it was recorded). */
  seq: number;
  type: string;
  body: string;
  recorded_at: Timestamp;
}

export interface WebhookEndpointsTable {
  id: string;
  url: string;
  secret: string;
  /** Event names the endpoint receives; null: every event. */
  events: ColumnType<string[] | null, string | null, string | null>;
  description: string | null;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  source: 'api' | 'config';
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveriesTable {
  id: string;
  endpoint_id: string;
  event_id: string;
  call_id: string;
  seq: number;
  status: WebhookDeliveryStatus;
  attempts: ColumnType<number, number | undefined, number>;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Timestamp | null;
  first_attempt_at: Timestamp | null;
  delivered_at: Timestamp | null;
  created_at: CreatedAt;
}

// ---- Chat (migration 0008_chat; docs/chat.md) -------------------------------------------------

export interface ChatConversationsTable {
  id: string;
  /** The pair, smaller id first (a CHECK holds it): one conversation per pair. */
  user_a: string;
  user_b: string;
  last_message_id: string | null;
  last_activity_at: Timestamp;
  created_at: CreatedAt;
}

export interface ChatMembersTable {
  conversation_id: string;
  user_id: string;
  /** The other participant, so a member's list needs no self-join. */
  peer_id: string;
  /** Messages up to this id are read (ULIDs order messages). */
  last_read_id: string | null;
}

export type ChatMessageType = 'text' | 'file';

export interface ChatMessagesTable {
  id: string;
  conversation_id: string;
  sender_id: string;
  type: ChatMessageType;
  body: string;
  upload_id: string | null;
  client_id: string | null;
  broadcast_id: string | null;
  created_at: Timestamp;
}

export interface ChatUploadsTable {
  id: string;
  owner_id: string;
  storage_key: string;
  file_url: string;
  file_name: string;
  file_size: number;
  file_type: string;
  verified_at: Timestamp | null;
  expires_at: Timestamp;
  created_at: CreatedAt;
}

export interface ChatFollowsTable {
  host_id: string;
  user_id: string;
  created_at: CreatedAt;
}

export interface ChatBroadcastsTable {
  id: string;
  sender_id: string;
  body: string;
  recipients: number;
  completed_at: Timestamp | null;
  created_at: Timestamp;
}

export interface ChatBroadcastRecipientsTable {
  broadcast_id: string;
  user_id: string;
  delivered_at: Timestamp | null;
}

export interface ChatTables {
  chat_conversations: ChatConversationsTable;
  chat_members: ChatMembersTable;
  chat_messages: ChatMessagesTable;
  chat_uploads: ChatUploadsTable;
  chat_follows: ChatFollowsTable;
  chat_broadcasts: ChatBroadcastsTable;
  chat_broadcast_recipients: ChatBroadcastRecipientsTable;
}

export type ChatMessageRow = Selectable<ChatMessagesTable>;
export type ChatUploadRow = Selectable<ChatUploadsTable>;
// ---- end of chat ------------------------------------------------------------------------------

// ---- direct videochat (src/calls/direct/, docs/videochat.md) ---------------------------------

export type VideochatRequestState = 'requested' | 'accepted' | 'declined' | 'expired' | 'merged';

/** One handshake request: a direct call (call_id set on accept) or an invite into call_id. */
export interface VideochatRequestsTable {
  id: string;
  kind: 'direct' | 'invite';
  initiator_id: string;
  target_id: string;
  call_id: string | null;
  state: VideochatRequestState;
  created_at: Timestamp;
  expires_at: Timestamp;
  answered_at: Timestamp | null;
  answered_by: string | null;
}

/** The per-call end-to-end encryption secret, for participants only. */
export interface CallSharedSecretsTable {
  call_id: string;
  secret: string;
}

// ---- recordings (src/recording/, docs/recording.md) --------------------------------------

export const RECORDING_STATUSES = ['recording', 'processing', 'ready', 'failed'] as const;
export type RecordingStatus = (typeof RECORDING_STATUSES)[number];
export type TranscriptStatus = 'pending' | 'running' | 'ready' | 'failed';
type BigIntColumn = ColumnType<string | null, number | string | null | undefined, number | string | null>;

export interface RecordingsTable {
  id: string;
  call_id: string;
  status: RecordingStatus;
  audio: boolean;
  video: boolean;
  started_by: string | null;
  started_at: Timestamp;
  ended_at: Timestamp | null;
  /** Why capture stopped: stopped (the API), call_ended, shutdown, server_restarted. */
  stop_reason: string | null;
  failure_reason: string | null;
  /** The composed file is complete in the spool (composition is not redone after this). */
  composed_at: Timestamp | null;
  media_key: string | null;
  media_content_type: string | null;
  media_size_bytes: BigIntColumn;
  media_duration_ms: number | null;
  /** Storage confirmed every file of the recording (the spool copy may go). */
  media_uploaded_at: Timestamp | null;
  upload_attempts: ColumnType<number, number | undefined, number>;
  last_upload_error: string | null;
  /** null when no transcript was asked for. */
  transcript_status: TranscriptStatus | null;
  transcript_text: string | null;
  transcript_error: string | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface RecordingTracksTable {
  id: string;
  recording_id: string;
  participant_id: string;
  producer_id: string;
  kind: 'audio' | 'video';
  /** 1 for the first capture of the producer, 2... after ffmpeg was restarted. */
  segment: number;
  /** The RTP codec's MIME type (video/VP8, audio/opus...). */
  codec: string;
  offset_ms: number;
  end_offset_ms: number | null;
  /** Path of the raw file, relative to the recording's spool directory. */
  file: string;
  key: string;
  size_bytes: BigIntColumn;
  uploaded_at: Timestamp | null;
  created_at: CreatedAt;
}

export type RecordingRow = Selectable<RecordingsTable>;
export type RecordingTrackRow = Selectable<RecordingTracksTable>;

export interface DB extends ChatTables {
  users: UsersTable;
  idempotency_keys: IdempotencyKeysTable;
  tenant_settings: TenantSettingsTable;
  rooms: RoomsTable;
  room_members: RoomMembersTable;
  calls: CallsTable;
  call_participants: CallParticipantsTable;
  call_events: CallEventsTable;
  signaling_tokens: SignalingTokensTable;
  links: LinksTable;
  call_billing: CallBillingTable;
  payment_ops: PaymentOpsTable;
  test_payment_holds: TestPaymentHoldsTable;
  test_payment_replies: TestPaymentRepliesTable;
  webhook_events: WebhookEventsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  videochat_requests: VideochatRequestsTable;
  call_shared_secrets: CallSharedSecretsTable;
  recordings: RecordingsTable;
  recording_tracks: RecordingTracksTable;
}

export type CallRow = Selectable<CallsTable>;
export type ParticipantRow = Selectable<CallParticipantsTable>;
export type RoomRow = Selectable<RoomsTable>;
export type LinkRow = Selectable<LinksTable>;
export type CallBillingRow = Selectable<CallBillingTable>;
export type PaymentOpRow = Selectable<PaymentOpsTable>;

export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;

export type VideochatRequestRow = Selectable<VideochatRequestsTable>;

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
