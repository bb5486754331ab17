#!/usr/bin/env bash
# Brings a Debian machine to what dockyard needs: Debian packages, a running Docker engine, the
# venv with dockyard installed, and the example's base image (built locally: nothing is pulled).
# Safe to run again. Never reconfigures a Docker engine that already runs.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

packages=(docker.io docker-registry caddy dnsmasq-base git busybox-static python3-venv ca-certificates curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

engine_answers() { curl -sf --max-time 3 --unix-socket /var/run/docker.sock http://docker/_ping >/dev/null 2>&1; }
if [ -n "${DOCKER_HOST:-}" ]; then
  say "using the Docker engine at DOCKER_HOST=$DOCKER_HOST"
elif engine_answers; then
  say "a Docker engine already runs: using it as it is"
else
  say "starting the Docker engine (with live-restore: apps keep running while it restarts or upgrades)"
  # live-restore goes into daemon.json, merged with what is there (a dockerd flag would conflict with it)
  $SUDO mkdir -p /etc/docker
  $SUDO python3 - <<'PY'
import json, pathlib
path = pathlib.Path("/etc/docker/daemon.json")
config = json.loads(path.read_text() or "{}") if path.exists() else {}
if config.get("live-restore") is not True:
    config["live-restore"] = True
    path.write_text(json.dumps(config, indent=2) + "\n")
PY
  $SUDO mkdir -p /run/dockyard && $SUDO touch /run/dockyard/engine-started-by-setup
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl start docker
  else
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do engine_answers && break; sleep 0.5; done
  engine_answers || { echo "the Docker engine did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating the venv (.venv)"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import dockyard, pytest, ruff, mypy" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.dockyard-installed ]; then
  say "installing dockyard into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch .venv/.dockyard-installed
fi

say "building the example base image (busybox, from Debian's busybox-static)"
.venv/bin/python scripts/base_image.py
