#!/bin/sh
# restore.sh FILE [--db DB] [--drop]: load a dump, as the seed did with
#   mongorestore --host rs0/$MONGODB_HOSTS --db $MONGODB_DB --drop ./dump/crigen
exec python3 /data/containerimage-tools/dbtool.py restore "$@"
