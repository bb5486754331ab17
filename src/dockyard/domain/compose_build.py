"""A compose service's ``build:``, read as Compose reads it: the image it asks for (pure).

- ``context``: a folder of the repository (``.``, its root, by default); ``dockerfile`` is
  relative to it (``Dockerfile`` by default) and may lie outside it, as with ``docker build -f``
  (its text is then sent with the context). Both stay inside the repository; a remote context (a
  URL) is refused. The context folder's own ``.dockerignore`` applies (``adapters/docker_builder``).
- ``args``: a mapping, or a list of ``KEY=VALUE``; values are interpolated like the rest of the
  file (``compose_load``). A key without a value takes the environment's variable of that name
  (the environment's variables over ``.env``, where Compose takes the shell's), or is left out
  when there is none. At most MAX_BUILD_ARGS_BYTES in all. Build args are no secrets: they stay
  in the image's history, for anyone who pulls it.
- ``target``: a stage of the Dockerfile (``FROM ... AS NAME``), without case, as Docker compares.

Which image a build is, and its name, is ``images.name_builds``'s; every refusal here names
file, line and key path. Other ``build:`` keys are warned about (``compose_support``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping
from typing import Any

from dockyard.domain import images
from dockyard.domain.compose_service import Where
from dockyard.domain.errors import shown
from dockyard.domain.images import ImageSpec

Parts = tuple[str | int, ...]

MAX_BUILD_ARGS_BYTES = 64 * 1024  # the names and values of one service's build args, in UTF-8
_ARG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,255}")
_STAGE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}")  # Docker's stage names (it compares them lowercased)
_INSIDE = "dockyard builds from the pushed repository only: use a path inside it, such as '.' or './api'"


def service_build(
    at: Parts,
    raw: Any,
    dockerfiles: Mapping[str, ImageSpec],
    variables: Mapping[str, str],
    where: Where,
    folders: Collection[str] | None = None,
) -> ImageSpec:
    """The build ``raw`` (a service's ``build:`` at key path ``at``) asks for, its variant not
    named yet (``images.name_builds``). ``dockerfiles``: the repository's Dockerfiles by path;
    ``variables``: what a build arg without a value takes its value from; ``folders``: the
    repository's folders, when known (a context that does not hold its Dockerfile must be one)."""
    if isinstance(raw, str):
        context, dockerfile, args, target = raw, "Dockerfile", None, None
        context_at, dockerfile_at = at, at
    elif isinstance(raw, Mapping):
        context = "." if raw.get("context") is None else raw["context"]
        dockerfile = "Dockerfile" if raw.get("dockerfile") is None else raw["dockerfile"]
        args, target = raw.get("args"), raw.get("target")
        context_at = (*at, "context") if "context" in raw else at
        dockerfile_at = (*at, "dockerfile") if "dockerfile" in raw else at
    else:
        raise where.error(at, "should be a folder or a mapping", "write 'build: .' or 'build: {context: ., ...}'")
    for value, place in ((context, context_at), (dockerfile, dockerfile_at)):
        if not isinstance(value, str):
            raise where.error(place, "should be a path")
        if "\0" in value:
            raise where.error(place, f"{shown(value, 80)} is not a path")
    if "://" in context or context.startswith("git@"):
        raise where.error(context_at, f"the remote context {shown(context, 80)} is not supported", _INSIDE)
    # The dockerfile is relative to the context, and both must stay inside the repository.
    path = posixpath.normpath(posixpath.join(context, dockerfile))
    for what, value, place in (("context", context, context_at), ("dockerfile", path, dockerfile_at)):
        if _outside(value):
            raise where.error(place, f"{what} {shown(value)} is outside the repository", _INSIDE)
    spec = dockerfiles.get(path)
    if spec is None:
        raise where.error(dockerfile_at, f"no Dockerfile at {shown(path)} in the repository",
                          "dockyard builds the files named 'Dockerfile' or 'Dockerfile-NAME': check the context "
                          "and dockerfile")
    folder = posixpath.normpath(context)
    folder = "" if folder == "." else folder
    holds = not folder or path.startswith(f"{folder}/")
    if not holds and folders is not None and folder not in folders:
        raise where.error(context_at, f"context {shown(context)} is not a folder of the repository")
    found_args = build_args((*at, "args"), args, variables, where)
    return images.with_build(spec, folder, found_args, stage((*at, "target"), target, spec, where))


def build_args(at: Parts, raw: Any, variables: Mapping[str, str], where: Where) -> dict[str, str]:
    """``args`` (a mapping, or a list of ``KEY=VALUE``) as build args; a key without a value
    takes the variable of that name from ``variables``, or is left out."""
    if raw is None:
        return {}
    entries: list[tuple[Parts, str, str | None]] = []
    if isinstance(raw, Mapping):
        entries = [((*at, str(key)), str(key), _scalar((*at, str(key)), value, where)) for key, value in raw.items()]
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                raise where.error((*at, i), "should be KEY=VALUE")
            key, sep, text = item.partition("=")
            entries.append(((*at, i), key, text if sep else None))
    else:
        raise where.error(at, "should be a mapping or a list of KEY=VALUE")
    out: dict[str, str] = {}
    size = 0
    for place, key, written in entries:
        if not _ARG_NAME.fullmatch(key):
            raise where.error(place, f"{shown(key, 60)} is not a build arg name",
                              "use letters, digits, '_', '.' and '-', as the Dockerfile's ARG names it")
        value = written if written is not None else variables.get(key)
        if value is None:
            continue  # as Compose does when the shell has no such variable
        if "\0" in value:
            raise where.error(place, "the value holds a NUL character")
        size += len(key.encode()) + len(value.encode(errors="replace"))
        if size > MAX_BUILD_ARGS_BYTES:
            raise where.error(place, f"the build args add up to more than {MAX_BUILD_ARGS_BYTES // 1024} KiB",
                              "build args are for small settings: COPY files from the repository instead (and keep "
                              "secrets in 'dockyard secrets', not in build args)")
        out[key] = value
    return out


def stage(at: Parts, raw: Any, spec: ImageSpec, where: Where) -> str:
    """``target``: a stage of ``spec``'s Dockerfile, lowercased ("" for none: the last stage)."""
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str) or not _STAGE.fullmatch(raw):
        raise where.error(at, f"{shown(str(raw), 80)} is not a stage name",
                          "a stage name is a letter, then letters, digits, '_', '.' or '-' (FROM image AS NAME)")
    if raw.lower() not in spec.stages:
        stages = ", ".join(spec.stages)
        raise where.error(at, f"{spec.dockerfile} has no stage {shown(raw, 80)}",
                          f"its stages: {stages}" if stages else "name a stage in the Dockerfile: FROM image AS NAME")
    return raw.lower()


def _scalar(at: Parts, value: Any, where: Where) -> str | None:
    """A build arg's value in the mapping form, as Compose writes it (None: no value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise where.error(at, "should be a string, a number or a boolean")


def _outside(path: str) -> bool:
    """True for an absolute path, or a relative one that climbs out of the repository."""
    norm = posixpath.normpath(path)
    return posixpath.isabs(norm) or norm == ".." or norm.startswith("../")
