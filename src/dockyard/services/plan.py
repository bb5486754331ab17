"""`dockyard plan`: what a deploy of a commit to an environment would change, per service and
why, without building, starting or recording anything. The commit is parsed as a deploy parses
it (bounded, with the environment's variables, dockyard.yml and its required secrets), so what
a deploy would refuse, the plan refuses with the same message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from dockyard.domain import declared as decl
from dockyard.domain import names
from dockyard.domain.errors import DockyardError
from dockyard.domain.model import ServiceSpec
from dockyard.planning.changes import UNBUILT, changes
from dockyard.ports import SourceRepos, Store
from dockyard.services import inspect
from dockyard.services.deploy import Deployer


@dataclass
class Planner:
    store: Store
    repos: SourceRepos
    deployer: Deployer
    registry: str  # host:port, as image references name it
    git_url: str  # for hints

    def plan(self, app: str, env: str, commit: str | None = None, branch: str | None = None) -> dict[str, Any]:
        environment = self.store.get_environment(names.app_name(app), names.environment_name(env))
        owner = self.store.get_app(environment.app)
        wanted = branch or (owner.deploy_branch if environment.is_production else environment.branch)
        if commit is None:
            if wanted is None:
                raise DockyardError(f"{owner.name}'s environment {environment.name} deploys from no branch",
                                    "give one: dockyard plan APP --env ENV --branch BRANCH")
            commit = self.repos.head(owner.name, names.branch_name(wanted))
            if not commit:
                raise DockyardError(f"nothing pushed to {owner.name}'s branch {wanted!r} yet",
                                    f"push first: git push {self.git_url}/git/{owner.name}.git {wanted}")
        found = self.deployer.inspect(owner, commit, environment.name)
        # Images are not built: one built from this commit already is named by its digest
        # (by repository: each build of a Dockerfile is an image of its own)
        stored = {i.repository: i for i in self.store.list_images(owner.name) if i.commit == commit}
        built = {s.key: stored[s.repository(owner.name)] for s in found.images if s.repository(owner.name) in stored}
        references = {s.key: (f"{self.registry}/{built[s.key].repository}@{built[s.key].digest}"
                              if s.key in built else f"{UNBUILT}{s.key}@{commit}")
                      for s in found.images}
        ids = {references[k]: b.image_id for k, b in built.items()}
        # images the app's other repos built: their newest builds, as a deploy resolves them
        resolved = self.deployer.sources.resolve(owner, found.services, wanted or "", lambda _: None)
        services = tuple(replace(s, image_id=ids.get(s.image, s.image_id))
                         for s in inspect.with_references(resolved, references))
        services = self.deployer.resolve_images(services, pull=False)  # never pulls
        services, config = self.deployer.configure(owner, environment.name, services, found)
        self.deployer.releaser.check_hosts(owner.name, environment.name, services)
        live = self.store.live_release(owner.name, environment.name)
        before = list(live.services) if live is not None else []
        planned = changes(before, services)
        warnings = [*found.warnings, *decl.setting_conflicts(found.declared, environment, wanted),
                    *unguarded(services, environment.name)]
        return {
            "app": owner.name,
            "environment": environment.name,
            "commit": commit,
            "branch": wanted,
            "live_release": live.id if live is not None else None,
            "live_commit": live.commit if live is not None else None,
            "changes": [asdict(c) for c in planned],
            "config": config,
            "warnings": warnings,
        }


def unguarded(services: tuple[ServiceSpec, ...], environment: str) -> list[str]:
    """Web services a bad release could take down: a single container, and nothing that tells
    ready from merely answering (no compose healthcheck, no dockyard.yml health check)."""
    return [f"{s.name}: one container and no health check: a release of it goes live once it answers HTTP, "
            f"even with a 500 (unless its image has a HEALTHCHECK); declare one in dockyard.yml "
            f"(environments/{environment}/services/{s.name}/health: {{path: /health}}) or a compose healthcheck, "
            "or run 2 replicas"
            for s in services if s.is_web and s.replicas == 1 and not s.healthcheck and not s.http_check]
