"""Watching an app's containers on one Docker host, for the Orchestrator port: when a new one is
ready (``wait_ready``), whether it keeps running after the switch (``monitor``), and when an old
one has finished the requests it was answering (``drain``). A mixin of DockerOrchestrator: it
needs ``self.api``, the Engine API client."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from dockyard.adapters.docker_client import ENGINE_PATIENCE, LABEL, patiently
from dockyard.domain.errors import DeployFailed
from dockyard.domain.model import HttpCheck, RunningService

ONE_SHOT_LABEL = f"{LABEL}.run"  # "once": a one-shot service, ready once it exited 0
READY_PORT_LABEL = f"{LABEL}.ready-port"  # a TCP port the container is ready once it accepts connections on
UNSEEN_DRAIN = 2.0  # seconds old containers get when their connections cannot be seen


class ContainerWatch:
    """Readiness, the monitor window and draining, read from the engine (and, for draining,
    from the containers' network namespaces on this host)."""

    api: Any

    def _inspect(self, container_id: str, what: str, seconds: float = ENGINE_PATIENCE) -> dict[str, Any]:
        """The container, inspected; while the engine does not answer (it restarts), asked again."""
        def call() -> dict[str, Any]:
            return dict(self.api.inspect_container(container_id))

        return patiently(call, seconds, what)

    def _tail(self, container_id: str, lines: int = 15) -> str:
        try:
            raw = self.api.logs(container_id, tail=lines)
        except docker.errors.APIError:
            return ""
        return bytes(raw).decode(errors="replace").strip()

    def wait_ready(self, tasks: Sequence[RunningService], timeout: float, check: HttpCheck | None = None) -> None:
        """Wait until each new container is ready (``_await_ready``), within ``timeout`` in all:
        they started together, so waiting for one after the other costs no more than the slowest."""
        begun = time.monotonic()
        for container in tasks:
            self._wait_one(container, timeout, check, begun)

    def _wait_one(self, container: RunningService, timeout: float, check: HttpCheck | None, begun: float) -> None:
        """The count of the container's restarts once ready is remembered: the monitor window
        fails a release whose container restarted since (it crashed between readiness and the
        switch, or after)."""
        info = self._await_ready(container, timeout, check, begun)
        restarts = self.__dict__.setdefault("_restarts_when_ready", {})
        if len(restarts) > 1000:
            restarts.clear()
        restarts[container.id] = int(info.get("RestartCount") or 0)

    def _await_ready(self, container: RunningService, timeout: float, check: HttpCheck | None,
                     begun: float) -> dict[str, Any]:
        """Ready means: for a one-shot service, exited with code 0; for a container with a
        healthcheck (the image's or compose's), healthy; else running, and for a web service
        with an HTTP ``check`` (dockyard.yml), that check passing; for another web service, an
        HTTP answer on its port; for a service that declares a TCP port (READY_PORT_LABEL), a
        connection accepted there; for any other, still running a second after it started. The wait
        (of the set the container started with) began at ``begun``: ``timeout`` counts from there."""
        deadline = begun + timeout
        settle = begun + 1.0
        last = ""  # what the HTTP check last saw
        while True:
            try:
                info = self._inspect(container.id, "waiting for a new container", max(1.0, deadline - time.monotonic()))
            except docker.errors.NotFound:
                raise DeployFailed(f"service {container.service}: its container was removed before it was ready",
                                   "deploy again") from None
            state, pause = info["State"], 0.1
            if (info["Config"].get("Labels") or {}).get(ONE_SHOT_LABEL) == "once":
                if self._completed(container, state, timeout, deadline):
                    return info
            elif state["Status"] in ("exited", "dead") or state.get("Restarting"):
                oom = " (out of memory: raise DOCKYARD_CONTAINER_MEMORY)" if state.get("OOMKilled") else ""
                raise DeployFailed(
                    f"service {container.service} exited (code {state.get('ExitCode')}){oom} before "
                    f"it was ready. Its last output:\n{self._tail(container.id)}",
                    "run it locally with docker run to see why it stops",
                )
            elif state.get("Health") is not None:
                if self._healthy(container, state["Health"], timeout, deadline):
                    return info
            elif container.upstream is None and (port := _ready_port(info)):
                address = _address(info)
                if address and _accepts(address, port):
                    return info
                if time.monotonic() > deadline:
                    raise DeployFailed(
                        f"service {container.service} did not accept TCP connections on port {port} within "
                        f"{timeout:.0f}s. Its last output:\n{self._tail(container.id)}",
                        "check that it listens on 0.0.0.0 and on the port its compose file exposes",
                    )
                pause = 0.05
            elif container.upstream is None:
                if time.monotonic() >= settle:
                    return info
                pause = 0.02
            elif check is not None:
                last = _checked(container.upstream, check)
                if not last:
                    return info
                if time.monotonic() > deadline:
                    raise DeployFailed(
                        f"service {container.service} did not pass its health check (GET {check.path}, expecting "
                        f"{check.status or '2xx or 3xx'}) within {timeout:.0f}s: {last}. "
                        f"Its last output:\n{self._tail(container.id)}",
                        "make the path answer once the service can serve, or fix dockyard.yml's "
                        "services/NAME/health",
                    )
                pause = 0.05
            elif _answers_http(container.upstream):
                return info
            elif time.monotonic() > deadline:
                raise DeployFailed(
                    f"service {container.service} did not answer HTTP on its port within {timeout:.0f}s. "
                    f"Its last output:\n{self._tail(container.id)}",
                    "check that it listens on 0.0.0.0 and on the EXPOSEd port",
                )
            else:
                pause = 0.005  # an inspect and a connect per round already take some ms
            time.sleep(pause)

    def _completed(self, container: RunningService, state: dict[str, Any], timeout: float, deadline: float) -> bool:
        """A one-shot service: True once it exited 0; DeployFailed on another code or at the deadline."""
        if state["Status"] in ("exited", "dead") and not state.get("Restarting"):
            if state.get("ExitCode") == 0:
                return True
            raise DeployFailed(
                f"service {container.service} runs once and must exit with code 0: it exited with code "
                f"{state.get('ExitCode')}. Its last output:\n{self._tail(container.id)}",
                "run it locally with docker run to see why it fails",
            )
        if time.monotonic() > deadline:
            raise DeployFailed(
                f"service {container.service} runs once, and had not completed within {timeout:.0f}s. "
                f"Its last output:\n{self._tail(container.id)}",
                "make it finish sooner, or raise DOCKYARD_READY_TIMEOUT",
            )
        return False

    def _healthy(self, container: RunningService, health: dict[str, Any], timeout: float, deadline: float) -> bool:
        """A container with a healthcheck: True once healthy; DeployFailed once unhealthy or at the deadline."""
        status = health.get("Status")
        if status == "healthy":
            return True
        if status == "unhealthy" or time.monotonic() > deadline:
            checks = "\n".join(f"exit {c.get('ExitCode')}: {str(c.get('Output') or '').strip()[-300:]}"
                               for c in (health.get("Log") or [])[-3:])
            what = "is unhealthy" if status == "unhealthy" else f"was not healthy within {timeout:.0f}s ({status})"
            raise DeployFailed(
                f"service {container.service} {what}. Its healthcheck's last results:\n{checks or '(none yet)'}\n"
                f"Its last output:\n{self._tail(container.id)}",
                "run its healthcheck's test in the container (docker exec) to see why it fails; a first check "
                "runs only after 'interval' (30s unless given)",
            )
        return False

    def monitor(self, containers: Sequence[RunningService], seconds: float,
                checks: Mapping[str, HttpCheck]) -> None:
        begun = time.monotonic()
        restarts: dict[str, int] = {}
        while True:
            for c in containers:
                try:
                    info = self._inspect(c.id, "watching new containers")
                except docker.errors.NotFound:
                    raise DeployFailed(f"service {c.service}: its new container was removed "
                                       f"{time.monotonic() - begun:.1f}s after the switch", "deploy again") from None
                state, now = info["State"], int(info.get("RestartCount") or 0)  # (not part of State)
                ready = self.__dict__.get("_restarts_when_ready", {}).get(c.id)
                count = restarts.setdefault(c.id, now if ready is None else ready)
                health = (state.get("Health") or {}).get("Status")
                restarted = now - count
                if state["Status"] in ("exited", "dead") or state.get("Restarting") or restarted > 0 or \
                        health == "unhealthy":
                    what = ("turned unhealthy" if health == "unhealthy" else
                            f"exited (code {state.get('ExitCode')})"
                            if state["Status"] in ("exited", "dead") or state.get("Restarting") else
                            f"exited and was restarted ({restarted} time{'s' if restarted > 1 else ''})")
                    raise DeployFailed(
                        f"service {c.service} {what} {time.monotonic() - begun:.1f}s after the switch. "
                        f"Its last output:\n{self._tail(c.id)}",
                        "run it locally with docker run to see why it stops; the previous release serves again",
                    )
            if time.monotonic() - begun >= seconds:
                break
            time.sleep(0.2)
        for c in containers:
            check = checks.get(c.service)
            failed = _checked(c.upstream, check) if check is not None and c.upstream is not None else ""
            if check is not None and failed:
                raise DeployFailed(
                    f"service {c.service} stopped passing its health check (GET {check.path}) after the switch: "
                    f"{failed}. Its last output:\n{self._tail(c.id)}",
                    "make the path answer while the service serves; the previous release serves again",
                )

    def drain(self, containers: Sequence[RunningService], timeout: float) -> int:
        """Open connections are read in each container's network namespace (/proc/PID/net/tcp of
        its process, on this host): ESTABLISHED ones on its port. Where that cannot be read (an
        engine on another host), a short fixed grace stands in for them."""
        deadline = time.monotonic() + timeout
        watched: list[tuple[int, int]] = []  # (pid, port)
        for c in containers:
            try:
                pid = int(self._inspect(c.id, "draining")["State"].get("Pid") or 0)
            except docker.errors.NotFound:
                continue
            if pid > 0 and c.upstream is not None:
                watched.append((pid, int(c.upstream.rpartition(":")[2])))
        while True:
            try:
                open_ = sum(_established(pid, port) for pid, port in watched) if self._local else None
            except PermissionError:
                open_ = None
            if open_ is None:
                time.sleep(min(timeout, UNSEEN_DRAIN))
                return 0
            if open_ == 0 or time.monotonic() > deadline:
                return open_
            time.sleep(0.05)

    @property
    def _local(self) -> bool:
        """The engine runs on this host (its unix socket): its containers' processes are ours to read."""
        return str(getattr(self.api, "base_url", "")).startswith("http+docker://")


def _checked(upstream: str, check: HttpCheck) -> str:
    """"" when ``GET check.path`` on the container passes; else what it answered instead."""
    host, _, port = upstream.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=check.timeout)
    try:
        conn.request("GET", check.path, headers={"User-Agent": "dockyard-health"})
        status = conn.getresponse().status
        return "" if check.passes(status) else f"it answered {status}"
    except (OSError, http.client.HTTPException) as exc:
        return f"no answer ({type(exc).__name__}: {exc})" if str(exc) else f"no answer ({type(exc).__name__})"
    finally:
        conn.close()


def _established(pid: int, port: int) -> int:
    """ESTABLISHED TCP connections on local ``port`` in the network namespace of process ``pid``
    (0 once it is gone)."""
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "01" and int(fields[1].rpartition(":")[2], 16) == port:
                count += 1
    return count


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


def _ready_port(info: dict[str, Any]) -> int:
    label = str((info["Config"].get("Labels") or {}).get(READY_PORT_LABEL, ""))
    return int(label) if label.isdigit() else 0


def _address(info: dict[str, Any]) -> str:
    """The container's address on its (first) network, which this host reaches."""
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    return next((str(n["IPAddress"]) for n in networks.values() if n.get("IPAddress")), "")


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False
