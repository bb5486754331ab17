"""An app's repositories besides its own, in SQL (a mixin of SqlStore)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from dockyard.adapters import sql_tables as t
from dockyard.adapters.sql_users import _now, _utc
from dockyard.domain.errors import Conflict, NotFound
from dockyard.domain.model import SourceRepo


def _repo(row: Any) -> SourceRepo:
    return SourceRepo(app=row.app, name=row.name, role=row.role, created_at=_utc(row.created_at))


class SqlRepos:
    engine: Engine

    def add_repo(self, repo: SourceRepo) -> SourceRepo:
        try:
            with self.engine.begin() as c:
                if repo.role == "deploy" and c.execute(select(t.repos.c.name).where(
                        t.repos.c.app == repo.app, t.repos.c.role == "deploy")).first() is not None:
                    raise Conflict(f"{repo.app} has a deploy repo already",
                                   f"list them: dockyard repos list {repo.app}")
                c.execute(insert(t.repos).values(app=repo.app, name=repo.name, role=repo.role, created_at=_now()))
        except IntegrityError:
            raise Conflict(f"{repo.app} has a repo named {repo.name!r} already",
                           f"pick another name, or remove it first: dockyard repos remove {repo.app} {repo.name}") from None
        return self.get_repo(repo.app, repo.name)

    def get_repo(self, app: str, name: str) -> SourceRepo:
        with self.engine.connect() as c:
            row = c.execute(select(t.repos).where(t.repos.c.app == app, t.repos.c.name == name)).first()
        if row is None:
            raise NotFound(f"{app} has no repo named {name!r}", f"list them: dockyard repos list {app}")
        return _repo(row)

    def repos(self, app: str) -> list[SourceRepo]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.repos).where(t.repos.c.app == app).order_by(t.repos.c.id))
            return [_repo(r) for r in rows]

    def remove_repo(self, app: str, name: str) -> None:
        self.get_repo(app, name)
        with self.engine.begin() as c:
            c.execute(delete(t.repos).where(t.repos.c.app == app, t.repos.c.name == name))
