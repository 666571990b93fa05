#!/bin/sh
# Prints the container image's /etc/mailroom/mailroom.toml: the binary's own defaults
# (`mailroom config show`) with the store in /data and every listener this build
# knows on all interfaces and its standard port. Written at image build time, so the
# file names exactly the keys the binary accepts. Run by the Dockerfile.
set -eu
mailroom=${MAILROOM:-mailroom}
cd /tmp # never pick up a ./mailroom.toml
shown=$(env -i PATH="$PATH" "$mailroom" config show)
has() { printf '%s\n' "$shown" | grep -qx "\[$1\]"; }

set -- MAILROOM_DATA_DIR=/data
has imap        && set -- "$@" MAILROOM_IMAP__LISTEN=0.0.0.0:143
has imaps       && set -- "$@" MAILROOM_IMAPS__LISTEN=0.0.0.0:993
has smtp        && set -- "$@" MAILROOM_SMTP__LISTEN=0.0.0.0:25
has submission  && set -- "$@" MAILROOM_SUBMISSION__LISTEN=0.0.0.0:587
has submissions && set -- "$@" MAILROOM_SUBMISSIONS__LISTEN=0.0.0.0:465
has http        && set -- "$@" MAILROOM_HTTP__LISTEN=0.0.0.0:8025

cat <<'HEAD'
# mailroom's defaults inside the container image (generated at build time by
# `mailroom config show`): every listener on all interfaces and its standard port,
# the store and the generated TLS certificate in /data.
#
# Replace this file by mounting your own at /etc/mailroom/mailroom.toml (start from
# deploy/mailroom.toml: it documents every key), or override single keys with
# MAILROOM_* environment variables (`__` between levels), which win over the file:
#   MAILROOM_HOSTNAME=mail.example.org
#   MAILROOM_BOOTSTRAP__USER=alice@example.org  MAILROOM_BOOTSTRAP__PASSWORD=...
#   MAILROOM_HTTP__ADMIN_TOKEN=...

HEAD
env -i PATH="$PATH" "$@" "$mailroom" config show
