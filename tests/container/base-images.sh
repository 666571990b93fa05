#!/usr/bin/env bash
# Builds the two base images the Dockerfile names, from what this machine has, when
# they are not in podman's local storage yet (no registry is reachable here):
#
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm from the machine's
#                          apt mirror, trimmed like the official slim image, imported
#   rust:1-bookworm        that, plus gcc/g++/libc6-dev/make/pkg-config/ca-certificates,
#                          the machine's extra CA certificates, and the machine's own
#                          Rust toolchain (the one `rustc` runs) under /usr/local
#
# Usage: tests/container/base-images.sh [--force]   (needs root and podman)
# Prints "phase <name> <seconds>" lines on stdout for the caller to report.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
[ -n "${CONTAINERS_CONF:-}" ] || setup_podman_conf "${TMPDIR:-/tmp}/mailroom-podman"

force=0
[ "${1:-}" = --force ] && force=1

work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ $force = 1 ] || ! podman image exists debian:bookworm-slim; then
  mirror=$(apt_mirror)
  log "debootstrap --variant=minbase bookworm from $mirror"
  t=$(now)
  root="$work/rootfs"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
      tail -30 "$work/debootstrap.log" >&2
      exit 1
    }
  echo "phase debootstrap $(since "$t")"
  t=$(now)
  # What the official slim image does: no documentation, manuals or translations
  # now or in later installs, no apt lists or caches in the image.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/{man,groff,info,locale,lintian,linda}/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  # The snapshot mirrors used here have expired Release files.
  printf 'Acquire::Check-Valid-Until "false";\n' >"$root/etc/apt/apt.conf.d/99no-check-valid-until"
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$root/etc/apt/sources.list"
  : >"$root/etc/hostname"
  : >"$root/etc/resolv.conf"
  tar --numeric-owner -C "$root" -c . |
    podman import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - debian:bookworm-slim >/dev/null
  rm -rf "$root"
  echo "phase import-debian $(since "$t")"
  force=1 # the Rust image sits on this one
fi

if [ $force = 1 ] || ! podman image exists rust:1-bookworm; then
  log "building rust:1-bookworm with $(rustc --version)"
  t=$(now)
  ctx="$work/rust"
  mkdir -p "$ctx/ca"
  sysroot=$(rust_sysroot)
  # Hard links where the file system allows (fast), else a copy; no documentation.
  cp -al "$sysroot/." "$ctx/toolchain/" 2>/dev/null || cp -a "$sysroot/." "$ctx/toolchain/"
  rm -rf "$ctx/toolchain/share/doc"
  # The machine's extra CA certificates (such as a proxy's) so cargo reaches crates.io
  # from inside a build exactly as it does on the host.
  for c in /usr/local/share/ca-certificates/*.crt; do [ -f "$c" ] && cp "$c" "$ctx/ca/"; done
  cat >"$ctx/Containerfile" <<'CF'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc g++ libc6-dev make pkg-config ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY toolchain/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
CF
  podman build --pull=never --network=host -t rust:1-bookworm -f "$ctx/Containerfile" "$ctx" >"$work/rust-build.log" 2>&1 || {
    tail -30 "$work/rust-build.log" >&2
    exit 1
  }
  echo "phase build-rust-image $(since "$t")"
fi
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'debian:bookworm-slim|rust:1-bookworm' >&2 || true
