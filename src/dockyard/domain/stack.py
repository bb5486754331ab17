"""From a pushed tree and its built images to the services a release runs.

Without a compose file, the one image with an EXPOSEd port is the app's web service. With
``docker-compose.yml`` (or ``compose.yml``), its services are started; this reads image and build
(``compose_build``: context, dockerfile, args and target; one image per distinct build),
ports (``published_ports``: the port routed by host name, the host ports published through the
proxy or by Docker), environment, env_file, command, volumes and the host access keys, ``compose_service`` the
other keys dockyard honours (names on the network, healthcheck, depends_on conditions, restart,
labels, limits...), and ``compose_support`` warns about every other key the Compose schema accepts.

The compose file is pushed text, read within bounds: at most MAX_COMPOSE_BYTES (and each env
file MAX_ENV_FILE_BYTES, see ``limits``), loaded by ``compose_load.load`` (YAML within node, size
and depth limits; variables substituted from the environment's variables over the repository's
``.env``; checked against the Compose schema), and every step after it runs in linear time (a
string command is split by ``shell_words``). Keys that hand a container the host are checked by
``host_access``: refused unless an admin allowed them for the app, carried into the ServiceSpec
when allowed. What the user should know but is no error comes back as ``Stack.warnings``.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.domain import compose_build, compose_load, published_ports, replicas, volumes
from dockyard.domain.compose_service import ComposeKeys, Where
from dockyard.domain.compose_yaml import KeyPathError, at_path
from dockyard.domain.dotenv import DOTENV, parse_dotenv
from dockyard.domain.errors import InvalidSource, shown
from dockyard.domain.host_access import host_access_fields
from dockyard.domain.images import ImageSpec, build_order, in_rounds, name_builds, named_images
from dockyard.domain.limits import MAX_COMPOSE_BYTES, MAX_ENV_FILE_BYTES, too_large
from dockyard.domain.model import PROXIED, ServiceSpec
from dockyard.domain.references import parse_reference
from dockyard.domain.shell_words import split_words

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

ReadFile = Callable[[str], str | None]
NO_VARIABLES = compose_load.NO_VARIABLES


@dataclass(frozen=True)
class Stack:
    """The services a pushed tree runs, and the warnings for whoever pushed it (valid compose
    keys dockyard does not honour yet, variables that are not set), each naming file, line and key."""

    services: tuple[ServiceSpec, ...]
    warnings: tuple[str, ...] = ()
    images: tuple[ImageSpec, ...] = ()  # what to build, in build order (``images.name_builds``)


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


def commit_stack(
    app: str,
    files: Collection[str],
    read_file: ReadFile,
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    base_domain: str,
    domains: tuple[str, ...],
    allowed: frozenset[str] = frozenset(),
    *,
    variables: Mapping[str, str] = NO_VARIABLES,
    folders: Collection[str] | None = None,
) -> Stack:
    """The services a pushed tree runs: its compose file's, else its web image's; and the
    images to build for them.

    ``allowed`` are the HOST_ACCESS_KEYS an admin allowed for the app; ``variables`` the
    environment's variables, which the compose file is interpolated with, over those of the
    ``.env`` file at the repository's root; ``folders`` the tree's folders, when ``files`` is
    not the whole tree (derived from ``files`` otherwise)."""
    compose = next((f for f in COMPOSE_FILES if f in files), None)
    if compose:
        text = read_file(compose) or ""
        if len(text) > MAX_COMPOSE_BYTES:
            raise too_large(compose, len(text.encode(errors="replace")), MAX_COMPOSE_BYTES)
        merged, notes = _variables(files, read_file, variables)
        found = compose_stack(app, text, images, pinned, read_file, base_domain, domains, allowed,
                              source=compose, variables=merged,
                              folders=folders if folders is not None else folders_of(files))
        return Stack(found.services, notes + found.warnings, found.images)
    if len(images) == 1:
        web = next(iter(images))
    elif "Dockerfile" in images:
        web = "Dockerfile"
    else:
        raise InvalidSource(
            "several Dockerfiles and no compose file: dockyard cannot tell which one is the web service",
            "add a root Dockerfile for the web service, or a docker-compose.yml listing the services",
        )
    return Stack(single_image_services(app, images[web], pinned[web], base_domain, domains),
                 images=tuple(build_order(images.values())))


def folders_of(files: Collection[str]) -> set[str]:
    """Every folder of a tree ("" for its root), from its files' paths."""
    found = {""}
    for path in files:
        folder = path.rpartition("/")[0]
        while folder not in found:
            found.add(folder)
            folder = folder.rpartition("/")[0]
    return found


def commit_services(
    app: str,
    files: Collection[str],
    read_file: ReadFile,
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    base_domain: str,
    domains: tuple[str, ...],
    allowed: frozenset[str] = frozenset(),
) -> tuple[ServiceSpec, ...]:
    """``commit_stack``'s services, without variables or warnings."""
    return commit_stack(app, files, read_file, images, pinned, base_domain, domains, allowed).services


