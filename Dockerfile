# syntax=docker/dockerfile:1
# printfarm and its Mosquitto plugin, built from this repository (needs a Docker engine with
# BuildKit; docs/deployment.md). Two images:
#   docker build -t printfarm .                                  the server (the last stage)
#   docker build --target mosquitto -t printfarm-mosquitto .     Mosquitto with the plugin
# docker-compose.yml builds both.

# The toolchain CI uses (Cargo.toml's rust-version, 1.89, is the oldest that builds). Bookworm, so that the binary
# and the plugin link against the same glibc and Mosquitto 2.0.11 as the runtime images.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
# The plugin's bindings are generated from Mosquitto's headers with bindgen (libclang).
RUN apt-get update \
    && apt-get install -y --no-install-recommends mosquitto-dev libmosquitto-dev libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target directories are cache mounts: a rebuild after a source change
# recompiles the workspace, not the dependencies. Mounts vanish after the step, hence the copy.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p printfarm -p printfarm-mosquitto \
    && mkdir -p /out \
    && cp target/release/printfarm target/release/libprintfarm_mosquitto.so /out/

# Debian's Mosquitto locked down with the plugin; the configuration is mounted at run time
# (deploy/mosquitto.conf expects the plugin at this path).
FROM debian:bookworm-slim AS mosquitto
RUN apt-get update \
    && apt-get install -y --no-install-recommends mosquitto \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/libprintfarm_mosquitto.so /usr/lib/printfarm/libprintfarm_mosquitto.so
USER mosquitto
CMD ["mosquitto", "-c", "/etc/printfarm/mosquitto.conf"]

# The server. ca-certificates: the system's CAs, which PostgreSQL TLS (sslmode=verify-*, without
# sslrootcert) and mqtts:// (without PF_MQTT_CA_FILE) trust; webhooks use roots built in.
FROM debian:bookworm-slim AS printfarm
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin printfarm \
    && install -d -o printfarm -g printfarm -m 0700 /var/lib/printfarm
COPY --from=build /out/printfarm /usr/local/bin/printfarm
USER printfarm
# An empty directory: the server also reads a .env from its working directory. Configure the
# container with environment variables instead.
WORKDIR /var/lib/printfarm
ENV PF_LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
# SIGTERM drains (PF_SHUTDOWN_TIMEOUT_SECS); give `docker stop` more than that (-t 40).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/printfarm"]
CMD ["serve"]
