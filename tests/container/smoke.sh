#!/usr/bin/env bash
# The container, tested for real with podman (no Docker engine runs here):
#
#   1. install podman, runc, debootstrap, podman-compose, python3 when missing, and
#      point podman at a containers.conf that works on this machine
#   2. build the base images the Dockerfile names when they are missing
#      (tests/container/base-images.sh), then the Dockerfile itself
#   3. run it with a volume and ports on 127.0.0.1: SMTP-deliver a message, read it
#      over IMAPS and over STARTTLS on 143, greet on submission (587) and
#      submissions (465), `podman healthcheck run`, `podman stop` (exit 0 within
#      10 s), start again on the same volume and find the message still there
#   4. the same SMTP -> IMAPS check through docker-compose.yml with podman-compose
#
# Every check must pass. Prints the time of each phase, the image size, the cold
# start time to healthy and the memory at idle, then one line
# "smoke: N passed, N failed". .ci/run calls it as its last step.
#
# Usage: tests/container/smoke.sh          (as root; from any directory)
# Environment: SMOKE_FROM=HEAD builds that commit instead of the work tree,
#              SMOKE_SKIP_BUILD=1 tests SMOKE_IMAGE as it is,
#              SMOKE_PORT_BASE (default 40000: host ports 40025, 40143, 40993, ...),
#              SMOKE_IMAGE (default localhost/mailroom:smoke), SMOKE_KEEP=1 keeps
#              containers and volumes for a look afterwards.
set -euo pipefail
{ # the whole script is read before it runs, so editing it meanwhile is harmless
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

image=${SMOKE_IMAGE:-localhost/mailroom:smoke}
base=${SMOKE_PORT_BASE:-40000}
p_smtp=$((base + 25)) p_imap=$((base + 143)) p_imaps=$((base + 993))
p_sub=$((base + 587)) p_subs=$((base + 465)) p_http=$((base + 8025))
name=mailroom-smoke-$$
volume=mailroom-smoke-$$
user=alice@smoke.test
password=smoke-$RANDOM-$RANDOM
token=token-$RANDOM-$RANDOM
mc() { python3 "$here/mailcheck.py" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-smoke.XXXXXX")
pass=0 fail=0
results=() numbers=()
ok() { pass=$((pass + 1)); results+=("PASS  $*"); log "PASS  $*"; }
bad() { fail=$((fail + 1)); results+=("FAIL  $*"); log "FAIL  $*"; }
number() { numbers+=("$(printf '%-34s %s' "$1" "$2")"); log "$1: $2"; }
out_shown=1
check() { # check "description" command...: PASS or FAIL by exit status
  local what=$1
  shift
  # (podman's complaints about the missing systemd, for healthcheck timers, are noise)
  if "$@" 2>&1 | grep -v 'systemd' >"$work/out"; [ "${PIPESTATUS[0]}" = 0 ]; then
    ok "$what${out_shown:+: $(tail -1 "$work/out")}"
  else
    bad "$what: $(tail -3 "$work/out" | tr '\n' ' ')"
  fi
}

compose_project=mailroom-smoke-$$
compose_dir=""
cleanup() {
  local rc=$?
  set +e
  if [ "${SMOKE_KEEP:-0}" != 1 ]; then
    if [ -n "$compose_dir" ]; then
      (cd "$compose_dir" && podman-compose -p "$compose_project" down -v >/dev/null 2>&1)
      podman volume rm -f "${compose_project}_mailroom-data" >/dev/null 2>&1
    fi
    podman rm -f -t 0 "$name" >/dev/null 2>&1
    podman volume rm -f "$volume" >/dev/null 2>&1
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Dumps the container's log on failure, so CI shows why.
show_logs() { log "last lines of $1's log:"; podman logs --tail 40 "$1" 2>&1 | sed 's/^/    /' >&2 || true; }

# --- 1. host set-up ---------------------------------------------------------------
t=$(now)
install_host_packages
setup_podman_conf "$work/podman"
number "phase: host packages" "$(since "$t") s"
podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}' >&2

# --- 2. images -----------------------------------------------------------------------
t=$(now)
"$here/base-images.sh" >"$work/base.out"
while read -r _ phase secs; do number "phase: $phase" "$secs s"; done <"$work/base.out"
number "phase: base images (total)" "$(since "$t") s"

t=$(now)
if [ "${SMOKE_SKIP_BUILD:-0}" = 1 ]; then
  log "SMOKE_SKIP_BUILD=1: testing the existing $image"
else
# Build from a snapshot of the work tree (tracked and untracked files, as git sees
# them): podman reads the context at each COPY, and a tree edited during a long build
# would give a skeleton and sources that disagree.
context="$work/context"
mkdir -p "$context"
if [ "${SMOKE_FROM:-}" != "" ]; then
  # A commit instead of the work tree (SMOKE_FROM=HEAD): what CI's clone holds.
  git -C "$repo" archive --format=tar "$SMOKE_FROM" | tar -C "$context" -xf -
elif git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$repo" && git ls-files -z -co --exclude-standard | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf -) | tar -C "$context" -xf -
else
  tar -C "$repo" --exclude=./target --exclude=./.git --exclude=./data -cf - . | tar -C "$context" -xf -
fi
log "podman build (context: snapshot of $repo)"
if ! podman build --pull=never --format docker -t "$image" "$context" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  bad "podman build of the Dockerfile"
  echo "smoke: $pass passed, $fail failed"
  exit 1
fi
number "phase: image build" "$(since "$t") s"
ok "podman build --pull=never --format docker of the Dockerfile"
fi
size=$(podman image inspect --format '{{.Size}}' "$image")
number "image size" "$((size / 1000 / 1000)) MB ($size bytes)"
check "image runs as a non-root user" bash -c "[ \"\$(podman image inspect --format '{{.Config.User}}' '$image')\" = mailroom:mailroom ] && echo mailroom:mailroom"
check "image has a HEALTHCHECK" bash -c "podman image inspect --format '{{json .Config.Healthcheck}}' '$image' | grep -o 'mailroom-healthcheck'"

# The image's own configuration, to compare with deploy/mailroom.toml below.
podman run --rm "$image" config show >"$work/config" 2>&1 || true
# deploy/mailroom.toml must name only keys the binary knows: uncomment every key.
sed -E 's/^#([a-z_]+ = )/\1/' "$repo/deploy/mailroom.toml" >"$work/all-keys.toml"
check "deploy/mailroom.toml with every key uncommented is accepted by the image" \
  podman run --rm -v "$work/all-keys.toml:/etc/mailroom/mailroom.toml:ro,z" "$image" config show

# ... and name every key the binary shows (keys unset by default, such as tls.cert,
# are not shown and not checked). A missing one is a warning, not a failure.
keys_of() { awk '/^\[[a-z_]+\]$/ { sec = substr($0, 2, length($0) - 2) ".";  next }
                 /^#?[a-z_]+ = / { sub(/^#/, ""); print sec $1 }' "$1" | sort -u; }
missing_keys=$(comm -23 <(keys_of "$work/config") <(keys_of "$repo/deploy/mailroom.toml") | tr '\n' ' ')
if [ -n "$missing_keys" ]; then
  log "WARN  deploy/mailroom.toml does not document: $missing_keys"
  results+=("WARN  deploy/mailroom.toml does not document: $missing_keys")
fi

# --- 3. one container, a volume, a restart ---------------------------------------
run_container() { # extra podman-run arguments...
  podman run -d --name "$name" \
    -p "127.0.0.1:$p_smtp:25" -p "127.0.0.1:$p_imap:143" -p "127.0.0.1:$p_imaps:993" \
    -p "127.0.0.1:$p_sub:587" -p "127.0.0.1:$p_subs:465" -p "127.0.0.1:$p_http:8025" \
    -v "$volume:/data" \
    -e MAILROOM_HOSTNAME=mail.smoke.test \
    -e MAILROOM_BOOTSTRAP__USER="$user" -e MAILROOM_BOOTSTRAP__PASSWORD="$password" \
    -e MAILROOM_HTTP__ADMIN_TOKEN="$token" \
    "$@" "$image" >/dev/null
}

# Waits until the container's HEALTHCHECK (GET /readyz: store and every listener up)
# passes. Sets ready_secs.
wait_ready() {
  local t0=$1 deadline=$((SECONDS + 90))
  while [ $SECONDS -lt $deadline ]; do
    if [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
      show_logs "$name"
      return 1
    fi
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      ready_secs=$(since "$t0")
      return 0
    fi
    sleep 0.1
  done
  show_logs "$name"
  return 1
}

podman volume create "$volume" >/dev/null
t=$(now)
run_container
if wait_ready "$t"; then
  number "cold start to ready (healthcheck)" "$ready_secs s"
  ok "first start on an empty volume is ready (healthcheck) in $ready_secs s"
else
  bad "first start: not ready within 90 s"
fi
check "podman healthcheck run (GET /readyz inside the container)" podman healthcheck run "$name"
check "GET /readyz from the host" mc http "http://127.0.0.1:$p_http/readyz"
check "GET /healthz from the host" mc http "http://127.0.0.1:$p_http/healthz"

check "SMTP greets on 25" mc banner 127.0.0.1 "$p_smtp" --timeout 30
check "management command in the running container (mailroom user list)" \
  bash -c "podman exec '$name' mailroom user list | grep -F '$user'"
subject="smoke $$ $RANDOM first"
check "SMTP delivery on 25 to the bootstrap account" mc send 127.0.0.1 "$p_smtp" bob@example.net "$user" "$subject"

check "IMAPS on 993 speaks TLS" mc tls 127.0.0.1 "$p_imaps"
check "self-signed certificate generated into the volume" podman exec "$name" sh -c 'ls /data/tls/ | tr "\n" " " | grep .'
check "submission greets on 587" mc banner 127.0.0.1 "$p_sub" --timeout 10
check "submissions on 465 speaks TLS" mc tls 127.0.0.1 "$p_subs"
check "IMAP read (imaps) of the delivered message" mc read imaps 127.0.0.1 "$p_imaps" "$user" "$password" "$subject"
check "IMAP STARTTLS on 143" mc read starttls 127.0.0.1 "$p_imap" "$user" "$password" "$subject"

# podman stop sends SIGTERM; mailroom must drain and exit 0 well within 10 s
# (podman would SIGKILL after 10 s, giving 137).
t=$(now)
podman stop -t 10 "$name" >/dev/null
stop_secs=$(since "$t")
code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
number "podman stop" "$stop_secs s, exit $code"
if [ "$code" = 0 ] && awk -v s="$stop_secs" 'BEGIN { exit !(s < 10) }'; then
  ok "podman stop: exit 0 in $stop_secs s"
else
  bad "podman stop: exit $code in $stop_secs s (want 0 within 10 s)"
  show_logs "$name"
fi
if podman logs "$name" 2>&1 | grep -q "panicked"; then bad "a panic in the log"; show_logs "$name"; fi

# Start again on the same volume: the message is still there.
t=$(now)
podman start "$name" >/dev/null
if wait_ready "$t"; then
  number "restart to ready (healthcheck)" "$ready_secs s"
  ok "restart on the same volume is ready in $ready_secs s"
  check "IMAP read (imaps) after the restart: the message survived" mc read imaps 127.0.0.1 "$p_imaps" "$user" "$password" "$subject"
  subject2="smoke $$ $RANDOM second"
  check "SMTP delivery after the restart" mc send 127.0.0.1 "$p_smtp" bob@example.net "$user" "$subject2"
  check "IMAP read (imaps) of the second message" mc read imaps 127.0.0.1 "$p_imaps" "$user" "$password" "$subject2"
  sleep 5
  mem=$(podman stats --no-stream --format '{{.MemUsage}}' "$name" 2>/dev/null || echo "unavailable")
  number "memory at idle (podman stats)" "$mem"
else
  bad "restart on the same volume: not ready within 90 s"
fi
podman stop -t 10 "$name" >/dev/null 2>&1 || true
podman rm -f "$name" >/dev/null 2>&1 || true
podman volume rm -f "$volume" >/dev/null 2>&1 || true

# --- 4. docker-compose.yml with podman-compose -----------------------------------
t=$(now)
compose_dir="$work/compose"
mkdir -p "$compose_dir"
cp "$repo/docker-compose.yml" "$compose_dir/"
busy=""
for p in 25 587 465 143 993 8025; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=" $p"; fi
done
cport() { echo "$1"; }
if [ -n "$busy" ]; then
  # Something on this host already has some of the compose file's ports: move all
  # of them by SMOKE_PORT_BASE + 1000 in the copy under test.
  log "host ports in use:$busy; moving the compose file's host ports by $((base + 1000))"
  sed -i -E "s/\"127\.0\.0\.1:([0-9]+):([0-9]+)\"/\"127.0.0.1:\$((\1 + $base + 1000)):\2\"/" "$compose_dir/docker-compose.yml"
  # shell arithmetic in the file above is expanded here, once
  python3 - "$compose_dir/docker-compose.yml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"\$\(\((\d+) \+ (\d+)\)\)", lambda m: str(int(m[1]) + int(m[2])), s)
open(p, "w").write(s)
PY
  cport() { echo $(($1 + base + 1000)); }
fi
# The image just built stands for `build: .`; the bootstrap account of this test.
cat >"$compose_dir/docker-compose.override.yml" <<YML
services:
  mailroom:
    image: $image
YML
export MAILROOM_HOSTNAME=mail.smoke.test MAILROOM_BOOTSTRAP__USER=$user \
  MAILROOM_BOOTSTRAP__PASSWORD=$password MAILROOM_HTTP__ADMIN_TOKEN=$token
if (cd "$compose_dir" && podman-compose -p "$compose_project" -f docker-compose.yml \
  -f docker-compose.override.yml up -d --no-build) >"$work/compose.log" 2>&1; then
  cname=$(podman ps --filter "label=io.podman.compose.project=$compose_project" --format '{{.Names}}' | head -1)
  [ -n "$cname" ] || cname=$(podman ps --format '{{.Names}}' | grep "^${compose_project}" | head -1)
  if [ -n "$cname" ] && mc banner 127.0.0.1 "$(cport 25)" --timeout 60 >/dev/null && mc banner 127.0.0.1 "$(cport 143)" --timeout 30 >/dev/null; then
    number "phase: compose up to greeting" "$(since "$t") s"
    ok "podman-compose up: container $cname greets on 25 and 143"
    subject3="smoke $$ $RANDOM compose"
    check "compose: SMTP delivery" mc send 127.0.0.1 "$(cport 25)" bob@example.net "$user" "$subject3"
    check "compose: IMAP read (imaps)" mc read imaps 127.0.0.1 "$(cport 993)" "$user" "$password" "$subject3"
    hdeadline=$((SECONDS + 60))
    until podman healthcheck run "$cname" >/dev/null 2>&1 || [ $SECONDS -ge $hdeadline ]; do sleep 0.5; done
    check "compose: healthcheck from the compose file" podman healthcheck run "$cname"
    t=$(now)
    (cd "$compose_dir" && podman-compose -p "$compose_project" -f docker-compose.yml \
      -f docker-compose.override.yml stop) >>"$work/compose.log" 2>&1 || true
    code=$(podman inspect -f '{{.State.ExitCode}}' "$cname" 2>/dev/null || echo '?')
    if [ "$code" = 0 ]; then ok "compose stop: exit 0 in $(since "$t") s"; else bad "compose stop: exit $code"; show_logs "$cname"; fi
  else
    bad "podman-compose up: no greeting on 25/143"
    cat "$work/compose.log" >&2
    [ -n "$cname" ] && show_logs "$cname"
  fi
else
  bad "podman-compose up failed"
  tail -30 "$work/compose.log" >&2
fi

# --- report ---------------------------------------------------------------------
echo
echo "== container smoke test ($image)"
printf '%s\n' "${numbers[@]}"
echo
printf '%s\n' "${results[@]}"
echo
echo "smoke: $pass passed, $fail failed"
[ "$fail" = 0 ]
exit
}
