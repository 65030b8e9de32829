/**
 * Matching a client's offered codecs against the router's: what mediasoup itself accepts for a
 * producer (same mime type, clock rate and channels; H.264 with the same packetization mode and
 * profile; VP9 with the same profile-id), so a produce() built from a match never fails on codecs.
 */
import type { types } from 'mediasoup';

/** Codecs that are not media of their own: never chosen as a producer's codec. */
const AUXILIARY = new Set(['audio/rtx', 'video/rtx', 'audio/red', 'video/red', 'video/ulpfec', 'video/flexfec-03', 'audio/cn', 'audio/telephone-event']);

export function isAuxiliary(mimeType: string): boolean {
  return AUXILIARY.has(mimeType.toLowerCase());
}

export function isRtx(mimeType: string): boolean {
  return mimeType.toLowerCase().endsWith('/rtx');
}

type H264Profile = 'ConstrainedBaseline' | 'Baseline' | 'Main' | 'ConstrainedHigh' | 'High' | 'PredictiveHigh444';

/** libwebrtc's profile table: profile_idc and a mask over profile_iop ('x' = either). */
const H264_PATTERNS: Array<[number, string, H264Profile]> = [
  [0x42, 'x1xx0000', 'ConstrainedBaseline'],
  [0x4d, '1xxx0000', 'ConstrainedBaseline'],
  [0x58, '11xx0000', 'ConstrainedBaseline'],
  [0x42, 'x0xx0000', 'Baseline'],
  [0x58, '10xx0000', 'Baseline'],
  [0x4d, '0x0x0000', 'Main'],
  [0x64, '00000000', 'High'],
  [0x64, '00001100', 'ConstrainedHigh'],
  [0xf4, '00000000', 'PredictiveHigh444'],
];

/** The H.264 profile a profile-level-id names (default 42e01f, RFC 6184), or null when it names none. */
export function h264Profile(profileLevelId: unknown): H264Profile | null {
  const text = profileLevelId === undefined ? '42e01f' : String(profileLevelId);
  if (!/^[0-9a-fA-F]{6}$/.test(text)) return null;
  const idc = parseInt(text.slice(0, 2), 16);
  const iop = parseInt(text.slice(2, 4), 16);
  for (const [patternIdc, mask, profile] of H264_PATTERNS) {
    if (patternIdc !== idc) continue;
    let matches = true;
    for (let bit = 0; bit < 8; bit++) {
      const want = mask[bit];
      const has = (iop >> (7 - bit)) & 1;
      if (want !== 'x' && Number(want) !== has) matches = false;
    }
    if (matches) return profile;
  }
  return null;
}

function numberParam(params: Record<string, unknown> | undefined, key: string, fallback: number): number {
  const value = params?.[key];
  return value === undefined ? fallback : Number(value);
}

/** Whether an offered codec is one the router has (mediasoup's strict producer match). */
export function sameCodec(offered: types.RtpCodecParameters, router: types.RtpCodecCapability): boolean {
  const mime = offered.mimeType.toLowerCase();
  if (mime !== router.mimeType.toLowerCase() || offered.clockRate !== router.clockRate) return false;
  if (router.kind === 'audio' && (offered.channels ?? 1) !== (router.channels ?? 1)) return false;
  if (mime === 'video/h264') {
    if (numberParam(offered.parameters, 'packetization-mode', 0) !== numberParam(router.parameters, 'packetization-mode', 0)) return false;
    const profile = h264Profile(offered.parameters?.['profile-level-id']);
    return profile !== null && profile === h264Profile(router.parameters?.['profile-level-id']);
  }
  if (mime === 'video/vp9') return numberParam(offered.parameters, 'profile-id', 0) === numberParam(router.parameters, 'profile-id', 0);
  return true;
}

export function routerCodecFor(offered: types.RtpCodecParameters, router: types.RtpCapabilities): types.RtpCodecCapability | undefined {
  return (router.codecs ?? []).find((codec) => !isRtx(codec.mimeType) && sameCodec(offered, codec));
}

/** The offered feedback the router also does for that codec (what the answer may promise). */
export function commonFeedback(offered: types.RtcpFeedback[], router: types.RtpCodecCapability): types.RtcpFeedback[] {
  const supported = router.rtcpFeedback ?? [];
  return offered.filter((fb) => supported.some((s) => s.type === fb.type && (s.parameter ?? '') === (fb.parameter ?? '')));
}

/** Router header extensions of `kind` usable in `direction` (router's view: it receives or sends). */
export function routerExtension(router: types.RtpCapabilities, kind: string, uri: string, routerDirection: 'receives' | 'sends'): boolean {
  return (router.headerExtensions ?? []).some((ext) => {
    if (ext.kind !== kind || ext.uri !== uri) return false;
    const direction = ext.direction ?? 'sendrecv';
    return direction === 'sendrecv' || direction === (routerDirection === 'receives' ? 'recvonly' : 'sendonly');
  });
}
