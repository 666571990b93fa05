#!/usr/bin/env bash
# Validates mailroom's OpenAPI document with openapi-spec-validator (PyPI) and checks
# that every documented operation is routed by the running server. See README.md.
set -euo pipefail

BASE=${BASE:-http://127.0.0.1:8025}
TOKEN=${TOKEN:?set TOKEN to the admin token (logged by mailroom at start-up)}
here=$(cd "$(dirname "$0")" && pwd)
venv=${VENV:-$here/.venv}

if ! [ -x "$venv/bin/openapi-spec-validator" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'openapi-spec-validator>=0.7'
fi

doc=$(mktemp --suffix .json)
trap 'rm -f "$doc"' EXIT
curl -sS -f -o "$doc" "$BASE/api/v1/openapi.json"
"$venv/bin/openapi-spec-validator" "$doc"
BASE=$BASE TOKEN=$TOKEN "$venv/bin/python" "$here/check_routes.py" "$doc"
echo "PASS"
