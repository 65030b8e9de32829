# callplane: builds the same way scripts/setup.mjs does (Debian packages, the mediasoup worker
# from the npm package's own sources against Debian's libraries, npm ci with
# MEDIASOUP_WORKER_BIN set). Node 20 on Debian 12: uWebSockets.js has no build for newer Node.
FROM node:20-bookworm

# System packages: one list, shared with scripts/setup.mjs.
COPY scripts/lib/apt-packages.mjs /tmp/apt-packages.mjs
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(node /tmp/apt-packages.mjs) \
 && rm -rf /var/lib/apt/lists/* /tmp/apt-packages.mjs

# The mediasoup worker (a few minutes; cached as long as the recipe and version do not change).
# MEDIASOUP_VERSION must equal package.json's dependencies.mediasoup (checked below).
ARG MEDIASOUP_VERSION=3.12.16
COPY workers/mediasoup/ /opt/callplane/worker-build/
RUN bash /opt/callplane/worker-build/build.sh "$MEDIASOUP_VERSION" /opt/callplane/mediasoup-worker \
 && rm -rf /root/.npm
ENV MEDIASOUP_WORKER_BIN=/opt/callplane/mediasoup-worker

WORKDIR /app
COPY package.json package-lock.json ./
# the postinstall (patch-package) applies these during npm ci
COPY patches/ patches/
# The app runs TypeScript through tsx, a runtime dependency: no compile step, no dev dependencies.
RUN test "$(node -p "require('./package.json').dependencies.mediasoup")" = "$MEDIASOUP_VERSION" \
      || { echo "Dockerfile MEDIASOUP_VERSION ($MEDIASOUP_VERSION) differs from package.json" >&2; exit 1; } \
 && npm ci --omit=dev --no-audit --no-fund \
 && node -e "require('@trufflesuite/uws-js-unofficial/binaries/uws_' + process.platform + '_' + process.arch + '_' + process.versions.modules + '.node')" \
 && npm cache clean --force

COPY bin/ bin/
COPY config/ config/
COPY src/ src/
COPY scripts/ scripts/
COPY workers/ workers/

# Not root: PostgreSQL (embedded when DATABASE_URL is unset) refuses to run as root.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# http.host defaults to loopback, which a published port cannot reach inside a container. With
# this non-loopback bind the demo sign-in is off unless CALLPLANE_DEMO_ENABLED=true is passed.
ENV NODE_ENV=production \
    CALLPLANE_SKIP_APT=1 \
    CALLPLANE_DATA_DIR=/app/data \
    CALLPLANE_HTTP_HOST=0.0.0.0
VOLUME /app/data

# REST + WebSocket + /metrics; TURN; media (worker i listens on port_base + i, UDP and TCP).
EXPOSE 8080/tcp 3478/udp 40000-40015/udp 40000-40015/tcp
CMD ["node", "bin/callplane.js", "serve"]
