"""The webhooks' routes through FastAPI's TestClient: the real API app and its permission checks,
on the webhooks service with a real SQLite store and a real receiver (no Docker engine: the
platform holds only what these routes use)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from dockyard.adapters.secret_box import KeyFile
from dockyard.adapters.sql_store import SqlStore
from dockyard.adapters.webhook_http import HttpWebhookTransport
from dockyard.config import Settings
from dockyard.domain import webhooks as wh
from dockyard.domain.model import App
from dockyard.entrypoints.api import create_app
from dockyard.services.access import Access
from dockyard.services.events import Event, Events
from dockyard.services.webhooks import Webhooks
from tests.integration.test_webhooks import Sink

pytestmark = pytest.mark.integration
BASE = "/api/v1/apps/shop/webhooks"


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
        self.store.migrate()
        self.store.create_app(App("shop"))
        self.webhooks = Webhooks(self.store, KeyFile(tmp_path / "secrets.key"), HttpWebhookTransport())
        self.published: list[Event] = []
        events = Events()
        events.subscribe(self.published.append)
        api = create_app(Settings(home=tmp_path))  # no lifespan: the platform below is all it has
        api.state.platform = SimpleNamespace(webhooks=self.webhooks, access=Access(self.store), events=events)
        self.client = TestClient(api)
        self.admin = {"Authorization": f"Bearer {self.store.create_token('root', 'admin')}"}
        self.developer = {"Authorization": f"Bearer {self.store.create_token('dev', 'developer')}"}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


def test_the_routes_are_in_the_openapi_document(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    assert set(paths[BASE.replace("shop", "{name}")]) == {"get", "post"}
    assert set(paths[BASE.replace("shop", "{name}") + "/{webhook_id}"]) == {"delete"}
    assert set(paths[BASE.replace("shop", "{name}") + "/{webhook_id}/ping"]) == {"post"}
    assert set(paths[BASE.replace("shop", "{name}") + "/deliveries"]) == {"get"}


def test_add_list_ping_deliveries_remove(world: World, sink: Sink) -> None:
    c, admin = world.client, world.admin
    added = c.post(BASE, headers=admin, json={"url": sink.url, "events": ["release.failed", "release.succeeded"]})
    assert added.status_code == 201, added.text
    hook = added.json()
    secret = hook.pop("secret")
    assert len(secret) >= 40
    assert hook["events"] == ["release.succeeded", "release.failed"] and hook["environment"] is None
    [event] = world.published
    assert (event.kind, event.actor, event.app, event.detail["webhook"]) == ("webhook.added", "root", "shop", hook["id"])

    listed = c.get(BASE, headers=admin)
    assert listed.json() == [hook] and secret not in listed.text

    pinged = c.post(f"{BASE}/{hook['id']}/ping", headers=admin).json()
    assert (pinged["event"], pinged["status"], pinged["response"]) == ("ping", "delivered", 200)
    assert pinged["payload"]["event"] == "ping" and pinged["payload"]["webhook"] == hook["id"]
    [got] = sink.received
    assert wh.verify(secret, got.body, got.headers["X-Dockyard-Signature"])
    assert json.loads(got.body) == pinged["payload"]

    deliveries = c.get(f"{BASE}/deliveries", headers=admin, params={"webhook": hook["id"]})
    assert [d["id"] for d in deliveries.json()] == [pinged["id"]]

    assert c.delete(f"{BASE}/{hook['id']}", headers=admin).status_code == 204
    assert world.published[-1].kind == "webhook.removed"
    assert c.get(BASE, headers=admin).json() == []
    gone = c.delete(f"{BASE}/{hook['id']}", headers=admin)
    assert gone.status_code == 404 and gone.json()["error"] == f"shop has no webhook {hook['id']}"


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"url": "ftp://example.com/"}, 400, "only http and https"),
    ({"url": "https://me:pw@example.com/"}, 400, "may not hold a user name or password"),
    ({"url": "https://example.com/", "events": ["deploy.done"]}, 400, "unknown webhook event 'deploy.done'"),
    ({"url": "https://example.com/", "environment": "recette"}, 404, "shop has no environment 'recette'"),
    ({"url": "https://example.com/", "secret": "short"}, 400, "16 to 256 printable characters"),
])
def test_bad_input_is_a_clear_4xx_and_nothing_is_stored(world: World, body: dict[str, object], status: int,
                                                        error: str) -> None:
    answer = world.client.post(BASE, headers=world.admin, json=body)
    assert answer.status_code == status
    assert error in answer.json()["error"] and answer.json()["hint"]
    assert world.webhooks.of("shop") == [] and world.published == []


def test_an_unknown_app_and_a_missing_body(world: World) -> None:
    answer = world.client.post("/api/v1/apps/nope/webhooks", headers=world.admin, json={"url": "https://x.example/"})
    assert answer.status_code == 404 and answer.json()["error"] == "no app named 'nope'"
    assert world.client.post(BASE, headers=world.admin, json={}).status_code == 422
    assert world.client.get(f"{BASE}/deliveries", headers=world.admin, params={"webhook": 5}).status_code == 404


def test_webhooks_are_admins_only(world: World) -> None:
    assert world.client.get(BASE).status_code == 401
    for method, path in [("GET", BASE), ("POST", BASE), ("GET", f"{BASE}/deliveries"), ("DELETE", f"{BASE}/1"),
                         ("POST", f"{BASE}/1/ping")]:
        answer = world.client.request(method, path, headers=world.developer, json={"url": "https://x.example/"})
        assert answer.status_code == 403, (method, path)
    assert world.webhooks.of("shop") == []
