#!/usr/bin/env bash
# Fuzzes every operation of the OpenAPI document against a live server with Schemathesis:
# fails on server errors, undocumented status codes, undocumented content types (so every
# error must be problem+json) and bodies that do not match their schema.
# Usage: .ci/schemathesis.sh POSTIER_BINARY [extra st args]
set -euo pipefail
bin=$1; shift
st=${ST:-st}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# A resolver that never answers: webhook hosts the fuzzer invents never resolve, so it cannot
# make Postier send requests anywhere (nor do live DNS checks leave the machine).
dead_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
(
  cd "$work"
  exec env -i PATH="$PATH" HOME="$HOME" \
    POSTIER_LISTEN="127.0.0.1:$port" \
    POSTIER_ARGON2__MEMORY_KIB=256 POSTIER_ARGON2__ITERATIONS=1 \
    POSTIER_THROTTLE__SIGNUPS_PER_IP=100000 \
    POSTIER_THROTTLE__FAILURES_PER_IP=100000 \
    POSTIER_RATE_LIMIT__REQUESTS=1000000000 \
    POSTIER_ACCESS_TOKEN_TTL_SECS=3600 \
    POSTIER_DNS_SERVER="127.0.0.1:$dead_port" \
    POSTIER_WEBHOOK_ALLOW_HOSTS=127.0.0.1 \
    POSTIER_LOG=warn POSTIER_LOG_FORMAT=json \
    "$bin" serve >"$work/postier.log" 2>&1
) &
pid=$!
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
curl -fs "$base/readyz" >/dev/null
login="fuzzer@example.com"; password="correct horse battery staple"
curl -fs -X POST "$base/v1/accounts" -H 'content-type: application/json' \
  -d "{\"login\":\"$login\",\"password\":\"$password\"}" >/dev/null
token=$(curl -fs -X POST "$base/v1/sessions" -H 'content-type: application/json' \
  -d "{\"login\":\"$login\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
logout_token=$(curl -fs -X POST "$base/v1/sessions" -H 'content-type: application/json' \
  -d "{\"login\":\"$login\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# Real resources, so that operations on ids reach their logic instead of answering 404.
api() { curl -fs -X "$1" "$base$2" -H "Authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"}; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
org_id=$(api GET /v1/organizations | field '["items"][0]["id"]')
account_id=$(api GET /v1/me | field '["id"]')
service_id=$(api POST "/v1/organizations/$org_id/mail-services" '{"domain":"fuzz.example","pack":"premium"}' | field '["id"]')
address_id=$(api POST "/v1/mail-services/$service_id/addresses" "{\"local_part\":\"info\",\"for\":\"several_users\",\"password\":\"$password\"}" | field '["id"]')
invitation_id=$(api POST "/v1/addresses/$address_id/invitations" '{"invitee":{"email":"someone@elsewhere.example"}}' | field '["id"]')
# A webhook to a local port nobody listens on: its deliveries fail, and never leave the machine.
webhook_id=$(api POST "/v1/organizations/$org_id/webhooks" "{\"url\":\"http://127.0.0.1:$dead_port/hook\"}" | field '["id"]')
delivery_id=$(api POST "/v1/webhooks/$webhook_id/ping" | field '["id"]')
share_link_id=$(api POST "/v1/addresses/$address_id/share-links" '{"permissions":["send_email"]}' | field '["id"]')
forward_id=$(api POST "/v1/addresses/$address_id/forwards" '{"target":"someone@elsewhere.example"}' | field '["id"]')
cat > "$work/schemathesis.toml" <<TOML
[parameters]
org_id = "$org_id"
service_id = "$service_id"
address_id = "$address_id"
account_id = "$account_id"
domain = "fuzz.example"
invitation_id = "$invitation_id"
webhook_id = "$webhook_id"
delivery_id = "$delivery_id"
share_link_id = "$share_link_id"
forward_id = "$forward_id"

# A body over a length bound can also be over POSTIER_MAX_JSON_BYTES: 413 is a refusal too.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
TOML
status=0
# The failures accepted, each with its reason: rules no schema can state (see README,
# "Schemathesis"). Any other failure fails the run; ST_BASELINE_UPDATE=1 adds the new ones.
baseline=${ST_BASELINE:-$(dirname "$0")/schemathesis-baseline.json}
baseline=$(realpath "$baseline")
# Schemathesis keeps a cache in the working directory: keep it out of the repository.
cd "$work"
"$st" --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --baseline "$baseline" ${ST_BASELINE_UPDATE:+--baseline-update} \
  --continue-on-failure \
  --exclude-operation-id delete_current_session \
  --exclude-operation-id stream_organization_events \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${ST_MAX_EXAMPLES:-30}" \
  --seed "${ST_SEED:-20261202}" \
  --workers 1 \
  --request-timeout 10 \
  --no-color \
  "$@" || status=$?
# The event stream is excluded above: it never ends by design (tests/api/events_feed.rs
# covers its answers).
# Logging out ends the session the run uses: fuzz it after the rest, on a session of its own
# (opened before the run, whose wrong-password cases throttle new logins).
if [ "$status" -eq 0 ]; then
  "$st" run "$base/openapi.json" \
    --header "Authorization: Bearer $logout_token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --include-operation-id delete_current_session \
    --phases examples,coverage,fuzzing \
    --max-examples 10 \
    --workers 1 \
    --request-timeout 10 \
    --no-color || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "--- postier log (errors) ---"
  grep -E '"level":"(ERROR|WARN)"' "$work/postier.log" | tail -20 || true
fi
exit "$status"
