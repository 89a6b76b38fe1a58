# Shared settings for Herald's scripts. Source it; do not run it.

HERALD_CACHE=${HERALD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/herald}
HERALD_BIN=$HERALD_CACHE/bin
HERALD_VENV=$HERALD_CACHE/venv
export HERALD_CACHE HERALD_BIN HERALD_VENV
export PATH="$HERALD_BIN:/usr/local/go/bin:$PATH"

# Each line carries the wall-clock time, so a CI log shows how long each stage took.
log() { printf '[herald %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Runs a command as root: directly when we are root, through sudo otherwise.
sudo_() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
