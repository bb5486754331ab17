"""``dockyard scale APP SERVICE=N [--env ENV]``: how many containers run a service in an
environment, kept by the environment over the compose file's and dockyard.yml's counts (a
difference with dockyard.yml is reported at each deploy). The live release is released again
with the new counts, through the same path as a deploy (the replicas that stay keep running, the
missing ones start and pass the readiness gates, the extra ones drain and stop), and recorded as
a new release of the same commit by a job of kind ``scale``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dockyard.domain import names, replicas
from dockyard.domain.errors import DockyardError
from dockyard.domain.model import DEFAULT_ENVIRONMENT, Environment, Job
from dockyard.ports import Store
from dockyard.services.environments import Submit
from dockyard.services.release import Releaser, Say

KIND = "scale"


@dataclass
class Scaling:
    store: Store
    releaser: Releaser
    submit: Submit
    after: Callable[[str], None] | None = None  # given the app once a scale ends (secret files' upkeep)

    def set(self, app: str, env: str, actor: str, counts: Mapping[str, int]) -> Job:
        """Check the counts against the live release, keep them with the environment, and queue
        the release that applies them. Nothing is kept when one is refused."""
        environment = self.store.get_environment(names.app_name(app), names.environment_name(env))
        if not counts:
            raise DockyardError("no SERVICE=COUNT given", f"e.g. dockyard scale {environment.app} web=3")
        live = self.store.live_release(environment.app, environment.name)
        if live is None:
            raise DockyardError(f"{environment.app}'s environment {environment.name} has no live release to scale",
                                "deploy it first: git push, or dockyard deploy")
        replicas.scaled(live.services, counts, strict=True)  # refuses what cannot run
        kept = self.store.set_environment_replicas(environment.app, environment.name,
                                                   {**dict(environment.replicas), **counts})
        return self.submit(KIND, kept.app, {"counts": json.dumps(dict(counts)), "actor": actor}, kept.name)

    def scale_job(self, job: Job, say: Say) -> None:
        environment = self.store.get_environment(job.app, job.environment)
        live = self.store.live_release(environment.app, environment.name)
        if live is None:
            raise DockyardError(f"{environment.app}'s environment {environment.name} has no live release to scale")
        services = replicas.scaled(live.services, dict(environment.replicas))
        before = {s.name: s.replicas for s in live.services}
        changes = ", ".join(f"{s.name} {before[s.name]} -> {s.replicas}" for s in services
                            if s.replicas != before[s.name]) or "no change"
        say(f"-----> Scaling {environment.app}{_in(environment)} at release {live.id}: {changes}")
        artifact = live.artifact
        try:
            self.releaser.release(self.store.get_app(environment.app), environment.name, live.commit, services,
                                  job.id, say, config=live.config, artifact=(lambda: artifact) if artifact else None)
        finally:
            if self.after is not None:
                self.after(environment.app)


def _in(environment: Environment) -> str:
    return "" if environment.name == DEFAULT_ENVIRONMENT else f" in {environment.name}"
