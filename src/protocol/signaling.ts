/**
 * The SFU signaling protocol (docs/api.md, "Signaling WebSocket"), shared by the server, the demo client and the load tester.
 *
 * Socket: GET /v1/signal?token=<signaling_token> (also /ws). Frames are JSON text:
 *   client request      {"type": <RequestType>, "id": <string|number>, "payload": {...}}
 *   server response     {"type": "response", "id", "payload"}
 *   server error        {"type": "error", "id"?, "payload": {"code", "message"}}
 *   server notification {"type": <NotificationType>, "payload"}   (no id)
 * Payloads use mediasoup-client's own shapes so a client passes them straight through.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { RoleChange, type VideochatPermissions } from './videochat.ts';

export const MAX_SIGNAL_MESSAGE_BYTES = 64 * 1024;

/** WebSocket close codes the server uses; clients decide from them whether to reconnect. */
export const SignalCloseCode = {
  /** Server shutting down: reconnect elsewhere/later with a fresh token. */
  goingAway: 1001,
  /** Token missing, unknown, expired or already used. Do not retry with it. */
  unauthorized: 4001,
  /** Not a participant of this call. */
  forbidden: 4003,
  /** Too many messages: the client flooded. */
  flooding: 4008,
  /** A newer connection of the same participant took over. */
  replaced: 4009,
  /** The call ended. */
  callEnded: 4010,
  /** The media worker hosting the call died: ask POST /v1/calls/{id}/token and reconnect. */
  reconnect: 4011,
  /** The participant left (leave request). */
  left: 4012,
  /** An owner or panelist removed the participant (removeParticipant). */
  removed: 4013,
} as const;

export const MediaSource = Type.Union([Type.Literal('camera'), Type.Literal('microphone'), Type.Literal('screen')]);
export type MediaSource = Static<typeof MediaSource>;
export const MediaKind = Type.Union([Type.Literal('audio'), Type.Literal('video')]);
export type MediaKind = Static<typeof MediaKind>;

const Id = Type.String({ minLength: 1, maxLength: 64 });
/** mediasoup validates these deeply itself; here they only need to be JSON objects of bounded size. */
const OpaqueObject = Type.Record(Type.String(), Type.Unknown());

export const RequestSchemas = {
  createTransport: Type.Object({ direction: Type.Union([Type.Literal('send'), Type.Literal('recv')]) }, { additionalProperties: false }),
  connectTransport: Type.Object({ transportId: Id, dtlsParameters: OpaqueObject }, { additionalProperties: false }),
  produce: Type.Object(
    { transportId: Id, kind: MediaKind, rtpParameters: OpaqueObject, source: MediaSource, appData: Type.Optional(OpaqueObject) },
    { additionalProperties: false },
  ),
  consume: Type.Object({ producerId: Id, rtpCapabilities: OpaqueObject }, { additionalProperties: false }),
  resumeConsumer: Type.Object({ consumerId: Id }, { additionalProperties: false }),
  pauseConsumer: Type.Object({ consumerId: Id }, { additionalProperties: false }),
  pauseProducer: Type.Object({ producerId: Id }, { additionalProperties: false }),
  resumeProducer: Type.Object({ producerId: Id }, { additionalProperties: false }),
  closeProducer: Type.Object({ producerId: Id }, { additionalProperties: false }),
  setPreferredLayers: Type.Object(
    { consumerId: Id, spatialLayer: Type.Integer({ minimum: 0, maximum: 3 }), temporalLayer: Type.Optional(Type.Integer({ minimum: 0, maximum: 3 })) },
    { additionalProperties: false },
  ),
  restartIce: Type.Object({ transportId: Id }, { additionalProperties: false }),
  leave: Type.Object({}, { additionalProperties: false }),
  // Moderation (owners and panelists): docs/api.md, "Direct videochat (user socket)", "Roles over signaling".
  setPermissions: Type.Object({ participantId: Id, permissions: RoleChange }, { additionalProperties: false }),
  muteParticipant: Type.Object({ participantId: Id, kind: MediaKind }, { additionalProperties: false }),
  removeParticipant: Type.Object({ participantId: Id }, { additionalProperties: false }),
} as const;

export type RequestType = keyof typeof RequestSchemas;
export type RequestPayload<T extends RequestType> = Static<(typeof RequestSchemas)[T]>;

/** A request's id: requests carry one; the plain-WebRTC SDP messages (below, docs/sdp.md) carry none. */
export const RequestId = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer()]);

export const ClientFrame = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 64 }),
    id: Type.Optional(RequestId),
    payload: Type.Optional(Type.Union([OpaqueObject, Type.Null()])),
  },
  { additionalProperties: false },
);

