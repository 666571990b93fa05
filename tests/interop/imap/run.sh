#!/bin/sh
# Builds the throwaway IMAP server (crates/imap/examples/serve.rs), starts it on a
# free local port, runs both Python suites against it and stops it again.
# Needs: cargo, python3, and `pip install imapclient` for the second suite.
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
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    sleep 0.1
done
export IMAP_HOST=127.0.0.1 IMAP_PORT=$port
python3 "$here/imaplib_suite.py"
python3 "$here/imapclient_suite.py"
if command -v mbsync >/dev/null 2>&1; then
    python3 "$here/mbsync_sync.py" 300
else
    echo "mbsync not installed (apt-get install isync): two-way sync skipped"
fi
