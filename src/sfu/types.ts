import type {
  IceServer,
  NotificationPayloads,
  NotificationType,
  Permissions,
  RequestPayload,
  RequestType,
  ResponsePayloads,
} from '../protocol/signaling.ts';

/**
 * Where a session writes to one connected participant. The signaling transport implements it
 * (LiveKit's MessageSink idea): the SFU never touches a socket.
 */
export interface PeerSink {
  notify<T extends NotificationType>(type: T, payload: NotificationPayloads[T]): void;
  /** Closes the participant's connection with a SignalCloseCode. Must not throw; may be called once. */
  close(code: number, reason: string): void;
}

/** Who a signaling token admits: one participant of one call. */
export interface ParticipantIdentity {
  callId: string;
  participantId: string;
  userId: string;
  displayName: string;
  role: string;
  permissions: Permissions;
}

/**
 * One live connection of a participant, returned by SfuRegistry.join(). Once the participant has
 * reconnected elsewhere (or left, or the call ended) the handle is stale: requests fail with
 * invalid_state and close() does nothing.
 */
/**
 * What the SFU's requests take: the wire's payloads, plus what only in-process clients may ask
 * (the SDP adapter, docs/sdp.md): one transport for both directions, and a consumer on a given mid.
 */
export type SfuRequestPayload<T extends RequestType> = T extends 'createTransport'
  ? { direction: 'send' | 'recv' | 'both' }
  : T extends 'consume'
    ? RequestPayload<'consume'> & { mid?: string; enableRtx?: boolean }
    : RequestPayload<T>;

export interface PeerConnection {
  readonly callId: string;
  readonly participantId: string;
  /** Runs one request; requests of a participant run one at a time, in order. Rejects with an AppError. */
  request<T extends RequestType>(type: T, payload: SfuRequestPayload<T>): Promise<ResponsePayloads[T]>;
  /** The socket went away: the participant's media closes now, its identity is kept for the grace period. */
  close(): void;
  readonly stale: boolean;
}

/** One producer, as the webhooks' track events describe it. */
export interface TrackEvent {
  participantId: string;
  producerId: string;
  kind: 'audio' | 'video';
  source: string;
}

export interface CallRef {
  callId: string;
}

export interface ParticipantRef {
  callId: string;
  participantId: string;
}

export interface TransportConnectedEvent extends ParticipantRef {
  /** 'both': an SDP peer's one transport, carrying its send and its receive media. */
  direction: 'send' | 'recv' | 'both';
  transportId: string;
}

export interface MediaInterruptedEvent extends CallRef {
  /** 'media_worker_died': every participant was told to reconnect. */
  reason: string;
}

/** mediasoup's WebRtcTransport.dtlsState. */
export type DtlsState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

export interface ParticipantMedia {
  audio_on: boolean;
  video_on: boolean;
}

export interface SfuRegistryEvents {
  /** The call has had no connected participant for calls.empty_timeout_seconds (with `emptyCalls: 'report'`). */
  empty: [CallRef];
  /** A participant's WebRTC transport reached DTLS 'connected' (billing: media is flowing). */
  transportconnected: [TransportConnectedEvent];
  /** A transport that had been DTLS-connected closed or failed (billing: media may be gone). */
  transportdisconnected: [TransportConnectedEvent];
  /** A new participant joined (not on a reconnect within the grace period). */
  peerjoined: [ParticipantRef];
  /** A participant left, was removed, or its grace period ran out (`reason` says which). */
  peerleft: [ParticipantRef & { reason: string }];
  /** A producer was created (webhooks: track.published). */
  trackpublished: [CallRef & TrackEvent];
  /**
   * A producer closed while the call goes on (its participant unpublished, left or reconnected, or
   * its worker died). Not at the call's end: the end closes every track.
   */
  trackunpublished: [CallRef & TrackEvent];
  /** A participant's producers changed (published, closed, paused, resumed): audio_on/video_on may differ. */
  producerschanged: [ParticipantRef];
  /** The call lost its media (worker died); participants were told to reconnect (billing: media loss). */
  mediainterrupted: [MediaInterruptedEvent];
  /** A moderator changed a participant's roles over signaling. */
  permissionschanged: [ParticipantRef & { permissions: Permissions }];
  /** The session is gone (ended, or the registry closed). */
  callclosed: [CallRef & { reason: string }];
}

export type IceServersFor = (identity: ParticipantIdentity) => IceServer[];
