"""Builds of an app's source repos (services/repos.py), and the stack's images resolved to them.

A push to a source repo builds that repo's images at the pushed commit (services/build.py, the
Dockerfiles parsed in the bounded child: services/inspect.py). Then every other source repo of
the app whose Dockerfiles, at the head of the same branch, build FROM an image just built (or
FROM an image of a repo so rebuilt) is rebuilt, in order: a repo after every rebuilt repo it takes
a base from (domain/builds.py ``rebuild_order``; the seed's base-container-images, then api,
vitrine and supervision). Dependents are rebuilt, not marked
stale: a release never runs an image built on a base the app has since replaced.

The deploy repo's stack names those images by their Dockerfile headers' names and versions:
``resolve`` pins each to the newest build of that name and version (domain/builds.py).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from dockyard.domain import builds, names
from dockyard.domain.errors import DockyardError
from dockyard.domain.images import ImageSpec
from dockyard.domain.model import App, BuiltImage, ServiceSpec
from dockyard.ports import ImageBuilder, SourceRepos, Store
from dockyard.services.build import Builds, Source

Say = Callable[[str], None]
InspectImages = Callable[[App, str, str], tuple[ImageSpec, ...]]  # (app, repo key, commit) -> images


@dataclass
class SourceBuilds:
    store: Store
    repos: SourceRepos
    builder: ImageBuilder
    builds: Builds
    images_of: InspectImages

    def build(self, app: App, repo: str, commit: str, branch: str, say: Say,
              pushes: ThreadPoolExecutor) -> list[BuiltImage]:
        """Build ``repo``'s images at ``commit``, then rebuild its dependents in order; return
        every build recorded, once pushed."""
        specs = self.images_of(app, names.repo_key(app.name, repo), commit)
        say(f"-----> Building {repo} at {commit[:10]} ({branch})")
        made = self._build(app, repo, commit, branch, specs, say, pushes)
        heads: dict[str, tuple[str, tuple[ImageSpec, ...]]] = {}  # the other source repos at the branch's head
        for source in self.store.repos(app.name):
            if source.role == "source" and source.name != repo:
                found = self._head(app, source.name, branch, say)
                if found is not None:
                    heads[source.name] = found
        order = builds.rebuild_order({s.declared_name for s in specs if s.declared_name},
                                     {name: found[1] for name, found in heads.items()})
        for other in order:
            head, other_specs = heads[other]
            say(f"-----> {other} builds FROM an image just built: rebuilding it at {head[:10]} ({branch})")
            made += self._build(app, other, head, branch, other_specs, say, pushes)
        return made

    def _head(self, app: App, repo: str, branch: str, say: Say) -> tuple[str, tuple[ImageSpec, ...]] | None:
        """The repo's head of ``branch`` and its images there; None when it has no such branch
        (or its Dockerfiles there cannot be read, which is said)."""
        key = names.repo_key(app.name, repo)
        head = self.repos.head(key, branch)
        if head is None:
            return None
        try:
            return head, self.images_of(app, key, head)
        except DockyardError as exc:
            say(f" !     warning: {repo} at {head[:10]} ({branch}) is not rebuilt: {exc.message}")
            return None

    def _build(self, app: App, repo: str, commit: str, branch: str, specs: tuple[ImageSpec, ...], say: Say,
               pushes: ThreadPoolExecutor) -> list[BuiltImage]:
        done = self.builds.build_all(app, commit, list(specs), say, pushes, source=Source(repo, branch))
        digests = {b.push.result() for b in done}  # recorded once pushed: what dependents and the stack resolve to
        return [i for i in self.store.list_images(app.name)
                if i.repo == repo and f"{self.builds.registry.address}/{i.repository}@{i.digest}" in digests]

    def resolve(self, app: App, services: tuple[ServiceSpec, ...], branch: str, say: Say) -> tuple[ServiceSpec, ...]:
        """Each service whose image names one of the app's builds (by its header's name and
        version, or in dockyard's registry) pinned to the newest such build by digest."""
        records = self.store.list_images(app.name)
        if not records:
            return services
        registry = self.builds.registry.address
        out = []
        for service in services:
            found = builds.newest_build(records, service.image, branch, registry)
            if found is None:
                out.append(service)
                continue
            say(f"       {service.name}: {service.image} is {found.name or found.repository}:{found.version} "
                f"built from {found.repo or app.name} at {found.commit[:10]} ({found.digest[7:19]})")
            local = self.builder.image_id(found.image_id)
            out.append(replace(service, image=builds.pinned(found, registry), image_id=local or ""))
        return tuple(out)

    def last_built(self, app: str, repo: str, branch: str) -> str | None:
        """The commit of ``repo``'s newest build on ``branch`` (asked before a build: the value
        stream's "since")."""
        return next((i.commit for i in self.store.list_images(app) if i.repo == repo and i.branch == branch), None)
