#!/usr/bin/env bash
# Smoke test of the container image: build it, run two replicas behind nginx, check that both serve and every
# answer is right, kill one in the middle of requests and check that every request still succeeds.
#
#   docker/smoke.sh                       # from anywhere; about 5 minutes with a cold build cache
#
# Containers: podman set up by ../shared/tools/podman-env.sh (next to the repository) when it exists, else
# $CONTAINER_ENGINE (docker or podman). Replicas use host networking on loopback ports; nginx is the host's
# (Debian: apt-get install nginx), configured by docker/nginx/nginx.conf's own directives.
# Settings: SMOKE_IMAGE (saliency-service:smoke), SMOKE_PORT (18600: nginx; replicas on +1 and +2),
# SMOKE_SKIP_BUILD=1 (use the image as it is).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
image=${SMOKE_IMAGE:-saliency-service:smoke}
port=${SMOKE_PORT:-18600}
replica_ports=($((port + 1)) $((port + 2)))
names=(saliency-smoke-1 saliency-smoke-2)
python=$(command -v python3)
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "smoke: nginx not found (apt-get install -y nginx)" >&2; exit 2; }

work=$(mktemp -d /tmp/saliency-smoke.XXXX)
nginx_pid=
cleanup() {
    status=$?
    set +e
    if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null; fi
    for name in "${names[@]}"; do
        if [ "$status" -ne 0 ] && engine logs "$name" >"$work/$name.log" 2>&1; then
            echo "--- $name (last lines)"
            tail -n 30 "$work/$name.log"
        fi
        engine kill "$name" >/dev/null 2>&1
        engine rm -f "$name" >/dev/null 2>&1
    done
    if [ "$status" -ne 0 ]; then
        [ -f "$work/nginx/error.log" ] && { echo "--- nginx error.log"; tail -n 20 "$work/nginx/error.log"; }
        echo "smoke: FAILED"
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -f "$repo/../shared/tools/podman-env.sh" ]; then
    set +eu
    # shellcheck source=/dev/null
    source "$repo/../shared/tools/podman-env.sh"
    set -eu
    engine() { ctr "$@"; }
    # ctr is a shell function; the kill command runs under /bin/sh, so it gets a script.
    { echo '#!/usr/bin/env bash'; declare -f ctr; echo 'ctr "$@"'; } >"$work/engine"
    chmod +x "$work/engine"
    engine_command=$work/engine
    build_flags=(--format docker --build-arg "BASE_IMAGE=$CTR_BASE_IMAGE")
    read -r -a extra <<<"$CTR_BUILD_FLAGS"
    build_flags+=("${extra[@]}")
else
    engine() { "${CONTAINER_ENGINE:-docker}" "$@"; }
    engine_command=${CONTAINER_ENGINE:-docker}
    build_flags=()
    if [ "${CONTAINER_ENGINE:-docker}" = podman ]; then build_flags=(--format docker); fi  # keeps HEALTHCHECK
fi

step() { printf '\n== %s\n' "$*"; }

if [ "${SMOKE_SKIP_BUILD:-0}" != 1 ]; then
    step "build $image"
    started=$SECONDS
    engine build "${build_flags[@]}" -t "$image" -f docker/Dockerfile . >"$work/build.log" 2>&1 \
        || { tail -n 40 "$work/build.log"; exit 1; }
    echo "built in $((SECONDS - started)) s"
fi
engine image inspect "$image" \
    --format 'size {{.Size}} bytes; user {{.Config.User}}; stop signal {{.Config.StopSignal}}; entrypoint {{.Config.Entrypoint}} {{.Config.Cmd}}'
case $(engine image inspect "$image" --format '{{.Config.User}}') in
    "" | root | 0 | 0:*) echo "the image runs as root"; exit 1 ;;
esac

# The bundled demo models when the image has them; otherwise a small resnet18 mounted at /models.
config_args=()
if engine run --rm --network host --entrypoint python "$image" -c \
    'from service.settings import DEMO_CONFIG; raise SystemExit(not DEMO_CONFIG.exists())' 2>/dev/null; then
    echo "models: the bundled demo models"
