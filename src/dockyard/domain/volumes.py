"""Named volumes of a compose service (pure): where an app keeps data that outlives its
containers. Bind mounts of host paths are host access (domain/host_access.py), not volumes.

A service mounts ``name:/target[:ro]`` (or the long syntax ``{type: volume, source, target,
read_only}``); every name must be declared under the file's top-level ``volumes:``, as Compose
requires. A service with a named volume is *stateful*: it is released stop-first, so that two
containers never share one volume (planning/deploy.py).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dockyard.domain.compose_yaml import at_path
from dockyard.domain.errors import shown

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")


def declared(raw: Any) -> set[str]:
    """The names under the top-level ``volumes:`` key."""
    if raw is None:
        return set()
    if not isinstance(raw, Mapping):
        raise at_path("volumes", "should be a mapping of volume names")
    for name, body in raw.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise at_path("volumes", f"{shown(str(name))} is not a volume name",
                          "use letters, digits, '_', '.' and '-'")
        if isinstance(body, Mapping) and body.get("external"):
            raise at_path(f"volumes/{name}/external", "external volumes are not supported",
                          "let dockyard create the volume: remove 'external'")
    return set(raw)


def named_mounts(path: str, raw: Any, names: set[str]) -> tuple[str, ...]:
    """The service's named volume mounts as ``name:/target[:ro]``, in file order."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise at_path(f"{path}/volumes", "should be a list")
    mounts: list[str] = []
    for i, entry in enumerate(raw):
        where = f"{path}/volumes/{i}"
        if isinstance(entry, Mapping):  # the long syntax
            if entry.get("type", "volume") != "volume" or not entry.get("source"):
                continue  # a bind (host access) or an anonymous volume
            name, target = str(entry["source"]), str(entry.get("target", ""))
            read_only = entry.get("read_only") is True
        else:
            text = str(entry)
            name, sep, rest = text.partition(":")
            if not sep or name.startswith(("/", ".", "~")):
                continue  # an anonymous volume, or a bind (host access)
            target, _, mode = rest.partition(":")
            read_only = "ro" in mode.split(",")
        if name not in names:
            raise at_path(where, f"volume {shown(name)} is not declared",
                          f"declare it in the file's top-level volumes: section ('volumes: {{{name}: {{}}}}')")
        if not target.startswith("/") or posixpath.normpath(target) == "/":
            raise at_path(where, f"mount target {shown(target)} should be an absolute path inside the container")
        mounts.append(f"{name}:{posixpath.normpath(target)}{':ro' if read_only else ''}")
    targets = [m.split(":")[1] for m in mounts]
    if len(set(targets)) != len(targets):
        raise at_path(f"{path}/volumes", "two volumes are mounted at the same path")
    return tuple(mounts)


def anonymous_targets(path: str, raw: Any) -> tuple[str, ...]:
    """The targets of the service's anonymous volumes (``- /data``, ``{type: volume, target:
    /data}``): Compose keeps them when it recreates a container, so dockyard keeps them across
    releases, as volumes of their own (``kept``)."""
    if not isinstance(raw, list):
        return ()
    targets: list[str] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, Mapping):
            if entry.get("type", "volume") != "volume" or entry.get("source"):
                continue
            target = str(entry.get("target", ""))
        else:
            text = str(entry)
            if not text.startswith("/"):
                continue  # named, or a relative bind
            target, sep, _mode = text.partition(":")
            if sep:
                continue  # /host:/container: a bind (host access)
        if posixpath.normpath(target) == "/" or not target.startswith("/"):
            raise at_path(f"{path}/volumes/{i}", f"mount target {shown(target)} should be an absolute path inside "
                                                 "the container")
        targets.append(posixpath.normpath(target))
    return tuple(targets)


def kept(service: str, targets: Iterable[str], mounts: Iterable[str]) -> tuple[str, ...]:
    """Mounts (``name:/target``) for the anonymous volumes of a service (its compose file's and
    its image's VOLUMEs) that no named volume covers: each gets a volume named after the service
    and its path (``SERVICE.data`` for /data), so the next release finds the data again."""
    taken = {m.split(":")[1] for m in mounts}
    out: list[str] = []
    for target in dict.fromkeys(targets):
        if target in taken:
            continue
        slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", target.strip("/")).strip("-.") or "root"
        if len(slug) > 40:
            slug = slug[:30] + "-" + hashlib.sha256(target.encode()).hexdigest()[:8]
        out.append(f"{service}.{slug}:{target}")
    return tuple(out)
