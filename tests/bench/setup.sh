#!/usr/bin/env bash
# Installs the benchmark's peers at pinned versions:
# - the Go peers (tests/bench/peers: crpeer, plainpeer, p1driver) built into
#   $HERALD_BIN, rebuilt only when their sources or go.mod/go.sum change;
# - the benchmark virtualenv (default $HERALD_CACHE/bench-venv, or
#   $HERALD_BENCH_VENV) from tests/bench/requirements.txt: Kopf, matplotlib,
#   the test packages, and the Herald Python client from clients/python.
# Idempotent: a second run takes seconds. Needs scripts/setup first (Go, the
# local control plane).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

HERALD_BENCH_VENV=${HERALD_BENCH_VENV:-$HERALD_CACHE/bench-venv}
export HERALD_BENCH_VENV
mkdir -p "$HERALD_BIN"
export GOFLAGS=-buildvcs=false

# --- Go peers ------------------------------------------------------------------
peers="$root/tests/bench/peers"
go_stamp=$( (cd "$peers" && find . -name '*.go' -o -name go.mod -o -name go.sum | sort | xargs cat) \
  | sha256sum | cut -d' ' -f1)
for cmd in p1driver plainpeer crpeer; do
  stamp_file="$HERALD_BIN/.bench-$cmd.stamp"
  if [ -x "$HERALD_BIN/bench-$cmd" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$go_stamp" ]; then
    continue
  fi
  log "building bench-$cmd (first time: minutes)"
  (cd "$peers" && go build -trimpath -ldflags=-s -o "$HERALD_BIN/bench-$cmd.tmp" "./cmd/$cmd")
  mv "$HERALD_BIN/bench-$cmd.tmp" "$HERALD_BIN/bench-$cmd"
  echo "$go_stamp" >"$stamp_file"
done

# --- The benchmark virtualenv ----------------------------------------------------
reqs="$root/tests/bench/requirements.txt"
stamp=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ "$(cat "$HERALD_BENCH_VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "creating the benchmark virtualenv in $HERALD_BENCH_VENV"
  rm -rf "$HERALD_BENCH_VENV"
  python3 -m venv "$HERALD_BENCH_VENV"
  "$HERALD_BENCH_VENV/bin/pip" install -q --disable-pip-version-check -r "$reqs"
  echo "$stamp" >"$HERALD_BENCH_VENV/.stamp"
  rm -f "$HERALD_BENCH_VENV/.client-stamp"
fi

# The Herald Python client, rebuilt when its sources or the wire contract change.
client_stamp=$(cd "$root" && find clients/python -path '*/build' -prune -o -path '*.egg-info' -prune \
  -o -name '__pycache__' -prune -o -type f \( -name '*.py' -o -name '*.toml' \) -print \
  | sort | xargs cat proto/herald/v1/*.proto | sha256sum | cut -d' ' -f1)
if [ "$(cat "$HERALD_BENCH_VENV/.client-stamp" 2>/dev/null)" != "$client_stamp" ]; then
  log "installing the Python client (clients/python) into $HERALD_BENCH_VENV"
  "$HERALD_BENCH_VENV/bin/pip" install -q --disable-pip-version-check "$root/clients/python"
  rm -rf "$root/clients/python/build"
  echo "$client_stamp" >"$HERALD_BENCH_VENV/.client-stamp"
fi

log "benchmark setup done; peers in $HERALD_BIN, virtualenv in $HERALD_BENCH_VENV"
