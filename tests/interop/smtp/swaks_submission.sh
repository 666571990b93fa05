#!/usr/bin/env bash
# Submission interop with swaks: --tls (STARTTLS) and --tls-on-connect (implicit TLS)
# with --auth PLAIN/LOGIN; sending as someone else and without AUTH are refused.
#   swaks_submission.sh HOST:SUBMISSION_PORT HOST:SUBMISSIONS_PORT
set -uo pipefail
SUB="${1:?host:port of submission}"
SUBS="${2:-}"
failures=0
expect() { # name, expected code pattern, swaks args...
    local name="$1" want="$2"; shift 2
    local out
    out="$(swaks --helo client.test "$@" 2>&1)"
    # swaks marks replies received over TLS with "<~" ("<~*" for an error reply).
    if grep -qE "^<~?\*? +$want" <<<"$out"; then
        echo "ok   $name"
    else
        echo "FAIL $name"; echo "$out" | tail -15; failures=$((failures + 1))
    fi
}
expect "STARTTLS + AUTH PLAIN, local recipient" "250 2.0.0 OK queued" \
    --server "$SUB" --tls --auth PLAIN --auth-user alice@example.org --auth-password alice-pw \
    --from alice@example.org --to bob@example.org --header "Subject: swaks plain"
expect "STARTTLS + AUTH LOGIN, remote recipient queued" "250 2.0.0 OK queued" \
    --server "$SUB" --tls --auth LOGIN --auth-user bob@example.org --auth-password bob-pw \
    --from bob@example.org --to someone@remote.example --header "From: bob@example.org"
expect "wrong password is 535" "535 5.7.8" \
    --server "$SUB" --tls --auth PLAIN --auth-user alice@example.org --auth-password nope \
    --from alice@example.org --to bob@example.org
expect "sending as bob is 550 5.7.1" "550 5.7.1" \
    --server "$SUB" --tls --auth PLAIN --auth-user alice@example.org --auth-password alice-pw \
    --from bob@example.org --to alice@example.org
expect "no AUTH: 530 5.7.0" "530 5.7.0" \
    --server "$SUB" --tls --from alice@example.org --to bob@example.org
if [ -n "$SUBS" ]; then
    expect "implicit TLS (--tls-on-connect) + AUTH" "250 2.0.0 OK queued" \
        --server "$SUBS" --tls-on-connect --auth PLAIN --auth-user alice@example.org \
        --auth-password alice-pw --from alice@example.org --to bob@example.org
fi
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
