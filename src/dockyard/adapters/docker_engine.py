"""One Docker host through the Engine API (Docker SDK for Python): builds, pushes, containers.

Everything created here carries labels naming installation, app, environment, service and
release, so observation and clean-up never guess.
"""

from __future__ import annotations

import contextlib
import http.client
import queue
import secrets
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import docker
import docker.errors
from docker.utils.build import PatternMatcher

from dockyard.domain.errors import BuildFailed, DeployFailed, DockyardError, Unavailable
from dockyard.domain.model import RunningService, ServiceSpec
from dockyard.ports import Progress

LABEL = "dockyard"


def connect(base_url: str = "") -> Any:
    try:
        client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise Unavailable(
            f"the Docker engine does not answer ({exc})",
            "start it (dockerd, or `bash scripts/install.sh`) or set DOCKYARD_DOCKER_HOST",
        ) from None
    return client


class DockerEngine:
    """ImageBuilder and Orchestrator for a single Docker host."""

    def __init__(self, client: Any, installation: str, prefix: str, registry_auth: dict[str, str]) -> None:
        self.client = client
        self.api = client.api
        self.installation = installation
        self.prefix = prefix
        self.registry_auth = registry_auth

    # -- images ---------------------------------------------------------------------------
    def build(self, context: IO[bytes], dockerfile: str, tag: str, progress: Progress) -> str:
        image_id = ""
        context = without_ignored(context, dockerfile)
        try:
            stream = self.api.build(
                fileobj=context, custom_context=True, dockerfile=dockerfile, tag=tag or None, rm=True,
                forcerm=True, decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    detail = chunk.get("error", "").strip()
                    raise BuildFailed(
                        f"{dockerfile}: build failed: {detail}",
                        "fix the Dockerfile (the build log above shows the failing step) and push again",
                    )
                text = chunk.get("stream")
                if text:
                    for line in text.rstrip("\n").splitlines():
                        if line.strip():
                            progress(line.rstrip())
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = aux["ID"]
        except docker.errors.APIError as exc:
            raise BuildFailed(f"{dockerfile}: build failed: {exc.explanation or exc}",
                              "check the Dockerfile and push again") from None
        if not image_id and tag:
            image_id = self.api.inspect_image(tag)["Id"]
        if not image_id:
            raise BuildFailed(f"{dockerfile}: the build reported no image", "push again; if it persists, see the engine's log")
        return str(image_id)

    def tag(self, image_id: str, reference: str) -> None:
        repo, _, tag = reference.rpartition(":")
        self.api.tag(image_id, repo, tag, force=True)

    def untag(self, reference: str) -> None:
        try:
            self.api.remove_image(reference, noprune=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise DockyardError(f"cannot untag {reference}: {exc.explanation or exc}") from None

    def image_id(self, reference: str) -> str | None:
        try:
            return str(self.api.inspect_image(reference)["Id"])
        except docker.errors.ImageNotFound:
            return None

    def push(self, reference: str, progress: Progress) -> str:
        repo, _, tag = reference.rpartition(":")
        digest = ""
        seen: dict[str, str] = {}
        try:
            for chunk in self.api.push(repo, tag=tag, stream=True, decode=True, auth_config=self.registry_auth):
                if "error" in chunk:
                    raise DockyardError(
                        f"push of {reference} failed: {chunk['error']}",
                        "check that dockyard's registry runs: dockyard status",
                    )
                status, layer = chunk.get("status", ""), chunk.get("id", "")
                if layer and status in ("Pushed", "Layer already exists", "Mounted from") and seen.get(layer) != status:
                    seen[layer] = status
                    progress(f"{layer}: {status}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = aux["Digest"]
        except docker.errors.APIError as exc:
            raise DockyardError(f"push of {reference} failed: {exc.explanation or exc}") from None
        if not digest:
            raise DockyardError(f"push of {reference} reported no digest")
        return str(digest)

    def size(self, image_id: str) -> int:
        return int(self.api.inspect_image(image_id).get("Size", 0))

    # -- containers -----------------------------------------------------------------------
    def network_name(self, app: str) -> str:
        return f"{self.prefix}-{app}"

    def _labels(self, **extra: str) -> dict[str, str]:
        labels = {f"{LABEL}.installation": self.installation}
        labels.update({f"{LABEL}.{k}": v for k, v in extra.items()})
        return labels

    def ensure_network(self, app: str) -> None:
        name = self.network_name(app)
        if not self.api.networks(names=[name]):
            self.api.create_network(name, driver="bridge", labels=self._labels(app=app), check_duplicate=True)

    def remove_network(self, app: str) -> None:
        for net in self.api.networks(names=[self.network_name(app)]):
            try:
                self.api.remove_network(net["Id"])
            except docker.errors.NotFound:
                pass

    def start(self, app: str, release: int, environment: str, service: ServiceSpec) -> RunningService:
        name = f"{self.prefix}-{app}-{service.name}-r{release}-{secrets.token_hex(2)}"
        labels = self._labels(
            app=app, environment=environment, service=service.name, release=str(release),
            spec=service.spec_hash, port=str(service.port or ""),
        )
        # The proxy runs on this host and dials the container's address on the app network
        # directly: no host port is published.
        host_config = self.api.create_host_config(
            restart_policy={"Name": "unless-stopped"},
            network_mode=self.network_name(app),
            init=True,  # a tiny init as PID 1 forwards signals: apps stop on SIGTERM, not after the timeout
        )
        networking = self.api.create_networking_config(
            {self.network_name(app): self.api.create_endpoint_config(aliases=[service.name])}
        )
        # On one host the image dockyard built is here already: run it by its content id, which
        # needs no pull and no wait for the registry push.
        image = service.image_id or service.image

        def create() -> dict[str, Any]:
            return dict(self.api.create_container(
                image, name=name, labels=labels, host_config=host_config,
                networking_config=networking, environment=dict(service.environment),
                command=list(service.command) if service.command is not None else None,
                hostname=service.name,
            ))

        try:
            try:
                created = create()
            except docker.errors.ImageNotFound:
                self._pull(image)
                created = create()
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot create {service.name}: {exc.explanation or exc}") from None
        try:
            self.api.start(created["Id"])
        except docker.errors.APIError as exc:
            self.api.remove_container(created["Id"], force=True)
            raise DeployFailed(f"cannot start {service.name}: {exc.explanation or exc}") from None
        return self._running(self.api.inspect_container(created["Id"]))

    def _pull(self, image: str) -> None:
        try:
            self.api.pull(image, auth_config=self.registry_auth if image.startswith(self._registry()) else None)
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot pull {image}: {exc.explanation or exc}",
                               "check the image name and that its registry is reachable") from None

    def _registry(self) -> str:
        return self.registry_auth.get("serveraddress", "")

    def _running(self, info: dict[str, Any]) -> RunningService:
        labels = info["Config"]["Labels"] or {}
        upstream = None
        port = labels.get(f"{LABEL}.port", "")
        network = (info["NetworkSettings"].get("Networks") or {}).get(
            self.network_name(labels.get(f"{LABEL}.app", "")), {}
        )
        if port and network.get("IPAddress"):
            upstream = f"{network['IPAddress']}:{port}"
        return RunningService(
            id=info["Id"],
            app=labels.get(f"{LABEL}.app", ""),
            service=labels.get(f"{LABEL}.service", ""),
            release=int(labels.get(f"{LABEL}.release", "0")),
            image=info["Config"]["Image"],
            state=info["State"]["Status"],
            upstream=upstream,
            environment=labels.get(f"{LABEL}.environment", ""),
            spec_hash=labels.get(f"{LABEL}.spec", ""),
        )

    def observe(self, app: str | None = None) -> list[RunningService]:
        filters = [f"{LABEL}.installation={self.installation}"]
        if app:
            filters.append(f"{LABEL}.app={app}")
        out = []
        for summary in self.api.containers(all=True, filters={"label": filters}):
            try:
                out.append(self._running(self.api.inspect_container(summary["Id"])))
            except docker.errors.NotFound:
                continue
        return sorted(out, key=lambda c: (c.app, c.service, c.release))

    def _tail(self, container_id: str, lines: int = 15) -> str:
        try:
            raw = self.api.logs(container_id, tail=lines)
        except docker.errors.APIError:
            return ""
        return bytes(raw).decode(errors="replace").strip()

    def wait_ready(self, container: RunningService, timeout: float) -> None:
        """Ready means: running, and for a web service, an HTTP answer on its port."""
        deadline = time.monotonic() + timeout
        settle = time.monotonic() + 1.0
        while True:
            state = self.api.inspect_container(container.id)["State"]
            if state["Status"] in ("exited", "dead") or state.get("Restarting"):
                raise DeployFailed(
                    f"service {container.service} exited (code {state.get('ExitCode')}) before "
                    f"it was ready. Its last output:\n{self._tail(container.id)}",
                    "run it locally with docker run to see why it stops",
                )
            if container.upstream is None:
                if time.monotonic() >= settle:
                    return
            elif _answers_http(container.upstream):
                return
            if time.monotonic() > deadline:
                raise DeployFailed(
                    f"service {container.service} did not answer HTTP on its port within {timeout:.0f}s. "
                    f"Its last output:\n{self._tail(container.id)}",
                    "check that it listens on 0.0.0.0 and on the EXPOSEd port",
                )
            time.sleep(0.02)

    def stop(self, container: RunningService) -> None:
        try:
            self.api.stop(container.id, timeout=10)
            self.api.remove_container(container.id, force=True)
        except docker.errors.NotFound:
            pass

    def logs(self, app: str, follow: bool, tail: int, stop: threading.Event | None = None) -> Iterator[str]:
        """Lines of the app's running containers, merged. Setting ``stop`` (the reader went away)
        ends the iterator within half a second and closes the engine's log streams."""
        running = [c for c in self.observe(app) if c.state == "running"]
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


def without_ignored(context: IO[bytes], dockerfile: str) -> IO[bytes]:
    """The build context less what ``.dockerignore`` excludes, as the docker CLI would send it
    (the engine does not read .dockerignore itself)."""
    context.seek(0)
    with tarfile.open(fileobj=context) as tar:
        try:
            ignore = tar.extractfile(".dockerignore")
        except KeyError:
            ignore = None
        if ignore is None:
            context.seek(0)
            return context
        patterns = [line.strip() for line in ignore.read().decode(errors="replace").splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
        matcher = PatternMatcher(patterns)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, closed with the build
        with tarfile.open(fileobj=out, mode="w") as kept:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in (dockerfile, ".dockerignore") or not matcher.matches(name):
                    kept.addfile(member, tar.extractfile(member) if member.isfile() else None)
    out.seek(0)
    return out


def _answers_http(upstream: str) -> bool:
    host, _, port = upstream.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        conn.request("GET", "/", headers={"User-Agent": "dockyard-readiness"})
        conn.getresponse().read(0)
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
