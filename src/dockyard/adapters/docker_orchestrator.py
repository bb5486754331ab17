"""Apps' containers on one Docker host (the Orchestrator port), through the Engine API.

Everything created here carries labels naming installation, app, environment, service and
release, so observation and clean-up never guess. Each app network gets a small subnet of its own
from dockyard's pool (domain/networks.py); every container runs with default limits.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import queue
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from dockyard.adapters.docker_client import LABEL, each, explain, labels, patiently
from dockyard.adapters.docker_oneoff import ONEOFF_LABEL, OneOffContainers
from dockyard.adapters.docker_watch import ONE_SHOT_LABEL, READY_PORT_LABEL, ContainerWatch
from dockyard.domain import networks
from dockyard.domain.errors import Conflict, DeployFailed, DockyardError, NotFound, Unavailable
from dockyard.domain.model import DEFAULT_ENVIRONMENT, ResolvedImage, RunningService, ServiceSpec, Volume
from dockyard.domain.references import parse_reference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Defaults every app container runs with (DOCKYARD_CONTAINER_*)."""

    memory: str = "1g"
    pids: int = 1024
    log_max_size: str = "10m"
    log_max_files: int = 3


@dataclass(frozen=True)
class Pool:
    """Where app networks take their subnets from (DOCKYARD_NETWORK_POOL / _PREFIX)."""

    network: str = networks.DEFAULT_POOL
    prefix: int = networks.DEFAULT_PREFIX


