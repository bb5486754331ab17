"""The ports: what the services need from the outside world, by role.

Each adapter in ``dockyard.adapters`` implements one of these for one technology; ``bootstrap``
is the one place that picks them. A Swarm cluster is another ``Orchestrator``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Protocol

from dockyard.domain.audit import AuditEntry
from dockyard.domain.model import (
    DEFAULT_ENVIRONMENT,
    App,
    BuiltImage,
    Environment,
    HttpCheck,
    Job,
    JobStatus,
    OneOffResult,
    ReleaseStatus,
    ResolvedImage,
    Route,
    RunningService,
    SealedSecret,
    SecretVersion,
    ServiceSpec,
    SourceRepo,
    Token,
    User,
    Volume,
)
from dockyard.domain.promotion import Approval, Gate, Promotion
from dockyard.domain.published_ports import PortRoute
from dockyard.domain.records import ReleaseRecord
from dockyard.domain.retention import Swept
from dockyard.domain.webhooks import Delivery, Reply, Webhook

Progress = Callable[[str], None]


class SourceRepos(Protocol):
    """Bare git repositories, one per app."""

    def create(self, app: str) -> None: ...
    def delete(self, app: str) -> None: ...
    def exists(self, app: str) -> bool: ...
    def files(self, app: str, commit: str, incoming: str = "") -> list[str]:
        """The paths of a commit's files. ``incoming``: the commit is being pushed, and its objects
        are in that quarantine folder (the pre-receive hook's GIT_QUARANTINE_PATH) until the push
        is accepted."""
        ...
    def read(self, app: str, commit: str, path: str, limit: int = 1024 * 1024, incoming: str = "") -> str | None:
        """A file's text, or None when the commit has no such file; a file over ``limit`` bytes
        is refused (InvalidSource naming it and the limit), never read."""
        ...
    def accepts_branch(self, name: str) -> bool:
        """Whether git accepts ``name`` as a branch name (dockyard's own rules come first)."""
        ...
    def archive(self, app: str, commit: str, out: IO[bytes], path: str = "") -> None:
        """A tar of the commit's tree, or of its folder ``path`` (as the tar's root)."""
        ...
    def head(self, app: str, branch: str) -> str | None: ...
    def tag(self, app: str, name: str, oid: str = "", incoming: str = "") -> str | None:
        """The commit tag ``name`` points at (an annotated tag peeled), or that ``oid`` being
        pushed as it points at (``incoming``: the push's quarantine); None: no such commit."""
    def commits(self, app: str, commit: str, since: str | None = None, limit: int = 100) -> list[tuple[str, int]]:
        """The commits ``commit`` brings that ``since`` has not, newest first: (id, Unix commit time)."""
        ...


class ImageBuilder(Protocol):
    def build(self, context: IO[bytes], dockerfile: str, tag: str, progress: Progress,
              dockerfile_text: str | None = None, *, buildargs: Mapping[str, str] | None = None,
              target: str = "") -> str:
        """Build and tag; return the image id (config digest). ``dockerfile_text``, when given,
        is built instead of the Dockerfile's content in the context (which need not hold it);
        ``buildargs`` are the build's args, ``target`` the stage it builds ("" the last)."""
        ...

    def tag(self, image_id: str, reference: str) -> None: ...
    def untag(self, reference: str) -> None: ...
    def image_id(self, reference: str) -> str | None:
        """The local image a reference names, or None."""
        ...

    def push(self, reference: str, progress: Progress) -> str:
        """Push to the registry; return the manifest digest."""
        ...

    def size(self, image_id: str) -> int: ...

    def remove_image(self, image_id: str, ours: str) -> str | None:
        """Remove a local image: its tags that start with ``ours`` (dockyard's registry
        address and a slash), then the image once no tag names it. None when it is gone (now or
        before); else why it stays (a container uses it, another tag names it, images are built
        on it), with dockyard's tags removed."""
        ...


class Registry(Protocol):
    @property
    def address(self) -> str:
        """host:port, as image references name it."""
        ...

    def ensure_running(self) -> None: ...
    def config_digest(self, repository: str, tag: str) -> str | None:
        """The image id a tag is bound to in the registry, or None when the tag is free."""
        ...

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest and the tags bound to it; False when there was none. Its blobs stay
        until ``collect_garbage``."""
        ...

    def collect_garbage(self) -> Swept:
        """The registry's own garbage collection: blobs no manifest references are deleted. The
        caller makes sure nothing pushes meanwhile (services/build.py's PushGate)."""
        ...


Output = Callable[[str, bytes], None]  # a one-off's output as it comes: ("stdout" or "stderr", bytes)
Input = Callable[[], bytes]  # a one-off's input as it comes: the next bytes, b"" at its end


class OneOffRunner(Protocol):
    """One-off containers of an environment, and commands in its running containers
    (adapters/docker_oneoff.py; services/oneoff.py)."""

    def run_once(self, app: str, environment: str, service: ServiceSpec, command: Sequence[str], *, job: int,
                 stdin: bytes | Input | None, tty: bool, output: Output, timeout: float,
                 size: tuple[int, int] | None = None) -> OneOffResult:
        """A container as ``service``'s are made (network, volumes, variables, secrets) running
        ``command`` once; ``stdin`` written (as it comes), then closed (None: no input); with
        ``tty``, a terminal of ``size`` (rows, columns); killed after ``timeout`` seconds; always
        removed."""
    def clear_oneoffs(self) -> int:
        """Remove the one-off containers a server that stopped left behind; how many."""
    def exec_in(self, task: RunningService, command: Sequence[str], *, stdin: bytes | Input | None, tty: bool,
                output: Output, timeout: float, size: tuple[int, int] | None = None) -> OneOffResult:
        """``command`` run in the running container ``task``; cut off after ``timeout`` seconds."""


class Orchestrator(OneOffRunner, Protocol):
    """Where apps run: one Docker host now, a Swarm cluster later. Each (app, environment) has
    its own network; everything the orchestrator creates is labelled with both.

    Its unit is a service's set of tasks (``RunningService``: a container on one host, a task on a
    cluster), never one container's steps: a release's plan (planning/deploy.py) starts, awaits,
    halts and stops tasks of a service together, and the orchestrator decides how. It runs
    one-off commands too (``OneOffRunner``: dockyard run and exec, release commands)."""

    def ensure_network(self, app: str, environment: str) -> None: ...
    def start(self, app: str, release: int, environment: str, service: ServiceSpec,
              replicas: Sequence[int] = (0,)) -> list[RunningService]:
        """Start the service's tasks for these ``replicas`` of the release (label dockyard.replica),
        all or none: when one cannot start, those started are removed before DeployFailed."""
        ...
    def wait_ready(self, tasks: Sequence[RunningService], timeout: float, check: HttpCheck | None = None) -> None:
        """Return once every task is ready (healthy, answering ``check``, completed...), within
        ``timeout`` in all; raise DeployFailed with the first one's reason and last output when one
        will not be."""
        ...
    def resolve_image(self, image: str, pull: bool = True) -> ResolvedImage | None:
        """The image (a reference or an id) as the target has it, pulled first when missing and
        ``pull``; None when it is missing and not pulled."""
        ...
    def observe(self, app: str | None = None) -> list[RunningService]: ...
    def monitor(self, containers: Sequence[RunningService], seconds: float,
                checks: Mapping[str, HttpCheck]) -> None:
        """Watch the containers for ``seconds``: DeployFailed, with the reason and the last output,
        as soon as one exits, restarts or turns unhealthy, or (at the end) fails its service's
        HTTP check in ``checks``."""
        ...
    def drain(self, containers: Sequence[RunningService], timeout: float) -> int:
        """Wait until the containers (out of the proxy's routes) answer no request any more: no
        open connection on their port. Returns how many are still open at ``timeout``."""
        ...
    def stop(self, tasks: Sequence[RunningService]) -> None:
        """Stop and remove the tasks (each one tried; the first failure raised after)."""
        ...

    def halt(self, tasks: Sequence[RunningService]) -> None:
        """Stop the tasks, keeping them (and their volumes) to be resumed."""
        ...

    def resume(self, tasks: Sequence[RunningService]) -> None:
        """Start halted tasks again (each one tried; the first failure raised after)."""
        ...

    def volumes(self, app: str, environment: str) -> list[Volume]: ...
    def remove_volume(self, app: str, environment: str, name: str) -> None:
        """Remove a named volume and its data; refused while a container uses it."""
        ...

    def remove_network(self, app: str, environment: str) -> None: ...
    def logs(self, app: str, environment: str, follow: bool, tail: int,
             stop: threading.Event | None = None) -> Iterator[str]:
        """The output of the app's environment, line by line; ends when ``stop`` is set (the
        reader went away)."""
        ...


class Proxy(Protocol):
    """Routes by host name on the proxy's port, and published host ports (domain/published_ports.py):
    the proxy listens on a host port of its own for each and sends all it gets to one service."""

    def ensure_running(self) -> None: ...
    def set_route(self, route: Route) -> None: ...
    def remove_route(self, route_id: str) -> None: ...
    def routes(self) -> Sequence[Route]: ...
    def set_port(self, port: PortRoute) -> None:
        """Listen on ``port.port`` (an id names it: set again, only its upstreams change); refused
        (Unavailable) when the host port cannot be listened on."""
        ...
    def remove_port(self, port_id: str) -> None:
        """Stop listening there; an unknown id is no error."""
        ...
    def ports(self) -> Sequence[PortRoute]: ...
    def host_port_free(self, port: int, protocol: str, host_ip: str = "") -> bool:
        """Whether nothing holds ``port`` (protocol "tcp", "udp" or "sctp") on the proxy's host, on
        ``host_ip`` ("" every interface): what a published port needs. The proxy's own ports are
        held."""
        ...


class AppStore(Protocol):
    def get_app(self, name: str) -> App: ...
    def list_apps(self) -> list[App]: ...


class AppRecords(AppStore, Protocol):
    """Apps created, changed and forgotten."""

    def create_app(self, app: App) -> App:
        """The app and its production environment; Conflict when the name is taken."""
        ...
    def set_domains(self, name: str, domains: tuple[str, ...]) -> App: ...
    def set_host_access(self, name: str, keys: tuple[str, ...]) -> App:
        """The host-access compose keys allowed for the app (replacing the previous ones)."""
        ...
    def delete_app(self, name: str) -> None:
        """The app and its records (jobs, releases, images, variables, secrets, environments)."""
        ...


class TokenStore(Protocol):
    """API and git tokens, kept hashed."""

    def token_count(self) -> int: ...
    def create_token(self, name: str, role: str = "admin", user: str | None = None) -> str:
        """A new token of ``user`` (default: a user named as the token, created with ``role`` when
        new), shown only in this answer; Conflict when the name is taken."""
        ...
    def verify_token(self, token: str) -> Token | None:
        """(name, role, user) of the token, or None when no token is this one."""
        ...
    def list_tokens(self) -> list[Token]:
        """Each token's name, role, created_at and last_used_at (never the token)."""
        ...
    def revoke_token(self, name: str) -> None:
        """NotFound when no token has this name."""
        ...
    def create_user(self, name: str, role: str) -> User:
        """Conflict when the name is taken."""
        ...
    def list_users(self) -> list[User]: ...
    def set_user_role(self, name: str, role: str) -> User:
        """NotFound for an unknown user; Conflict for the last admin's."""
        ...
    def remove_user(self, name: str) -> None:
        """The user and their tokens; NotFound for an unknown user, Conflict for the last admin."""
        ...


class EnvironmentStore(Protocol):
    def environments(self, app: str) -> list[Environment]:
        """The app's environments, production first."""
        ...
    def get_environment(self, app: str, name: str) -> Environment: ...
    def add_environment(self, environment: Environment) -> Environment: ...
    def set_environment_branch(self, app: str, name: str, branch: str | None) -> Environment: ...
    def set_environment_protected(self, app: str, name: str, protected: bool) -> Environment: ...
    def set_environment_replicas(self, app: str, name: str, replicas: Mapping[str, int]) -> Environment:
        """The replica counts set with ``dockyard scale`` (service -> count), replacing the last ones."""
        ...
    def remove_environment(self, app: str, name: str) -> None:
        """The environment's record, releases, variables and secrets (not its volumes)."""
        ...


class RepoStore(Protocol):
    """An app's repositories besides its own (services/repos.py)."""

    def add_repo(self, repo: SourceRepo) -> SourceRepo:
        """Conflict when the app has one of that name, or a second deploy repo."""
    def get_repo(self, app: str, name: str) -> SourceRepo: ...
    def repos(self, app: str) -> list[SourceRepo]: ...
    def remove_repo(self, app: str, name: str) -> None: ...


class ImageStore(Protocol):
    def add_image(self, image: BuiltImage) -> None: ...
    def list_images(self, app: str) -> list[BuiltImage]:
        """Newest first."""
        ...

    def collect_images(self, app: str, repository: str, digest: str) -> int:
        """Forget the app's images of this manifest (garbage collection removed it), remembering
        each tag's image id (``collected_image``). Returns how many were forgotten."""
        ...

    def collected_image(self, repository: str, tag: str) -> str | None:
        """The image id a tag was bound to before garbage collection removed it, or None: a
        version stays bound to its first build."""
        ...


class ReleaseStore(AppStore, EnvironmentStore, Protocol):
    def create_release(self, app: str, environment: str, commit: str, job_id: int | None) -> int: ...
    def set_release(self, release_id: int, status: ReleaseStatus, services: tuple[ServiceSpec, ...] | None = None,
                    error: str | None = None) -> None: ...
    def supersede(self, app: str, environment: str, live_id: int) -> None: ...
    def get_release(self, release_id: int) -> ReleaseRecord:
        """NotFound when there is none."""
        ...
    def live_release(self, app: str, environment: str) -> ReleaseRecord | None: ...
    def list_releases(self, app: str, limit: int = 20, environment: str | None = None) -> list[ReleaseRecord]:
        """Newest first, of one environment or of all."""
        ...
    def set_release_artifact(self, release_id: int, services: tuple[ServiceSpec, ...]) -> None:
        """The release's artifact: the commit's services pinned by digest, before any
        environment's configuration (hosts, variables, secrets)."""
        ...
    def set_release_config(self, release_id: int, config: Mapping[str, object]) -> None:
        """What configuration the release used: variable names and secret versions, never values."""
        ...
    def set_release_timeline(self, release_id: int, timeline: Mapping[str, object]) -> None:
        """The moments of the release's value stream (domain/value_stream.py)."""
        ...


class JobStore(Protocol):
    def enqueue(self, kind: str, app: str, payload: dict[str, str], environment: str = DEFAULT_ENVIRONMENT) -> Job: ...
    def list_jobs(self, app: str | None = None, limit: int = 50, environment: str | None = None) -> list[Job]: ...
    def pending_deploy(self, app: str, commit: str, environment: str = DEFAULT_ENVIRONMENT) -> Job | None:
        """A deploy of this commit to this environment, queued or running."""
        ...
    def claim_next(self) -> Job | None:
        """The oldest queued job of an environment that runs no job, marked running."""
        ...
    def running_count(self) -> int: ...
    def requeue_interrupted(self, max_attempts: int) -> tuple[list[int], list[int]]: ...
    def finish_job(self, job_id: int, status: JobStatus, error: str | None = None) -> None: ...
    def append_log(self, job_id: int, line: str) -> None: ...
    def release_of_job(self, job_id: int) -> int | None:
        """The newest release the job made, if any."""
        ...


class JobHistory(Protocol):
    """Jobs as they are read back, and a job recorded failed at once (a refused push)."""

    def get_job(self, job_id: int) -> Job:
        """NotFound when there is no such job."""
        ...
    def job_logs(self, job_id: int, after: int = 0) -> list[tuple[int, str]]:
        """(line id, line) of the job's log after line id ``after``, oldest first."""
        ...
    def start_job(self, kind: str, app: str, payload: dict[str, str], environment: str = DEFAULT_ENVIRONMENT) -> Job:
        """A job made running, that no worker claims: it runs where it was asked (dockyard run)."""
    def record_failed_job(self, kind: str, app: str, payload: dict[str, str], error: str, line: str) -> Job:
        """A job that failed before it could run, with ``line`` as its log."""
        ...


class ConfigStore(Protocol):
    """Each (app, environment)'s variables, and its secrets as sealed versions."""

    def variables(self, app: str, environment: str) -> dict[str, str]: ...
    def set_variables(self, app: str, environment: str, changes: Mapping[str, str | None]) -> dict[str, str]:
        """Set (a value) or unset (None) variables at once; the variables after the change."""
        ...
    def secrets(self, app: str, environment: str) -> list[SecretVersion]: ...
    def add_secret(self, app: str, environment: str, name: str,
                   seal: Callable[[int], tuple[str, bytes]]) -> SecretVersion:
        """A new version of a secret: ``seal(version)`` gives (key id, ciphertext), within the
        transaction that takes the version number."""
        ...
    def sealed_secret(self, app: str, environment: str, name: str, version: int) -> SealedSecret: ...
    def sealed_secrets(self, app: str | None = None) -> list[SealedSecret]:
        """Every kept version (of one app's secrets, or of all)."""
        ...
    def remove_secret(self, app: str, environment: str, name: str) -> None:
        """Every version goes; a later secret of that name goes on from the last version number."""
        ...
    def reseal_secrets(self, reseal: Callable[[SealedSecret], tuple[str, bytes]]) -> int:
        """Every version sealed again, in one transaction: all or none. Returns how many."""
        ...


class SecretCipher(Protocol):
    """Authenticated encryption under one key (adapters/secret_box.py: AES-256-GCM)."""

    @property
    def key_id(self) -> str: ...
    def seal(self, plaintext: bytes, associated: bytes) -> bytes: ...
    def open(self, sealed: bytes, associated: bytes) -> bytes:
        """The plaintext; raises SecretUnreadable when the ciphertext or its associated data changed."""
        ...


class SecretKeys(Protocol):
    """Where the secrets key lives, outside the database (a 0600 file), and its rotation: a new
    key is staged beside the current one and replaces it only once the store is re-sealed."""

    def current(self) -> SecretCipher: ...
    def stage(self) -> SecretCipher:
        """A new key, kept beside the current one, not in use yet."""
        ...
    def staged(self) -> SecretCipher | None: ...
    def promote(self) -> SecretCipher:
        """The staged key replaces the current one."""
        ...
    def discard(self) -> None: ...


class SecretFiles(Protocol):
    """Puts an environment's secrets as files at /run/secrets in its containers."""

    def mount(self, app: str, environment: str, secrets: Sequence[tuple[str, int]]) -> str:
        """The bind (``SOURCE:/run/secrets:ro``) of these secret versions: the same versions, the
        same bind. Pure: nothing is created."""
        ...
    def write(self, app: str, environment: str, secrets: Sequence[tuple[str, int]],
              files: Mapping[str, bytes]) -> None:
        """Make ``mount(...)``'s source hold ``files`` (name → content), each readable by root only."""
        ...
    def prune(self, app: str) -> None:
        """Remove the app's secret files that no container uses (all of them once its containers
        are gone)."""
        ...


class OrchestratorEvents(Protocol):
    """What tells the control plane that the target changed under it (a container started or
    died, the engine restarted): routes follow at once."""

    def watch(self, on_change: Callable[[str | None], None], stop: threading.Event) -> None:
        """Call ``on_change(app)`` when one of the app's containers starts or dies, and
        ``on_change(None)`` when anything may have changed unseen; returns when ``stop`` is set."""
        ...


class AuditLog(Protocol):
    """The audit log: entries appended, each chained to the one before (``domain/audit.py``),
    never changed."""

    def append_audit(self, at: str, actor: str, source: str, action: str, app: str | None,
                     environment: str | None, detail: Mapping[str, object]) -> AuditEntry:
        """The entry, hashed with the newest entry's hash, stored last: one chain, whoever appends."""
        ...
    def audit_entries(self, app: str | None = None, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
        """Newest first (of one app, or all), with ids below ``before`` when given."""
        ...
    def all_audit_entries(self) -> Iterator[AuditEntry]:
        """Every entry, oldest first."""
        ...


class WebhookStore(AppStore, EnvironmentStore, Protocol):
    """Each app's outgoing webhooks (their secrets sealed: ``seal(id)`` gives the column's bytes)
    and their deliveries, claimed by one sender at a time (adapters/sql_webhooks.py)."""

    def add_webhook(self, app: str, environment: str | None, url: str, events: Sequence[str],
                    seal: Callable[[int], bytes]) -> Webhook: ...
    def webhooks(self, app: str) -> list[Webhook]:
        """Oldest first."""
        ...
    def get_webhook(self, app: str, webhook_id: int) -> Webhook:
        """Raises NotFound when the app has no such webhook."""
        ...
    def sealed_webhook_secret(self, webhook_id: int) -> tuple[Webhook, bytes] | None: ...
    def reseal_webhooks(self, reseal: Callable[[Webhook, bytes], bytes]) -> int:
        """Every webhook's sealed secret replaced by ``reseal(webhook, sealed)``, in one transaction."""
        ...
    def remove_webhook(self, app: str, webhook_id: int) -> None:
        """The webhook and its deliveries (those pending are never sent)."""
        ...
    def add_deliveries(self, deliveries: Sequence[tuple[int, str, str]], next_at: datetime) -> list[Delivery]:
        """(webhook id, event, payload) each as a pending delivery, tried first at ``next_at``."""
        ...
    def deliveries(self, app: str, webhook_id: int | None = None, limit: int = 50) -> list[Delivery]:
        """Newest first."""
        ...
    def claim_delivery(self, now: datetime, lease_until: datetime) -> Delivery | None:
        """A pending delivery due at ``now``, its next try moved to ``lease_until`` (so that no other
        sender takes it, and it is tried again then if this one never records its attempt)."""
        ...
    def next_delivery_at(self) -> datetime | None:
        """When the next pending delivery is due."""
        ...
    def record_attempt(self, delivery_id: int, status: str, response: int | None, error: str | None,
                       next_at: datetime | None) -> Delivery | None:
        """One more attempt, its outcome; None when the delivery is gone (its webhook removed)."""
        ...
    def prune_deliveries(self, before: datetime) -> int:
        """Deliveries delivered or failed, created before ``before``, forgotten."""
        ...


class WebhookTransport(Protocol):
    """Sends a delivery (adapters/webhook_http.py: the standard library's HTTP client)."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Reply:
        """The receiver's answer (redirects are not followed); raises Unreachable when there is
        none within ``timeout`` seconds."""
        ...

class Store(ReleaseStore, AppRecords, ImageStore, RepoStore, JobStore, JobHistory, TokenStore, ConfigStore, Protocol):
    """dockyard's state, as the services use it (SQL now: adapters/sql_store.py)."""


class PromotionStore(Store, Protocol):
    """The store, with the stage graph's candidates and their approvals (adapters/sql_promotions.py)."""

    def create_promotion(self, app: str, environment: str, source_release: int, source_environment: str,
                         commit: str, gate: Gate, pusher: str) -> Promotion:
        """A new candidate (awaiting); the one of this release and environment when it exists."""
        ...
    def get_promotion(self, promotion_id: int) -> Promotion: ...
    def promotion_of(self, environment: str, source_release: int) -> Promotion:
        """NotFound when the release is no candidate there."""
        ...
    def promotions(self, app: str | None = None, environment: str | None = None, status: str | None = None,
                   limit: int = 100) -> list[Promotion]: ...
    def set_promotion(self, promotion_id: int, status: str, reason: str = "", release: int | None = None,
                      expected: str | None = None) -> bool:
        """Its new state; with ``expected``, only if it is in that state still (False otherwise)."""
        ...
    def add_approval(self, promotion_id: int, approval: Approval) -> None:
        """Conflict when that user decided already."""
        ...
    def approvals_of(self, promotion_id: int) -> list[Approval]: ...
