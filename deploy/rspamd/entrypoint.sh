#!/bin/sh
# Starts rspamd for mailroom: the controller's password from RSPAMD_PASSWORD (the
# value of mailroom's [spam] password), then rspamd in the foreground, dropping to
# Debian's _rspamd user.
set -eu
if [ -z "${RSPAMD_PASSWORD:-}" ]; then
  echo "rspamd: set RSPAMD_PASSWORD (and MAILROOM_SPAM__PASSWORD to the same value)" >&2
  exit 1
fi
case "$RSPAMD_PASSWORD" in
  *'"'*|*'\'*) echo "rspamd: RSPAMD_PASSWORD must not contain quotes or backslashes" >&2; exit 1 ;;
esac
# Learning and statistics: mailroom's [spam] controller_url points here
# (http://rspamd:11334); override.d wins over Debian's defaults (password "q1").
cat > /etc/rspamd/override.d/worker-controller.inc <<INC
bind_socket = "*:11334";
password = "$RSPAMD_PASSWORD";
INC
chown -R _rspamd:_rspamd /var/lib/rspamd
exec rspamd -f -u _rspamd -g _rspamd "$@"
