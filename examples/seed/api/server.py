"""The seed's api, as a small standard-library HTTP server.

It reads the seed's MONGODB_* variables (docker-compose.env), writes through the master (the first
host of MONGODB_HOSTS_PORTS) and reads from a replica (the others, in turn), speaking the Redis
protocol to the database stand-in. Routes:

    GET  /          what this is
    GET  /health    200 with this container's name and whether the master answers
    GET  /env       the MONGODB_* values it sees (the password masked)
    GET  /items     the items, read from a replica (``read_from`` says which)
    POST /items     add one: a JSON object (``{"name": "..."}``), or plain text as its name
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from resp import Connection, RespError, Settings, shown

PORT = int(os.environ.get("PORT", "8894"))
VARIABLES = ("MONGODB_HOSTS_PORTS", "MONGODB_USER", "MONGODB_PASSWORD", "MONGODB_DB", "MONGODB_DEBUG")
MAX_BODY = 64 * 1024

settings = Settings.from_environment()
_turn = itertools.count()
_turn_lock = threading.Lock()


def key(name: str) -> str:
    """Keys live under the database's name, as collections in the seed's MONGODB_DB."""
    return f"{settings.db}:{name}"


def masked_environment() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in VARIABLES:
        value = os.environ.get(name)
        out[name] = ("*" * 8 if value else value) if name == "MONGODB_PASSWORD" else value
    return out


def add_item(fields: dict[str, object]) -> dict[str, object]:
    with Connection(settings.master, settings) as db:
        number = db.command("INCR", key("items:next"))
        item = {**fields, "id": number, "created": time.time(), "written_by": socket.gethostname(),
                "written_to": shown(settings.master)}
        db.command("RPUSH", key("items"), json.dumps(item, sort_keys=True))
    return item


def read_items() -> tuple[list[object], str]:
    """The items, from the next replica that answers (each request starts with the next one)."""
    replicas = settings.replicas
    with _turn_lock:
        first = next(_turn) % len(replicas)
    errors = []
    for address in replicas[first:] + replicas[:first]:
        try:
            with Connection(address, settings) as db:
                raw = db.command("LRANGE", key("items"), 0, -1)
        except (OSError, RespError) as exc:
            errors.append(f"{shown(address)}: {exc}")
            continue
        items = [json.loads(r) for r in raw if isinstance(r, bytes)] if isinstance(raw, list) else []
        return items, shown(address)
    raise ConnectionError("no replica answers: " + "; ".join(errors))


def master_state() -> str:
    try:
        with Connection(settings.master, settings, timeout=1.0) as db:
            db.command("PING")
    except (OSError, RespError) as exc:
        return f"down: {exc}"
    return "up"


class Handler(BaseHTTPRequestHandler):
    server_version = "seed-api/0.2"

    def _send(self, status: int, body: object) -> None:
        data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, {"service": "seed api", "host": socket.gethostname(),
                             "routes": ["GET /health", "GET /env", "GET /items", "POST /items"]})
        elif path == "/health":
            self._send(200, {"status": "ok", "host": socket.gethostname(), "master": shown(settings.master),
                             "master_state": master_state()})
        elif path == "/env":
            self._send(200, masked_environment())
        elif path == "/items":
            try:
                items, source = read_items()
            except ConnectionError as exc:
                self._send(503, {"error": str(exc)})
                return
            self._send(200, {"items": items, "read_from": source, "db": settings.db, "host": socket.gethostname()})
        else:
            self._send(404, {"error": f"no route {path}"})

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/items":
            self._send(404, {"error": f"no route {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._send(400, {"error": f"send a body of 1 to {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(length).decode(errors="replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"name": raw.strip()}
        if not isinstance(body, dict):
            self._send(400, {"error": "send a JSON object, such as {\"name\": \"...\"}"})
            return
        try:
            item = add_item(body)
        except (OSError, RespError) as exc:
            self._send(503, {"error": f"the master {shown(settings.master)} does not answer: {exc}"})
            return
        self._send(201, item)

    def log_message(self, format: str, *args: object) -> None:
        if settings.debug:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> None:
    print(f"seed api on :{PORT}; master {shown(settings.master)}, replicas "
          f"{', '.join(shown(r) for r in settings.replicas)}, db {settings.db}", file=sys.stderr)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
