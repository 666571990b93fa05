# mailroom as one container: SMTP in (25, 587, 465), IMAP out (143, 993), HTTP API
# and probes (8025), one SQLite store and the generated TLS certificate in /data.
#
#   docker build -t mailroom .
#   docker run -d --name mailroom -p 25:25 -p 143:143 -p 993:993 -p 587:587 \
#     -p 465:465 -p 127.0.0.1:8025:8025 -v mailroom-data:/data \
#     -e MAILROOM_HOSTNAME=mail.example.org \
#     -e MAILROOM_BOOTSTRAP__USER=alice@example.org -e MAILROOM_BOOTSTRAP__PASSWORD=... \
#     mailroom
#
# Configuration: /etc/mailroom/mailroom.toml holds the container's defaults (every
# listener on all interfaces, standard ports, data in /data); mount your own file
# there (start from deploy/mailroom.toml) and/or set MAILROOM_* variables, which win
# over the file. Podman builds it too: `podman build --format docker .` (the docker
# format keeps the HEALTHCHECK).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- 1. The dependency skeleton: manifests, the lock file, and a stub for each target
# root cargo needs to load the workspace (src/lib.rs, src/main.rs, src/bin/*.rs,
# build.rs, and paths a manifest names), with a fixed timestamp, so the next stage's
# dependency layer is rebuilt only when a manifest or Cargo.lock changes: not when
# source code changes, nor when a module or a test file is added.
FROM ${RUST_IMAGE} AS skeleton
WORKDIR /src
COPY . .
RUN set -eu; mkdir /skeleton; \
    find . -path ./target -prune -o -type f \
      \( -name Cargo.toml -o -name Cargo.lock -o -name 'rust-toolchain*' -o -path './.cargo/config*' \) \
      -exec cp --parents {} /skeleton/ \; ; \
    { find . -path ./target -prune -o -type f \( -path '*/src/lib.rs' -o -path '*/src/main.rs' \
        -o -path '*/src/bin/*.rs' -o -name build.rs \) -print; \
      find . -path ./target -prune -o -type f -name Cargo.toml -print | while read -r m; do \
        sed -n 's/^path = "\(.*\.rs\)"$/\1/p' "$m" | sed "s|^|$(dirname "$m")/|"; \
      done; } | sort -u | while read -r f; do \
      mkdir -p "/skeleton/$(dirname "$f")"; echo 'fn main() {}' > "/skeleton/$f"; \
    done; \
    find /skeleton -exec touch -h -d @0 {} +

# --- 2. Build: dependencies first (cached), then the real sources.
FROM ${RUST_IMAGE} AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked -p mailroom
COPY . .
# The stubs above were compiled after the real files were last modified: touch the
# real ones so cargo rebuilds every workspace crate instead of keeping the stubs.
RUN set -eu; \
    find . -path ./target -prune -o -type f -name '*.rs' -exec touch {} +; \
    cargo build --release --locked -p mailroom; \
    install -D -m 0755 target/release/mailroom /out/usr/local/bin/mailroom; \
    /out/usr/local/bin/mailroom --version | grep -q mailroom
# The container's defaults, written by the binary itself so the file holds exactly
# the keys this build knows: every listener present on all interfaces and on its
# standard port, the store in /data. The binary loses its line tables (78 -> ~20 MB);
# symbols stay, so a backtrace still names the functions.
COPY deploy/container/ /src/deploy/container/
RUN set -eu; strip --strip-debug /out/usr/local/bin/mailroom; mkdir -p /out/etc/mailroom; \
    MAILROOM=/out/usr/local/bin/mailroom sh deploy/container/defaults.sh > /out/etc/mailroom/mailroom.toml; \
    install -m 0755 deploy/container/healthcheck.sh /out/usr/local/bin/mailroom-healthcheck; \
    cd /tmp && /out/usr/local/bin/mailroom --config /out/etc/mailroom/mailroom.toml config show > /dev/null

# --- 3. The one privilege: bind ports below 1024 as an unprivileged user (podman,
# unlike Docker, leaves net.ipv4.ip_unprivileged_port_start at 1024). A stage of its
# own so the apt layer stays cached; COPY keeps the file capability.
FROM ${RUST_IMAGE} AS caps
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /out/
RUN setcap cap_net_bind_service=+ep /out/usr/local/bin/mailroom \
 && getcap /out/usr/local/bin/mailroom | grep -q cap_net_bind_service

# --- 4. Runtime: Debian slim, CA certificates (outbound TLS), one unprivileged user.
FROM ${RUNTIME_IMAGE}
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 mailroom; \
    useradd --system --uid 10001 --gid mailroom --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin mailroom; \
    mkdir -p /data; chown mailroom:mailroom /data; chmod 0750 /data
COPY --from=caps /out/ /
# Extra CA certificates of the build machine (a proxy's, say) are not carried over:
# the runtime image trusts Debian's list only.
USER mailroom:mailroom
# Management commands (`docker exec mailroom mailroom user list`) find the
# configuration as ./mailroom.toml here, and with it the store in /data.
WORKDIR /etc/mailroom
VOLUME ["/data"]
# 25 SMTP (MX), 587 submission, 465 submissions (implicit TLS), 143 IMAP, 993 IMAPS,
# 8025 HTTP (API, /healthz, /readyz, /metrics); LMTP is off unless configured.
EXPOSE 25 143 465 587 993 8025
# Log filter (tracing's EnvFilter syntax); logs go to standard error.
ENV RUST_LOG=info
# The probe uses bash's /dev/tcp (no curl in the image); MAILROOM_HEALTHCHECK_URL
# overrides the address when [http] listen is not on port 8025.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/mailroom-healthcheck"]
# mailroom handles SIGTERM itself (drain, exit 0) and starts no child processes, so
# it runs well as PID 1 and equally under `--init`. With --cap-drop=ALL, add back
# NET_BIND_SERVICE (the binary carries it as a file capability for ports < 1024).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mailroom", "--config", "/etc/mailroom/mailroom.toml"]
CMD ["serve"]
