#!/bin/bash
# The container's HEALTHCHECK: GET /readyz on the HTTP listener, healthy on 200.
# Uses bash's /dev/tcp so the image needs no curl. MAILROOM_HEALTHCHECK_URL (an
# http://HOST:PORT/PATH address) overrides the default http://127.0.0.1:8025/readyz.
set -u
url=${MAILROOM_HEALTHCHECK_URL:-http://127.0.0.1:8025/readyz}
rest=${url#http://}
hostport=${rest%%/*}
path=/${rest#*/}
[ "$rest" = "$hostport" ] && path=/readyz
host=${hostport%:*}
port=${hostport##*:}
[ "$host" = "$hostport" ] && port=80

probe() {
  exec 3<>"/dev/tcp/$host/$port" || { echo "unhealthy: nothing listens on $host:$port"; return 1; }
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&3
  local status body
  IFS= read -r status <&3 || status=""
  body=$(cat <&3)
  exec 3<&-
  case "$status" in
    "HTTP/1."?" 200"*) echo "healthy: ${body##*$'\r\n\r\n'}"; return 0 ;;
    *) echo "unhealthy: ${status%$'\r'} ${body##*$'\r\n\r\n'}"; return 1 ;;
  esac
}
probe
