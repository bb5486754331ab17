#!/bin/sh
# The tools container: with a command, runs it (docker run --rm IMAGE dump.sh -); without, waits,
# so that ops can `docker exec -ti api-tools bash` into it, as in the seed.
set -e
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
cat <<HELP
seed api-tools: the database tools of the api (the seed's mongodb-org-shell and -tools).
  master and replicas: ${MONGODB_HOSTS_PORTS:-mongodb:27017}    database: ${MONGODB_DB:-crigen}
  dump.sh FILE [--db DB]              dump the database to FILE (JSON)
  restore.sh FILE [--db DB] [--drop]  restore it, e.g. restore.sh database/export/sample/crigen.json --drop
  dbtool.py info                      the master's replication state
  redis-cli -h mongodb -p 27017       an interactive shell on the master (the seed's 'mongo')
This container waits; enter it with: docker exec -ti CONTAINER bash
HELP
exec sleep infinity
