"""The things dockyard keeps: apps, built images, releases, services and jobs. Pure data."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime

DEFAULT_ENVIRONMENT = "production"  # every app has it; it answers at APP.<base domain>
LOCAL_TARGET = "local"  # this Docker host: the only target until Swarm clusters come
PROXIED = "http"  # a published host port the proxy serves (ServiceSpec.published)

# Compose keys that hand a container the host (its kernel, devices, network, processes, docker):
# refused unless an admin allows them for the app (`dockyard apps allow APP KEY`).
HOST_ACCESS_KEYS: tuple[str, ...] = (
    "privileged", "cap_add", "devices", "network_mode", "pid", "ipc", "userns_mode", "security_opt",
    "bind_mounts", "docker_socket",
)


@dataclass(frozen=True)
class App:
    name: str
    deploy_branch: str = "main"
    domains: tuple[str, ...] = ()
    created_at: datetime | None = None
    host_access: tuple[str, ...] = ()  # HOST_ACCESS_KEYS an admin allowed for this app


@dataclass(frozen=True)
class Token:
    """An API and git token as the store keeps it: its name, its holder (a user) and the holder's
    role, never the token (only its hash is stored)."""

    name: str
    role: str
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    user: str = ""


@dataclass(frozen=True)
class User:
    """Someone who acts on dockyard, with a role (domain/access.py) and any number of tokens."""

    name: str
    role: str
    created_at: datetime | None = None
    tokens: int = 0


@dataclass(frozen=True)
class Environment:
    """Where one app runs one release at a time (production, recette, dev...): its own network,
    container names, volumes, routes, releases, variables, secrets and deploy lock."""

    app: str
    name: str
    target: str = LOCAL_TARGET  # the Docker target it runs on
    branch: str | None = None  # pushes to this branch deploy here (production: the app's deploy branch)
    created_at: datetime | None = None
    # Replica counts set with `dockyard scale` (service, count), sorted: over compose's and dockyard.yml's
    replicas: tuple[tuple[str, int], ...] = ()
    protected: bool = False  # developers may not deploy, roll back, scale or configure it (domain/access.py)

    @property
    def is_production(self) -> bool:
        return self.name == DEFAULT_ENVIRONMENT


@dataclass(frozen=True)
class BuiltImage:
    """An image in dockyard's registry, pinned by digest."""

    app: str
    repository: str  # e.g. "shop/shop-tools", relative to the registry
    version: str  # "0.2", "0.2+g1a2b3c4d", "g1a2b3c4d"
    tag: str
    digest: str  # manifest digest, sha256:...
    image_id: str  # config digest, sha256:...
    commit: str
    size: int
    dockerfile: str
    created_at: datetime | None = None
    name: str = ""  # the Dockerfile header's image name ("": none), which other repos' FROM and image: use
    source_version: str = ""  # the version the source asked for (``version`` differs when that was taken)
    repo: str = ""  # the app's repo it was built from ("": the app's own, its deploy repo)
    branch: str = ""  # the branch whose push built it


REPO_ROLES = ("source", "deploy")


@dataclass(frozen=True)
class SourceRepo:
    """One of an app's git repositories besides its own: a source repo builds images, the deploy
    repo (the app's own repository, under this name) holds the stack and dockyard.yml."""

    app: str
    name: str
    role: str  # "source" or "deploy"
    created_at: datetime | None = None


@dataclass(frozen=True)
class HttpCheck:
    """An HTTP health check: healthy when ``GET path`` on the container's port answers ``status``
    (0: any 2xx or 3xx; a 500 is never healthy) within ``timeout`` seconds."""

    path: str
    status: int = 0
    interval: float = 10.0
    timeout: float = 5.0

    def passes(self, status: int) -> bool:
        return status == self.status if self.status else 200 <= status < 400


