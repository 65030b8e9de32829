#!/usr/bin/env bash
# Builds mediasoup's C++ worker from the npm package's own sources against Debian's
# system libraries (no network beyond the npm registry). Usage: build.sh <version> <output binary path>
set -euo pipefail
version="$1"
output="$2"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/mediasoup-worker-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "mediasoup@${version}" >/dev/null
tar xzf "mediasoup-${version}.tgz"
node "$here/patch-meson.mjs" "$work/package/worker"

cd "$work/package/worker"
meson setup build --buildtype=release >/dev/null
ninja -C build -j "$(nproc)" mediasoup-worker
mkdir -p "$(dirname "$output")"
install -m 0755 build/mediasoup-worker "$output.tmp"
mv "$output.tmp" "$output"
echo "mediasoup-worker ${version} built at ${output}"
