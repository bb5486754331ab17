"""Outgoing webhooks with real parts: the store on a real SQLite file (schema by Alembic), the
secrets key in a real key file, the standard library's HTTP client, and a real HTTP receiver on
127.0.0.1 (no Docker engine needed)."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dockyard.adapters.secret_box import KeyFile
from dockyard.adapters.sql_store import SqlStore
from dockyard.adapters.webhook_http import HttpWebhookTransport
from dockyard.domain import webhooks as wh
from dockyard.domain.errors import Conflict, DockyardError, NotFound
from dockyard.domain.model import App, Environment
from dockyard.domain.webhooks import Backoff
from dockyard.services.configuration import Configuration
from dockyard.services.events import Event, Events
from dockyard.services.webhooks import Webhooks
from tests.support import wait_until

pytestmark = pytest.mark.integration
TINY = Backoff(first=0.02, cap=0.05, attempts=4)


class Received:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path, self.headers, self.body = path, headers, body


class Sink:
    """An HTTP receiver: answers each POST with the next status of ``script`` (then 200), after
    ``delay`` seconds, and keeps what it received."""

    def __init__(self, script: list[int] | None = None, delay: float = 0.0) -> None:
        self.script, self.delay = list(script or []), delay
        self.received: list[Received] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.received.append(Received(self.path, dict(self.headers.items()), body))
                time.sleep(sink.delay)
                status = sink.script.pop(0) if sink.script else 200
                answer = b"no thanks" if status >= 300 else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/dockyard?via=test"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "dockyard.db"


@pytest.fixture
def store(db: Path) -> SqlStore:
    s = SqlStore(f"sqlite:///{db}")
    s.migrate()
    s.create_app(App("shop"))
    s.add_environment(Environment("shop", "staging"))
    s.create_app(App("blog"))
    return s


@pytest.fixture
def keys(tmp_path: Path) -> KeyFile:
    return KeyFile(tmp_path / "secrets.key")


def service(store: SqlStore, keys: KeyFile, backoff: Backoff = TINY, timeout: float = 5.0) -> Webhooks:
    return Webhooks(store, keys, HttpWebhookTransport(), backoff=backoff, api_url="http://dockyard.test:7700/",
                    timeout=timeout)


@pytest.fixture
def hooks(store: SqlStore, keys: KeyFile) -> Iterator[Webhooks]:
    w = service(store, keys)
    yield w
    w.stop()


def released(app: str = "shop", environment: str = "production", kind: str = "deploy.succeeded", **detail: object) -> Event:
    return Event(kind, "alice", "dockyard", app, environment,
                 {"job": 17, "commit": "c" * 40, "branch": "main", "release": 42, **detail})


def settled(hooks: Webhooks, app: str = "shop") -> list[wh.Delivery]:
    """The app's deliveries, once none is pending."""
    wait_until(lambda: all(d.status != wh.PENDING for d in hooks.deliveries(app)), 10, "deliveries to settle")
    return hooks.deliveries(app)


# -- a delivery -----------------------------------------------------------------------------------
def test_a_release_is_delivered_signed_with_the_exact_body(hooks: Webhooks, sink: Sink) -> None:
    hook, secret = hooks.add("shop", sink.url)
    bus = Events()
    bus.subscribe(hooks.on_event)
    hooks.start()
    bus.publish(released())
    wait_until(lambda: sink.received, 10, "the delivery")
    [got] = sink.received
    [delivery] = settled(hooks)
    assert got.path == "/hooks/dockyard?via=test"
    assert wh.verify(secret, got.body, got.headers["X-Dockyard-Signature"])
    assert got.body == delivery.payload.encode()  # byte for byte what was stored, signed
    assert got.headers["X-Dockyard-Event"] == "release.succeeded"
    assert got.headers["X-Dockyard-Delivery"] == str(delivery.id)
    assert got.headers["X-Dockyard-Webhook"] == str(hook.id)
    assert got.headers["User-Agent"] == "dockyard-webhooks"
    assert got.headers["Content-Type"] == "application/json"
    payload = json.loads(got.body)
    assert {k: v for k, v in payload.items() if k != "at"} == {
        "event": "release.succeeded", "app": "shop", "environment": "production", "actor": "alice",
        "release": 42, "to_release": None, "commit": "c" * 40, "branch": "main", "job": 17, "error": None,
        "log_url": "http://dockyard.test:7700/api/v1/jobs/17/logs", "webhook": hook.id}
    assert payload["at"].endswith("Z")
    assert (delivery.status, delivery.attempts, delivery.response, delivery.error) == ("delivered", 1, 200, None)
    assert delivery.delivered_at is not None and delivery.next_at is None