@dataclass(frozen=True)
class ServiceSpec:
    """One service of a release, as it must run: image pinned by digest."""

    name: str
    image: str  # full reference, host/repo@sha256:...
    port: int | None = None  # container port the proxy routes to; None: not a web service
    hosts: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] | None = None
    depends_on: tuple[str, ...] = ()
    image_id: str = ""  # config digest of an image dockyard built: its content, whatever its name
    # Host access, only where an admin allowed it for the app (HOST_ACCESS_KEYS):
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    network_mode: str = ""
    pid: str = ""
    ipc: str = ""
    security_opt: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()  # "source:target[:mode]"
    userns_mode: str = ""
    # The environment's secrets this service receives, by version: (NAME, version). Their values
    # are never part of the spec: ``environment`` holds a reference (``<secret:NAME@v3>``) that is
    # resolved as the container starts (domain/configuration.py).
    secrets: tuple[tuple[str, int], ...] = ()
    # Compose `secrets:` (domain/compose_service.py): None when the compose file declares no
    # top-level secrets (the service receives every secret of its environment); else the ones it
    # lists, each "NAME:FILE" (the dockyard secret, its file name in /run/secrets). Never in
    # spec_hash itself: what it changes shows in ``secrets`` and in the secret files' bind.
    secret_files: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()  # named volumes, "name:/target[:ro]" (domain/volumes.py)
    # More compose keys (domain/compose_service.py). Each counts in spec_hash only when set.
    hostname: str = ""  # the container's own host name ("": the service's name)
    aliases: tuple[str, ...] = ()  # more names on the app network: hostname, container_name, aliases
    healthcheck: tuple[str, ...] = ()  # Docker's Test: ("CMD", ...), ("CMD-SHELL", cmd), ("NONE",)
    health_interval: int = 0  # nanoseconds; 0: the image's, else Docker's default
    health_timeout: int = 0
    health_start_period: int = 0
    health_retries: int = 0
    restart: str = ""  # "no", "always", "on-failure[:N]", "unless-stopped"; "": unless-stopped
    one_shot: bool = False  # runs once and exits 0 (a dependant waits for service_completed_successfully)
    labels: tuple[str, ...] = ()  # "key=value"
    user: str = ""
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None  # None: the image's
    stop_signal: str = ""
    stop_grace_period: int | None = None  # seconds; None: 10
    memory: int | None = None  # bytes; None: dockyard's default limit
    cpus: float | None = None
    pids: int | None = None  # None: dockyard's default limit
    # Start order only (never in spec_hash): dependencies that must be ready (service_healthy), or
    # have exited 0 (service_completed_successfully), before this service starts.
    after_healthy: tuple[str, ...] = ()
    after_completed: tuple[str, ...] = ()
    # Host ports (domain/published_ports.py), each (host port, container port, protocol, host ip):
    # protocol PROXIED ("http"): the proxy listens on the host port; "tcp", "udp", "sctp": Docker
    # binds it on the container (the service is then released stop-first). Host ip: "" for every
    # interface, else a loopback address. Only the direct ones count in spec_hash.
    published: tuple[tuple[int, int, str, str], ...] = ()
    # How many containers run it (compose deploy.replicas / scale, dockyard.yml services/NAME/replicas),
    # 0 to 100; 0: none. Never in spec_hash: scaling keeps the containers that run and starts or
    # stops the difference. Above 1 only for a stateless, long-running service that Docker
    # publishes no host port of and that has no container_name (domain/replicas.py).
    replicas: int = 1
    container_name: str = ""  # compose's: one of ``aliases`` too; never in spec_hash (aliases count)
    # dockyard.yml's HTTP health check (services/NAME/health), for a web service without a Docker
    # healthcheck: ready once GET http_check answers http_check_status (0: any 2xx or 3xx). Never in
    # spec_hash: dockyard asks, the container does not change.
    http_check: str = ""  # a URL path; "": none
    http_check_status: int = 0
    http_check_interval: float = 0.0  # seconds between two checks once serving; 0: 10 s
    http_check_timeout: float = 0.0  # seconds an answer may take; 0: 5 s
    # A service that is not web but declares a TCP port (compose ``expose``, or a host port Docker
    # publishes): without a Docker healthcheck, it is ready once that port accepts a connection.
    # 0: none (ready once it keeps running a moment). Never in spec_hash.
    ready_port: int = 0
    # Released stop-first though it has no named volume: compose ``deploy.update_config.order:
    # stop-first``, or ``stateful: true`` in dockyard.yml. Never in spec_hash.
    stop_first: bool = False
    # Replicas replaced this many at a time (compose ``deploy.update_config.parallelism``); 0: all
    # at once. Start-first, a batch's new containers answer before the route carries them and its
    # old ones leave (at most this many extra containers run); stop-first, a batch's old ones
    # stop first (at most this many are missing). Never in spec_hash.
    parallelism: int = 0

    @property
    def is_web(self) -> bool:
        return self.port is not None

    @property
    def health(self) -> HttpCheck | None:
        """dockyard.yml's HTTP health check of the service, if it declares one."""
        if not self.http_check:
            return None
        return HttpCheck(self.http_check, self.http_check_status, self.http_check_interval or 10.0,
                         self.http_check_timeout or 5.0)

    @property
    def proxied_ports(self) -> tuple[tuple[int, int, str, str], ...]:
        return tuple(p for p in self.published if p[2] == PROXIED)

    @property
    def direct_ports(self) -> tuple[tuple[int, int, str, str], ...]:
        """Published by Docker on the container: one container holds them at a time (stop-first)."""
        return tuple(p for p in self.published if p[2] != PROXIED)

    @property
    def stateful(self) -> bool:
        """Keeps data in a named volume: released stop-first, never two containers on one volume."""
        return bool(self.volumes)

    @property
    def host_access(self) -> tuple[object, ...]:
        return (self.privileged, self.cap_add, self.devices, self.network_mode, self.pid, self.ipc,
                self.security_opt, self.binds, self.userns_mode)

    @property
    def spec_hash(self) -> str:
        """Changes whenever anything that needs a new container changes. A secret counts by its
        version, never by its value: the spec that holds references and the one resolved at
        start hash alike."""
        environment = self.environment
        if self.secrets:
            names = {name for name, _ in self.secrets}
            environment = tuple(pair for pair in environment if pair[0] not in names)
        parts: tuple[object, ...] = (self.image_id or self.image, self.port, environment, self.command)
        if any(self.host_access):  # a service without host access keeps the hash it had before
            parts += self.host_access
        if self.secrets:  # nor does one without secrets
            parts += (self.secrets,)
        if self.volumes:
            parts += (self.volumes,)
        if self.direct_ports:  # a host port the proxy serves needs no new container
            parts += (("published", self.direct_ports),)
        extras = tuple((name, getattr(self, name)) for name in _EXTRA_FIELDS if getattr(self, name) != _DEFAULTS[name])
        if extras:  # only the compose keys a service uses
            parts += (extras,)
        text = repr(parts)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# The fields of ServiceSpec.spec_hash that count only when they differ from their defaults.
