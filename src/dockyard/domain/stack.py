"""From a pushed tree and its built images to the services a release runs.

Without a compose file, the one image with an EXPOSEd port is the app's web service. With
``docker-compose.yml`` (or ``compose.yml``), its services are started; full Compose support is a
later issue, this reads the common subset: image/build, ports, environment, env_file, command,
depends_on.

The compose file is pushed text, read within bounds: at most MAX_COMPOSE_BYTES (and each env
file MAX_ENV_FILE_BYTES, see ``images``), loaded by ``load_compose`` (YAML within node, size and
depth limits), and every step after it runs in linear time. Keys that hand a container the host
(HOST_ACCESS_KEYS: privileged, bind mounts, the Docker socket...) are refused unless an admin
allowed them for the app; allowed ones are carried into the ServiceSpec.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from dockyard.domain import names
from dockyard.domain.errors import InvalidSource
from dockyard.domain.images import (
    MAX_COMPOSE_BYTES,
    MAX_ENV_FILE_BYTES,
    ImageSpec,
    in_rounds,
    parse_reference,
    port_number,
    shown,
    too_large,
)
from dockyard.domain.model import HOST_ACCESS_KEYS as HOST_ACCESS_KEYS  # the keys, public here too
from dockyard.domain.model import ServiceSpec

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

# YAML bounds. Aliases count every time they are used, as the document they expand to.
MAX_YAML_NODES = 10_000
MAX_YAML_CHARS = 4 * MAX_COMPOSE_BYTES  # characters of all scalars, aliases expanded
MAX_YAML_DEPTH = 64
MAX_NUMBER_CHARS = 100

ReadFile = Callable[[str], str | None]


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
    files: Collection[str],
    read_file: ReadFile,
    images: Mapping[str, ImageSpec],
    pinned: Mapping[str, str],
    base_domain: str,
    domains: tuple[str, ...],
    allowed: frozenset[str] = frozenset(),
) -> tuple[ServiceSpec, ...]:
    """The services a pushed tree runs: its compose file's, else its web image's.

    ``allowed`` are the HOST_ACCESS_KEYS an admin allowed for the app."""
    compose = next((f for f in COMPOSE_FILES if f in files), None)
    if compose:
        text = read_file(compose) or ""
        if len(text) > MAX_COMPOSE_BYTES:
            raise too_large(compose, len(text.encode(errors="replace")), MAX_COMPOSE_BYTES)
        return compose_services(app, text, images, pinned, read_file, base_domain, domains, allowed)
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


def _key(value: object) -> str:
    """A mapping key as a part of a key path."""
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- YAML within bounds -----------------------------------------------------------------------


def _at(node: Any, message: str, hint: str) -> InvalidSource:
    mark = getattr(node, "start_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    return InvalidSource(f"compose file{where}: {message}", hint)


def _check_expansion(root: Any) -> None:
    """Refuse a document that expands (aliases used as often as they appear) to more than
    MAX_YAML_NODES nodes or MAX_YAML_CHARS characters, nests deeper than MAX_YAML_DEPTH, or
    contains itself. Each node of the composed graph is visited once."""
    import yaml

    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, characters), expanded
    open_nodes: set[int] = set()
    todo: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while todo:
        node, depth, finished = todo.pop()
        key = id(node)
        children: list[Any]
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if finished:
            open_nodes.discard(key)
            count = 1 + sum(sizes[id(c)][0] for c in children)
            chars = (len(node.value) if isinstance(node, yaml.ScalarNode) else 0) + sum(
                sizes[id(c)][1] for c in children
            )
            if count > MAX_YAML_NODES or chars > MAX_YAML_CHARS:
                raise _at(
                    node,
                    f"this value expands to more than {MAX_YAML_NODES} YAML nodes or {MAX_YAML_CHARS // 1024} KiB "
                    "of text (an alias counts each time it is used)",
                    "write the compose file out without anchors and aliases that repeat large values",
                )
            sizes[key] = (count, chars)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _at(node, "an alias refers to the value that contains it", "remove the recursive alias")
        if depth > MAX_YAML_DEPTH:
            raise _at(node, f"values are nested deeper than {MAX_YAML_DEPTH} levels", "flatten the compose file")
        open_nodes.add(key)
        todo.append((node, depth, True))
        todo.extend((c, depth + 1, False) for c in children if id(c) not in sizes)


@functools.cache
def _loader() -> type[Any]:
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class BoundedLoader(base):  # type: ignore[misc]
        """yaml's safe loader (libyaml's when installed) that refuses, before building anything,
        a document that expands beyond the bounds of ``_check_expansion``, and numbers longer
        than MAX_NUMBER_CHARS (a long sexagesimal ``1:2:3:...`` takes quadratic time)."""

        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None:
                _check_expansion(node)
            return node

        def construct_number(self, node: Any) -> Any:
            if len(node.value) > MAX_NUMBER_CHARS:
                raise _at(node, f"the number {shown(node.value, 40)} is too long", "quote it to make it a string")
            if node.tag.endswith(":int"):
                return self.construct_yaml_int(node)
            return self.construct_yaml_float(node)

        def construct_timestamp(self, node: Any) -> Any:
            try:
                return self.construct_yaml_timestamp(node)
            except (ValueError, OverflowError):
                raise _at(node, f"{shown(node.value, 40)} is not a date", "quote it to make it a string") from None

    BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_number)
    BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_number)
    BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", BoundedLoader.construct_timestamp)
    return BoundedLoader


def load_compose(text: str) -> Any:
    """The compose file's YAML, within bounds; any failure is an InvalidSource naming a line."""
    import yaml  # only pushes with a compose file pay for it

    if len(text) > MAX_COMPOSE_BYTES:
        raise too_large("compose file", len(text.encode(errors="replace")), MAX_COMPOSE_BYTES)
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line 1"
        problem = exc.problem or exc.context or "syntax error"
        raise InvalidSource(f"compose file is not valid YAML: {where}: {problem}", "fix the YAML syntax") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise InvalidSource(
            f"compose file is not valid YAML: line {line}: character #x{exc.character:04x} is not allowed"
            if isinstance(exc.character, int) else f"compose file is not valid YAML: line {line}: {exc.reason}",
            "fix the YAML syntax; remove control characters",
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidSource(f"compose file is not valid YAML: line 1: {exc}", "fix the YAML syntax") from None
    except RecursionError:
        raise InvalidSource(
            f"compose file is not valid YAML: line 1: values are nested deeper than {MAX_YAML_DEPTH} levels",
            "flatten the compose file",
        ) from None


# -- the compose file -------------------------------------------------------------------------


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
    port = port_number(text.split("/")[0].rsplit(":", 1)[-1].split("-")[0])
    if port is None:
        raise _where(path, f"port {shown(str(raw))} is not understood", "write '8080:3000' or '3000'")
    return port


_WORD_RUN = re.compile(r"[^ \t\r\n'\"\\]+")
_DOUBLE_RUN = re.compile(r'[^"\\]+')


def split_words(text: str) -> list[str]:
    """``shlex.split`` (POSIX rules, no comments) in linear time: shlex itself takes quadratic
    time over a long word. Raises ValueError on an unbalanced quote or a trailing backslash."""
    words: list[str] = []
    parts: list[str] = []
    in_word = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            i += 1
            continue
        in_word = True
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("No closing quotation")
            parts.append(text[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ValueError("No closing quotation")
                if text[i] == '"':
                    i += 1
                    break
                if text[i] == "\\":
                    if i + 1 >= n:
                        raise ValueError("No closing quotation")
                    nxt = text[i + 1]
                    parts.append(nxt if nxt in '"\\' else "\\" + nxt)
                    i += 2
                else:
                    run = _DOUBLE_RUN.match(text, i)
                    assert run is not None  # text[i] is neither '"' nor '\\'
                    parts.append(run.group())
                    i = run.end()
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("No escaped character")
            parts.append(text[i + 1])
            i += 2
        else:
            run = _WORD_RUN.match(text, i)
            assert run is not None  # c is none of the characters handled above
            parts.append(run.group())
            i = run.end()
    if in_word:
        words.append("".join(parts))
    return words


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
    """Services from a compose file. ``images`` maps dockerfile path -> spec, ``pinned`` maps
    dockerfile path -> pinned reference; ``read_file(path)`` returns a repo file's text or None;
    ``allowed`` are the HOST_ACCESS_KEYS an admin allowed for the app."""
    doc = load_compose(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        raise _where("services", "should be a mapping of service names to definitions")
    services: dict[Any, Any] = doc["services"]
    known = {str(name) for name in services}
    by_name = {s.declared_name: path for path, s in images.items() if s.declared_name}
    out: list[ServiceSpec] = []
    first_web = True
    for name, body in services.items():
        path = f"services/{_key(name)}"
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
        env = _env_files(path, body.get("env_file"), read_file)
        env += _env(f"{path}/environment", body.get("environment"))
        command: Any = body.get("command")
        if isinstance(command, str):
            try:
                command = split_words(command)
            except ValueError as exc:
                raise _where(
                    f"{path}/command",
                    f"cannot split {shown(command)} into words ({exc})",
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
                **_host_access(app, path, body, known, allowed),
            )
        )
        first_web = first_web and port is None
    for s in out:
        for dep in s.depends_on:
            if dep not in known:
                raise _where(f"services/{_key(s.name)}/depends_on", f"unknown service {shown(dep)}")
    return tuple(start_order(out))


def _env_files(path: str, raw: Any, read_file: ReadFile) -> list[tuple[str, str]]:
    if not raw:
        return []
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list):
        raise _where(f"{path}/env_file", "should be a path or a list of paths")
    env: list[tuple[str, str]] = []
    for i, entry in enumerate(raw):
        where, required = f"{path}/env_file/{i}", True
        if isinstance(entry, dict):  # the long syntax: {path: a.env, required: false}
            required = entry.get("required", True) is not False
            entry = entry.get("path")
            if not isinstance(entry, str):
                raise _where(where, "needs 'path'", "write '- path: app.env'")
        env_path = str(entry)
        env_norm = posixpath.normpath(env_path)
        content = None if _outside(env_norm) or "\0" in env_norm else read_file(env_norm)
        if content is None:
            if not required:
                continue
            raise _where(where, f"{shown(env_path)} is not in the repository")
        if len(content) > MAX_ENV_FILE_BYTES:
            error = too_large(env_norm, len(content.encode(errors="replace")), MAX_ENV_FILE_BYTES)
            raise _where(where, error.message, error.hint)
        env += parse_env_file(content)
    return env


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
                    f"{what} {shown(value)} is outside the repository",
                    "dockyard builds from the pushed repository only: use a path inside it, such as '.' or './api'",
                )
        if key not in pinned:
            raise _where(f"{path}/build", f"no Dockerfile at {shown(key)} in the repository")
        own = posixpath.dirname(key) or "."
        if posixpath.normpath(context) != own:
            raise _where(
                f"{path}/build",
                f"context {shown(context)} is not the folder of {shown(key)}",
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


# -- keys that hand a container the host --------------------------------------------------------

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
    raise _where(path, f"should be true or false, not {shown(str(raw))}")


def _strings(path: str, raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _where(path, "should be a list")
    return [str(item) for item in raw]


def _shared_mode(value: str, services: Collection[str]) -> bool:
    """``service:NAME`` naming a service of the same compose file: shared within the app."""
    kind, _, name = value.partition(":")
    return kind == "service" and name in services


def _host_access(
    app: str, path: str, body: dict[str, Any], services: Collection[str], allowed: frozenset[str]
) -> dict[str, Any]:
    """The ServiceSpec fields of a service's host access; refuse what the app is not allowed."""

    def need(key: str, where: str, what: str) -> None:
        if key not in allowed:
            raise _where(
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
        raise _where(f"{path}/devices", "should be a list")
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
        raise _where(f"{path}/volumes", "should be a list")
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
            raise _where(
                where, f"the bind mount source {shown(source)} is not an absolute path",
                "dockyard has no checkout to resolve it against: give the absolute host path",
            )
        binds.append(":".join(p for p in (posixpath.normpath(source), target, mode) if p))
    return binds


def start_order(services: list[ServiceSpec]) -> list[ServiceSpec]:
    """Dependencies first, as declared by depends_on (in rounds: ties keep file order)."""
    index = {s.name: i for i, s in enumerate(services)}
    ordered, stuck = in_rounds([[index.get(d, -1) for d in s.depends_on] for s in services])
    if stuck:
        raise _where("services", "depends_on forms a cycle: " + ", ".join(services[i].name for i in stuck))
    return [services[i] for i in ordered]