class DockerOrchestrator(OneOffContainers, ContainerWatch):
    """Orchestrator for a single Docker host."""

    def __init__(self, client: Any, installation: str, prefix: str, registry_auth: dict[str, str],
                 limits: Limits | None = None, pool: Pool | None = None) -> None:
        self.client = client
        self.api = client.api
        self.installation = installation
        self.prefix = prefix
        self.registry_auth = registry_auth
        self.limits = limits or Limits()
        self.pool = pool or Pool()
        self._pool_net = networks.parse_pool(self.pool.network, self.pool.prefix)
        self._network_lock = threading.Lock()

    # -- networks -------------------------------------------------------------------------
    def network_name(self, app: str, environment: str = DEFAULT_ENVIRONMENT) -> str:
        """Named after the installation too: two installations on one engine never share one.
        Production keeps the name it had before environments; another environment's name joins
        it with '--', which neither an app nor an environment name holds, so no two collide."""
        base = f"{self.prefix}-{self.installation}-{app}"
        return base if environment == DEFAULT_ENVIRONMENT else f"{base}--{environment}"

    def _legacy_network_name(self, app: str) -> str:
        return f"{self.prefix}-{app}"

    def ensure_network(self, app: str, environment: str) -> None:
        name = self.network_name(app, environment)
        with self._network_lock:
            if self._networks_named(name):
                return
            taken = networks.parse_taken(_host_routes())
            for _ in range(8):
                taken += networks.parse_taken(
                    c.get("Subnet", "") for n in self.api.networks() for c in ((n.get("IPAM") or {}).get("Config") or [])
                )
                subnet = networks.pick_subnet(self._pool_net, self.pool.prefix, taken)
                ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
                try:
                    self.api.create_network(name, driver="bridge", ipam=ipam, check_duplicate=True,
                                            labels=labels(self.installation, app=app, environment=environment))
                    return
                except docker.errors.APIError as exc:
                    if "overlap" not in explain(exc).lower():  # another installation took it meanwhile: next one
                        raise DeployFailed(f"cannot create the network of {app}: {explain(exc)}") from None
                    taken.append(subnet)
            raise DeployFailed(f"cannot create the network of {app}: every subnet tried was taken meanwhile",
                               "deploy again")

    def _networks_named(self, name: str) -> list[dict[str, Any]]:
        """Networks of exactly this name (the engine's name filter also matches parts of names)."""
        return [n for n in self.api.networks(names=[name]) if n.get("Name") == name]

    def pool_usage(self) -> tuple[int, int]:
        """How many of the pool's subnets networks hold now, and how many it has."""
        subnets = networks.parse_taken(
            c.get("Subnet", "") for n in self.api.networks() for c in ((n.get("IPAM") or {}).get("Config") or []))
        used = sum(1 for s in subnets if s.subnet_of(self._pool_net) and s.prefixlen >= self.pool.prefix)
        return used, self._pool_net.num_addresses >> (32 - self.pool.prefix)

    def live_restore(self) -> bool:
        """Whether the engine keeps containers running while it restarts."""
        return bool(self.api.info().get("LiveRestoreEnabled"))

    def remove_network(self, app: str, environment: str) -> None:
        legacy = [self._legacy_network_name(app)] if environment == DEFAULT_ENVIRONMENT else []
        for name in (self.network_name(app, environment), *legacy):
            for net in self._networks_named(name):
                if (net.get("Labels") or {}).get(f"{LABEL}.installation") not in (self.installation, None):
                    continue
                try:
                    self.api.remove_network(net["Id"])
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    raise DeployFailed(f"cannot remove the network of {app}: {explain(exc)}",
                                       "a container still uses it: see docker network inspect " + name) from None

    # -- containers -----------------------------------------------------------------------
    def start(self, app: str, release: int, environment: str, service: ServiceSpec,
              replicas: Sequence[int] = (0,)) -> list[RunningService]:
        """One container per replica, all or none: those started go again when one cannot start."""
        started: list[RunningService] = []
        try:
            for replica in replicas:
                started.append(self._start_one(app, release, environment, service, replica))
        except BaseException:
            if started:
                with contextlib.suppress(DockyardError, docker.errors.APIError):
                    self.stop(started)
            raise
        return started

    def _start_one(self, app: str, release: int, environment: str, service: ServiceSpec,
                   replica: int) -> RunningService:
        scope = app if environment == DEFAULT_ENVIRONMENT else f"{app}--{environment}"
        name = (f"{self.prefix}-{self.installation}-{scope}-{service.name}-{replica}-r{release}-"
                f"{secrets.token_hex(2)}")
        container_labels = labels(
            self.installation, app=app, environment=environment, service=service.name, release=str(release),
            spec=service.spec_hash, port=str(service.port or ""), replica=str(replica),
        )
        image, args = self.container_args(app, environment, service, replica, _container_labels(service, container_labels))

        def create() -> dict[str, Any]:
            return dict(self.api.create_container(image, name=name, **args))

        def create_across_restarts() -> dict[str, Any]:
            """``create``; when the engine stops answering meanwhile, the container it may have made."""
            try:
                return create()
            except requests.exceptions.ConnectionError:
                try:
                    return {"Id": patiently(lambda: self.api.inspect_container(name), what=f"creating {service.name}")[
                        "Id"]}
                except docker.errors.NotFound:
                    return patiently(create, what=f"creating {service.name}")

        try:
            try:
                created = create_across_restarts()
            except docker.errors.ImageNotFound:
                self._pull(image)
                created = create_across_restarts()
        except (docker.errors.APIError, Unavailable) as exc:
            reason = explain(exc) if isinstance(exc, docker.errors.APIError) else exc.message
            raise DeployFailed(f"cannot create {service.name}: {reason}") from None
        try:  # (starting a container that runs already is a no-op: asked again across an engine restart)
            patiently(lambda: self.api.start(created["Id"]), what=f"starting {service.name}")
            return self._running(patiently(lambda: self.api.inspect_container(created["Id"]),
                                           what=f"starting {service.name}"))
        except (docker.errors.APIError, Unavailable) as exc:
            with contextlib.suppress(docker.errors.APIError, Unavailable):  # the start asked before a restart took
                info = patiently(lambda: self.api.inspect_container(created["Id"]), what=f"starting {service.name}")
                if info["State"].get("Running"):
                    return self._running(info)
            with contextlib.suppress(docker.errors.APIError, Unavailable):  # never left behind, unrouted
                patiently(lambda: self.api.remove_container(created["Id"], force=True), what="removing a container")
            reason = explain(exc) if isinstance(exc, docker.errors.APIError) else exc.message
            raise DeployFailed(f"cannot start {service.name}: {reason}") from None

    def container_args(self, app: str, environment: str, service: ServiceSpec, replica: int,
                       container_labels: dict[str, str], routed: bool = True) -> tuple[str, dict[str, Any]]:
        """What ``create_container`` is given for a container of ``service`` (the image, then its
        keyword arguments): its network, limits, volumes, environment, command. ``routed`` False
        for a one-off container of it: no restart policy, published ports, health check, or
        names on the network."""
        network = self.network_name(app, environment)
        # another mode only where an admin allowed it, or another service's of the same app
        mode = self._mode(app, environment, service.network_mode) or network
        # The proxy runs on the host's network and dials the container's address on the app
        # network directly: a host port is published by Docker only where the service asks for
        # it (ServiceSpec.direct_ports: UDP, or not HTTP); the proxy serves the others.
        bindings, exposed = _port_bindings(service) if routed else ({}, [])
        host_config = self.api.create_host_config(
            restart_policy=_restart_policy(service) if routed else None,
            network_mode=mode,
            port_bindings=bindings or None,
            init=True,  # a tiny init as PID 1 forwards signals: apps stop on SIGTERM, not after the timeout
            mem_limit=service.memory or self.limits.memory or None,
            pids_limit=service.pids or self.limits.pids or None,
            nano_cpus=round(service.cpus * 1e9) if service.cpus else None,
            log_config=docker.types.LogConfig(type="json-file", config={
                "max-size": self.limits.log_max_size, "max-file": str(self.limits.log_max_files)}),
            security_opt=["no-new-privileges:true", *service.security_opt],
            privileged=service.privileged,
            cap_add=list(service.cap_add) or None,
            devices=list(service.devices) or None,
            binds=list(service.binds) or None,
            pid_mode=self._mode(app, environment, service.pid) or None,
            ipc_mode=self._mode(app, environment, service.ipc) or None,
            userns_mode=service.userns_mode or None,
            mounts=self._volume_mounts(app, environment, service) or None,
        )
        networking = self.api.create_networking_config(
            {network: self.api.create_endpoint_config(aliases=[service.name, *service.aliases] if routed else None)}
        ) if mode == network else None
        # On one host the image dockyard built is here already: run it by its content id, which
        # needs no pull and no wait for the registry push.
        return service.image_id or service.image, {
            "labels": container_labels, "host_config": host_config, "networking_config": networking,
            "environment": dict(service.environment),
            "command": list(service.command) if service.command is not None else None,
            "hostname": _hostname(service, replica) if mode == network and routed else None,
            "entrypoint": list(service.entrypoint) if service.entrypoint is not None else None,
            "user": service.user or None, "working_dir": service.working_dir or None,
            "stop_signal": service.stop_signal or None, "stop_timeout": service.stop_grace_period,
            "healthcheck": _healthcheck(service) if routed else None, "ports": exposed or None,
        }

    def _mode(self, app: str, environment: str, value: str) -> str:
        """Compose's ``service:NAME`` (share that service's namespace) as Docker's ``container:ID``."""
        if not value.startswith("service:"):
            return value
        name = value.removeprefix("service:")
        for c in reversed(self.observe(app)):
            if c.service == name and c.state == "running" and c.environment == environment:
                return f"container:{c.id}"
        raise DeployFailed(f"{value}: no container of service {name!r} runs",
                           f"start {name} first: list it under depends_on")

    def resolve_image(self, image: str, pull: bool = True) -> ResolvedImage | None:
        try:
            info = self.api.inspect_image(image)
        except docker.errors.NotFound:
            if not pull:
                return None
            self._pull(image)
            info = self.api.inspect_image(image)
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot inspect image {image}: {explain(exc)}") from None
        return resolved_image(image, info)

    def _pull(self, image: str) -> None:
        try:
            self.api.pull(image, auth_config=self.registry_auth if self._is_ours(image) else None)
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot pull {image}: {explain(exc)}",
                               "check the image name and that its registry is reachable") from None

    def _is_ours(self, image: str) -> bool:
        """Registry credentials go to dockyard's registry address exactly, never to a look-alike."""
        try:
            name = parse_reference(image).name
        except ValueError:
            return False
        return name.partition("/")[0] == self.registry_auth.get("serveraddress", "")

    def _running(self, info: dict[str, Any]) -> RunningService:
        return running_service(info, self.network_name)

    def observe(self, app: str | None = None) -> list[RunningService]:
        filters = [f"{LABEL}.installation={self.installation}"]
        if app:
            filters.append(f"{LABEL}.app={app}")
        out = []
        for summary in self.api.containers(all=True, filters={"label": filters}):
            if ONEOFF_LABEL in (summary.get("Labels") or {}):
                continue  # dockyard run's: never one of a service's tasks
            try:
                out.append(self._running(self.api.inspect_container(summary["Id"])))
            except docker.errors.NotFound:
                continue
        return sorted((c for c in out if c.app), key=lambda c: (c.app, c.service, c.release, c.replica))

    def stop(self, tasks: Sequence[RunningService]) -> None:
        each(tasks, self._stop_one)

    def halt(self, tasks: Sequence[RunningService]) -> None:
        each(tasks, self._halt_one)

    def resume(self, tasks: Sequence[RunningService]) -> None:
        each(tasks, self._resume_one)

    def _stop_one(self, container: RunningService) -> None:
        try:
            patiently(lambda: self.api.stop(container.id, timeout=_stop_timeout(container)), what="stopping a container")
            patiently(lambda: self.api.remove_container(container.id, force=True), what="removing a container")
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or "already in progress" not in str(exc):
                raise  # else another stop of it is removing it

    def _halt_one(self, container: RunningService) -> None:
        try:
            patiently(lambda: self.api.stop(container.id, timeout=_stop_timeout(container)), what="stopping a container")
        except docker.errors.NotFound:
            pass

    def _resume_one(self, container: RunningService) -> None:
        try:
            patiently(lambda: self.api.start(container.id), what="starting a container again")
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot start {container.service} of release {container.release} again: "
                               f"{explain(exc)}") from None

    # -- volumes --------------------------------------------------------------------------
    def volume_name(self, app: str, environment: str, name: str) -> str:
        """Scoped to installation, app and environment: two never share one."""
        return f"{self.prefix}-{self.installation}-{app}-{environment}-{name}"

    def _volume_mounts(self, app: str, environment: str, service: ServiceSpec) -> list[Any]:
        mounts = []
        for entry in service.volumes:
            name, target, *mode = entry.split(":")
            volume = self.volume_name(app, environment, name)
            try:
                self.api.inspect_volume(volume)
            except docker.errors.NotFound:
                self.api.create_volume(volume, labels=labels(self.installation, app=app, environment=environment,
                                                              volume=name))
            mounts.append(docker.types.Mount(target, volume, type="volume", read_only=mode == ["ro"]))
        return mounts

    def volumes(self, app: str, environment: str) -> list[Volume]:
        found = self.api.volumes(filters={"label": [f"{LABEL}.installation={self.installation}",
                                                    f"{LABEL}.app={app}", f"{LABEL}.environment={environment}",
                                                    f"{LABEL}.volume"]})  # a compose volume, not dockyard's own
        mine = {v["Name"]: v for v in (found or {}).get("Volumes") or []}
        if not mine:
            return []
        sizes = {v["Name"]: (v.get("UsageData") or {}).get("Size") for v in self.api.df().get("Volumes") or []}
        users: dict[str, list[str]] = {}
        for c in self.api.containers(all=True, filters={"label": [f"{LABEL}.installation={self.installation}",
                                                                    f"{LABEL}.app={app}"]}):
            for mount in c.get("Mounts") or []:
                if mount.get("Name") in mine:
                    users.setdefault(mount["Name"], []).append(c["Labels"].get(f"{LABEL}.service", "?"))
        return sorted((Volume(
            name=v["Labels"].get(f"{LABEL}.volume", v["Name"]), app=app, environment=environment, volume=v["Name"],
            size=sizes.get(v["Name"]) if (sizes.get(v["Name"]) or -1) >= 0 else None,
            used_by=tuple(sorted(set(users.get(v["Name"], ())))), created_at=v.get("CreatedAt", ""),
        ) for v in mine.values()), key=lambda v: v.name)

    def remove_volume(self, app: str, environment: str, name: str) -> None:
        volume = self.volume_name(app, environment, name)
        try:
            self.api.remove_volume(volume)
        except docker.errors.NotFound:
            raise NotFound(f"{app} has no volume {name!r} in {environment}",
                           f"list them: dockyard volumes list {app} --env {environment}") from None
        except docker.errors.APIError as exc:
            raise Conflict(f"volume {name!r} of {app} is in use: {explain(exc)}",
                           "it is removed only when no container mounts it (delete the app first)") from None

    # -- events ---------------------------------------------------------------------------
    def watch(self, on_change: Callable[[str | None], None], stop: threading.Event) -> None:
        """Call ``on_change(app)`` when one of the installation's containers starts or dies, and
        ``on_change(None)`` when anything may have changed unseen (the engine restarted, the
        proxy started again). Returns when ``stop`` is set; survives engine restarts."""
        filters = {"type": ["container"], "event": ["start", "die"],
                   "label": [f"{LABEL}.installation={self.installation}"]}
        first = True
        while not stop.is_set():
            try:
                events = self.api.events(filters=filters, decode=True)
                if not first:
                    on_change(None)  # events were missed while the stream was down
                first = False
                for event in events:
                    if stop.is_set():
                        break
                    attrs = (event.get("Actor") or {}).get("Attributes") or {}
                    if attrs.get(f"{LABEL}.role"):
                        on_change(None)
                    elif attrs.get(f"{LABEL}.app"):
                        on_change(attrs[f"{LABEL}.app"])
            except Exception as exc:  # the engine went away: wait for it to come back
                log.debug("engine events: %s", exc)
            if not first:
                stop.wait(0.5)

    # -- logs -----------------------------------------------------------------------------
    def logs(self, app: str, environment: str, follow: bool, tail: int,
             stop: threading.Event | None = None) -> Iterator[str]:
        """Lines of the environment's running containers, merged. Setting ``stop`` (the reader
        went away) ends the iterator within half a second and closes the engine's log streams."""
        running = [c for c in self.observe(app) if c.state == "running" and c.environment == environment]
        lines: queue.Queue[str | None] = queue.Queue(maxsize=1000)
        streams: list[Any] = []
        closed = threading.Event()

        def put(item: str | None) -> None:
            while not closed.is_set():
                try:
                    lines.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue

        def pump(c: RunningService) -> None:
            try:
                stream = self.api.logs(c.id, stream=True, follow=follow, tail=tail, timestamps=False)
                streams.append(stream)
                buf = b""
                for chunk in stream:
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        put(f"{c.service}[r{c.release}] | {line.decode(errors='replace')}")
                if buf:
                    put(f"{c.service}[r{c.release}] | {buf.decode(errors='replace')}")
            except (docker.errors.APIError, OSError, ValueError):
                pass
            finally:
                put(None)

        for c in running:
            threading.Thread(target=pump, args=(c,), daemon=True).start()
        remaining = len(running)
        try:
            while remaining and not (stop is not None and stop.is_set()):
                try:
                    item = lines.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is None:
                    remaining -= 1
                else:
                    yield item
        finally:
            closed.set()
            for stream in streams:
                with contextlib.suppress(Exception):
                    stream.close()


