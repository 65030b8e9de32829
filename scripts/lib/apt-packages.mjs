// The Debian packages callplane needs, in one place for scripts/setup.mjs and the Dockerfile.
// `node scripts/lib/apt-packages.mjs` prints them on one line.
import { fileURLToPath } from 'node:url';

export const APT_PACKAGES = [
  // mediasoup worker build (workers/mediasoup/build.sh)
  'meson',
  'ninja-build',
  'pkg-config',
  'g++',
  'libuv1-dev',
  'libssl-dev',
  'libsrtp2-dev',
  'libusrsctp-dev',
  'libabsl-dev',
  'nlohmann-json3-dev',
  // recording
  'ffmpeg',
  // real-browser tests
  'chromium',
  // HTTP benchmarks
  'wrk',
  // TURN: the coturn engine (turn.engine: coturn) and its client tools in the tests and benchmark
  'coturn',
];

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(APT_PACKAGES.join(' '));