/**
 * Seed 000's signaling (docs/sdp.md): a plain RTCPeerConnection's offer / answer / ICE candidates,
 * as `{"type", "payload"}` without an id. A socket that sends one of these is an SDP peer.
 */
const Sdp = Type.String({ minLength: 1, maxLength: MAX_SIGNAL_MESSAGE_BYTES });
const Nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));
export const SdpMessageSchemas = {
  offer: Type.Object({ type: Type.Literal('offer'), sdp: Sdp }, { additionalProperties: false }),
  answer: Type.Object({ type: Type.Literal('answer'), sdp: Sdp }, { additionalProperties: false }),
  /** An RTCIceCandidateInit, or null at the end of gathering. Accepted and not used: the server is ICE-lite. */
  ice_candidate: Type.Union([
    Type.Null(),
    Type.Object(
      {
        candidate: Type.Optional(Type.String({ maxLength: 1024 })),
        sdpMid: Nullable(Type.String({ maxLength: 64 })),
        sdpMLineIndex: Nullable(Type.Integer({ minimum: 0, maximum: 1024 })),
        usernameFragment: Nullable(Type.String({ maxLength: 256 })),
      },
      { additionalProperties: false },
    ),
  ]),
} as const;

export type SdpMessageType = keyof typeof SdpMessageSchemas;
export type SdpMessagePayload<T extends SdpMessageType> = Static<(typeof SdpMessageSchemas)[T]>;

/** What the server sends an SDP peer (docs/sdp.md), `{"type", "payload"}` like every notification. */
export interface SdpServerPayloads {
  offer: { type: 'offer'; sdp: string };
  answer: { type: 'answer'; sdp: string };
  ice_candidate: { candidate: string; sdpMid: string; sdpMLineIndex: number; usernameFragment: string } | null;
  peer_joined: { participantId: string; displayName: string };
  peer_left: { participantId: string; displayName: string };
  error: { code: string; message: string };
}

/** Answers: what each request's `response.payload` carries. */
export interface ResponsePayloads {
  createTransport: { id: string; iceParameters: unknown; iceCandidates: unknown[]; dtlsParameters: unknown; sctpParameters?: unknown };
  connectTransport: Record<string, never>;
  produce: { id: string };
  consume: { id: string; producerId: string; kind: MediaKind; rtpParameters: unknown; type: string; producerPaused: boolean };
  resumeConsumer: Record<string, never>;
  pauseConsumer: Record<string, never>;
  pauseProducer: Record<string, never>;
  resumeProducer: Record<string, never>;
  closeProducer: Record<string, never>;
  setPreferredLayers: Record<string, never>;
  restartIce: { iceParameters: unknown };
  leave: Record<string, never>;
  setPermissions: { permissions: Permissions };
  muteParticipant: Record<string, never>;
  removeParticipant: Record<string, never>;
}

export interface ProducerInfo {
  producerId: string;
  kind: MediaKind;
  source: MediaSource;
  paused: boolean;
}

export interface PeerInfo {
  participantId: string;
  userId: string;
  displayName: string;
  producers: ProducerInfo[];
}

/**
 * What the SFU enforces: the participant's roles and what follows from them (canPublish). The
 * server always sends every role flag; an identity built without them (tests, tools) has none.
 */
export interface Permissions extends Partial<VideochatPermissions> {
  canPublish: boolean;
  canSubscribe: boolean;
  canEndCall: boolean;
}

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export type CallStatus = 'pending' | 'waiting' | 'active' | 'ending' | 'completed' | 'cancelled' | 'failed' | 'ended';

/** Server notifications: `type` and its payload. */
export interface NotificationPayloads {
  welcome: {
    participantId: string;
    callId: string;
    role: string;
    permissions: Permissions;
    routerRtpCapabilities: unknown;
    iceServers: IceServer[];
    peers: PeerInfo[];
  };
  peer_joined: { participantId: string; userId: string; displayName: string };
  peer_left: { participantId: string };
  new_producer: { participantId: string; producerId: string; kind: MediaKind; source: MediaSource };
  producer_closed: { participantId: string; producerId: string };
  producer_paused: { participantId: string; producerId: string };
  producer_resumed: { participantId: string; producerId: string };
  /** The consumer was closed by the server (its producer went away, or it moved worker). */
  consumer_closed: { consumerId: string; producerId: string };
  active_speaker: { participantId: string | null; volume?: number };
  call_status: { callId: string; status: CallStatus; reason?: string; warning?: string; [extra: string]: unknown };
  /** An owner or panelist changed this participant's roles (a demotion also closes its producers). */
  permissions_changed: { permissions: Permissions };
  /** The call's media is gone (worker died): get a fresh token and reconnect; identity is kept. */
  reconnect: { reason: string };
  error: { code: string; message: string };
}

export type NotificationType = keyof NotificationPayloads;