def resolved_image(image: str, info: dict[str, Any]) -> ResolvedImage:
    """An image's ``docker inspect`` JSON → its id, its reference pinned by the digest of the
    registry it came from (the one ``image`` names), and its VOLUME paths."""
    try:
        repository = parse_reference(image).name if not image.startswith("sha256:") else ""
    except ValueError:
        repository = ""
    digests = [d for d in info.get("RepoDigests") or [] if "@" in d]
    same = [d for d in digests if d.split("@")[0] in (repository, f"docker.io/{repository}",
                                                         f"docker.io/library/{repository}")]
    volumes = tuple(sorted((info.get("Config") or {}).get("Volumes") or {}))
    return ResolvedImage(image_id=str(info["Id"]), pinned=same[0] if same else "", volumes=volumes)


def running_service(info: dict[str, Any], network_name: Callable[[str, str], str]) -> RunningService:
    """A container's ``docker inspect`` JSON → what dockyard needs of it."""
    container_labels = info["Config"]["Labels"] or {}
    app = container_labels.get(f"{LABEL}.app", "")
    port = container_labels.get(f"{LABEL}.port", "")
    nets = info["NetworkSettings"].get("Networks") or {}
    # the app network; a container made before network names carried the installation is on its
    # only network
    environment = container_labels.get(f"{LABEL}.environment", "") or DEFAULT_ENVIRONMENT
    network: dict[str, Any] = (nets.get(network_name(app, environment))
                               or next((n for n in nets.values() if n.get("IPAddress")), {}))
    upstream = f"{network['IPAddress']}:{port}" if port and network.get("IPAddress") else None
    return RunningService(
        id=info["Id"],
        app=app,
        service=container_labels.get(f"{LABEL}.service", ""),
        release=int(container_labels.get(f"{LABEL}.release", "0") or 0),
        image=info["Config"]["Image"],
        state=info["State"]["Status"],
        upstream=upstream,
        environment=container_labels.get(f"{LABEL}.environment", ""),
        spec_hash=container_labels.get(f"{LABEL}.spec", ""),
        exit_code=(info["State"].get("ExitCode") if container_labels.get(ONE_SHOT_LABEL) == "once"
                   and info["State"]["Status"] in ("exited", "dead") else None),
        stop_timeout=info["Config"].get("StopTimeout"),
        replica=int(replica) if (replica := container_labels.get(f"{LABEL}.replica", "")).isdigit() else 0,
    )




