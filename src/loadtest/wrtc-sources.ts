/**
 * Synthetic media for libwebrtc (@roamhq/wrtc) peers: a tone and a moving picture, fed to
 * libwebrtc's non-standard sources on timers. Used by the wrtc engine and by the test peers.
 */
import wrtc from '@roamhq/wrtc';

const SAMPLE_RATE = 48_000;
const AUDIO_FRAME_MS = 10;

export interface SyntheticTrack {
  track: MediaStreamTrack;
  /** Stops the timer and the track; idempotent. */
  stop(): void;
}

function synthetic(track: MediaStreamTrack, timer: NodeJS.Timeout): SyntheticTrack {
  // The timer alone never keeps a process alive; whoever owns the track stops it.
  timer.unref();
  let stopped = false;
  return {
    track,
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      track.stop();
    },
  };
}

/** A 440 Hz tone, fed as 10 ms frames of 16-bit mono PCM at 48 kHz. */
export function toneTrack(): SyntheticTrack {
  const source = new wrtc.nonstandard.RTCAudioSource();
  const track = source.createTrack();
  const samplesPerFrame = (SAMPLE_RATE * AUDIO_FRAME_MS) / 1000;
  const step = (2 * Math.PI * 440) / SAMPLE_RATE;
  let phase = 0;
  const timer = setInterval(() => {
    const samples = new Int16Array(samplesPerFrame);
    for (let i = 0; i < samplesPerFrame; i++) {
      samples[i] = Math.round(Math.sin(phase) * 8000);
      phase += step;
    }
    phase %= 2 * Math.PI;
    source.onData({ samples, sampleRate: SAMPLE_RATE, bitsPerSample: 16, channelCount: 1, numberOfFrames: samplesPerFrame });
  }, AUDIO_FRAME_MS);
  return synthetic(track, timer);
}

/**
 * A moving grey gradient, I420. `noise`: a band of random pixels moves down the picture too, so an
 * encoder has something to spend its bitrate on.
 */
export function pictureTrack(picture: { width: number; height: number; fps: number; noise: boolean }): SyntheticTrack {
  const { width, height, fps, noise } = picture;
  const source = new wrtc.nonstandard.RTCVideoSource();
  const track = source.createTrack();
  const data = new Uint8Array(width * height * 1.5);
  data.fill(128, width * height); // chroma: grey
  let frame = 0;
  const timer = setInterval(() => {
    frame++;
    for (let y = 0; y < height; y++) data.fill((y + frame * 4) & 0xff, y * width, (y + 1) * width);
    if (noise) {
      const band = (frame * 7) % height;
      for (let i = band * width; i < Math.min(height, band + 16) * width; i++) data[i] = (Math.random() * 255) | 0;
    }
    source.onFrame({ width, height, data });
  }, Math.round(1000 / fps));
  return synthetic(track, timer);
}