def test_each_bus_event_is_sent_as_its_webhook_event(hooks: Webhooks, sink: Sink) -> None:
    hooks.add("shop", sink.url)
    for kind in ("deploy.succeeded", "deploy.failed", "rollback.succeeded", "rollback.failed", "approval.needed",
                 "scale.succeeded", "variable.set", "webhook.added"):
        hooks.on_event(released(kind=kind))
    hooks.on_event(Event("deploy.succeeded", "alice"))  # of no app
    assert sorted(d.event for d in hooks.deliveries("shop")) == sorted(
        ["release.succeeded", "release.failed", "release.rolled_back", "rollback.failed", "approval.needed"])


def test_a_rollback_says_where_it_returned_and_a_failure_why(hooks: Webhooks, sink: Sink) -> None:
    hooks.add("shop", sink.url, events=["release.rolled_back", "release.failed"])
    hooks.on_event(released(kind="rollback.succeeded", to=40))
    hooks.on_event(released(kind="deploy.failed", error="the build failed: exit 2"))
    hooks.on_event(released(kind="deploy.succeeded"))  # not subscribed
    hooks.send_due()
    bodies = {json.loads(r.body)["event"]: json.loads(r.body) for r in sink.received}
    assert set(bodies) == {"release.rolled_back", "release.failed"}
    assert bodies["release.rolled_back"]["to_release"] == 40
    assert bodies["release.failed"]["error"] == "the build failed: exit 2"


def test_a_receiver_that_fails_twice_gets_three_attempts(hooks: Webhooks) -> None:
    flaky = Sink(script=[500, 503])
    try:
        hooks.add("shop", flaky.url)
        hooks.start()
        hooks.on_event(released())
        [delivery] = settled(hooks)
        assert (delivery.status, delivery.attempts, delivery.response, delivery.error) == ("delivered", 3, 200, None)
        assert len(flaky.received) == 3
        assert len({r.headers["X-Dockyard-Delivery"] for r in flaky.received}) == 1  # one delivery, tried 3 times
        assert len({r.body for r in flaky.received}) == 1
    finally:
        flaky.close()


def test_an_attempt_that_failed_is_recorded_with_its_answer(store: SqlStore, keys: KeyFile) -> None:
    failing = Sink(script=[500])
    hooks = service(store, keys, backoff=Backoff(first=60, attempts=4))
    try:
        hooks.add("shop", failing.url)
        hooks.on_event(released())
        assert hooks.send_due() == 1
        [delivery] = hooks.deliveries("shop")
        assert (delivery.status, delivery.attempts, delivery.response) == ("pending", 1, 500)
        assert delivery.error == "HTTP 500: no thanks"
        assert delivery.next_at is not None and delivery.created_at is not None
        assert 55 < (delivery.next_at - delivery.created_at).total_seconds() < 65
        assert hooks.send_due() == 0  # not due before then
    finally:
        failing.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed once the block ends: nothing listens there


def test_a_dead_receiver_fails_the_delivery_after_the_last_attempt(hooks: Webhooks) -> None:
    hooks.add("shop", f"http://127.0.0.1:{closed_port()}/")
    hooks.start()
    hooks.on_event(released())
    [delivery] = settled(hooks)
    assert (delivery.status, delivery.attempts, delivery.response) == ("failed", TINY.attempts, None)
    assert delivery.error == "connection refused"
    assert delivery.next_at is None and delivery.delivered_at is None