def _hostname(service: ServiceSpec, replica: int) -> str:
    """The container's own host name: the compose ``hostname``, else the service's name, with
    ``-<replica>`` for the replicas after the first (each tells itself apart; all of them answer
    to the service's names on the network)."""
    if service.hostname:
        return service.hostname
    return service.name if replica == 0 else f"{service.name}-{replica}"


def _container_labels(service: ServiceSpec, ours: dict[str, str]) -> dict[str, str]:
    """The service's own labels (never dockyard.*: domain/compose_service.py), then dockyard's."""
    own = dict(label.split("=", 1) for label in service.labels)
    return {**own, **ours, **({ONE_SHOT_LABEL: "once"} if service.one_shot else {}),
            **({READY_PORT_LABEL: str(service.ready_port)} if service.ready_port else {})}


def _port_bindings(service: ServiceSpec) -> tuple[dict[str, list[Any]], list[tuple[int, str]]]:
    """Docker's PortBindings and exposed ports of the host ports Docker publishes for a service."""
    bindings: dict[str, list[Any]] = {}
    exposed: list[tuple[int, str]] = []
    for host, container, protocol, ip in service.direct_ports:
        bindings.setdefault(f"{container}/{protocol}", []).append((ip, host) if ip else host)
        if (container, protocol) not in exposed:
            exposed.append((container, protocol))
    return bindings, exposed


def _restart_policy(service: ServiceSpec) -> dict[str, Any]:
    name, _, retries = (service.restart or "unless-stopped").partition(":")
    if service.one_shot:
        name, retries = "no", ""
    return {"Name": name, "MaximumRetryCount": int(retries)} if retries else {"Name": name}


def _healthcheck(service: ServiceSpec) -> Any:
    """Docker's Healthcheck of a compose healthcheck (None: the image's, if it has one)."""
    timing = (service.health_interval, service.health_timeout, service.health_start_period, service.health_retries)
    if not service.healthcheck and not any(timing):
        return None
    return docker.types.Healthcheck(
        test=list(service.healthcheck) or None, interval=service.health_interval or None,
        timeout=service.health_timeout or None, start_period=service.health_start_period or None,
        retries=service.health_retries or None)


def _stop_timeout(container: RunningService) -> int:
    return container.stop_timeout if container.stop_timeout is not None else 10


def _host_routes(path: Path = Path("/proc/net/route")) -> list[str]:
    """The host's IPv4 routes as CIDRs (the default route is dropped by the pool)."""
    out: list[str] = []
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        except ValueError:
            continue
        with contextlib.suppress(ValueError):
            out.append(str(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)))
    return out
