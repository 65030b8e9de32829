/**
 * The mediasoup-client Device, loaded before a join: every call router of a server has the same
 * RTP capabilities (GET /v1/media/rtp-capabilities), so the page loads a Device with them once,
 * and the welcome only has to compare. Loading asks the browser for its own capabilities through a
 * throwaway RTCPeerConnection, which is time the join would otherwise wait for.
 */
import { Device, type types } from 'mediasoup-client';

interface LoadedDevice {
  capabilities: string;
  device: types.Device;
}

let preloaded: Promise<LoadedDevice | null> | null = null;

async function load(routerRtpCapabilities: types.RtpCapabilities): Promise<types.Device> {
  const device = await Device.factory();
  await device.load({ routerRtpCapabilities });
  return device;
}

/** Starts loading a Device with the server's router capabilities; failures only mean no head start. */
export function preloadDevice(): void {
  preloaded ??= (async () => {
    const response = await fetch('/v1/media/rtp-capabilities');
    if (!response.ok) return null;
    const { rtp_capabilities: capabilities } = (await response.json()) as { rtp_capabilities: types.RtpCapabilities };
    return { capabilities: JSON.stringify(capabilities), device: await load(capabilities) };
  })().catch((error: unknown) => {
    console.warn('could not preload the media device', error);
    return null;
  });
}

/** A Device loaded with these router capabilities: the preloaded one when they are the same. */
export async function deviceFor(routerRtpCapabilities: types.RtpCapabilities): Promise<types.Device> {
  const ready = await preloaded;
  if (ready && ready.capabilities === JSON.stringify(routerRtpCapabilities)) return ready.device;
  return load(routerRtpCapabilities);
}