def _variables(
    files: Collection[str], read_file: ReadFile, variables: Mapping[str, str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The variables a compose file is interpolated with: ``variables`` over the ``.env`` file's,
    and the warnings of reading ``.env``."""
    text = read_file(DOTENV) if DOTENV in files else None
    if text is None:
        return dict(variables), ()
    if len(text) > MAX_ENV_FILE_BYTES:
        raise too_large(DOTENV, len(text.encode(errors="replace")), MAX_ENV_FILE_BYTES)
    found = parse_dotenv(text, variables)
    return {**found.variables, **variables}, found.warnings


def _key(value: object) -> str:
    """A mapping key as a part of a key path."""
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    raise at_path(path, "should be a mapping or a list of KEY=VALUE")


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


def compose_services(
    app: str,
    text: str,
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    read_file: ReadFile,
    base_domain: str,
    domains: tuple[str, ...],
    allowed: frozenset[str] = frozenset(),
) -> tuple[ServiceSpec, ...]:
    """``compose_stack``'s services, without variables or warnings."""
    return compose_stack(app, text, images, pinned, read_file, base_domain, domains, allowed).services


def compose_stack(
    app: str,
    text: str,
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    read_file: ReadFile,
    base_domain: str,
    domains: tuple[str, ...],
    allowed: frozenset[str] = frozenset(),
    *,
    source: str = "compose file",
    variables: Mapping[str, str] = NO_VARIABLES,
    folders: Collection[str] | None = None,
) -> Stack:
    """Services from a compose file named ``source``, and the images to build for them.
    ``images`` maps dockerfile path -> spec (as the Dockerfile builds by itself), ``pinned``
    maps an image's key (``ImageSpec.key``: the Dockerfile's path for its plain image) -> the
    reference its services carry; ``read_file(path)`` returns a repo file's text or None;
    ``allowed`` are the HOST_ACCESS_KEYS an admin allowed for the app; ``variables`` are
    substituted in the file's values (and give build args written without a value);
    ``folders``, when given, are the repository's folders."""
    with located_errors(text, source):
        loaded = compose_load.load(text, source=source, variables=variables)
        services: dict[str, Any] = loaded.doc["services"]
        known = set(services)
        volume_names = volumes.declared(loaded.doc.get("volumes"))
        keys = ComposeKeys(loaded.doc, text, source)
        # build: one image per distinct (Dockerfile, context, args, target); a header name in
        # `image:` means the build named_images gives for its Dockerfile
        asked = {name: compose_build.service_build(("services", name, "build"), body["build"], images, variables,
                                                   keys.where, folders)
                 for name, body in services.items() if body.get("build") is not None}
        to_build = name_builds(images.values(), asked.values())
        built = {spec.build: spec for spec in to_build}
        named = named_images(to_build)
        by_name = {s.declared_name: path for path, s in images.items() if s.declared_name}
        out: list[ServiceSpec] = []
        every_ports: list[published_ports.ServicePorts] = []
        first_web = True
        for name, body in services.items():
            path = f"services/{_key(name)}"
            if name in asked:
                image = pinned[built[asked[name].build].key]
            else:
                image = _service_image(("services", name), body, pinned, by_name, named, keys.where)
            ports = body.get("ports") or []
            expose = body.get("expose") or []  # documentation: the app's services reach every port
            if not isinstance(ports, list) or not isinstance(expose, list):
                raise at_path(f"{path}/ports", "should be a list")
            found_ports = published_ports.service_ports(("services", name), body, keys.where)
            port = found_ports.routed
            more = keys.fields(name, body)
            if more["one_shot"]:
                port = None  # it runs once: never routed (compose_support warns about its ports)
                found_ports = published_ports.ServicePorts()
            every_ports.append(found_ports)
            # As in Compose: a later env_file overrides an earlier one, and environment overrides them all.
            env = _env_files(path, body.get("env_file"), read_file)
            env += _env(f"{path}/environment", body.get("environment"))
            command: Any = body.get("command")
            if isinstance(command, str):
                try:
                    command = split_words(command)
                except ValueError as exc:
                    raise at_path(
                        f"{path}/command",
                        f"cannot split {shown(command)} into words ({exc})",
                        "balance the quotes, or give the command as a list",
                    ) from None
            if command is not None and not isinstance(command, list):
                raise at_path(f"{path}/command", "should be a string or a list")
            spec = ServiceSpec(
                name=name,
                image=image,
                port=port,
                ready_port=0 if port or more["one_shot"] else ready_port(expose, found_ports.published),
                hosts=hosts_for(app, name, first_web, base_domain, domains) if port else (),
                environment=tuple(dict(env).items()),
                command=tuple(str(c) for c in command) if command is not None else None,
                **host_access_fields(app, path, body, known, allowed),
                volumes=_volumes(name, path, body.get("volumes"), volume_names),
                published=found_ports.published,
                **more,
            )
            single = replicas.single_only(spec) if spec.replicas > 1 else None
            if single is not None:
                raise keys.where.error(keys.replicas_at(("services", name), body),
                                       f"{name} cannot run {spec.replicas} containers: {single[0]}", single[1])
            out.append(spec)
            first_web = first_web and port is None
        published_ports.check_file(every_ports, keys.where)
        for s in out:
            for dep in s.depends_on:
                if dep not in known:
                    raise at_path(f"services/{_key(s.name)}/depends_on", f"unknown service {shown(dep)}")
        return Stack(tuple(start_order(out)), loaded.warnings, tuple(to_build))


def _volumes(name: str, path: str, raw: Any, declared: set[str]) -> tuple[str, ...]:
    """Named volumes, then the anonymous ones, kept across releases as volumes of their own."""
    named = volumes.named_mounts(path, raw, declared)
    return named + volumes.kept(name, volumes.anonymous_targets(path, raw), named)


@contextlib.contextmanager
def located_errors(text: str, source: str) -> Iterator[None]:
    """Errors raised at a key path where the lines are not at hand (``at_path``), named by the
    file and the line, as every refusal of the file is."""
    try:
        yield
    except KeyPathError as exc:
        raise Where(text, source).error(exc.parts, exc.detail, exc.hint) from None


def _env_files(path: str, raw: Any, read_file: ReadFile) -> list[tuple[str, str]]:
    if not raw:
        return []
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list):
        raise at_path(f"{path}/env_file", "should be a path or a list of paths")
    env: list[tuple[str, str]] = []
    for i, entry in enumerate(raw):
        where, required = f"{path}/env_file/{i}", True
        if isinstance(entry, dict):  # the long syntax: {path: a.env, required: false}
            required = entry.get("required", True) is not False
            entry = entry.get("path")
            if not isinstance(entry, str):
                raise at_path(where, "needs 'path'", "write '- path: app.env'")
        env_path = str(entry)
        env_norm = posixpath.normpath(env_path)
        content = None if _outside(env_norm) or "\0" in env_norm else read_file(env_norm)
        if content is None:
            if not required:
                continue
            raise at_path(where, f"{shown(env_path)} is not in the repository")
        if len(content) > MAX_ENV_FILE_BYTES:
            error = too_large(env_norm, len(content.encode(errors="replace")), MAX_ENV_FILE_BYTES)
            raise at_path(where, error.message, error.hint)
        env += parse_env_file(content)
    return env


def _service_image(
    at: tuple[str, ...],
    body: dict[str, Any],
    pinned: Mapping[str, str],
    by_name: Mapping[str, str],
    named: Mapping[str, ImageSpec],
    where: Where,
) -> str:
    """The image of a service without ``build``: one of the repository's own by its header name
    (the build ``named`` gives for that Dockerfile), else the reference as written."""
    path = "/".join(at[:1] + tuple(_key(part) for part in at[1:]))
    raw = body.get("image")
    if not isinstance(raw, str) or not raw:
        raise at_path(path, "needs 'image' or 'build'")
    try:
        ref = parse_reference(raw)
    except ValueError as exc:
        raise at_path(f"{path}/image", str(exc)) from None
    if ref.name not in by_name:
        return raw
    dockerfile = by_name[ref.name]
    spec = named.get(dockerfile)
    if spec is None:
        raise where.error(
            (*at, "image"), f"{shown(raw, 80)} is the image of {dockerfile}, which this file builds in several ways "
            "(other args or target), none of them plain",
            "give this service the 'build:' of the build it runs",
        )
    return pinned[spec.key]


def _outside(path: str) -> bool:
    """True for an absolute path, or a relative one that climbs out of the repository."""
    norm = posixpath.normpath(path)
    return posixpath.isabs(norm) or norm == ".." or norm.startswith("../")


def start_order(services: list[ServiceSpec]) -> list[ServiceSpec]:
    """Dependencies first, as declared by depends_on (in rounds: ties keep file order)."""
    index = {s.name: i for i, s in enumerate(services)}
    ordered, stuck = in_rounds([[index.get(d, -1) for d in s.depends_on] for s in services])
    if stuck:
        raise at_path("services", "depends_on forms a cycle: " + ", ".join(services[i].name for i in stuck))
    return [services[i] for i in ordered]


def ready_port(expose: list[Any], published: Sequence[tuple[int, int, str, str]]) -> int:
    """The TCP port a service that is not web must accept connections on to be ready: its first
    ``expose`` entry over TCP (``9000``, ``"9000/tcp"``, ``"9000-9005"``), else the container port
    of the first host port Docker publishes over TCP; 0 when it declares none."""
    for entry in expose:
        text = str(entry).strip()
        number, _, protocol = text.partition("/")
        first = number.partition("-")[0]
        if protocol in ("", "tcp") and first.isdigit() and 0 < int(first) < 65536:
            return int(first)
    return next((container for _, container, protocol, _ in published
                 if protocol in ("tcp", PROXIED)), 0)
