#!/usr/bin/env bash
# A short schemathesis run against a live server on the bundled demo models: generated requests from the
# committed OpenAPI document must never get a 5xx, and every answer must match the document.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${SCHEMATHESIS_PORT:-8765}"
LOG="$(mktemp)"
export OMP_NUM_THREADS=1
# Small limits keep generated requests cheap: a few hundred cases in about a minute on two cores.
SALIENCY_MAX_PASSES_PER_IMAGE=64 SALIENCY_REQUEST_TIMEOUT_S=10 \
  saliency-service serve --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  python -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.5
done
status=0
st --config-file .ci/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" --max-time 60 \
  --seed 1 --workers 1 --request-timeout 30 --no-color || status=$?
if grep -E "Traceback|ERROR" "$LOG" >/dev/null; then
  echo "the server logged errors during the schemathesis run:"; grep -E -A20 "Traceback|ERROR" "$LOG" | head -80
  status=1
fi
exit "$status"
