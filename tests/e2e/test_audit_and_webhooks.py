"""The audit log and outgoing webhooks on a real server: real pushes, a real rollback, a real
HTTP receiver checking each signature, and the chain verified, broken by hand, and named."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dockyard.domain.webhooks import verify
from tests.support import Server, make_repo, static_site, wait_until


class Sink:
    """An HTTP receiver on loopback that keeps every request it gets: (headers, body)."""

    def __init__(self) -> None:
        received = self.received = []  # type: list[tuple[dict[str, str], bytes]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.received]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    try:
        yield s
    finally:
        s.server.shutdown()


def test_releases_reach_a_signed_webhook_and_the_audit_log_verifies(
    server: Server, app_name: str, tmp_path: Path, sink: Sink
) -> None:
    server.cli("apps", "create", app_name)
    added = server.cli("webhooks", "add", app_name, sink.url).stdout
    secret = next(line.split(": ", 1)[1] for line in added.splitlines() if line.startswith("signing secret"))

    repo = make_repo(tmp_path / "src", static_site("v1"))
    assert server.push(repo, app_name).returncode == 0
    make_repo(repo, static_site("v2"))
    assert server.push(repo, app_name).returncode == 0
    server.cli("rollback", app_name)
    assert server.body(f"{app_name}.localhost") == "v1\n"

    wanted = ["release.succeeded", "release.succeeded", "release.rolled_back"]
    wait_until(lambda: sink.events() == wanted, 30, f"the webhook deliveries {wanted} (got {sink.events()})")
    for headers, body in sink.received:  # each signed with the secret, over the exact body
        assert verify(secret, body, headers["x-dockyard-signature"]), headers
        assert not verify(secret + "x", body, headers["x-dockyard-signature"])
        payload = json.loads(body)
        assert payload["app"] == app_name and payload["environment"] == "production" and payload["release"]
        assert headers["x-dockyard-event"] == payload["event"]
    assert json.loads(sink.received[-1][1])["to_release"] == json.loads(sink.received[0][1])["release"]
    deliveries = server.cli("webhooks", "deliveries", app_name, "--json").stdout
    assert [d["status"] for d in json.loads(deliveries)] == ["delivered"] * 3

    # each release's value stream: its commits, when they were pushed, built and live
    releases = sorted(json.loads(server.cli("releases", app_name, "--json").stdout), key=lambda r: r["id"])
    pushed = [r["timeline"] for r in releases[:2]]
    assert [t["commits"] for t in pushed] == [1, 1]
    for t in pushed:
        assert t["first_committed_at"] <= t["pushed_at"] <= t["build_started_at"] <= t["built_at"] <= t["live_at"]
        assert t["lead_time_seconds"] is not None and t["lead_time_seconds"] >= 0
    assert releases[2]["timeline"]["commits"] == 0 and releases[2]["timeline"]["pushed_at"] is None  # the rollback
    shown = server.cli("releases", app_name, "--timeline").stdout
    assert "lead_time" in shown.lower() and "first_committed_at" in shown.lower(), shown

    # the audit log: who did what, from where, for this app
    entries = json.loads(server.cli("audit", "--app", app_name, "--json").stdout)
    kinds = [e["action"] for e in reversed(entries)]  # oldest first
    for kind in ("app.created", "webhook.added", "push.accepted", "deploy.succeeded", "rollback.queued",
                 "rollback.succeeded"):
        assert kind in kinds, kinds
    pushed = next(e for e in entries if e["action"] == "push.accepted")
    assert pushed["source"] == "git push" and pushed["actor"]
    queued = next(e for e in entries if e["action"] == "rollback.queued")
    assert queued["source"] == "127.0.0.1" and queued["actor"] == "admin"
    verified = server.cli("audit", "--verify")
    assert "audit log verified" in verified.stdout

    # one row edited by hand: verification names it, and says so with exit 1
    an_edited_row_breaks_the_chain(server, app_name, "rollback.queued")
    assert server.cli("audit", "--verify").returncode == 0


def an_edited_row_breaks_the_chain(server: Server, app: str, action: str) -> None:
    """Edit the actor of the app's first ``action`` entry by hand: verification names that entry
    and exits 1; the row is put back afterwards."""
    db = sqlite3.connect(server.home / "dockyard.db")
    row, actor = db.execute("SELECT id, actor FROM audit_log WHERE action = ? AND app = ?", (action, app)).fetchone()
    try:
        with db:
            db.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = ?", (row,))
        broken = server.cli("audit", "--verify", check=False)
        assert broken.returncode == 1 and f"audit log broken at entry {row}" in broken.stdout, broken.stdout
    finally:
        with db:
            db.execute("UPDATE audit_log SET actor = ? WHERE id = ?", (actor, row))
        db.close()
