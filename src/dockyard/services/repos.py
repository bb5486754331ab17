"""An app's repos: its own (the deploy repo: the stack and dockyard.yml, and Dockerfiles of its
own if it has any) and source repos, each with its own git remote, that build images the stack
names (the seed's api, vitrine, supervision and base-container-images beside compose-containers).

``dockyard repos add APP NAME --role source`` makes a bare repository at ``/git/APP/NAME.git``; a
push to it builds its images, and each environment its branch deploys to gets a release of the
deploy repo's stack with every image resolved to its newest build (services/deploy.py,
domain/builds.py). ``--role deploy`` names the app's own repository NAME: it is then pushed to at
``/git/APP/NAME.git`` as well as ``/git/APP.git``; an app has one deploy repo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dockyard.domain import names
from dockyard.domain.errors import Conflict, DockyardError
from dockyard.domain.model import REPO_ROLES, SourceRepo
from dockyard.ports import SourceRepos, Store

DEPLOY, SOURCE = "deploy", "source"


@dataclass(frozen=True)
class RepoView:
    """A repo as `dockyard repos` shows it."""

    name: str
    role: str
    remote: str
    own: bool  # the app's own repository (the deploy repo)
    images: tuple[str, ...]  # the newest build of each image it built: NAME:VERSION
    built_at: datetime | None


@dataclass
class Repos:
    store: Store
    repos: SourceRepos
    url: str  # the server's URL, for remotes

    def find(self, app: str, name: str) -> SourceRepo | None:
        """The repo ``name`` of ``app``: None for the app's own (``name`` "" or the app's name,
        or the deploy repo's); a source repo, else NotFound."""
        if not name or name == app:
            return None
        found = self.store.get_repo(names.app_name(app), names.repo_name(name))
        return None if found.role == DEPLOY else found

    def key(self, app: str, name: str) -> str:
        """The repository SourceRepos reads for ``name`` (names.repo_key)."""
        found = self.find(app, name)
        return names.repo_key(app, found.name if found is not None else "")

    def sources(self, app: str) -> list[SourceRepo]:
        return [r for r in self.store.repos(app) if r.role == SOURCE]

    def add(self, app: str, name: str, role: str = SOURCE) -> SourceRepo:
        owner = self.store.get_app(names.app_name(app))
        name = names.repo_name(name)
        if role not in REPO_ROLES:
            raise DockyardError(f"unknown repo role {role!r}", "use --role source or --role deploy")
        if name == owner.name and role == SOURCE:
            raise Conflict(f"{name} is the app's own repository (its deploy repo)",
                           "give the source repo another name")
        added = self.store.add_repo(SourceRepo(owner.name, name, role))
        if role == SOURCE:
            try:
                self.repos.create(names.repo_key(owner.name, name))
            except BaseException:
                self.store.remove_repo(owner.name, name)
                raise
        return added

    def remove(self, app: str, name: str) -> None:
        """The repo and its git history go (its images stay until garbage collection); refused
        while a job of the app runs."""
        owner = self.store.get_app(names.app_name(app))
        found = self.store.get_repo(owner.name, names.repo_name(name))
        busy = [j for j in self.store.list_jobs(owner.name, limit=20) if not j.status.finished]
        if busy:
            raise Conflict(f"{owner.name} has a {busy[0].kind} job running (job {busy[0].id})",
                           f"wait for it to end (dockyard jobs show {busy[0].id} -f), then remove the repo")
        self.store.remove_repo(owner.name, found.name)
        if found.role == SOURCE:
            self.repos.delete(names.repo_key(owner.name, found.name))

    def remote(self, app: str, name: str = "") -> str:
        return f"{self.url}/git/{app}/{name}.git" if name else f"{self.url}/git/{app}.git"

    def list(self, app: str) -> list[RepoView]:
        """The app's own repository first (under its deploy repo's name, if it has one), then its
        source repos, each with the newest build of each image it built."""
        owner = self.store.get_app(names.app_name(app))
        found = self.store.repos(owner.name)
        deploy = next((r.name for r in found if r.role == DEPLOY), "")
        builds = self.store.list_images(owner.name)  # newest first

        def view(name: str, role: str, repo: str, own: bool) -> RepoView:
            mine = [b for b in builds if b.repo == repo]
            newest: dict[str, str] = {}
            for b in mine:
                newest.setdefault(b.name or b.repository, f"{b.name or b.repository}:{b.version}")
            return RepoView(name, role, self.remote(owner.name, name if not own else deploy), own,
                            tuple(sorted(newest.values())), mine[0].created_at if mine else None)

        out = [view(deploy or owner.name, DEPLOY, "", True)]
        out += [view(r.name, SOURCE, r.name, False) for r in found if r.role == SOURCE]
        return out
