"""Which Compose keys dockyard honours, and a warning for each valid key it does not honour yet:
nothing a compose file says is dropped silently.

Honoured today (``stack``): ``version`` (informational, as in Compose v2), ``services`` with
``image``, ``build`` (``context``, ``dockerfile``), ``ports`` (the first container port is routed),
``environment``, ``env_file``, ``command``, ``depends_on`` (start order), the host access keys
(``host_access``) and bind mounts among ``volumes``. ``x-*`` extension keys are accepted silently
everywhere. Everything else the schema accepts gets a warning, by key path; when a key becomes
honoured, take it out of here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.domain.errors import shown
from dockyard.domain.images import port_number

Parts = tuple[str | int, ...]
KeyWarning = tuple[Parts, str]  # (key path, message)

TOP_KEYS = frozenset({"version", "services", "volumes"})
SERVICE_KEYS = frozenset({
    "image", "build", "ports", "environment", "env_file", "command", "depends_on", "volumes",
    # host access: refused unless allowed, applied when allowed (host_access.py)
    "privileged", "cap_add", "devices", "network_mode", "pid", "ipc", "userns_mode", "security_opt",
})
BUILD_KEYS = frozenset({"context", "dockerfile"})
ENV_FILE_KEYS = frozenset({"path", "required"})
PORT_KEYS = frozenset({"target", "published", "host_ip"})

NOT_YET = "not honoured yet"
_WHY = {
    "networks": "every service is on the app's own network",
    "restart": "dockyard runs every container with the restart policy unless-stopped",
    "healthcheck": "dockyard checks instead that a web service answers HTTP",
    "expose": "the app's other services reach every port; the first of 'ports' is routed through the proxy",
    "labels": "dockyard sets its own labels",
    "init": "dockyard runs every container with an init process",
    "deploy": "dockyard runs one container per service, with its default limits",
    "scale": "dockyard runs one container per service",
    "profiles": "dockyard starts every service, whatever its profiles",
    "extends": "the service is not merged with the one it extends",
    "entrypoint": "the image's ENTRYPOINT is used",
    "user": "the image's USER is used",
    "working_dir": "the image's WORKDIR is used",
    "logging": "dockyard keeps json-file logs, rotated (3 x 10 MB)",
    "mem_limit": "dockyard's default limits apply", "cpus": "dockyard's default limits apply",
    "pids_limit": "dockyard's default limits apply",
}
_TOP_WHY = {
    "name": "dockyard names the project after the app",
    "networks": "dockyard gives each app one network of its own",
    "secrets": "dockyard does not hand secrets to containers yet",
    "configs": "dockyard does not hand configs to containers yet",
    "include": "the included files are not read: their services are not started",
}
_IGNORED = "dockyard ignores it for now"


def _extension(key: object) -> bool:
    return isinstance(key, str) and key.startswith("x-")


def not_honoured(doc: Mapping[str, Any]) -> list[KeyWarning]:
    """A warning for each key of a valid compose document that dockyard does not honour yet."""
    found: list[KeyWarning] = [((key,), f"{NOT_YET}: {_TOP_WHY.get(key, _IGNORED)}")
                            for key in doc if key not in TOP_KEYS and not _extension(key)]
    for name, body in (doc.get("services") or {}).items():
        if isinstance(body, Mapping):
            found += _service(str(name), body)
    return found


def _service(name: str, body: Mapping[str, Any]) -> list[KeyWarning]:
    at: Parts = ("services", name)
    found: list[KeyWarning] = []
    for key, value in body.items():
        if key in ("hostname", "container_name"):
            why = (f"other services reach it as {shown(name)}, not as {shown(str(value), 60)}" if value != name
                   else f"dockyard names {'containers' if key == 'container_name' else 'hosts'} itself "
                        f"(other services reach it as {shown(name)} all the same)")
            found.append(((*at, key), f"{NOT_YET}: {why}"))
        elif key not in SERVICE_KEYS and not _extension(key):
            found.append(((*at, key), f"{NOT_YET}: {_WHY.get(key, _IGNORED)}"))
    build = body.get("build")
    if isinstance(build, Mapping):
        found += [((*at, "build", k), f"{NOT_YET}: dockyard builds with the Dockerfile and its folder only")
                  for k in build if k not in BUILD_KEYS and not _extension(k)]
    env_files = body.get("env_file")
    for i, entry in enumerate(env_files if isinstance(env_files, list) else []):
        if isinstance(entry, Mapping):
            found += [((*at, "env_file", i, k), f"{NOT_YET}: {_IGNORED}")
                      for k in entry if k not in ENV_FILE_KEYS and not _extension(k)]
    found += _depends_on(at, body.get("depends_on"))
    found += _ports(at, body.get("ports"))
    found += _volumes(at, body.get("volumes"))
    return found


def _depends_on(at: Parts, raw: Any) -> list[KeyWarning]:
    if not isinstance(raw, Mapping):
        return []
    found: list[KeyWarning] = []
    for dependency, how in raw.items():
        for key, value in (how.items() if isinstance(how, Mapping) else ()):
            if _extension(key) or (key == "condition" and value == "service_started"):
                continue
            until = {"service_healthy": "it is healthy", "service_completed_successfully": "it has completed"}
            why = (f"dockyard starts {shown(str(dependency))} first, but does not wait until {until.get(value, value)}"
                   if key == "condition" else _IGNORED)
            found.append(((*at, "depends_on", dependency, key), f"{NOT_YET}: {why}"))
    return found


def published_port(entry: Any) -> tuple[str, str] | None:
    """(host port, container port) of a ports entry that publishes a host port, else None."""
    if isinstance(entry, Mapping):
        host = entry.get("published")
        if host is None and entry.get("host_ip") is None:
            return None
        return str(host if host is not None else ""), str(entry.get("target", ""))
    if isinstance(entry, (int, float)):
        return None
    text = str(entry).split("/", 1)[0]
    host, sep, container = text.rpartition(":")
    if not sep:
        return None
    return host.rpartition(":")[2], container


def _number(text: str) -> str:
    return text if text.isdigit() and len(text) < 12 else shown(text, 40)


def _ports(at: Parts, raw: Any) -> list[KeyWarning]:
    found: list[KeyWarning] = []
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        where = (*at, "ports", i)
        published = published_port(entry)
        if i > 0:
            target = published[1] if published else str(entry.get("target") if isinstance(entry, Mapping) else entry)
            found.append((where, f"{NOT_YET}: only the first port is routed, through the proxy (the app's other "
                                 f"services reach port {_number(target)})"))
        elif published is not None:
            host, container = published
            port = port_number(container.split("-")[0]) if container else None
            host_text = f"the host port {_number(host)}" if host else "a host port"
            found.append((where, f"{NOT_YET}: {host_text} is not published (the container port "
                                 f"{port if port is not None else shown(container, 40)} is routed, through the proxy)"))
        if isinstance(entry, Mapping):
            found += [((*where, k), f"{NOT_YET}: {_IGNORED}") for k in entry
                      if k not in PORT_KEYS and not _extension(k)]
    return found


def _volumes(at: Parts, raw: Any) -> list[KeyWarning]:
    """Anonymous volumes, tmpfs and the like (named volumes are made; bind mounts are host access)."""
    found: list[KeyWarning] = []
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(entry, Mapping):
            kind, source, target = entry.get("type"), entry.get("source"), entry.get("target", "")
            if kind == "bind":
                continue
            if kind != "volume":
                found.append(((*at, "volumes", i), f"{NOT_YET}: the {kind} mount at {shown(str(target), 60)} is not made"))
                continue
            if source:
                continue  # a named volume: made (domain/volumes.py)
            what = "the anonymous volume"
        else:
            source, sep, _ = str(entry).partition(":")
            if sep:
                continue  # a bind mount (host access) or a named volume (domain/volumes.py)
            target = source
            what = "the anonymous volume"
        found.append(((*at, "volumes", i), f"{NOT_YET}: {what} at {shown(str(target), 60)} is not created; what "
                                            "the container writes there is lost when it is replaced"))
    return found
