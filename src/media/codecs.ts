import type { types } from 'mediasoup';

/**
 * The codecs every router offers (docs/architecture.md, "Media plane": Opus, VP8, VP9, H.264).
 * Both VP9 profiles and both H.264 profiles are listed so Chrome, Firefox and
 * Safari all find a match; rtcpFeedback and payload types are filled in by mediasoup.
 */
export const mediaCodecs: types.RtpCodecCapability[] = [
  {
    kind: 'audio',
    mimeType: 'audio/opus',
    clockRate: 48000,
    channels: 2,
  },
  {
    kind: 'video',
    mimeType: 'video/VP8',
    clockRate: 90000,
  },
  {
    kind: 'video',
    mimeType: 'video/VP9',
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
    clockRate: 90000,
    parameters: {
      'packetization-mode': 1,
      // Main 5.0: hardware encoders (Safari, Android) often produce this.
      'profile-level-id': '4d0032',
      'level-asymmetry-allowed': 1,
    },
  },
];
