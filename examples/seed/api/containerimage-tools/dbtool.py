#!/usr/bin/env python3
"""Dump and restore the database stand-in, as the seed's tools container did with mongodump and
mongorestore. Standard library only; it talks to the master (the first host of
MONGODB_HOSTS_PORTS) with the api's own client (/data/resp.py).

    dbtool.py dump FILE [--db DB]              every key of DB (default MONGODB_DB), as JSON
    dbtool.py restore FILE [--db DB] [--drop]  load a dump into DB; --drop empties DB first
    dbtool.py info                             the master's INFO replication

A dump is logical and readable: {"db": ..., "keys": {NAME: {"type": ..., "value": ...}}}, NAME
without the "DB:" prefix, so a dump restores into another database (mongorestore --db).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, "/data")

from resp import Connection, RespError, Settings, shown  # after sys.path names /data


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _glob_escaped(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _words(reply: object) -> list[str]:
    return [_text(v) for v in reply] if isinstance(reply, list) else []


def keys_of(db: Connection, prefix: str) -> list[str]:
    found: list[str] = []
    cursor = "0"
    while True:
        reply = db.command("SCAN", cursor, "MATCH", _glob_escaped(prefix) + "*", "COUNT", 1000)
        if not (isinstance(reply, list) and len(reply) == 2):
            raise RespError(f"unexpected SCAN reply {reply!r}")
        cursor = _text(reply[0])
        found += _words(reply[1])
        if cursor == "0":
            return sorted(set(found))


def dump(db: Connection, name: str) -> dict[str, object]:
    prefix = f"{name}:"
    out: dict[str, object] = {}
    for key in keys_of(db, prefix):
        kind = _text(db.command("TYPE", key))
        value: object
        if kind == "string":
            value = _text(db.command("GET", key))
        elif kind == "list":
            value = _words(db.command("LRANGE", key, 0, -1))
        elif kind == "hash":
            flat = _words(db.command("HGETALL", key))
            value = dict(zip(flat[::2], flat[1::2], strict=True))
        elif kind == "set":
            value = sorted(_words(db.command("SMEMBERS", key)))
        elif kind == "zset":
            flat = _words(db.command("ZRANGE", key, 0, -1, "WITHSCORES"))
            value = [[m, float(s)] for m, s in zip(flat[::2], flat[1::2], strict=True)]
        else:
            print(f"skipping {key}: type {kind} is not dumped", file=sys.stderr)
            continue
        out[key[len(prefix):]] = {"type": kind, "value": value}
    return {"db": name, "keys": out}


def restore(db: Connection, name: str, data: dict[str, object], drop: bool) -> int:
    prefix = f"{name}:"
    if drop:
        for key in keys_of(db, prefix):
            db.command("DEL", key)
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise SystemExit("not a dump: no 'keys' mapping")
    for short, entry in keys.items():
        key, kind, value = prefix + short, entry["type"], entry["value"]
        db.command("DEL", key)
        if kind == "string":
            db.command("SET", key, value)
        elif kind == "list" and value:
            db.command("RPUSH", key, *value)
        elif kind == "hash" and value:
            db.command("HSET", key, *[w for pair in value.items() for w in pair])
        elif kind == "set" and value:
            db.command("SADD", key, *value)
        elif kind == "zset" and value:
            db.command("ZADD", key, *[w for m, s in value for w in (repr(s), m)])
    return len(keys)


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_environment()
    parser = argparse.ArgumentParser(prog="dbtool.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="write every key of the database to FILE ('-': stdout)")
    d.add_argument("file")
    d.add_argument("--db", default=settings.db)
    r = sub.add_parser("restore", help="load FILE into the database")
    r.add_argument("file")
    r.add_argument("--db", default=settings.db)
    r.add_argument("--drop", action="store_true", help="remove the database's keys first")
    sub.add_parser("info", help="the master's INFO replication")
    args = parser.parse_args(argv)
    try:
        with Connection(settings.master, settings) as db:
            if args.command == "dump":
                text = json.dumps(dump(db, args.db), indent=2, sort_keys=True) + "\n"
                if args.file == "-":
                    sys.stdout.write(text)
                else:
                    Path(args.file).write_text(text)
                    print(f"dumped {args.db} from {shown(settings.master)} to {args.file}", file=sys.stderr)
            elif args.command == "restore":
                data = json.loads(sys.stdin.read() if args.file == "-" else Path(args.file).read_text())
                count = restore(db, args.db, data, args.drop)
                print(f"restored {count} keys into {args.db} on {shown(settings.master)}", file=sys.stderr)
            else:
                sys.stdout.write(_text(db.command("INFO", "replication")).replace("\r\n", "\n"))
    except (OSError, RespError) as exc:
        print(f"dbtool: {shown(settings.master)}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
