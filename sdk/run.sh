#!/usr/bin/env bash
# Generates a Python client (openapi-python-client) and TypeScript types (openapi-typescript,
# called through openapi-fetch) from the committed openapi/openapi.json into a temporary
# folder, fails on any generator warning about a JSON operation, type-checks the TypeScript
# scenario (tsc, strict) and runs both scenarios against a live server.
# Usage: sdk/run.sh POSTIER_BINARY
# Tools are pinned (sdk/python/requirements.txt, sdk/ts/package-lock.json) and cached in
# /var/tmp (POSTIER_SDK_CACHE); an empty cache works too, only slower.
set -euo pipefail
bin=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${POSTIER_SDK_CACHE:-/var/tmp}
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Tools, reinstalled only when their pins change.
venv=$cache/postier-sdk-venv
if ! cmp -s "$root/sdk/python/requirements.txt" "$venv/.requirements"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/sdk/python/requirements.txt"
  cp "$root/sdk/python/requirements.txt" "$venv/.requirements"
fi
node_cache=$cache/postier-sdk-node
if ! cmp -s "$root/sdk/ts/package-lock.json" "$node_cache/package-lock.json" || [ ! -d "$node_cache/node_modules" ]; then
  rm -rf "$node_cache"
  mkdir -p "$node_cache"
  cp "$root/sdk/ts/package.json" "$root/sdk/ts/package-lock.json" "$node_cache/"
  (cd "$node_cache" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

echo "--- python client (openapi-python-client)"
PATH="$venv/bin:$PATH" openapi-python-client generate --path "$root/openapi/openapi.json" \
  --meta none --output-path "$work/python/postier_client" --config "$root/sdk/python/config.yml" \
  >"$work/python-generate.log" 2>&1 || { cat "$work/python-generate.log"; exit 1; }
# Only the mail clients' XML and profile operations may be reported: every JSON operation
# must be generated whole.
warnings=$(grep -E '^WARNING parsing' "$work/python-generate.log" | grep -vE \
  '(GET /mail/config-v1.1.xml|GET /.well-known/autoconfig/mail/config-v1.1.xml|POST /autodiscover/autodiscover.xml|GET /v1/addresses/\{address_id\}/mobileconfig) ' || true)
others=$(grep -E '^(Unable to|Attempted|Failure)' "$work/python-generate.log" || true)
if [ -n "$warnings$others" ]; then
  echo "openapi-python-client warned about JSON operations or schemas:"
  cat "$work/python-generate.log"
  exit 1
fi

echo "--- typescript types (openapi-typescript) and tsc"
mkdir -p "$work/ts"
cp "$root/sdk/ts/scenario.ts" "$root/sdk/ts/tsconfig.json" "$root/sdk/ts/package.json" "$work/ts/"
ln -s "$node_cache/node_modules" "$work/ts/node_modules"
(cd "$work/ts" && ./node_modules/.bin/openapi-typescript "$root/openapi/openapi.json" -o schema.ts) \
  >"$work/ts-generate.log" 2>&1 || { cat "$work/ts-generate.log"; exit 1; }
if grep -iE 'warn|error' "$work/ts-generate.log"; then
  echo "openapi-typescript warned"; exit 1
fi
(cd "$work/ts" && ./node_modules/.bin/tsc -p tsconfig.json)

echo "--- live server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
mkdir -p "$work/server"
(
  cd "$work/server"
  exec env -i PATH="$PATH" HOME="$HOME" \
    POSTIER_LISTEN="127.0.0.1:$port" \
    POSTIER_DOMAIN_OWNERSHIP=trust \
    POSTIER_ARGON2__MEMORY_KIB=256 POSTIER_ARGON2__ITERATIONS=1 \
    POSTIER_LOG=warn \
    "$bin" serve >"$work/postier.log" 2>&1
) &
pid=$!
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
curl -fs "$base/readyz" >/dev/null || { cat "$work/postier.log"; exit 1; }

status=0
echo "--- python scenario"
PYTHONPATH="$work/python" "$venv/bin/python" "$root/sdk/python/scenario.py" "$base" || status=1
echo "--- typescript scenario"
(cd "$work/ts" && node out/scenario.js "$base") || status=1
if [ "$status" -ne 0 ]; then
  echo "--- postier log"; tail -20 "$work/postier.log"
fi
exit "$status"
