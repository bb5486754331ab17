"""Apps: create one (a bare repo to push to, and its record), list, show, delete; the domains it
answers at and the host access its containers may have; and what a push's hooks know of its
environments (which branch deploys where). The API's routes and the git endpoint call this, never an adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dockyard.domain import hosts, names
from dockyard.domain.errors import Conflict
from dockyard.domain.model import App
from dockyard.ports import SourceRepos, Store

# What takes every environment of an app off its target (containers, routes, networks; not
# volumes): Deployer.destroy
Destroy = Callable[[str], None]


@dataclass
class Apps:
    store: Store
    repos: SourceRepos
    destroy: Destroy
    base_domain: str

    def list_apps(self) -> list[App]:
        return self.store.list_apps()

    def get(self, name: str) -> App:
        return self.store.get_app(names.app_name(name))

    def claims(self) -> dict[str, tuple[str, ...]]:
        """Each app's custom domains."""
        return {a.name: a.domains for a in self.store.list_apps()}

    def create(self, name: str, deploy_branch: str = "main", domains: Iterable[str] = ()) -> App:
        """An app: a bare git repo to push to and its record (with its production environment)."""
        name = names.app_name(name)
        names.branch_name(deploy_branch)
        taken = self.claims()
        if name in taken:
            raise Conflict(f"app {name!r} already exists", "pick another name, or push to its remote")
        own = hosts.check_new_app(name, domains, self.base_domain, taken)
        self.repos.create(name)
        return self.store.create_app(App(name=name, deploy_branch=deploy_branch, domains=own))

    def delete(self, name: str) -> None:
        """Every environment taken off its target, then the repo and the app's records; refused
        while a job of the app runs. Volumes stay."""
        app = self.get(name)
        busy = [j for j in self.store.list_jobs(app.name, limit=20) if not j.status.finished]
        if busy:
            raise Conflict(f"{app.name} has a {busy[0].kind} job running (job {busy[0].id})",
                           f"wait for it to end (dockyard jobs show {busy[0].id} -f), then delete the app")
        self.destroy(app.name)
        self.repos.delete(app.name)
        self.store.delete_app(app.name)

    def set_domains(self, name: str, domains: Iterable[str]) -> App:
        """The domains the app answers at besides APP.<base domain>: hosts under the base domain
        are the app's of that name only."""
        app = self.get(name)
        return self.store.set_domains(app.name, hosts.claim_domains(app.name, domains, self.base_domain,
                                                                    self.claims()))

    def set_host_access(self, name: str, keys: Iterable[str]) -> App:
        """The compose keys that hand the app's containers the host; the list replaces the last."""
        return self.store.set_host_access(names.app_name(name), names.host_access_keys(tuple(keys)))

    def branch_targets(self, app: App) -> dict[str, list[str]]:
        """Which environments each branch deploys to (what a push's post-receive hook knows)."""
        return branch_targets(self.store, app)


def branch_targets(store: Store, app: App) -> dict[str, list[str]]:
    """Which environments each branch's pushes deploy to: production from the app's deploy
    branch, another environment from its own branch (none: deployed on demand only)."""
    out: dict[str, list[str]] = {}
    for environment in store.environments(app.name):
        branch = app.deploy_branch if environment.is_production else environment.branch
        if branch is not None:
            out.setdefault(branch, []).append(environment.name)
    return out