_EXTRA_FIELDS = ("hostname", "aliases", "healthcheck", "health_interval", "health_timeout", "health_start_period",
                 "health_retries", "restart", "one_shot", "labels", "user", "working_dir", "entrypoint",
                 "stop_signal", "stop_grace_period", "memory", "cpus", "pids")
_DEFAULTS = {f.name: f.default for f in fields(ServiceSpec) if f.name in _EXTRA_FIELDS}


@dataclass(frozen=True)
class ResolvedImage:
    """An image as the target has it: its content id, its reference pinned by registry digest
    (when it came from a registry), and the paths its VOLUME instructions declare."""

    image_id: str
    pinned: str = ""  # repository@sha256:..., or "" for an image built here and never pushed
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Release:
    """What one app must run in one environment."""

    id: int
    app: str
    commit: str
    services: tuple[ServiceSpec, ...]
    environment: str = DEFAULT_ENVIRONMENT


@dataclass(frozen=True)
class OneOffResult:
    """How a one-off container, or a command in a running one, ended: its exit code (None: not
    known, it was cut off), and whether its deadline cut it off."""

    exit_code: int | None
    timed_out: bool = False


@dataclass(frozen=True)
class RunningService:
    """What the orchestrator reports it runs for an app."""

    id: str
    app: str
    service: str
    release: int
    image: str
    state: str  # "running", "exited", ...
    upstream: str | None = None  # host:port the proxy can dial
    environment: str = DEFAULT_ENVIRONMENT
    spec_hash: str = ""
    exit_code: int | None = None  # a one-shot service's, once it exited
    stop_timeout: int | None = None  # seconds it is given to stop (stop_grace_period); None: 10
    replica: int = 0  # which of the service's containers (label dockyard.replica; none: 0)


@dataclass(frozen=True)
class Volume:
    """A named volume of an app's environment, as the orchestrator reports it."""

    name: str  # as the compose file names it
    app: str
    environment: str
    volume: str  # the engine's name for it
    size: int | None = None  # bytes, when the engine knows
    used_by: tuple[str, ...] = ()  # services whose containers mount it
    created_at: str = ""


@dataclass(frozen=True)
class Route:
    """Traffic for these hosts goes to these upstreams."""

    id: str
    hosts: tuple[str, ...]
    upstreams: tuple[str, ...]


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class ReleaseStatus(enum.StrEnum):
    PENDING = "pending"
    LIVE = "live"
    FAILED = "failed"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    app: str
    status: JobStatus
    payload: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    environment: str = DEFAULT_ENVIRONMENT  # the one a deploy job releases to


@dataclass(frozen=True)
class SecretVersion:
    """What is told of a secret: its name and versions, never its value."""

    app: str
    environment: str
    name: str
    version: int  # the newest
    key_id: str  # the key the newest version is sealed with
    versions: int = 1  # how many versions are kept
    created_at: datetime | None = None  # of the first version kept
    updated_at: datetime | None = None  # of the newest


@dataclass(frozen=True)
class SealedSecret:
    """One version of a secret as the store keeps it: AES-256-GCM ciphertext (nonce first), bound
    to its app, environment, name and version."""

    app: str
    environment: str
    name: str
    version: int
    key_id: str
    ciphertext: bytes = field(repr=False)
