"""A push, checked before git stores it, and its deploys queued: what the pre-receive hook asks.

For each ref update: only branches and tags, with names dockyard and git accept; a branch that
deploys somewhere cannot be deleted. A tag deploys the commit it points at (an annotated tag
peeled) to the environments whose ``tag:`` pattern, in that commit's dockyard.yml, matches its name. For each environment the pushed branch deploys to (those
the app has, and those the commit's dockyard.yml declares for that branch), the commit's
Dockerfiles, compose file and dockyard.yml are parsed within bounds (``Deployer.inspect``: the
server's warm, bounded parser child) with that environment's variables and secrets, and its
replica counts and health checks applied. The objects are read from the push's quarantine
folder: git moves them into the repository only once the hook accepts.

Accepted: the deploys are queued at once (each waits for its ref), so they start while git
stores the objects. Refused: nothing is queued, the refusal is recorded as a failed job.
The parse leaves its result with ``services.inspect`` for the deploy, which then does not parse
again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from dockyard.domain import access, dockyard_file, names
from dockyard.domain.access import Action, Principal
from dockyard.domain.declared import with_health, with_replicas, with_stateful
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.limits import MAX_DOCKYARD_FILE_BYTES
from dockyard.domain.model import App
from dockyard.ports import SourceRepos, Store
from dockyard.services import stages
from dockyard.services.apps import branch_targets
from dockyard.services.deploy import Deployer
from dockyard.services.environments import Environments
from dockyard.services.jobs import Jobs
from dockyard.services.repos import Repos

ZERO = "0" * 40


PROMOTED = "promoted-from:"  # a wanted deploy's target: the environment takes promotions, not pushes


@dataclass(frozen=True)
class RefUpdate:
    """One line of pre-receive's input."""

    old: str
    new: str
    ref: str


class Wanted(NamedTuple):
    """A deploy an accepted push makes: of ``commit`` (pushed to ``ref``, a branch or, with
    ``tag``, a tag) to ``environment``; ``target``: dockyard.yml declares the environment, which
    this deploy adds, or PROMOTED: it takes promotions, and the push does not deploy it."""

    ref: str
    commit: str
    environment: str
    target: str
    tag: bool = False
    branch: str | None = None  # a tag's: the branch dockyard.yml gives the environment it adds


@dataclass(frozen=True)
class QueuedDeploy:
    branch: str
    commit: str
    environment: str
    target: str  # set: dockyard.yml declares the environment, which this deploy adds
    job: int | None  # None: it could not be queued now (post-receive tries again)


@dataclass(frozen=True)
class PushVerdict:
    refusal: DockyardError | None
    deploys: tuple[QueuedDeploy, ...] = ()
    said: tuple[str, ...] = ()  # for the pusher, one line each
    repos_added: tuple[str, ...] = ()  # source repos the pushed dockyard.yml declared, added

    @property
    def accepted(self) -> bool:
        return self.refusal is None


