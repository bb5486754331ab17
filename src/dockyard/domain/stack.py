"""From a pushed tree and its built images to the services a release runs.

Without a compose file, the one image with an EXPOSEd port is the app's web service. With
``docker-compose.yml`` (or ``compose.yml``), its services are started; full Compose support is a
later issue, this reads the common subset: image/build, ports, environment, env_file, command,
depends_on.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.domain import names
from dockyard.domain.errors import InvalidSource
from dockyard.domain.images import ImageSpec, parse_reference
from dockyard.domain.model import ServiceSpec

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def hosts_for(app: str, service: str, first_web: bool, base_domain: str, domains: tuple[str, ...]) -> tuple[str, ...]:
    hosts = [f"{service}.{app}.{base_domain}"] if service != app else []
    if first_web:
        hosts = [f"{app}.{base_domain}", *domains, *hosts]
    return tuple(hosts)


def single_image_services(
    app: str, spec: ImageSpec, image: str, base_domain: str, domains: tuple[str, ...]
) -> tuple[ServiceSpec, ...]:
    if not spec.exposed_ports:
        raise InvalidSource(
            f"{spec.dockerfile} exposes no port, so dockyard cannot route web traffic to it",
            "add 'EXPOSE <port>' for the port your app listens on",
        )
    return (
        ServiceSpec(
            name="web",
            image=image,
            port=spec.exposed_ports[0],
            hosts=(f"{app}.{base_domain}", *domains),
        ),
    )


def commit_services(
    app: str,
    files: set[str],
    read_file: Callable[[str], str | None],
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    base_domain: str,
    domains: tuple[str, ...],
) -> tuple[ServiceSpec, ...]:
    """The services a pushed tree runs: its compose file's, else its web image's."""
    compose = next((f for f in COMPOSE_FILES if f in files), None)
    if compose:
        return compose_services(app, read_file(compose) or "", images, pinned, read_file, base_domain, domains)
    if len(images) == 1:
        web = next(iter(images))
    elif "Dockerfile" in images:
        web = "Dockerfile"
    else:
        raise InvalidSource(
            "several Dockerfiles and no compose file: dockyard cannot tell which one is the web service",
            "add a root Dockerfile for the web service, or a docker-compose.yml listing the services",
        )
    return single_image_services(app, images[web], pinned[web], base_domain, domains)


def _where(path: str, message: str, hint: str = "") -> InvalidSource:
    return InvalidSource(f"compose file: {path}: {message}", hint)


def _env(path: str, raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [(str(k), "" if v is None else str(v)) for k, v in raw.items()]
    if isinstance(raw, list):
        out = []
        for item in raw:
            key, _, value = str(item).partition("=")
            out.append((key, value))
        return out
    raise _where(path, "should be a mapping or a list of KEY=VALUE")


def parse_env_file(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out.append((key.strip(), value))
    return out


def _container_port(path: str, raw: Any) -> int:
    text = str(raw["target"] if isinstance(raw, dict) and "target" in raw else raw)
    port = text.split("/")[0].rsplit(":", 1)[-1].split("-")[0]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _where(path, f"port {raw!r} is not understood", "write '8080:3000' or '3000'")
    return int(port)


def compose_services(
    app: str,
    text: str,
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    read_file: Any,
    base_domain: str,
    domains: tuple[str, ...],
) -> tuple[ServiceSpec, ...]:
    """Services from a compose file. ``images`` maps dockerfile path -> spec, ``pinned`` maps
    dockerfile path -> pinned reference; ``read_file(path)`` returns a repo file's text or None."""
    import yaml  # only pushes with a compose file pay for it

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidSource(f"compose file is not valid YAML: {exc}", "fix the YAML syntax") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        raise _where("services", "should be a mapping of service names to definitions")
    by_name = {s.declared_name: path for path, s in images.items() if s.declared_name}
    out: list[ServiceSpec] = []
    first_web = True
    for name, body in doc["services"].items():
        path = f"services/{name}"
        try:
            names.service_name(str(name))
        except Exception as exc:
            raise _where(path, str(exc)) from None
        if not isinstance(body, dict):
            raise _where(path, "should be a mapping")
        image = _service_image(path, body, images, pinned, by_name)
        ports = body.get("ports") or []
        expose = body.get("expose") or []
        if not isinstance(ports, list) or not isinstance(expose, list):
            raise _where(f"{path}/ports", "should be a list")
        port = _container_port(f"{path}/ports/0", ports[0]) if ports else None
        # As in Compose: a later env_file overrides an earlier one, and environment overrides them all.
        env: list[tuple[str, str]] = []
        env_files = body.get("env_file") or []
        for i, env_path in enumerate([env_files] if isinstance(env_files, str) else env_files):
            env_norm = posixpath.normpath(str(env_path))
            content = None if _outside(env_norm) else read_file(env_norm)
            if content is None:
                raise _where(f"{path}/env_file/{i}", f"{env_path!r} is not in the repository")
            env += parse_env_file(content)
        env += _env(f"{path}/environment", body.get("environment"))
        command = body.get("command")
        if isinstance(command, str):
            try:
                command = shlex.split(command)
            except ValueError as exc:
                raise _where(
                    f"{path}/command",
                    f"cannot split {command!r} into words ({exc})",
                    "balance the quotes, or give the command as a list",
                ) from None
        if command is not None and not isinstance(command, list):
            raise _where(f"{path}/command", "should be a string or a list")
        deps = body.get("depends_on") or []
        deps = list(deps) if isinstance(deps, (list, dict)) else []
        out.append(
            ServiceSpec(
                name=str(name),
                image=image,
                port=port,
                hosts=hosts_for(app, str(name), first_web, base_domain, domains) if port else (),
                environment=tuple(dict(env).items()),
                command=tuple(str(c) for c in command) if command is not None else None,
                depends_on=tuple(str(d) for d in deps),
            )
        )
        first_web = first_web and port is None
    known = {s.name for s in out}
    for s in out:
        for dep in s.depends_on:
            if dep not in known:
                raise _where(f"services/{s.name}/depends_on", f"unknown service {dep!r}")
    return tuple(start_order(out))


