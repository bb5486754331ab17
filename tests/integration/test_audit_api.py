"""The audit log through the real API app (FastAPI's TestClient, no lifespan: no engine) on a real
SQLite store: a token created is recorded with who, from where and what; a denied request is
recorded as access.denied; `dockyard audit` prints the log and its verification."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dockyard.adapters.sql_store import SqlStore
from dockyard.config import Settings
from dockyard.entrypoints import cli_http
from dockyard.entrypoints.api import create_app
from dockyard.entrypoints.cli import cli
from dockyard.services.access import Access
from dockyard.services.audit import Audit
from dockyard.services.events import Events

pytestmark = pytest.mark.integration


class Api(TestClient):
    """The API app in this process; entered as a client is (`with client() as c`), it does not run
    the app's lifespan, which would start the whole platform."""

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        return None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SimpleNamespace]:
    store = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
    store.migrate()
    events, audit, access = Events(), Audit(store), Access(store)
    events.subscribe(audit.record)
    api = create_app(Settings(home=tmp_path))
    api.state.platform = SimpleNamespace(access=access, events=events, audit=audit)  # what these routes use
    admin = access.first_admin()
    assert admin is not None
    yield SimpleNamespace(api=api, access=access, audit=audit, db=tmp_path / "dockyard.db",
                          admin=Api(api, headers={"Authorization": f"Bearer {admin}"}))


def entries(world: SimpleNamespace, **params: Any) -> list[dict[str, Any]]:
    answer = world.admin.get("/api/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def test_a_token_created_and_revoked_through_the_api_is_recorded(world: SimpleNamespace) -> None:
    made = world.admin.post("/api/v1/tokens", json={"name": "ci", "role": "developer"})
    assert made.status_code == 201, made.text
    assert world.admin.delete("/api/v1/tokens/ci").status_code == 204
    revoked, created = entries(world)
    assert {k: created[k] for k in ("actor", "source", "action", "app", "detail")} == {
        "actor": "admin", "source": "testclient", "action": "token.created", "app": None,
        "detail": {"token": "ci", "user": "ci", "role": "developer"}}
    assert made.json()["token"] not in str(created)
    assert (revoked["action"], revoked["detail"], revoked["prev_hash"]) == ("token.revoked", {"token": "ci"},
                                                                            created["hash"])
    assert world.admin.get("/api/v1/audit/verify").json() == {"ok": True, "entries": 2, "first_broken": None,
                                                              "reason": "", "head": revoked["hash"]}


def test_a_denied_request_answers_403_with_the_reason_and_is_recorded(world: SimpleNamespace) -> None:
    token = world.admin.post("/api/v1/tokens", json={"name": "dev", "role": "developer"}).json()["token"]
    denied = Api(world.api, headers={"Authorization": f"Bearer {token}"}).get("/api/v1/audit")
    assert denied.status_code == 403
    assert "may not read the audit log" in denied.json()["error"]
    hook = world.access.mint_hook_token("shop", "ana")
    assert Api(world.api, headers={"Authorization": f"Bearer {hook}"}).get("/api/v1/tokens").status_code == 403
    by_hook, by_dev = entries(world, limit=2)
    assert {k: by_dev[k] for k in ("actor", "source", "action")} == {
        "actor": "dev", "source": "testclient", "action": "access.denied"}
    assert by_dev["detail"] == {"action": "read the audit log", "reason": denied.json()["error"],
                                "request": "GET /api/v1/audit"}
    assert (by_hook["actor"], by_hook["action"], by_hook["detail"]["action"]) == (
        "ana", "access.denied", "create, list or revoke tokens")


def test_the_routes_are_in_the_openapi_schema(world: SimpleNamespace) -> None:
    paths = world.admin.get("/openapi.json").json()["paths"]
    assert {"/api/v1/audit", "/api/v1/audit/verify"} <= set(paths)
    assert {p["name"] for p in paths["/api/v1/audit"]["get"]["parameters"]} == {"app", "limit", "before"}


def test_dockyard_audit_lists_and_verifies(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_http, "client", lambda: world.admin)
    for name in ("ci", "deploy-bot", "backup"):
        world.admin.post("/api/v1/tokens", json={"name": name})
    runner = CliRunner()
    listed = runner.invoke(cli, ["audit", "--limit", "2"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["ID", "AT", "ACTOR", "SOURCE", "ACTION", "APP", "ENV", "DETAIL"]
    assert "token=backup" in lines[1] and "token=deploy-bot" in lines[2] and len(lines) == 3
    verified = runner.invoke(cli, ["audit", "--verify"])
    assert verified.exit_code == 0 and verified.output.startswith("audit log verified: 3 entries\n")
    with sqlite3.connect(world.db) as db:
        db.execute("UPDATE audit_log SET source = '203.0.113.9' WHERE id = 2")
    broken = runner.invoke(cli, ["audit", "--verify"])
    assert broken.exit_code == 1
    assert broken.output == "audit log broken at entry 2: its fields do not match its hash: the entry was changed\n"
