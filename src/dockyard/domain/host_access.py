"""Compose keys that hand a container the host: privileged, cap_add, devices, network/pid/ipc
and userns modes, security_opt, bind mounts and the Docker socket.

Each is refused unless an admin allowed its key (one of HOST_ACCESS_KEYS, in ``model``) for the
app; allowed ones become the ServiceSpec fields that the orchestrator applies.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection
from typing import Any

from dockyard.domain.compose_yaml import at_path
from dockyard.domain.errors import shown

# Sockets that control the engine, and so the host: a mount of one of them, or of a folder
# above one, is a mount of the Docker socket.
_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock")
_SOCKET_NAMES = ("docker.sock", "containerd.sock", "podman.sock")
_FREE_SECURITY_OPTS = ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")


def _is_socket_file(source: str) -> bool:
    return posixpath.basename(posixpath.normpath(source)) in _SOCKET_NAMES


def _is_socket(source: str) -> bool:
    """The Docker socket, or a folder that holds it."""
    norm = posixpath.normpath(source)
    folder = norm.rstrip("/") + "/"
    return _is_socket_file(norm) or any(s.startswith(folder) for s in _SOCKETS)


def _flag(path: str, raw: Any) -> bool:
    if raw is None or raw is False:
        return False
    if raw is True:
        return True
    text = str(raw).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise at_path(path, f"should be true or false, not {shown(str(raw))}")


def _strings(path: str, raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise at_path(path, "should be a list")
    return [str(item) for item in raw]


def _shared_mode(value: str, services: Collection[str]) -> bool:
    """``service:NAME`` naming a service of the same compose file: shared within the app."""
    kind, _, name = value.partition(":")
    return kind == "service" and name in services


def host_access_fields(
    app: str, path: str, body: dict[str, Any], services: Collection[str], allowed: frozenset[str]
) -> dict[str, Any]:
    """The ServiceSpec fields of a service's host access; refuse what the app is not allowed."""

    def need(key: str, where: str, what: str) -> None:
        if key not in allowed:
            raise at_path(
                where,
                f"{what} hands the container the host, which this app is not allowed",
                f"an admin can allow it for this app: dockyard apps allow {app} {key}",
            )

    fields: dict[str, Any] = {}
    if _flag(f"{path}/privileged", body.get("privileged")):
        need("privileged", f"{path}/privileged", "privileged: true")
        fields["privileged"] = True
    cap_add = _strings(f"{path}/cap_add", body.get("cap_add"))
    if cap_add:
        need("cap_add", f"{path}/cap_add", "cap_add")
        fields["cap_add"] = tuple(cap_add)
    raw_devices = body.get("devices") or []
    if not isinstance(raw_devices, list):
        raise at_path(f"{path}/devices", "should be a list")
    devices = []
    for i, raw in enumerate(raw_devices):
        if isinstance(raw, dict):  # the long syntax: {source, target, permissions}
            raw = ":".join(str(raw[k]) for k in ("source", "target", "permissions") if raw.get(k) is not None)
        device = str(raw)
        if _is_socket(device.split(":", 1)[0]):
            need("docker_socket", f"{path}/devices/{i}", f"device {shown(device)} (the Docker socket)")
        need("devices", f"{path}/devices/{i}", f"device {shown(device)}")
        devices.append(device)
    if devices:
        fields["devices"] = tuple(devices)
    for key, free in (("network_mode", ("none",)), ("pid", ()), ("ipc", ("private", "shareable", "none"))):
        raw = body.get(key)
        if raw is None or raw == "":
            continue
        value = str(raw)
        if value not in free and not _shared_mode(value, services):
            need(key, f"{path}/{key}", f"{key}: {shown(value)}")
        fields[key] = value
    userns = body.get("userns_mode")
    if userns is not None and userns != "":
        need("userns_mode", f"{path}/userns_mode", f"userns_mode: {shown(str(userns))}")
        fields["userns_mode"] = str(userns)
    security = _strings(f"{path}/security_opt", body.get("security_opt"))
    for i, option in enumerate(security):
        if option.strip().lower() not in _FREE_SECURITY_OPTS:
            need("security_opt", f"{path}/security_opt/{i}", f"security_opt {shown(option)}")
    if security:
        fields["security_opt"] = tuple(security)
    binds = _binds(path, body.get("volumes"), need)
    if binds:
        fields["binds"] = tuple(binds)
    return fields


def _binds(path: str, raw: Any, need: Callable[[str, str, str], None]) -> list[str]:
    """Bind mounts of host paths among ``volumes``, as docker's "source:target[:mode]". Named and
    anonymous volumes are not dockyard's yet: they are left out, as before."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise at_path(f"{path}/volumes", "should be a list")
    binds = []
    for i, entry in enumerate(raw):
        where = f"{path}/volumes/{i}"
        if isinstance(entry, dict):  # the long syntax
            if entry.get("type") != "bind":
                continue
            source, target = str(entry.get("source", "")), str(entry.get("target", ""))
            mode = "ro" if _flag(f"{where}/read_only", entry.get("read_only")) else ""
        else:
            text = str(entry)
            source, sep, rest = text.partition(":")
            if not sep or not source.startswith(("/", ".", "~")):
                continue  # a named volume, or an anonymous one
            target, _, mode = rest.partition(":")
        if _is_socket(source):
            need("docker_socket", where, f"a mount of {shown(source)} (the Docker socket)")
        if not _is_socket_file(source):
            need("bind_mounts", where, f"a bind mount of the host path {shown(source)}")
        if not source.startswith("/"):
            raise at_path(
                where, f"the bind mount source {shown(source)} is not an absolute path",
                "dockyard has no checkout to resolve it against: give the absolute host path",
            )
        binds.append(":".join(p for p in (posixpath.normpath(source), target, mode) if p))
    return binds
