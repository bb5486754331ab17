#!/bin/sh
# Starts one member of the replica set. ROLE=master: the master, persisting to /data.
# Any other ROLE: a replica of MASTER_HOST:MASTER_PORT (default mongodb:27017).
# Arguments are passed on to redis-server (e.g. --loglevel verbose).
set -eu

conf="$(mktemp /tmp/seed-redis.XXXXXX.conf)"
chmod 0600 "$conf"
cat /etc/redis/seed.conf >"$conf"

# Redis config strings in double quotes: backslashes and quotes escaped.
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }

me="$(hostname)"
{
  echo "replica-announce-ip $(quoted "$me")"
  if [ "${ROLE:-}" = "master" ]; then
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo "appenddirname appendonlydir"
  else
    echo "appendonly no"
    echo "save \"\""
    echo "replicaof $(quoted "${MASTER_HOST:-mongodb}") ${MASTER_PORT:-27017}"
  fi
  if [ -n "${MONGODB_USER:-}" ] && [ -n "${MONGODB_PASSWORD:-}" ]; then
    echo "user default off"
    echo "user $(quoted "$MONGODB_USER") on $(quoted ">$MONGODB_PASSWORD") ~* &* +@all"
    echo "masteruser $(quoted "$MONGODB_USER")"
    echo "masterauth $(quoted "$MONGODB_PASSWORD")"
  fi
} >>"$conf"

if [ "${ROLE:-}" = "master" ]; then
  echo "seed-redis: $me is the master (data in /data; replicas expected: ${SLAVE1:-?} ${SLAVE2:-?})"
else
  echo "seed-redis: $me is a replica of ${MASTER_HOST:-mongodb}:${MASTER_PORT:-27017}"
fi
exec redis-server "$conf" "$@"
