"""Environments of an app: add, list, remove; which environments a pushed branch deploys to;
queueing a deploy to one; what one runs (status) and prints (logs). The API's routes call this,
never an adapter."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dockyard.domain import hosts, names, published_ports, value_stream
from dockyard.domain.errors import Conflict, DockyardError, InvalidName
from dockyard.domain.model import DEFAULT_ENVIRONMENT, LOCAL_TARGET, App, Environment, Job, RunningService, Volume
from dockyard.domain.records import ReleaseRecord
from dockyard.ports import Orchestrator, SourceRepos, Store
from dockyard.services import volumes
from dockyard.services.configuration import Configuration
from dockyard.services.deploy import Deployer

REDACTED = "<redacted>"
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def redacted(record: ReleaseRecord) -> dict[str, Any]:
    """A release as answers show it: environment variables by name, their values kept back."""
    release = record.as_dict()

    def hide(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(s, environment=[[pair[0], REDACTED] for pair in s.get("environment") or []]) for s in services]

    return dict(release, services=hide(release.get("services") or []), artifact=hide(release.get("artifact") or []),
                timeline=value_stream.timeline(record))


# What queues a job: JobRunner.submit (kind, app, payload, environment) -> Job
Submit = Callable[[str, str, dict[str, str], str], Job]


@dataclass
class Environments:
    store: Store
    repos: SourceRepos
    orchestrator: Orchestrator
    deployer: Deployer
    submit: Submit
    base_domain: str
    proxy_port: int
    git_url: str  # where apps are pushed to, for hints
    registry: str  # host:port of dockyard's registry, as image references name it
    configuration: Configuration | None = None
    targets: frozenset[str] = frozenset({LOCAL_TARGET})  # the Docker targets environments may name
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- the model ------------------------------------------------------------------------
    def of(self, app: str) -> list[Environment]:
        return self.store.environments(self.store.get_app(names.app_name(app)).name)

    def get(self, app: str, env: str) -> Environment:
        return self.store.get_environment(names.app_name(app), names.environment_name(env))

    def create(self, app: str, env: str, target: str = LOCAL_TARGET, branch: str | None = None) -> Environment:
        """Add an environment; it runs nothing until its first deploy."""
        app_name, env_name = names.app_name(app), names.environment_name(env)
        if target not in self.targets:
            raise InvalidName(f"unknown target {target[:64]!r}",
                              "the targets are: " + ", ".join(sorted(self.targets)) + " (this Docker host is 'local')")
        if branch is not None:
            names.branch_name(branch)
        if env_name == DEFAULT_ENVIRONMENT:
            raise Conflict(f"{app_name} has an environment named {DEFAULT_ENVIRONMENT!r} already",
                           "every app has production: it deploys from the app's deploy branch")
        return self.store.add_environment(Environment(app_name, env_name, target, branch))

    def declare(self, app: str, env: str, target: str, branch: str | None) -> Environment:
        """The environment as a commit's dockyard.yml declares it: added when the app does not
        have it yet; one the app has is left as it is (a deploy reports what differs)."""
        with self._guard:
            found = next((e for e in self.store.environments(names.app_name(app)) if e.name == env), None)
            return found or self.create(app, env, target, branch)

    def set_branch(self, app: str, env: str, branch: str | None) -> Environment:
        """The branch whose pushes deploy to the environment (None: deployed on demand only).
        Production deploys from the app's deploy branch."""
        found = self.get(app, env)
        if found.is_production:
            raise DockyardError("production deploys from the app's deploy branch",
                                f"change the app's deploy branch instead: dockyard apps create {app} --branch ...")
        if branch is not None:
            names.branch_name(branch)
        return self.store.set_environment_branch(found.app, found.name, branch)

    def set_protected(self, app: str, env: str, protected: bool) -> Environment:
        """A protected environment takes deploys, rollbacks, scaling and configuration from admins
        only (domain/access.py); a developer's push does not deploy it."""
        found = self.get(app, env)
        return self.store.set_environment_protected(found.app, found.name, protected)

    def is_protected(self, app: str, env: str) -> bool:
        """False for an environment (or app) that does not exist: the route answers 404 then."""
        try:
            return self.get(app, env).protected
        except DockyardError:
            return False

    def remove(self, app: str, env: str) -> None:
        """Take the environment off its target (routes, containers, network) and forget its
        releases, variables and secrets. Its volumes stay, listed by `dockyard volumes`."""
        found = self.get(app, env)
        if found.is_production:
            raise DockyardError("production cannot be removed", f"delete the app instead: dockyard apps delete {app}")
        busy = [j for j in self.store.list_jobs(found.app, limit=50, environment=found.name) if not j.status.finished]
        if busy:
            raise Conflict(f"{found.app}'s environment {found.name} has a {busy[0].kind} job running (job {busy[0].id})",
                           f"wait for it to end (dockyard jobs show {busy[0].id} -f), then remove the environment")
        self.deployer.destroy(found.app, found.name)
        self.store.remove_environment(found.app, found.name)
        if self.configuration is not None:
            self.configuration.prune(found.app)

    # -- pushes and deploys ---------------------------------------------------------------
    def deployed_from(self, app: App, branch: str) -> list[str]:
        """The environments a push to ``branch`` deploys to, production first."""
        return [e.name for e in self.store.environments(app.name)
                if (app.deploy_branch if e.is_production else e.branch) == branch]

    def branch_of(self, app: App, env: Environment) -> str | None:
        return app.deploy_branch if env.is_production else env.branch

    def queue_deploy(self, app: str, env: str, actor: str, commit: str | None = None, branch: str | None = None,
                     await_push: bool = False, force: bool = False, override: bool = False, repo: str = "",
                     tag: bool = False) -> Job:
        """Queue a build and release of a commit to an environment (default: the head of the
        environment's branch). A deploy of that commit already queued or running is returned.
        ``override``: an admin's deploy, which may enter an environment that takes promotions;
        ``repo``: a source repo of the app (services/repos.py), whose commit is built, then
        released with the deploy repo's stack; ``tag``: ``branch`` names the tag pushed, which
        points at ``commit``."""
        found = self.get(app, env)
        owner = self.store.get_app(found.app)
        wanted = branch or self.branch_of(owner, found)
        if wanted is None:
            raise DockyardError(f"{found.app}'s environment {found.name} deploys from no branch",
                                f"name one: dockyard deploy {found.app} --env {found.name} --branch BRANCH, "
                                f"or give it one: dockyard envs set-branch {found.app} {found.name} BRANCH")
        names.branch_name(wanted)
        if commit is not None and not _COMMIT.fullmatch(commit):
            raise DockyardError(f"not a full commit id: {commit[:80]!r}", "give the 40-character commit id")
        if repo == found.app or (repo and self.store.get_repo(found.app, names.repo_name(repo)).role != "source"):
            repo = ""  # the deploy repo's name: the app's own repository
        key = names.repo_key(found.app, repo)
        commit = commit or self.repos.head(key, wanted)
        if not commit:
            raise DockyardError(f"nothing pushed to {key}'s branch {wanted!r} yet",
                                f"push first: git push {self.git_url}/git/{key}.git {wanted}")
        with self._guard:  # two calls for one push (the hooks) queue one job
            pending = self.store.pending_deploy(found.app, commit, found.name)
            if pending is not None:
                return pending
            payload = {"commit": commit, "branch": wanted, "actor": actor}
            if repo:
                payload["repo"] = repo
            if tag:
                payload["tag"] = "true"
            if await_push:
                payload["await_push"] = "true"
            if force:  # release it even if the same release failed last time
                payload["force"] = "true"
            if override:
                payload["override"] = "true"
            job: Job = self.submit("deploy", found.app, payload, found.name)
            return job

    def act_on_release(self, app: str, env: str, action: str, who: str) -> dict[str, object]:
        """Abort, pause or resume the release running in the environment (services/release_control.py)."""
        found = self.get(app, env)
        return self.deployer.releaser.act(found.app, found.name, action, who)

    # -- what runs ------------------------------------------------------------------------
    def containers(self, app: str, env: str) -> list[RunningService]:
        return [c for c in self.orchestrator.observe(app) if c.environment == env]

    def status(self, app: str, env: str) -> dict[str, Any]:
        """The environment, its live release (values redacted), its containers, where it answers
        (host names, then published host ports), its published ports and its last job."""
        found = self.get(app, env)
        owner = self.store.get_app(found.app)
        live = self.store.live_release(found.app, found.name)
        urls = [f"http://{h}:{self.proxy_port}/" for h in (live.hosts if live is not None else ())]
        ports = published_ports.listing(live.as_dict()["services"] if live is not None else [], self.base_domain)
        urls += [p["url"] for p in ports]
        jobs = self.store.list_jobs(found.app, limit=1, environment=found.name)
        return {
            "environment": found.name,
            "target": found.target,
            "branch": self.branch_of(owner, found),
            "site": self.site(found.app, found.name),
            "live_release": redacted(live) if live is not None else None,
            "urls": urls,
            "ports": ports,
            "containers": [c.__dict__ for c in self.containers(found.app, found.name)],
            "last_job": jobs[0] if jobs else None,
        }

    def site(self, app: str, env: str) -> str:
        return hosts.environment_site(app, env, self.base_domain)

    def images(self, app: str, env: str | None = None) -> list[dict[str, Any]]:
        """Images built for the app (newest first), each with the environments whose live
        release runs it; with ``env``, only those that environment runs."""
        owner = self.store.get_app(names.app_name(app))
        running: dict[str, list[str]] = {}
        for e in self.store.environments(owner.name):
            live = self.store.live_release(owner.name, e.name)
            for s in live.services if live is not None else ():
                running.setdefault(s.image.rpartition("@")[2], []).append(e.name)
        if env is not None:
            self.get(owner.name, env)
        out = []
        for image in self.store.list_images(owner.name):
            where = sorted(set(running.get(image.digest, ())))
            if env is None or env in where:
                out.append(dict(image.__dict__, reference=f"{self.registry}/{image.repository}:{image.tag}",
                                environments=where))
        return out

    def releases(self, app: str, env: str | None, limit: int = 20) -> list[dict[str, Any]]:
        owner = self.store.get_app(names.app_name(app))
        if env is not None:
            self.get(owner.name, env)
        return [redacted(r) for r in self.store.list_releases(owner.name, limit=limit, environment=env)]

    def volumes(self, app: str, env: str) -> list[Volume]:
        """The environment's named volumes, with sizes and the services mounting them."""
        return volumes.list_volumes(self.store, self.orchestrator, app, env)

    def remove_volume(self, app: str, env: str, name: str, confirm: str) -> None:
        """Remove one volume and its data; ``confirm`` repeats its name."""
        volumes.remove_volume(self.store, self.orchestrator, app, env, name, confirm)

    def logs(self, app: str, env: str, follow: bool, tail: int, stop: threading.Event) -> Iterator[str]:
        found = self.get(app, env)
        return self.orchestrator.logs(found.app, found.name, follow=follow, tail=max(0, min(tail, 10000)), stop=stop)
