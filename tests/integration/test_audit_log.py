"""The audit log on a real SQLite file (schema by Alembic): appended by many threads as one chain,
read back newest first, and verified, naming the entry someone changed or removed with sqlite3."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from dockyard.adapters import sql_audit
from dockyard.adapters.sql_store import SqlStore
from dockyard.domain.audit import GENESIS, first_broken
from dockyard.services.audit import Audit
from dockyard.services.events import Event, Events
from tests.integration.test_store_and_jobs import db_path as db_path  # the fixtures, re-exported
from tests.integration.test_store_and_jobs import store as store

pytestmark = pytest.mark.integration




@pytest.fixture
def audit(store: SqlStore) -> Audit:
    return Audit(store)


def told(audit: Audit, n: int, app: str | None = "shop") -> None:
    for i in range(n):
        audit.record(Event("variable.set", f"user{i}", "10.0.0.7", app, "production", {"names": [f"K{i}"]}))


def sql(db_path: Path, statement: str) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute(statement)


# -- appended, read back ----------------------------------------------------------------------------
def test_an_event_becomes_an_entry_saying_who_when_what_and_from_where(audit: Audit, store: SqlStore) -> None:
    events = Events()
    events.subscribe(audit.record)
    events.publish(Event("token.created", "ana", "192.0.2.4", detail={"token": "ci", "user": "ci", "role": "admin"}))
    [entry] = audit.entries()
    assert (entry.id, entry.actor, entry.source, entry.action, entry.app, entry.environment) == \
        (1, "ana", "192.0.2.4", "token.created", None, None)
    assert entry.detail == {"token": "ci", "user": "ci", "role": "admin"}
    assert entry.at.endswith("+00:00") and entry.prev_hash == GENESIS and len(entry.hash) == 64
    assert list(store.all_audit_entries()) == [entry]


def test_entries_newest_first_by_app_and_page(audit: Audit) -> None:
    told(audit, 3, "shop")
    told(audit, 2, "blog")
    told(audit, 1, None)
    assert [e.id for e in audit.entries()] == [6, 5, 4, 3, 2, 1]
    assert [e.id for e in audit.entries("shop")] == [3, 2, 1]
    assert [e.id for e in audit.entries(limit=2)] == [6, 5]
    assert [e.id for e in audit.entries(limit=2, before=5)] == [4, 3]
    assert [e.id for e in audit.entries("blog", before=5)] == [4]


def test_long_names_are_cut_to_the_columns_before_they_are_hashed(audit: Audit, db_path: Path) -> None:
    audit.record(Event("x" * 100, "a" * 300, "s" * 300, "b" * 100, "e" * 100))
    [entry] = audit.entries()
    assert (len(entry.actor), len(entry.source), len(entry.action), len(entry.app or ""),
            len(entry.environment or "")) == (128, 128, 64, 64, 64)
    assert audit.verify()["ok"]


# -- one chain, whoever appends ---------------------------------------------------------------------
def test_threads_appending_at_once_keep_one_chain(audit: Audit, store: SqlStore) -> None:
    start = threading.Barrier(8)

    def append(worker: int) -> None:
        start.wait()
        for i in range(25):
            audit.record(Event("deploy.queued", f"w{worker}", "10.0.0.1", "shop", "production", {"job": i}))

    threads = [threading.Thread(target=append, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    entries = list(store.all_audit_entries())
    assert len(entries) == 200 and [e.id for e in entries] == list(range(1, 201))
    assert len({e.prev_hash for e in entries}) == 200  # no two entries follow the same one
    assert audit.verify() == {"ok": True, "entries": 200, "first_broken": None, "reason": "",
                              "head": entries[-1].hash}


def test_another_writer_without_the_lock_cannot_fork_the_chain(db_path: Path, store: SqlStore) -> None:
    """Two stores on one file, each with a lock of its own (as two processes would be): the insert
    holds only while the hash it links to is still the newest."""
    other = SqlStore(f"sqlite:///{db_path}")
    other._audit_lock = threading.Lock()  # type: ignore[misc]
    start = threading.Barrier(2)

    def append(s: SqlStore, name: str) -> None:
        start.wait()
        for i in range(40):
            s.append_audit(f"2024-05-01T10:00:00.{i:06d}+00:00", name, "here", "x", None, None, {"i": i})

    threads = [threading.Thread(target=append, args=(s, n)) for s, n in ((store, "a"), (other, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    entries = list(store.all_audit_entries())
    assert len(entries) == 80 and first_broken(entries) is None


# -- verified ----------------------------------------------------------------------------------------
def test_an_empty_log_verifies(audit: Audit) -> None:
    assert audit.verify() == {"ok": True, "entries": 0, "first_broken": None, "reason": "", "head": ""}


def test_a_row_edited_with_sqlite3_is_named(audit: Audit, db_path: Path) -> None:
    told(audit, 5)
    sql(db_path, "UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    assert audit.verify() == {"ok": False, "entries": 3, "first_broken": 3, "head": "",
                              "reason": "its fields do not match its hash: the entry was changed"}


def test_a_detail_edited_into_anything_is_named(audit: Audit, db_path: Path) -> None:
    told(audit, 3)
    sql(db_path, "UPDATE audit_log SET detail = 'not json' WHERE id = 2")
    assert audit.verify()["first_broken"] == 2
    sql(db_path, "UPDATE audit_log SET detail = '{\"names\": [\"K1\"]}' WHERE id = 2")  # the same, other spacing
    assert audit.verify()["ok"]


def test_a_middle_row_deleted_is_named_by_the_next(audit: Audit, db_path: Path) -> None:
    told(audit, 5)
    sql(db_path, "DELETE FROM audit_log WHERE id = 3")
    result = audit.verify()
    assert (result["ok"], result["first_broken"]) == (False, 4)
    assert result["reason"].startswith("its link does not match the hash of entry 2")


def test_the_first_row_deleted_is_named_by_the_next(audit: Audit, db_path: Path) -> None:
    told(audit, 3)
    sql(db_path, "DELETE FROM audit_log WHERE id = 1")
    assert audit.verify()["first_broken"] == 2


def test_a_long_log_is_walked_a_batch_at_a_time(audit: Audit, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_audit, "BATCH", 4)
    told(audit, 10)
    assert audit.verify()["entries"] == 10
    sql(db_path, "DELETE FROM audit_log WHERE id = 8")
    assert audit.verify()["first_broken"] == 9


def test_appending_after_a_break_links_to_the_newest_row(audit: Audit, db_path: Path) -> None:
    told(audit, 3)
    sql(db_path, "UPDATE audit_log SET actor = 'mallory' WHERE id = 2")
    told(audit, 2)
    assert audit.verify()["first_broken"] == 2  # still named, however much is appended after