def _service_image(
    path: str,
    body: dict[str, Any],
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    by_name: Mapping[str, str],
) -> str:
    build = body.get("build")
    if build is not None:
        context, dockerfile = ".", "Dockerfile"
        if isinstance(build, str):
            context = build
        elif isinstance(build, dict):
            context = str(build.get("context", "."))
            dockerfile = str(build.get("dockerfile", "Dockerfile"))
        # The dockerfile is relative to the context, and both must stay inside the repository.
        key = posixpath.normpath(posixpath.join(context, dockerfile))
        for what, value in (("context", context), ("dockerfile", key)):
            if _outside(value):
                raise _where(
                    f"{path}/build",
                    f"{what} {value!r} is outside the repository",
                    "dockyard builds from the pushed repository only: use a path inside it, such as '.' or './api'",
                )
        if key not in pinned:
            raise _where(f"{path}/build", f"no Dockerfile at {key!r} in the repository")
        own = posixpath.dirname(key) or "."
        if posixpath.normpath(context) != own:
            raise _where(
                f"{path}/build",
                f"context {context!r} is not the folder of {key!r}",
                f"dockyard builds each Dockerfile with its own folder as context: set context to '{own}'",
            )
        return pinned[key]
    raw = body.get("image")
    if not isinstance(raw, str) or not raw:
        raise _where(path, "needs 'image' or 'build'")
    try:
        ref = parse_reference(raw)
    except ValueError as exc:
        raise _where(f"{path}/image", str(exc)) from None
    if ref.name in by_name:
        return pinned[by_name[ref.name]]
    return raw


def _outside(path: str) -> bool:
    """True for an absolute path, or a relative one that climbs out of the repository."""
    norm = posixpath.normpath(path)
    return posixpath.isabs(norm) or norm == ".." or norm.startswith("../")


def start_order(services: list[ServiceSpec]) -> list[ServiceSpec]:
    """Dependencies first, as declared by depends_on."""
    done: list[ServiceSpec] = []
    pending = list(services)
    while pending:
        names_done = {s.name for s in done}
        ready = [s for s in pending if all(d in names_done for d in s.depends_on)]
        if not ready:
            raise _where("services", "depends_on forms a cycle: " + ", ".join(s.name for s in pending))
        done.extend(ready)
        pending = [s for s in pending if s not in ready]
    return done
