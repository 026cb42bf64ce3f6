# syntax=docker/dockerfile:1
# One image holds all three services; pick one with the command (chat-gateway, chat-messages,
# chat-presence). Build: docker build -t chat-suite:local .
ARG DEBIAN_IMAGE=debian:12-slim

# ---- build ---------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# The build part of scripts/deps.sh.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev \
      libpqxx-dev libhiredis-dev libboost-dev libjwt-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHAT_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" \
 && install -d /out/bin \
 && install -m 0755 build/bin/chat-gateway build/bin/chat-messages build/bin/chat-presence /out/bin/ \
 && strip --strip-debug /out/bin/*

# ---- runtime -------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 \
      libpqxx-6.4 libhiredis0.14 libjwt0 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 chat \
 && useradd --system --uid 10001 --gid chat --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin chat
COPY --from=build /out/bin/ /usr/local/bin/
COPY services/gateway/web/ /usr/share/chat/web/
# Fail the build here, not at start-up, when a runtime library is missing.
RUN ! ldd /usr/local/bin/chat-gateway /usr/local/bin/chat-messages /usr/local/bin/chat-presence | grep 'not found'
ENV LOG_LEVEL=info \
    WEB_ROOT=/usr/share/chat/web
USER 10001:10001
# gateway HTTP/WebSocket, gateway gRPC, messages gRPC, presence gRPC, messages and presence metrics
EXPOSE 8080 9090 50051 50052 9101 9102
STOPSIGNAL SIGTERM
CMD ["chat-gateway"]
