import type { types } from 'mediasoup';

/**
 * The codecs every router offers (docs/architecture.md, "Media plane": Opus, VP8, VP9, H.264).
 * Both VP9 profiles and both H.264 profiles are listed so Chrome, Firefox and
 * Safari all find a match; rtcpFeedback is filled in by mediasoup. Opus, VP8, VP9 profile 0 and
 * the two H.264 codecs sit at the payload types Chrome offers them with: a consumer always sends
 * the router's payload types, and an SDP answer (the plain-WebRTC dialect, docs/sdp.md; WHEP,
 * docs/whip-whep.md) must use the offer's. RTX payload types are picked by mediasoup, which gives
 * VP8's RTX 100 (so VP9 profile 2 cannot have Chrome's 100).
 */
export const mediaCodecs: types.RtpCodecCapability[] = [
  {
    kind: 'audio',
    mimeType: 'audio/opus',
    preferredPayloadType: 111,
    clockRate: 48000,
    channels: 2,
  },
  {
    kind: 'video',
    mimeType: 'video/VP8',
    preferredPayloadType: 96,
    clockRate: 90000,
  },
  {
    kind: 'video',
    mimeType: 'video/VP9',
    preferredPayloadType: 98,
    clockRate: 90000,
    parameters: { 'profile-id': 0 },
  },
  {
    kind: 'video',
    mimeType: 'video/VP9',
    clockRate: 90000,
    parameters: { 'profile-id': 2 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    preferredPayloadType: 108,
    clockRate: 90000,
    parameters: {
      'packetization-mode': 1,
      // Constrained Baseline 3.1: what every browser can decode.
      'profile-level-id': '42e01f',
      'level-asymmetry-allowed': 1,
    },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    preferredPayloadType: 116,
    clockRate: 90000,
    parameters: {
      'packetization-mode': 1,
      // Main 5.0: hardware encoders (Safari, Android) often produce this.
      'profile-level-id': '4d0032',
      'level-asymmetry-allowed': 1,
    },
  },
];