def test_a_slow_receiver_holds_up_neither_the_publisher_nor_beyond_the_timeout(store: SqlStore, keys: KeyFile) -> None:
    slow = Sink(delay=1.5)
    hooks = service(store, keys, backoff=Backoff(first=60, attempts=2), timeout=0.3)
    try:
        hooks.add("shop", slow.url)
        hooks.start()
        started = time.monotonic()
        hooks.on_event(released())  # what the job runner calls: stores, returns
        assert time.monotonic() - started < 0.5
        wait_until(lambda: hooks.deliveries("shop")[0].attempts == 1, 10, "the attempt")
        [delivery] = hooks.deliveries("shop")
        assert (delivery.status, delivery.error) == ("pending", "no answer within 0.3s")
    finally:
        hooks.stop()
        slow.close()


# -- which webhooks -------------------------------------------------------------------------------
def test_a_webhook_of_staging_gets_no_production_event(hooks: Webhooks, sink: Sink) -> None:
    staging, _ = hooks.add("shop", sink.url, environment="staging")
    everywhere, _ = hooks.add("shop", sink.url + "&all")
    hooks.add("blog", sink.url)
    hooks.on_event(released(environment="production"))
    hooks.on_event(released(environment="staging"))
    hooks.send_due()
    assert sorted((d.webhook, json.loads(d.payload)["environment"]) for d in hooks.deliveries("shop")) == sorted(
        [(everywhere.id, "production"), (everywhere.id, "staging"), (staging.id, "staging")])
    assert hooks.deliveries("shop", staging.id)[0].status == "delivered"
    assert hooks.deliveries("blog") == []
    assert len(sink.received) == 3


def test_deliveries_pending_at_a_stop_are_sent_after_the_next_start(store: SqlStore, keys: KeyFile, db: Path,
                                                                    sink: Sink) -> None:
    before = service(store, keys)
    before.add("shop", sink.url)
    before.on_event(released())  # stored; no sender runs
    assert [d.status for d in before.deliveries("shop")] == ["pending"] and not sink.received
    again = SqlStore(f"sqlite:///{db}")  # a new server on the same database
    after = service(again, KeyFile(keys.path))
    after.start()
    try:
        [delivery] = settled(after)
        assert delivery.status == "delivered" and len(sink.received) == 1
    finally:
        after.stop()


def test_ping_is_sent_now(hooks: Webhooks, sink: Sink) -> None:
    hook, secret = hooks.add("shop", sink.url, environment="staging", events=["release.failed"])
    delivery = hooks.ping("shop", hook.id)
    assert (delivery.event, delivery.status, delivery.response, delivery.attempts) == ("ping", "delivered", 200, 1)
    [got] = sink.received
    assert got.headers["X-Dockyard-Event"] == "ping" and wh.verify(secret, got.body, got.headers["X-Dockyard-Signature"])
    assert json.loads(got.body)["environment"] == "staging"
    dead = hooks.add("shop", f"http://127.0.0.1:{closed_port()}/")[0]
    failed = hooks.ping("shop", dead.id)
    assert (failed.status, failed.attempts, failed.error) == ("pending", 1, "connection refused")


# -- configuring ----------------------------------------------------------------------------------
def test_the_secret_is_neither_listed_nor_stored_in_clear(hooks: Webhooks, db: Path, sink: Sink) -> None:
    hook, made = hooks.add("shop", sink.url)
    given_hook, given = hooks.add("shop", sink.url, environment="staging", secret="my own secret, 24 chars")
    assert len(made) >= 40 and made != given
    listed = hooks.of("shop")
    assert [h.id for h in listed] == [hook.id, given_hook.id]
    assert made not in repr(listed) and given not in repr(listed)
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT * FROM webhooks").fetchall()
    dump = repr(rows).encode()
    for secret in (made, given):
        assert secret not in repr(rows)
        assert secret.encode() not in b"".join(bytes(c) for r in rows for c in r if isinstance(c, bytes))
    assert b"my own secret" not in dump
    hooks.ping("shop", given_hook.id)
    assert wh.verify(given, sink.received[0].body, sink.received[0].headers["X-Dockyard-Signature"])


