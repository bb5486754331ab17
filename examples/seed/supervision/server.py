"""The seed's "supervision" site, as a tiny standard-library HTTP server: the state of the
database's replication, read from the master with ``INFO replication`` and from each replica.

    GET /              an HTML page
    GET /replication   the same as JSON: {"master": {...}, "replicas": [...]}
    GET /health        200
"""

from __future__ import annotations

import html
import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from resp import Connection, RespError, Settings, parse_info, shown

PORT = int(os.environ.get("PORT", "3001"))
settings = Settings.from_environment()
SLAVE = ("slave", "ip", "port", "state", "offset", "lag")


def info(address: tuple[str, int]) -> dict[str, object]:
    """One member's ``INFO replication``, its connected replicas parsed."""
    try:
        with Connection(address, settings, timeout=2.0) as db:
            raw = db.command("INFO", "replication")
    except (OSError, RespError) as exc:
        return {"host": shown(address), "reachable": False, "error": str(exc)}
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else ""
    fields = parse_info(text)
    slaves = []
    for name, value in fields.items():
        if name.startswith("slave") and name[5:].isdigit():
            slave = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
            slaves.append({"name": name, **slave})
    out: dict[str, object] = {"host": shown(address), "reachable": True, "role": fields.get("role"),
                              "info": {k: v for k, v in fields.items() if not k.startswith("slave")}}
    if fields.get("role") == "master":
        out["connected_slaves"] = int(fields.get("connected_slaves", "0"))
        out["slaves"] = slaves
    else:
        out["master_host"] = fields.get("master_host")
        out["master_link_status"] = fields.get("master_link_status")
    return out


def replication() -> dict[str, object]:
    return {
        "supervision": socket.gethostname(),
        "master": info(settings.master),
        "replicas": [info(address) for address in settings.hosts[1:]],
    }


def page(state: dict[str, object]) -> str:
    def row(member: object) -> str:
        m = member if isinstance(member, dict) else {}
        if not m.get("reachable"):
            detail = f"unreachable: {m.get('error')}"
        elif m.get("role") == "master":
            names = ", ".join(f"{s.get('ip')}:{s.get('port')} ({s.get('state')}, lag {s.get('lag')})"
                              for s in m.get("slaves", []))
            detail = f"{m.get('connected_slaves')} connected replicas: {names or '-'}"
        else:
            detail = f"replica of {m.get('master_host')}, link {m.get('master_link_status')}"
        return (f"<tr><td><code>{html.escape(str(m.get('host')))}</code></td>"
                f"<td>{html.escape(str(m.get('role', '?')))}</td><td>{html.escape(detail)}</td></tr>")

    replicas = state["replicas"]
    rows = "".join(row(m) for m in [state["master"], *(replicas if isinstance(replicas, list) else [])])
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Supervision</title></head><body>"
            f"<h1>Supervision</h1><p>database <code>{html.escape(settings.db)}</code>, seen by "
            f"<code>{html.escape(str(state['supervision']))}</code></p>"
            f"<table border='1'><tr><th>member</th><th>role</th><th>state</th></tr>{rows}</table>"
            "<p><a href='/replication'>as JSON</a></p></body></html>\n")


class Handler(BaseHTTPRequestHandler):
    server_version = "seed-supervision/0.1"

    def _send(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, page(replication()).encode(), "text/html; charset=utf-8")
        elif path == "/replication":
            self._send(200, (json.dumps(replication(), indent=2, sort_keys=True) + "\n").encode(),
                       "application/json")
        elif path == "/health":
            self._send(200, f"ok {socket.gethostname()}\n".encode(), "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def log_message(self, format: str, *args: object) -> None:
        if settings.debug:
            super().log_message(format, *args)


if __name__ == "__main__":
    print(f"seed supervision on :{PORT}; master {shown(settings.master)}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
