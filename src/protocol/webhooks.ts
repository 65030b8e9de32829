/**
 * The outbound webhook contract (docs/webhooks.md): the closed list of event names and the `data`
 * of each. Every event is call-scoped: `data.call_id` is always there. Money is a decimal string
 * with two places and a lowercase currency, times are RFC 3339, as everywhere in the API.
 */
import { Type, type Static, type TObject } from '@sinclair/typebox';

const CallId = { call_id: Type.String() };
const Kind = Type.Union([Type.Literal('room'), Type.Literal('paid'), Type.Literal('direct')]);
const Time = Type.String({ format: 'date-time' });
const Money = Type.String({ pattern: '^-?\\d+\\.\\d{2}$' });
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

/** What a paid call cost, in call.ended (and call.failed). */
export const BillingSummarySchema = Type.Object({
  duration_seconds: Type.Integer({ minimum: 0 }),
  billed_minutes: Type.Integer({ minimum: 0 }),
  total_charged: Money,
  currency: Type.String(),
});

const ParticipantFields = {
  ...CallId,
  participant_id: Type.String(),
  user_id: Type.String(),
  role: Type.String(),
};

const TrackFields = {
  ...ParticipantFields,
  /** The SFU producer id (the same id the signaling protocol uses). */
  track_id: Type.String(),
  kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
  source: Type.String(),
};

const HoldFields = { ...CallId, window: Type.Integer({ minimum: 1 }), amount: Money, currency: Type.String() };

export const WEBHOOK_EVENT_SCHEMAS = {
  'call.created': Type.Object({ ...CallId, kind: Kind, media_type: Type.String(), initiator_id: Type.String(), room_id: Nullable(Type.String()), host_id: Nullable(Type.String()), created_at: Time }),
  'call.waiting': Type.Object({ ...CallId, kind: Kind, host_id: Type.String(), guest_id: Type.String() }),
  'call.active': Type.Object({ ...CallId, kind: Kind, started_at: Time }),
  'call.ended': Type.Object({
    ...CallId,
    kind: Kind,
    status: Type.Union([Type.Literal('completed'), Type.Literal('cancelled'), Type.Literal('ended'), Type.Literal('failed')]),
    end_reason: Nullable(Type.String()),
    started_at: Nullable(Time),
    ended_at: Time,
    billing: Type.Optional(BillingSummarySchema),
  }),
  'call.failed': Type.Object({ ...CallId, kind: Kind, reason: Type.String(), window: Type.Union([Type.Integer(), Type.Null()]), billing: BillingSummarySchema }),
  'participant.joined': Type.Object(ParticipantFields),
  'participant.left': Type.Object({ ...ParticipantFields, reason: Type.String() }),
  'track.published': Type.Object(TrackFields),
  'track.unpublished': Type.Object(TrackFields),
  'recording.started': Type.Object({ ...CallId, recording_id: Type.String(), audio: Type.Boolean(), video: Type.Boolean(), started_at: Time }),
  'recording.finished': Type.Object({
    ...CallId,
    recording_id: Type.String(),
    /** recordings/<call_id>/<timestamp>.mp4 in the configured storage. */
    media_key: Type.String(),
    content_type: Type.String(),
    duration_seconds: Type.Number({ minimum: 0 }),
    /** null when no transcript was asked for; the text is here until room chat carries it (docs/recording.md). */
    transcript: Type.Union([Type.Object({ status: Type.String(), text: Type.Optional(Type.String()) }), Type.Null()]),
  }),
  'recording.failed': Type.Object({ ...CallId, recording_id: Type.String(), reason: Type.String() }),
  'billing.hold_placed': Type.Object({ ...HoldFields, hold_id: Type.String() }),
  'billing.hold_failed': Type.Object({ ...HoldFields, decline_code: Type.String() }),
  'billing.captured': Type.Object({ ...HoldFields, hold_id: Type.String() }),
  'billing.released': Type.Object({ ...CallId, window: Type.Integer({ minimum: 1 }), hold_id: Type.String() }),
} satisfies Record<string, TObject>;

export type WebhookEventType = keyof typeof WEBHOOK_EVENT_SCHEMAS;
export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_EVENT_SCHEMAS) as WebhookEventType[];
export type WebhookEventData<T extends WebhookEventType> = Static<(typeof WEBHOOK_EVENT_SCHEMAS)[T]>;
export type BillingSummary = Static<typeof BillingSummarySchema>;

export function isWebhookEventType(name: string): name is WebhookEventType {
  return Object.hasOwn(WEBHOOK_EVENT_SCHEMAS, name);
}

/** The body of one delivery, exactly as signed: `timestamp` is when the event was recorded. */
export interface WebhookBody<T extends WebhookEventType = WebhookEventType> {
  type: T;
  timestamp: string;
  data: WebhookEventData<T>;
}

/** One event as a domain module records it. */
export type RecordedEvent = { [T in WebhookEventType]: { type: T; data: WebhookEventData<T> } }[WebhookEventType];