def test_bad_input_is_refused_and_nothing_stored(hooks: Webhooks, sink: Sink) -> None:
    for call, error in [
        (lambda: hooks.add("nope", sink.url), NotFound),
        (lambda: hooks.add("shop", sink.url, environment="recette"), NotFound),
        (lambda: hooks.add("shop", sink.url, environment="Bad Env"), DockyardError),
        (lambda: hooks.add("shop", "ftp://example.com/"), DockyardError),
        (lambda: hooks.add("shop", "https://u:p@example.com/"), DockyardError),
        (lambda: hooks.add("shop", sink.url, events=["release.done"]), DockyardError),
        (lambda: hooks.add("shop", sink.url, secret="short"), DockyardError),
    ]:
        with pytest.raises(error):
            call()
    assert hooks.of("shop") == []
    hooks.add("shop", sink.url)
    with pytest.raises(Conflict, match="already"):
        hooks.add("shop", sink.url)
    with pytest.raises(NotFound):
        hooks.remove("blog", hooks.of("shop")[0].id)  # another app's
    with pytest.raises(NotFound):
        hooks.ping("shop", 999)


def test_removing_a_webhook_removes_its_deliveries_and_an_app_its_webhooks(hooks: Webhooks, store: SqlStore,
                                                                          sink: Sink) -> None:
    gone, _ = hooks.add("shop", sink.url)
    kept, _ = hooks.add("shop", sink.url, environment="staging")
    hooks.on_event(released(environment="staging"))
    assert len(hooks.deliveries("shop")) == 2
    hooks.remove("shop", gone.id)
    assert [h.id for h in hooks.of("shop")] == [kept.id]
    assert [d.webhook for d in hooks.deliveries("shop")] == [kept.id]
    store.remove_environment("shop", "staging")
    assert hooks.of("shop") == [] and hooks.deliveries("shop") == []
    hooks.add("shop", sink.url)
    store.delete_app("shop")
    store.create_app(App("shop"))  # a new app of the same name starts without
    assert hooks.of("shop") == []
    assert hooks.send_due() == 0 and not sink.received


def test_secrets_survive_a_rotation_of_the_secrets_key(store: SqlStore, keys: KeyFile, sink: Sink) -> None:
    configuration = Configuration(store, keys)
    hooks = service(store, keys)
    configuration.also_reseal.append(hooks.reseal)
    hook, secret = hooks.add("shop", sink.url)
    before = keys.current().key_id
    configuration.rotate_key()
    configuration.rotate_key()
    assert keys.current().key_id != before
    assert hooks.ping("shop", hook.id).status == "delivered"
    assert wh.verify(secret, sink.received[-1].body, sink.received[-1].headers["X-Dockyard-Signature"])
    found = store.sealed_webhook_secret(hook.id)
    assert found is not None and before not in wh.unpack(found[1])  # the key before last is forgotten


def test_a_rotation_cut_off_leaves_the_secret_readable(store: SqlStore, keys: KeyFile, sink: Sink) -> None:
    hooks = service(store, keys)
    hook, secret = hooks.add("shop", sink.url)
    old, new = keys.current(), keys.stage()
    hooks.reseal(old, new)  # the webhooks' part of a rotation that then stops
    keys.discard()
    assert hooks.ping("shop", hook.id).status == "delivered"
    new_key = keys.stage()
    hooks.reseal(keys.current(), new_key)
    keys.promote()  # the rotation's end, without the webhooks' part
    assert hooks.ping("shop", hook.id).status == "delivered"
    assert wh.verify(secret, sink.received[-1].body, sink.received[-1].headers["X-Dockyard-Signature"])


def test_a_secret_under_a_lost_key_fails_its_delivery_saying_so(store: SqlStore, keys: KeyFile, tmp_path: Path,
                                                               sink: Sink) -> None:
    hook, _ = service(store, keys).add("shop", sink.url)
    other = service(store, KeyFile(tmp_path / "another.key"))
    delivery = other.ping("shop", hook.id)
    assert delivery.status == "failed" and "sealed with another key" in (delivery.error or "")
    assert not sink.received


def test_old_finished_deliveries_are_forgotten(hooks: Webhooks, store: SqlStore, sink: Sink) -> None:
    from datetime import UTC, datetime, timedelta

    hooks.add("shop", sink.url)
    hooks.on_event(released())
    hooks.send_due()
    hooks.on_event(released())  # pending: kept whatever its age
    assert store.prune_deliveries(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.prune_deliveries(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert [d.status for d in hooks.deliveries("shop")] == ["pending"]