else
    echo "models: no demo models in the image; serving resnet18 (4 classes, 64x64) from a mounted /models"
    mkdir -m 755 "$work/models"
    cat >"$work/models/models.toml" <<'TOML'
[[models]]
name = "tiny"
architecture = "torchvision:resnet18"
weights = "resnet18.pt"
num_classes = 4
input_size = [64, 64]
TOML
    # Random weights, made once by the image's own torch, so that both replicas compute the same maps.
    engine run --rm --network host --user 0 -v "$work/models:/models" --entrypoint python "$image" -c "
import torch, torchvision
torch.manual_seed(0)
model = torchvision.models.get_model('resnet18', num_classes=4)
torch.save(model.state_dict(), '/models/resnet18.pt')" 2>/dev/null
    chmod 644 "$work/models/"*
    config_args=(-v "$work/models:/models:ro" -e SALIENCY_CONFIG=/models/models.toml)
fi

step "start ${names[*]} on ports ${replica_ports[*]}"
for i in 0 1; do
    engine run -d --name "${names[$i]}" --network host -e HOST=127.0.0.1 -e "PORT=${replica_ports[$i]}" \
        -e SALIENCY_DRAIN_SECONDS=2 "${config_args[@]}" "$image" >/dev/null 2>"$work/run.err" \
        || { cat "$work/run.err"; exit 1; }
done
for i in 0 1; do
    deadline=$((SECONDS + 180))
    until "$python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${replica_ports[$i]}/readyz', timeout=2)" 2>/dev/null; do
        if [ "$(engine inspect -f '{{.State.Running}}' "${names[$i]}")" != true ] || [ "$SECONDS" -gt "$deadline" ]; then
            echo "${names[$i]} did not become ready"
            exit 1
        fi
        sleep 1
    done
    if [ "$engine_command" != docker ]; then
        health=$(engine healthcheck run "${names[$i]}" >/dev/null 2>&1 && echo healthy || echo FAILED)
    else
        health=$(engine inspect -f '{{.State.Health.Status}}' "${names[$i]}")
    fi
    echo "${names[$i]} ready; the image's HEALTHCHECK: $health"
done

step "nginx on 127.0.0.1:$port"
"$python" docker/smoke_client.py nginx-conf --dir "$work/nginx" --listen "127.0.0.1:$port" \
    --replica "127.0.0.1:${replica_ports[0]}" --replica "127.0.0.1:${replica_ports[1]}"
nginx_args=(-p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log")
"$nginx" "${nginx_args[@]}" -t 2>&1 | tail -n 1
"$nginx" "${nginx_args[@]}" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do
    "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
    sleep 0.1
done

step "requests through nginx; then SIGKILL ${names[0]} while requests are in flight"
"$python" docker/smoke_client.py check --url "http://127.0.0.1:$port" --requests 20 --max-spread 1e-3 \
    --kill-command "$engine_command kill --signal KILL ${names[0]} >/dev/null"

step "graceful stop of ${names[1]} (SIGTERM; SALIENCY_DRAIN_SECONDS=2)"
started=$SECONDS
engine stop -t 45 "${names[1]}" >/dev/null 2>&1 &
stopper=$!
sleep 0.5
readyz=$("$python" -c "
import urllib.error, urllib.request
try:
    print(urllib.request.urlopen('http://127.0.0.1:${replica_ports[1]}/readyz', timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError as e:
    print('refused' if 'refused' in str(e) else e)")
wait "$stopper"
echo "stopped after $((SECONDS - started)) s, exit code $(engine inspect -f '{{.State.ExitCode}}' "${names[1]}")"
echo "/readyz 0.5 s into the drain: $readyz"
engine logs "${names[1]}" 2>&1 | grep -E "SIGTERM|Shutting down|Finished server" || true
[ "$readyz" = 503 ] || { echo "the replica did not drain: /readyz should answer 503 for SALIENCY_DRAIN_SECONDS"; exit 1; }

step "smoke: OK"
