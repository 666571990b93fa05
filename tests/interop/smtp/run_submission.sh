#!/usr/bin/env bash
# Starts the `mx` example with submission (STARTTLS) and submissions (implicit TLS) on
# a fresh store, runs the smtplib, scramp, swaks and msmtp submission checks, stops it.
# See README.md.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
DATA="$(mktemp -d)"
SMTP_PORT="${SMTP_PORT:-2525}"
SUB_PORT="${SUB_PORT:-2587}"
SUBS_PORT="${SUBS_PORT:-2465}"
cleanup() {
    if [ -n "${PID:-}" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$DATA"
}
trap cleanup EXIT
(cd "$ROOT" && cargo build -q -p mailroom-smtp --example mx)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
MX_DATA="$DATA" MX_LISTEN="127.0.0.1:$SMTP_PORT" MX_SUBMISSION="127.0.0.1:$SUB_PORT" \
    MX_SUBMISSIONS="127.0.0.1:$SUBS_PORT" "$TARGET/debug/examples/mx" >"$DATA/ready" 2>"$DATA/server.log" &
PID=$!
for _ in $(seq 1 100); do
    grep -q '^ready' "$DATA/ready" 2>/dev/null && break
    sleep 0.1
done
CERT="$DATA/tls/cert.pem"
status=0
python3 "$HERE/submission_smtplib.py" --port "$SUB_PORT" --ssl-port "$SUBS_PORT" --cafile "$CERT" || status=1
python3 "$HERE/scram_scramp.py" --port "$SUB_PORT" --cafile "$CERT" || status=1
"$HERE/swaks_submission.sh" "127.0.0.1:$SUB_PORT" "127.0.0.1:$SUBS_PORT" || status=1
"$HERE/msmtp_submit.sh" 127.0.0.1 "$SUB_PORT" "$CERT" || status=1
if [ "$status" -ne 0 ]; then
    echo "--- server log ---"
    cat "$DATA/server.log"
fi
exit "$status"
