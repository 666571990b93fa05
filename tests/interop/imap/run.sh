#!/bin/sh
# Builds the throwaway IMAP server (crates/imap/examples/serve.rs), starts it on a
# free local port, runs both Python suites against it and stops it again.
# Then starts a second one with TLS (STARTTLS + implicit TLS, plaintext passwords
# refused) and runs the TLS checks: Python ssl/imaplib/scramp and openssl s_client.
# Needs: cargo, python3, `pip install imapclient scramp`, openssl.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
port=${IMAP_PORT:-11143}
cd "$root"
cargo build -q -p mailroom-imap --example serve
target=${CARGO_TARGET_DIR:-$root/target}
log=$(mktemp)
"$target/debug/examples/serve" "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
tls_port=${IMAP_TLS_PLAIN_PORT:-11144}
imaps_port=${IMAPS_PORT:-11994}
tls_log=$(mktemp)
IMAP_NO_PLAINTEXT=1 "$target/debug/examples/serve" "127.0.0.1:$tls_port" "127.0.0.1:$imaps_port" >"$tls_log" 2>&1 &
tls_pid=$!
trap 'kill $pid $tls_pid 2>/dev/null || true; rm -f "$log" "$tls_log"' EXIT
for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    sleep 0.1
done
export IMAP_HOST=127.0.0.1 IMAP_PORT=$port
python3 "$here/imaplib_suite.py"
python3 "$here/imapclient_suite.py"
python3 "$here/imapclient_qresync.py"
if command -v mbsync >/dev/null 2>&1; then
    python3 "$here/mbsync_sync.py" 300
else
    echo "mbsync not installed (apt-get install isync): two-way sync skipped"
fi
for _ in $(seq 1 100); do
    grep -q "^listening on" "$tls_log" && break
    sleep 0.1
done
cert=$(sed -n 's/^certificate //p' "$tls_log")
IMAP_HOST=localhost IMAP_PORT=$tls_port IMAPS_PORT=$imaps_port IMAP_CAFILE=$cert \
    python3 "$here/tls_suite.py"
if command -v openssl >/dev/null 2>&1; then
    IMAP_HOST=127.0.0.1 sh "$here/openssl_starttls.sh" "$cert" "$tls_port" "$imaps_port"
else
    echo "openssl not installed: s_client checks skipped"
fi
