"""The stage graph's candidates and approvals on a real SQLite store (schema by Alembic)."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path

import pytest

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain.errors import Conflict, NotFound
from dockyard.domain.promotion import Approval, Gate

pytestmark = pytest.mark.integration
GATE = Gate("recette", datetime.timedelta(minutes=5), 1, ("ann", "bob"), True)


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    s = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
    s.migrate()
    return s


def test_a_candidate_is_kept_with_its_gate_once_per_release_and_environment(store: SqlStore) -> None:
    made = store.create_promotion("shop", "production", 7, "recette", "c" * 40, GATE, "dev")
    assert (made.status, made.gate, made.pusher, made.source_release) == ("awaiting", GATE, "dev", 7)
    assert store.create_promotion("shop", "production", 7, "recette", "c" * 40, GATE, "dev").id == made.id
    other = store.create_promotion("shop", "production", 9, "recette", "d" * 40, GATE, "dev")
    assert [p.id for p in store.promotions("shop", "production", "awaiting")] == [other.id, made.id]  # newest first
    assert store.promotion_of("production", 9) == other
    with pytest.raises(NotFound):
        store.promotion_of("staging", 9)


def test_a_state_change_can_wait_for_the_state_it_expects(store: SqlStore) -> None:
    made = store.create_promotion("shop", "production", 7, "recette", "c" * 40, GATE, "dev")
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(
        store.set_promotion(made.id, "promoting", expected="awaiting"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]  # one promotion job, whatever the race
    assert store.set_promotion(made.id, "promoted", release=12)
    found = store.get_promotion(made.id)
    assert (found.status, found.release) == ("promoted", 12) and found.decided_at is not None


def test_each_user_decides_once(store: SqlStore) -> None:
    made = store.create_promotion("shop", "production", 7, "recette", "c" * 40, GATE, "dev")
    store.add_approval(made.id, Approval("ann", True, "tested"))
    with pytest.raises(Conflict, match="ann decided on this release already"):
        store.add_approval(made.id, Approval("ann", False))
    store.add_approval(made.id, Approval("bob", False, "no"))
    assert [(a.user, a.approve, a.comment) for a in store.approvals_of(made.id)] == [("ann", True, "tested"),
                                                                                   ("bob", False, "no")]
