export { SfuRegistry, type SfuRegistryOptions } from './registry.ts';
export { CallSession, type CallSessionEvents } from './session.ts';
export type {
  CallRef,
  DtlsState,
  IceServersFor,
  MediaInterruptedEvent,
  ParticipantIdentity,
  ParticipantMedia,
  ParticipantRef,
  PeerConnection,
  PeerSink,
  SfuRegistryEvents,
  SfuRequestPayload,
  TransportConnectedEvent,
} from './types.ts';
export type { RecordableTrack, RecordingTap, RecordingTapPorts, TapCodec } from './recording-tap.ts';