@dataclass
class PushChecks:
    store: Store
    repos: SourceRepos
    deployer: Deployer
    environments: Environments
    jobs: Jobs
    app_repos: Repos | None = None  # adds the source repos a pushed dockyard.yml declares
    _parsed: dict[tuple[str, str], dockyard_file.DockyardFile | None] = field(default_factory=dict, repr=False)
    _parsed_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, app: str, updates: list[RefUpdate], incoming: str, actor: str,
              who: Principal | None = None, repo: str = "") -> PushVerdict:
        """Check a push (``incoming``: its quarantine folder; ``repo``: which of the app's repos,
        "" for its own); queue its deploys when accepted, but not to a protected environment the
        pusher may not deploy (``who``: the hook's principal, which carries the pusher's role)."""
        owner = self.store.get_app(names.app_name(app))
        found = self.store.get_repo(owner.name, names.repo_name(repo)) if repo and repo != owner.name else None
        source = found.name if found is not None and found.role == "source" else ""
        targets = branch_targets(self.store, owner)
        wanted: list[Wanted] = []
        notes: list[str] = []  # for the pusher, before the deploys' lines
        ref = ""
        try:
            for update in updates:
                ref = update.ref
                wanted += self._check_source(owner, source, targets, update, incoming) if source else \
                    self._check_update(owner, targets, update, incoming, notes)
        except DockyardError as refusal:
            self.jobs.record_refused_push(owner.name, ref, str(refusal), actor)
            return PushVerdict(refusal)
        added = () if source else self._add_declared_repos(owner, targets, updates, incoming, who, notes)
        verdict = self._queue(owner.name, wanted, actor, who, source)
        return replace(verdict, said=(*notes, *verdict.said), repos_added=added)

    def _add_declared_repos(self, owner: App, targets: dict[str, list[str]], updates: list[RefUpdate],
                            incoming: str, who: Principal | None, notes: list[str]) -> tuple[str, ...]:
        """The source repos the pushed dockyard.yml of a branch that deploys declares (``repos:``)
        and the app lacks: added when the pusher may manage apps (an admin), else named with the
        command an admin runs. Returns those added (the route publishes them)."""
        if self.app_repos is None:
            return ()
        have = {r.name for r in self.store.repos(owner.name)} | {owner.name}
        role = (who.pusher_role if who.role == access.HOOK else who.role) if who is not None else access.ADMIN
        may = Action.MANAGE_APPS in access.ROLES.get(role or "", frozenset())
        added: list[str] = []
        for update in updates:
            branch = update.ref.removeprefix("refs/heads/")
            if branch == update.ref or update.new.strip("0") == "":
                continue
            found = self._declared(owner.name, update.new, incoming)  # parsed already by _check_update
            if found is None or not (targets.get(branch) or branch == owner.deploy_branch
                                     or any(e.branch == branch for e in found.environments)):
                continue
            for name in (n for n in found.repos if n not in have):
                have.add(name)
                if not may:
                    notes.append(f" !     dockyard.yml declares the repo {name}, which {owner.name} lacks: an admin adds "
                                 f"it: dockyard repos add {owner.name} {name}")
                    continue
                try:
                    self.app_repos.add(owner.name, name)
                except DockyardError as exc:
                    notes.append(f" !     repo {name}, which dockyard.yml declares, could not be added: {exc.message}")
                    continue
                added.append(name)
                notes.append(f"-----> repo {name} added, as dockyard.yml declares: push it to "
                             f"{self.app_repos.remote(owner.name, name)}")
        return tuple(added)

    def _ref(self, update: RefUpdate) -> tuple[str, str]:
        """What a ref update pushes: ("branch" or "tag", its name); refused: another ref, a bad name."""
        if update.ref.startswith("refs/heads/"):
            kind, name = "branch", update.ref.removeprefix("refs/heads/")
        elif update.ref.startswith("refs/tags/"):
            kind, name = "tag", update.ref.removeprefix("refs/tags/")
        else:
            raise DockyardError(f"{update.ref[:200]}: only branches and tags can be pushed")
        names.branch_name(name)
        if not self.repos.accepts_branch(name):
            raise DockyardError(f"{kind} name {name!r} is not accepted by git")
        return kind, name

    def _check_source(self, owner: App, repo: str, targets: dict[str, list[str]], update: RefUpdate,
                      incoming: str) -> list[Wanted]:
        """A source repo's ref update: its Dockerfiles parsed within bounds; the environments its
        branch deploys to get a deploy (the repo's images built, then the deploy repo's stack),
        except those that take promotions."""
        kind, name = self._ref(update)
        if kind != "branch" or update.new.strip("0") == "" or not targets.get(name):
            return []  # a tag, a deleted branch, a branch that deploys nowhere: stored only
        self.deployer.images_of(owner, names.repo_key(owner.name, repo), update.new, incoming)
        stack = self.repos.head(owner.name, name) or self.repos.head(owner.name, owner.deploy_branch)
        out = []
        for env in targets[name]:
            source = stages.promoted_from(self.store, self.repos, owner.name, env, stack) if stack else None
            out.append(Wanted(name, update.new, env, f"{PROMOTED}{source}" if source else ""))
        return out

    def _check_update(self, owner: App, targets: dict[str, list[str]], update: RefUpdate,
                      incoming: str, notes: list[str]) -> list[Wanted]:
        """Raise a DockyardError when this ref update must be refused; else the deploys it makes
        (environments dockyard.yml declares for the branch, which the app does not have yet, among
        them). Warnings are the deploy job's to give: the push streams its log."""
        app = owner.name
        kind, name = self._ref(update)
        if kind == "tag":
            return self._check_tag(owner, name, update, incoming, notes)
        environments = [(env, "") for env in targets.get(name, [])]
        if update.new.strip("0") == "":
            if environments:
                raise DockyardError(
                    f"branch {name!r} deploys to {', '.join(e for e, _ in environments)}: it cannot be deleted",
                    "give the environment another branch first (dockyard envs set-branch), or delete the app: "
                    f"dockyard apps delete {app}")
            return []
        promoted: dict[str, str] = {}  # environment -> the one it is promoted from: no push deploys it
        declared = self._declared(app, update.new, incoming)
        if declared is not None:  # environments it declares for this branch
            known = {e.name for e in self.store.environments(app)}
            environments += [(e.name, e.target) for e in declared.environments if e.branch == name and e.name not in known]
            promoted = {e.name: e.promotion.source for e in declared.environments if e.promotion is not None}
        self._inspect_each(owner, update.new, [env for env, _ in environments], incoming)
        for env, _ in environments:  # an environment whose live release takes promotions keeps taking them
            source = promoted.get(env) or stages.live_source(self.store, self.repos, app, env, update.new)
            if source is not None:
                promoted[env] = source
        return [Wanted(name, update.new, env, f"{PROMOTED}{promoted[env]}" if env in promoted else target)
                for env, target in environments]

    def _check_tag(self, owner: App, name: str, update: RefUpdate, incoming: str, notes: list[str]) -> list[Wanted]:
        """A tag pushed: the environments whose ``tag:`` pattern in the tagged commit's
        dockyard.yml matches get a deploy of that commit (an annotated tag peeled). A deleted
        tag, one of no commit, or one whose commit's dockyard.yml cannot be read (an old tag, a
        file of another time) is stored only, and the last is said."""
        if update.new.strip("0") == "":
            return []
        commit = self.repos.tag(owner.name, name, update.new, incoming)
        if commit is None:
            return []
        try:
            declared = self._declared(owner.name, commit, incoming)
        except DockyardError as exc:
            notes.append(f" !     tag {name}: its commit's dockyard.yml cannot be read, so it deploys nothing "
                         f"({exc.message.splitlines()[0][:300]})")
            return []
        chosen = [e for e in (declared.environments if declared is not None else ()) if e.takes_tag(name)]
        known = {e.name for e in self.store.environments(owner.name)}
        self._inspect_each(owner, commit, [e.name for e in chosen], incoming)
        return [Wanted(name, commit, e.name, "" if e.name in known else e.target, tag=True, branch=e.branch)
                for e in chosen]

    @staticmethod
    def _check_commands(declared: dockyard_file.DockyardFile | None, environment: str, known: set[str]) -> None:
        """Release commands and backup hooks run in services of the stack: a name it lacks is refused."""
        if declared is None:
            return
        env = declared.environment(environment)
        named = [(f"release/{phase}/{i}", c) for phase, commands in (("before", declared.before),
                                                                      ("after", declared.after))
                 for i, c in enumerate(commands)]
        named += [(f"environments/{environment}/backups/{b.volume}/{when}", c) for b in (env.backups if env else ())
                  for when, c in (("before", b.before), ("after", b.after)) if c is not None]
        for where, command in named:
            if command.service not in known:
                raise InvalidSource(f"dockyard.yml: {where}/service: {command.service!r} is not a service of the stack",
                                    f"name one of: {', '.join(sorted(known))}")

    def _declared(self, app: str, commit: str, incoming: str) -> dockyard_file.DockyardFile | None:
        """The pushed commit's dockyard.yml, checked (a file dockyard refuses refuses the push);
        read and parsed once per commit (a commit's file never changes)."""
        key = (app, commit)
        with self._parsed_guard:
            if key in self._parsed:
                return self._parsed[key]
        found = None
        if dockyard_file.SOURCE in self.repos.files(app, commit, incoming):
            text = self.repos.read(app, commit, dockyard_file.SOURCE, MAX_DOCKYARD_FILE_BYTES, incoming)
            found = dockyard_file.load(text) if text is not None else None
        with self._parsed_guard:
            while len(self._parsed) >= 16:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[key] = found
        return found

    def _inspect_each(self, owner: App, commit: str, environments: list[str], incoming: str) -> None:
        """The commit parsed for each environment, with its own variables and secrets: refuses what
        it cannot run there (a count the service cannot run, a health check of a service without a
        port, a stateful service with replicas)."""
        for environment in environments:
            found = self.deployer.inspect(owner, commit, environment, incoming)
            counted = with_replicas(found.services, found.declared, environment)
            with_stateful(with_health(counted, found.declared, environment), found.declared, environment)
            self._check_commands(found.declared, environment, {s.name for s in found.services})

    def _queue(self, app: str, wanted: list[Wanted], actor: str,
               who: Principal | None, repo: str = "") -> PushVerdict:
        """Queue the accepted push's deploys, each waiting for its ref; an environment
        dockyard.yml declares is added with its first deploy."""
        deploys, said = [], []
        for branch, commit, environment, target, tag, declared_branch in wanted:
            job = None
            if target.startswith(PROMOTED):
                said.append(f"-----> {environment}: promoted from {target.removeprefix(PROMOTED)} once its gates pass, "
                            f"not deployed by the push (dockyard approvals {app})")
                continue
            if who is not None and self.environments.is_protected(app, environment) and not access.allowed(
                    who, Action.DEPLOY, app, protected=True):
                again = f" --repo {repo} --commit {commit}" if repo else ""
                said.append(f" !     {environment} is protected: a push by {who.name} (role {who.pusher_role or who.role}) "
                            f"does not deploy it. An admin deploys it: dockyard deploy {app} --env {environment}{again}")
                continue
            try:
                if target:
                    self.environments.declare(app, environment, target, declared_branch if tag else branch)
                    said.append(f"-----> {environment}: added, as dockyard.yml declares (target {target}, "
                                + (f"tags {branch!r} and the like)" if tag else f"branch {branch})"))
                job = self.environments.queue_deploy(app, environment, actor, commit, branch, await_push=True,
                                                     repo=repo, tag=tag).id
            except DockyardError as exc:
                said.append(f" !     the deploy to {environment} could not be queued yet: {exc.message}")
            deploys.append(QueuedDeploy(branch, commit, environment, target, job))
        return PushVerdict(None, tuple(deploys), tuple(said))
