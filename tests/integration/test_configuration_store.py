"""The store's variables and secrets on a real SQLite file (schema by Alembic): scoped by app and
environment, secret versions that never repeat, re-sealing in one transaction, and an upgrade of
a database made before them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain.errors import NotFound
from dockyard.domain.model import App, BuiltImage, ReleaseStatus, SealedSecret

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    s = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
    s.migrate()
    s.create_app(App("shop"))
    s.create_app(App("blog"))
    return s


def sealer(text: str, key: str = "k1"):  # type: ignore[no-untyped-def]
    return lambda version: (key, f"{text}@{version}".encode())


def test_variables_are_scoped_by_app_and_environment(store: SqlStore) -> None:
    assert store.set_variables("shop", "production", {"B": "2", "A": "1"}) == {"A": "1", "B": "2"}
    store.set_variables("shop", "staging", {"A": "staging"})
    store.set_variables("blog", "production", {"A": "blog"})
    assert store.set_variables("shop", "production", {"A": "one", "B": None, "GONE": None}) == {"A": "one"}
    assert store.variables("shop", "production") == {"A": "one"}
    assert store.variables("shop", "staging") == {"A": "staging"}
    assert store.variables("blog", "production") == {"A": "blog"}
    assert store.variables("shop", "nowhere") == {}


def test_each_change_of_a_secret_is_a_new_version(store: SqlStore) -> None:
    first = store.add_secret("shop", "production", "token", sealer("one"))
    assert (first.name, first.version, first.versions, first.key_id) == ("token", 1, 1, "k1")
    second = store.add_secret("shop", "production", "token", sealer("two", "k2"))
    assert (second.version, second.versions, second.key_id) == (2, 2, "k2")
    assert second.created_at == first.created_at and second.updated_at is not None
    assert second.updated_at >= second.created_at  # type: ignore[operator]
    store.add_secret("shop", "staging", "token", sealer("staging"))
    store.add_secret("shop", "production", "db", sealer("db"))

    assert [(s.name, s.version, s.versions) for s in store.secrets("shop", "production")] == [
        ("db", 1, 1), ("token", 2, 2)]
    assert store.sealed_secret("shop", "production", "token", 1) == SealedSecret(
        "shop", "production", "token", 1, "k1", b"one@1")
    assert store.sealed_secret("shop", "staging", "token", 1).ciphertext == b"staging@1"
    with pytest.raises(NotFound, match="no version 3 of secret 'token'"):
        store.sealed_secret("shop", "production", "token", 3)
    assert [s.ciphertext for s in store.sealed_secrets("shop")] == [b"one@1", b"two@2", b"staging@1", b"db@1"]
    assert store.secrets("blog", "production") == []


def test_a_removed_secret_set_again_goes_on_from_its_last_version(store: SqlStore) -> None:
    store.add_secret("shop", "production", "token", sealer("one"))
    store.add_secret("shop", "production", "token", sealer("two"))
    store.remove_secret("shop", "production", "token")
    assert store.secrets("shop", "production") == []
    assert store.sealed_secrets("shop") == []
    with pytest.raises(NotFound, match="no version 2"):
        store.sealed_secret("shop", "production", "token", 2)
    with pytest.raises(NotFound, match="no secret named 'token'"):
        store.remove_secret("shop", "production", "token")
    again = store.add_secret("shop", "production", "token", sealer("three"))
    assert (again.version, again.versions) == (3, 1)  # a container holding v1 or v2 is never taken for it
    with pytest.raises(NotFound):
        store.remove_secret("shop", "staging", "token")


def test_resealing_is_all_or_nothing(store: SqlStore) -> None:
    store.add_secret("shop", "production", "a", sealer("a"))
    store.add_secret("blog", "production", "b", sealer("b"))

    def half(sealed: SealedSecret) -> tuple[str, bytes]:
        if sealed.name == "b":
            raise RuntimeError("cut off")
        return "k2", b"resealed"

    with pytest.raises(RuntimeError):
        store.reseal_secrets(half)
    assert {(s.key_id, s.ciphertext) for s in store.sealed_secrets()} == {("k1", b"a@1"), ("k1", b"b@1")}
    assert store.reseal_secrets(lambda s: ("k2", s.ciphertext + b"!")) == 2
    assert {(s.key_id, s.ciphertext) for s in store.sealed_secrets()} == {("k2", b"a@1!"), ("k2", b"b@1!")}


def test_a_deleted_app_takes_its_variables_and_secrets(store: SqlStore) -> None:
    store.set_variables("shop", "production", {"A": "1"})
    store.add_secret("shop", "production", "token", sealer("one"))
    store.add_secret("blog", "production", "token", sealer("blog"))
    store.delete_app("shop")
    store.create_app(App("shop"))
    assert store.variables("shop", "production") == {}
    assert store.secrets("shop", "production") == []
    assert store.add_secret("shop", "production", "token", sealer("new")).version == 1
    assert [s.app for s in store.sealed_secrets()] == ["blog", "shop"]


def test_a_release_records_its_configuration(store: SqlStore) -> None:
    release = store.create_release("shop", "production", "a" * 40, None)
    assert store.list_releases("shop")[0].config == {}
    store.set_release_config(release, {"variables": ["A"], "secrets": {"token": 2}})
    store.set_release(release, ReleaseStatus.LIVE)
    live = store.live_release("shop", "production")
    assert live is not None and live.config == {"variables": ["A"], "secrets": {"token": 2}}


def test_a_database_from_before_secrets_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = SqlStore(f"sqlite:///{path}")
    old.migrate()
    old.create_app(App("shop"))
    old.create_release("shop", "production", "a" * 40, None)
    with sqlite3.connect(path) as db:  # back to the schema of 0002, a release in it
        db.execute("DROP TABLE environments")
        db.execute("ALTER TABLE jobs DROP COLUMN environment")
        db.execute("ALTER TABLE releases DROP COLUMN artifact")
        db.execute("DROP TABLE secrets")
        db.execute("DROP TABLE variables")
        db.execute("ALTER TABLE releases DROP COLUMN config")
        db.execute("DROP TABLE collected_images")  # (0006)
        undo_since_0007(db)
        db.execute("UPDATE alembic_version SET version_num = '0002'")
    upgraded = SqlStore(f"sqlite:///{path}")
    upgraded.migrate()
    assert upgraded.list_releases("shop")[0].config == {}
    assert upgraded.add_secret("shop", "production", "token", sealer("x")).version == 1


def undo_0010(db: sqlite3.Connection) -> None:
    db.execute("DROP TABLE repos")
    for column in ("name", "source_version", "repo", "branch"):
        db.execute(f"ALTER TABLE images DROP COLUMN {column}")


def undo_0009(db: sqlite3.Connection) -> None:
    """Back to the schema before promotions (0009), and what came after it (0010)."""
    undo_0010(db)
    db.execute("DROP TABLE promotions")
    db.execute("DROP TABLE approvals")


def undo_since_0007(db: sqlite3.Connection) -> None:
    """Back to the schema before users, protected environments, the audit log and webhooks (0007),
    release timelines (0008) and promotions (0009)."""
    undo_0009(db)
    db.execute("ALTER TABLE releases DROP COLUMN timeline")
    for table in ("users", "audit_log", "webhooks", "webhook_deliveries"):
        db.execute(f"DROP TABLE {table}")
    db.execute('ALTER TABLE tokens DROP COLUMN "user"')
    if db.execute("SELECT name FROM sqlite_master WHERE name = 'environments'").fetchone():
        db.execute("ALTER TABLE environments DROP COLUMN protected")


def test_a_database_from_before_timelines_keeps_its_releases(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = SqlStore(f"sqlite:///{path}")
    old.migrate()
    old.create_app(App("shop"))
    release = old.create_release("shop", "production", "a" * 40, None)
    with sqlite3.connect(path) as db:
        undo_0009(db)
        db.execute("ALTER TABLE releases DROP COLUMN timeline")
        db.execute("UPDATE alembic_version SET version_num = '0007'")
    upgraded = SqlStore(f"sqlite:///{path}")
    upgraded.migrate()
    assert upgraded.get_release(release).timeline == {}
    upgraded.set_release_timeline(release, {"pushed_at": "2026-11-28T10:00:00Z"})
    assert upgraded.get_release(release).timeline == {"pushed_at": "2026-11-28T10:00:00Z"}


def test_a_database_from_before_users_gets_a_user_per_token(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = SqlStore(f"sqlite:///{path}")
    old.migrate()
    old.create_app(App("shop"))
    token = old.create_token("ci", "admin")
    with sqlite3.connect(path) as db:
        undo_since_0007(db)
        db.execute("UPDATE alembic_version SET version_num = '0006'")
    upgraded = SqlStore(f"sqlite:///{path}")
    upgraded.migrate()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name, role FROM users").fetchall() == [("ci", "admin")]
        assert db.execute('SELECT name, "user" FROM tokens').fetchall() == [("ci", "ci")]
        assert db.execute("SELECT protected FROM environments").fetchall() == [(0,)]
    found = upgraded.verify_token(token)
    assert found is not None and (found.name, found.role) == ("ci", "admin")


def test_a_database_from_before_environments_gets_production_for_every_app(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = SqlStore(f"sqlite:///{path}")
    old.migrate()
    for name in ("shop", "blog"):
        old.create_app(App(name))
    old.enqueue("deploy", "shop", {"commit": "a" * 40})
    live = old.create_release("shop", "production", "a" * 40, None)
    old.set_release(live, ReleaseStatus.LIVE)
    with sqlite3.connect(path) as db:  # back to the schema of 0003: no environments
        db.execute("DROP TABLE environments")
        db.execute("ALTER TABLE jobs DROP COLUMN environment")
        db.execute("ALTER TABLE releases DROP COLUMN artifact")
        db.execute("DROP TABLE collected_images")  # (0006)
        undo_since_0007(db)
        db.execute("UPDATE alembic_version SET version_num = '0003'")
    upgraded = SqlStore(f"sqlite:///{path}")
    upgraded.migrate()
    assert [(e.app, e.name, e.target, e.branch) for a in ("blog", "shop") for e in upgraded.environments(a)] == [
        ("blog", "production", "local", None), ("shop", "production", "local", None)]
    assert [j.environment for j in upgraded.list_jobs("shop")] == ["production"]
    assert getattr(upgraded.live_release("shop", "production"), "id", None) == live  # the live release is still live


def test_a_database_from_before_scale_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = SqlStore(f"sqlite:///{path}")
    old.migrate()
    old.create_app(App("shop"))
    with sqlite3.connect(path) as db:  # back to the schema of 0004: environments keep no replica counts
        db.execute("ALTER TABLE environments DROP COLUMN replicas")
        db.execute("DROP TABLE collected_images")  # (0006)
        undo_since_0007(db)
        db.execute("UPDATE alembic_version SET version_num = '0004'")
    upgraded = SqlStore(f"sqlite:///{path}")
    upgraded.migrate()
    assert upgraded.get_environment("shop", "production").replicas == ()
    assert upgraded.set_environment_replicas("shop", "production", {"web": 2}).replicas == (("web", 2),)


def test_a_database_from_before_repos_keeps_its_images(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = SqlStore(f"sqlite:///{path}")
    old.migrate()
    old.create_app(App("shop"))
    old.add_image(BuiltImage(app="shop", repository="shop/web", version="1", tag="1", digest="sha256:" + "a" * 64,
                             image_id="sha256:" + "b" * 64, commit="c" * 40, size=1, dockerfile="Dockerfile"))
    with sqlite3.connect(path) as db:  # back to the schema of 0009
        undo_0010(db)
        db.execute("UPDATE alembic_version SET version_num = '0009'")
    upgraded = SqlStore(f"sqlite:///{path}")
    upgraded.migrate()
    [image] = upgraded.list_images("shop")
    assert (image.repository, image.name, image.repo, image.branch, image.source_version) == ("shop/web", "", "", "", "")
    assert upgraded.repos("shop") == []
