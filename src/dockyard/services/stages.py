"""Which environments take promotions instead of deploys: the one place that reads it.

An environment is promoted from another when the dockyard.yml of the commit being deployed says
so (``promotion: {from: ...}``), or when the dockyard.yml of the release live there says so: a
deploy of an older commit, or of a branch whose file has no ``promotion:``, does not slip past
the stage graph. Loosening an environment's gates takes an admin: their override deploy of a
commit whose file no longer promotes it."""

from __future__ import annotations

from dockyard.domain import dockyard_file
from dockyard.domain.dockyard_file import DockyardFile
from dockyard.domain.errors import DockyardError
from dockyard.domain.limits import MAX_DOCKYARD_FILE_BYTES
from dockyard.ports import ReleaseStore, SourceRepos


def declared(repos: SourceRepos, app: str, commit: str, incoming: str = "") -> DockyardFile | None:
    """The commit's dockyard.yml, checked; None when it has none or it cannot be read (the push
    check refuses such a file first)."""
    try:
        if dockyard_file.SOURCE not in repos.files(app, commit, incoming):
            return None
        text = repos.read(app, commit, dockyard_file.SOURCE, MAX_DOCKYARD_FILE_BYTES, incoming)
        return dockyard_file.load(text) if text is not None else None
    except DockyardError:
        return None


def declared_source(repos: SourceRepos, app: str, commit: str, env: str, incoming: str = "") -> str | None:
    """The environment ``env`` is promoted from, as the commit's dockyard.yml says; None if not."""
    found = declared(repos, app, commit, incoming)
    decl = found.environment(env) if found is not None else None
    return decl.promotion.source if decl is not None and decl.promotion is not None else None


def live_source(store: ReleaseStore, repos: SourceRepos, app: str, env: str, commit: str = "") -> str | None:
    """The environment ``env`` is promoted from, as the dockyard.yml of its live release says
    (None when nothing is live, or the live release is of ``commit``)."""
    live = store.live_release(app, env)
    return declared_source(repos, app, live.commit, env) if live is not None and live.commit != commit else None


def promoted_from(store: ReleaseStore, repos: SourceRepos, app: str, env: str, commit: str,
                  incoming: str = "") -> str | None:
    """The environment ``env`` takes its releases from, by the commit's file or the live release's."""
    return declared_source(repos, app, commit, env, incoming) or live_source(store, repos, app, env, commit)
