#!/bin/sh
# Starts the api (the seed's containerimage/init.sh started the Node.js app the same way).
cd /data
exec python3 /data/server.py
