# syntax=docker/dockerfile:1
# One image holds all three services; the command picks one: chat-gateway, chat-messages or
# chat-presence (docker-compose.yml and deploy/k8s do so).
#   docker build -t chat-suite:local .
# The build stage installs packages with scripts/deps.sh and builds with scripts/build.sh, the same
# script and package list as README and CI, so a green CI means these steps work.
ARG DEBIAN_IMAGE=debian:12-slim

# ---- build ---------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# Packages first, in their own layer: it stays cached while the sources change.
COPY scripts/deps.sh scripts/deps.sh
RUN CHAT_DEPS=build bash scripts/deps.sh \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# Release build (RelWithDebInfo) without the tests, binaries stripped of debug info.
RUN JOBS="$(nproc)" CMAKE_ARGS=-DCHAT_BUILD_TESTS=OFF bash scripts/build.sh release \
 && install -d /out/bin \
 && install -m 0755 build/release/bin/chat-gateway build/release/bin/chat-messages \
      build/release/bin/chat-presence /out/bin/ \
 && strip --strip-debug /out/bin/* \
 && install -m 0755 deploy/docker/chat-healthcheck /out/bin/chat-healthcheck

# ---- runtime -------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# Only the shared libraries the binaries link (tests/deploy/image_check.sh compares this list with
# the built binaries); apt brings their own dependencies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 \
      libpqxx-6.4 libhiredis0.14 libjwt0 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 chat \
 && useradd --system --uid 10001 --gid chat --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin chat
COPY --from=build /out/bin/ /usr/local/bin/
COPY services/gateway/web/ /usr/share/chat/web/
# Fail the build here, not at start-up, when a runtime library is missing.
RUN ! ldd /usr/local/bin/chat-gateway /usr/local/bin/chat-messages /usr/local/bin/chat-presence \
      | grep 'not found'
ENV LOG_LEVEL=info \
    WEB_ROOT=/usr/share/chat/web
USER 10001:10001
# gateway HTTP/WebSocket 8080 and gRPC 9090; messages gRPC 50051, metrics 9101; presence gRPC 50052,
# metrics 9102.
EXPOSE 8080 9090 50051 50052 9101 9102
# Gateway: /readyz; messages and presence: /healthz on their metrics port (deploy/docker/chat-healthcheck).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["chat-healthcheck"]
# SIGTERM drains (the gateway closes its clients with 1001 and exits within ~5 s).
STOPSIGNAL SIGTERM
CMD ["chat-gateway"]
