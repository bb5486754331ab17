#!/usr/bin/env bash
# The first command: a fresh Debian machine → a running dockyard with the example app deployed.
# Installs what is missing (scripts/setup.sh), starts `dockyard server` in the background,
# saves the CLI's URL and token, pushes examples/hello with git and prints its URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
export DOCKYARD_HOME=${DOCKYARD_HOME:-$HOME/.dockyard}
export DOCKYARD_API_PORT=${DOCKYARD_API_PORT:-7700}
export DOCKYARD_PROXY_PORT=${DOCKYARD_PROXY_PORT:-8080}
URL="http://127.0.0.1:${DOCKYARD_API_PORT}"
TOKEN_FILE="$DOCKYARD_HOME/admin-token"
DY=.venv/bin/dockyard
mkdir -p "$DOCKYARD_HOME"

api_up() { curl -sf --max-time 2 "$URL/api/v1/health" >/dev/null 2>&1; }
if api_up; then
  say "dockyard already answers at $URL"
else
  say "starting dockyard server (log: $DOCKYARD_HOME/server.log)"
  DOCKYARD_ADMIN_TOKEN_FILE="$TOKEN_FILE" nohup "$DY" server >>"$DOCKYARD_HOME/server.log" 2>&1 &
  echo $! >"$DOCKYARD_HOME/server.pid"
  for _ in $(seq 1 120); do api_up && break; sleep 0.5; done
  api_up || { echo "dockyard did not start; see $DOCKYARD_HOME/server.log" >&2; tail -20 "$DOCKYARD_HOME/server.log" >&2; exit 1; }
fi
if [ -z "${DOCKYARD_TOKEN:-}" ]; then
  [ -f "$TOKEN_FILE" ] || { echo "no admin token at $TOKEN_FILE: set DOCKYARD_TOKEN" >&2; exit 1; }
  DOCKYARD_TOKEN=$(cat "$TOKEN_FILE")
fi
export DOCKYARD_URL="$URL" DOCKYARD_TOKEN
"$DY" login --url "$URL" --token "$DOCKYARD_TOKEN" >/dev/null

APP=hello
"$DY" apps --json | grep -q "\"name\": \"$APP\"" || "$DY" apps create "$APP" >/dev/null
say "pushing examples/hello to dockyard"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/hello/. "$work/"
git -C "$work" init -q -b main
git -C "$work" add -A
git -C "$work" -c user.name=dockyard -c user.email=dockyard@localhost commit -q -m "example app"
# The token goes to git through GIT_ASKPASS, not the command line.
printf '#!/bin/sh\necho "$DOCKYARD_TOKEN"\n' >"$work/.askpass" && chmod +x "$work/.askpass"
GIT_ASKPASS="$work/.askpass" git -C "$work" push --force "http://dockyard@127.0.0.1:${DOCKYARD_API_PORT}/git/$APP.git" main
"$DY" status "$APP"
echo
say "dockyard runs at $URL; the example app answers at http://$APP.localhost:${DOCKYARD_PROXY_PORT}/"
echo "    curl -H 'Host: $APP.localhost' http://127.0.0.1:${DOCKYARD_PROXY_PORT}/"
echo "    CLI: $PWD/$DY (URL and token saved by 'dockyard login')"
