"""Rollback: an environment returns to one of its earlier releases by that release's record — the
same images pinned by digest, the same stack and configuration (variables as they were, secrets
by the versions it used) — through the same release path as a deploy (start, ready, switch,
drain, stop), without building anything. It is recorded as a new release of the same commit,
by a job of kind ``rollback``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockyard.domain import names
from dockyard.domain.errors import Conflict, DockyardError, NotFound
from dockyard.domain.model import DEFAULT_ENVIRONMENT, Job, ReleaseStatus
from dockyard.domain.records import ReleaseRecord
from dockyard.ports import Store
from dockyard.services.environments import Submit
from dockyard.services.release import Releaser, Say, release_content

KIND = "rollback"
RAN = (ReleaseStatus.LIVE, ReleaseStatus.SUPERSEDED)  # releases that once served: the ones to return to


@dataclass
class Rollbacks:
    store: Store
    releaser: Releaser
    submit: Submit
    after: Callable[[str], None] | None = None  # given the app once a rollback ends (secret files' upkeep)

    def target(self, app: str, env: str, release_id: int | None = None) -> ReleaseRecord:
        """The release to return to: ``release_id``, or the newest one that served before the
        live one and runs something else. Refused when it is another environment's, never
        served, live already, or its images went with garbage collection."""
        environment = self.store.get_environment(names.app_name(app), names.environment_name(env))
        live = self.store.live_release(environment.app, environment.name)
        where = f"{environment.app}'s environment {environment.name}"
        if release_id is None:  # the newest earlier one that runs something else (a no-op deploy is a release too)
            now = release_content(live.services) if live is not None else None
            earlier = [r for r in self.store.list_releases(environment.app, 500, environment.name)
                       if r.status in RAN and (live is None or r.id < live.id) and release_content(r.services) != now]
            if not earlier:
                raise DockyardError(f"{where} has no earlier release to roll back to",
                                    f"list its releases: dockyard releases {environment.app} --env {environment.name}")
            release_id = earlier[0].id  # checked below as a named one: its images may have been collected
        try:
            found = self.store.get_release(release_id)
        except NotFound:
            found = None
        if found is None or (found.app, found.environment) != (environment.app, environment.name):
            raise NotFound(f"{where} has no release {release_id}",
                           f"list its releases: dockyard releases {environment.app} --env {environment.name}")
        if found.status not in RAN:
            raise DockyardError(f"release {release_id} of {where} never served ({found.status}): nothing to return to",
                                "pick a release that was live: dockyard releases "
                                f"{environment.app} --env {environment.name}")
        if live is not None and found.id == live.id:
            raise Conflict(f"release {release_id} is {where}'s live release already")
        if not found.services:
            raise DockyardError(f"release {release_id} of {where} recorded no services: nothing to return to")
        gone = self._collected(found)
        if gone:
            raise DockyardError(f"release {release_id} of {where} cannot be returned to: its image"
                                f"{'s' if len(gone) > 1 else ''} {', '.join(gone)} went with garbage collection",
                                "releases within retention keep their images (DOCKYARD_KEEP_RELEASES); pick a newer "
                                f"one: dockyard releases {environment.app} --env {environment.name}")
        return found

    def _collected(self, release: ReleaseRecord) -> list[str]:
        """The release's images dockyard built and no longer has (``dockyard gc`` removed them)."""
        kept = {(i.repository, i.digest) for i in self.store.list_images(release.app)}
        gone = []
        for s in release.services:
            reference, _, digest = s.image.partition("@")
            repository = reference.split("/", 1)[-1]  # after the registry's host:port
            if digest and repository.startswith(f"{release.app}/") and (repository, digest) not in kept:
                gone.append(f"{repository}@{digest[:19]}")
        return gone

    def queue(self, app: str, env: str, actor: str, release_id: int | None = None) -> Job:
        """Queue the rollback job (it runs after any job of the environment under way)."""
        found = self.target(app, env, release_id)
        return self.submit(KIND, found.app, {"release": str(found.id), "commit": found.commit, "actor": actor},
                           found.environment)

    def rollback_job(self, job: Job, say: Say) -> None:
        found = self.target(job.app, job.environment, int(job.payload["release"]))
        app = self.store.get_app(found.app)
        where = "" if found.environment == DEFAULT_ENVIRONMENT else f" in {found.environment}"
        say(f"-----> Rolling back {app.name}{where} to release {found.id} (commit {found.commit[:10]}, "
            f"{', '.join(s.name for s in found.services)}): nothing to build, its images by digest")
        artifact = found.artifact
        try:
            self.releaser.release(app, found.environment, found.commit, found.services, job.id, say,
                                  config=found.config, artifact=(lambda: artifact) if artifact else None,
                                  watch=False)  # it served before: back in seconds, not after a window
        finally:
            if self.after is not None:
                self.after(app.name)
