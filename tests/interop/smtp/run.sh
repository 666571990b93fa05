#!/usr/bin/env bash
# Starts an SMTP receiver on a fresh store, runs the smtplib and swaks checks against
# it, and stops it. See README.md.
#
#   tests/interop/smtp/run.sh             # the mailroom-smtp `mx` example server
#   SERVER_BIN=target/debug/mailroom tests/interop/smtp/run.sh   # the whole binary
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
DATA="$(mktemp -d)"
SMTP_PORT="${SMTP_PORT:-2525}"
LMTP_PORT="${LMTP_PORT:-2424}"
IMAP_PORT="${IMAP_PORT:-1143}"
IMAP_ARGS=()
cleanup() {
    if [ -n "${PID:-}" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$DATA"
}
trap cleanup EXIT

command -v swaks >/dev/null || { echo "swaks is missing: apt-get install swaks"; exit 1; }

if [ -n "${SERVER_BIN:-}" ]; then
    export MAILROOM_DATA_DIR="$DATA" MAILROOM_HOSTNAME=mx.example.org
    export MAILROOM_SMTP__LISTEN="127.0.0.1:$SMTP_PORT" MAILROOM_LMTP__LISTEN="127.0.0.1:$LMTP_PORT"
    export MAILROOM_IMAP__LISTEN="127.0.0.1:$IMAP_PORT"
    "$SERVER_BIN" domain add example.org
    "$SERVER_BIN" domain add catchall.test
    echo alice-pw | "$SERVER_BIN" user add alice@example.org --password-stdin
    echo bob-pw | "$SERVER_BIN" user add bob@example.org --password-stdin
    "$SERVER_BIN" alias add info@example.org alice@example.org
    "$SERVER_BIN" alias add @catchall.test bob@example.org
    "$SERVER_BIN" serve 2>"$DATA/server.log" &
    PID=$!
    IMAP_ARGS=(--imap-port "$IMAP_PORT")
else
    (cd "$ROOT" && cargo build -q -p mailroom-smtp --example mx)
    TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
    MX_DATA="$DATA" MX_LISTEN="127.0.0.1:$SMTP_PORT" MX_LMTP="127.0.0.1:$LMTP_PORT" \
        "$TARGET/debug/examples/mx" >"$DATA/ready" 2>"$DATA/server.log" &
    PID=$!
fi

for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$SMTP_PORT") 2>/dev/null && break
    sleep 0.1
done

status=0
python3 "$HERE/smtplib_send.py" --port "$SMTP_PORT" "${IMAP_ARGS[@]}" || status=1
"$HERE/swaks.sh" "127.0.0.1:$SMTP_PORT" "127.0.0.1:$LMTP_PORT" || status=1
if [ "$status" -ne 0 ]; then
    echo "--- server log ---"
    cat "$DATA/server.log"
fi
exit "$status"
