#!/bin/sh
# dump.sh FILE [--db DB]: every key of the database (default $MONGODB_DB) to FILE, as JSON.
exec python3 /data/containerimage-tools/dbtool.py dump "$@"
