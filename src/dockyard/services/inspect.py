"""Parse a pushed commit's Dockerfiles and compose file in a child process, within bounds.

The parsers read pushed text. They are written to run in linear time within size limits, and
this module makes sure that whatever they do, they cannot stall the server: they run in a child
Python process that limits its own memory (RLIMIT_AS) and CPU time (RLIMIT_CPU) first thing,
and that the server stops when it takes longer than the wall-clock bound. The child reads
nothing itself: the server lists the commit (``adapters.git.Tree``) and answers the child's
requests for files, each within its size limit. They talk in JSON lines over stdin/stdout.

For the deployer::

    found = inspect_commit(repos.path(app.name), commit, app.name, base_domain=settings.base_domain,
                           domains=app.domains, registry=registry.address,
                           allowed=frozenset(app.host_access), variables=environment_variables)
    found.images    # ImageSpecs, in build order: one per distinct build (compose `build:`)
    found.services  # ServiceSpecs; a built image is named placeholder(spec.key)
    found.warnings  # for the job log, one line each: say(f" !     warning: {w}")
    ...build found.images, giving {spec.key: reference}...
    services = with_references(found.services, {spec.key: reference, ...})

``variables`` (the environment's variables; none yet) are what the compose file is interpolated
with, over those of the repository's ``.env``. The warnings name file, line and key path: valid
compose keys dockyard does not honour yet, host ports not published, variables not set.

A refused push raises InvalidSource (the parsers' own errors, or "parsing the pushed files took
longer than N s / needed more than N MB"); the hook runs the same ``parse_source`` in its own
process, which bounds itself.

One spare child is kept started (imports done, limits set, waiting on stdin), so a call costs a
round trip and the parsing, not a Python start; it is replaced after each call. The last few
results are kept (``_Recent``): the deploy of a push reuses its pre-receive check's parse. ``warm()``
starts it (at server start), ``shutdown()`` stops it (it also exits by itself when the server
does: its stdin closes). A second parse running at the same time starts its own child. This module is
imported by the child: its top-level imports are only what parsing needs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from dockyard.domain import compose_schema, compose_yaml, configuration, dockyard_file, errors, images, stack
from dockyard.domain.dotenv import DOTENV
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.images import ImageSpec
from dockyard.domain.limits import (
    MAX_COMPOSE_BYTES,
    MAX_DOCKERFILE_BYTES,
    MAX_DOCKYARD_FILE_BYTES,
    MAX_ENV_FILE_BYTES,
    too_large,
)
from dockyard.domain.model import DEFAULT_ENVIRONMENT, ServiceSpec

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

PLACEHOLDER = "dockyard-build://"
MAX_PARSED_BYTES = 16 * 1024 * 1024  # all files one inspection reads together
_MEMORY_ERROR = b'{"error": {"kind": "memory"}}\n'
_MAX_READ = max(MAX_DOCKERFILE_BYTES, MAX_COMPOSE_BYTES, MAX_ENV_FILE_BYTES)

Read = Callable[[str, int], str | None]
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """The bounds of one parse: wall-clock (and CPU) seconds, and address space in MiB."""

    seconds: float = 10.0
    megabytes: int = 256


@dataclass(frozen=True)
class Inspection:
    """What a commit declares: images in build order, and the services it runs."""

    images: tuple[ImageSpec, ...]
    services: tuple[ServiceSpec, ...]  # built images named by placeholder(ImageSpec.key)
    warnings: tuple[str, ...] = ()  # for the pusher: keys not honoured yet, variables not set
    dockyard_yml: str | None = None  # the commit's dockyard.yml, checked (load it again to read it)

    @property
    def declared(self) -> dockyard_file.DockyardFile | None:
        return dockyard_file.load(self.dockyard_yml) if self.dockyard_yml is not None else None


def placeholder(key: str) -> str:
    """The image reference a service carries for the image built as ``key`` says
    (``ImageSpec.key``: a Dockerfile's path for its plain image, ``PATH#VARIANT`` for another
    build of it)."""
    return f"{PLACEHOLDER}{key}"


class Placeholders(dict[str, str]):
    """The placeholder of every image key, whichever builds the compose file asks for."""

    def __missing__(self, key: str) -> str:
        return placeholder(key)


def with_references(services: tuple[ServiceSpec, ...], references: Mapping[str, str]) -> tuple[ServiceSpec, ...]:
    """The services with each placeholder replaced by the reference of the image built for it
    (``references``: ImageSpec.key -> reference)."""
    out = []
    for service in services:
        if service.image.startswith(PLACEHOLDER):
            key = service.image.removeprefix(PLACEHOLDER)
            if key not in references:
                raise DockyardError(f"service {service.name}: no image was built from {key}")
            service = replace(service, image=references[key])
        out.append(service)
    return tuple(out)


def parse_source(
    files: Collection[str], read: Read, app: str, *, base_domain: str, domains: tuple[str, ...] = (),
    registry: str = "", allowed: frozenset[str] = frozenset(), variables: Mapping[str, str] | None = None,
    environment: str = DEFAULT_ENVIRONMENT, secret_names: Collection[str] | None = None,
    folders: Collection[str] | None = None, images_only: bool = False,
) -> Inspection:
    """The parsing itself, in this process (``images_only``: a source repo's commit, whose
    Dockerfiles alone count): ``files`` are the commit's paths (the Dockerfiles,
    compose file, ``.env`` and ``dockyard.yml`` among them are enough, with ``folders``, the
    commit's folders; else derived from ``files``), ``read(path, limit)`` a file's text or None;
    ``variables`` those set for ``environment`` (by the CLI), which with
    dockyard.yml's the compose file is interpolated with. A variable dockyard.yml sets to another
    value, or a secret it requires that is not among ``secret_names`` (when given), is refused."""
    budget = [MAX_PARSED_BYTES]

    def read_within(path: str, limit: int) -> str | None:
        text = read(path, limit)
        budget[0] -= len(text or "")
        if budget[0] < 0:
            raise InvalidSource(
                f"the Dockerfiles, compose file and env files add up to more than {MAX_PARSED_BYTES // 1024**2} MiB",
                "keep them small: move data into files the build COPYs",
            )
        return text

    def read_compose_file(path: str) -> str | None:
        compose = path in stack.COMPOSE_FILES
        return read_within(path, MAX_COMPOSE_BYTES if compose else MAX_ENV_FILE_BYTES)

    paths = set(files)
    if images_only:
        found_images = images.discover({p: read_within(p, MAX_DOCKERFILE_BYTES) or ""
                                        for p in images.find_dockerfiles(paths)}, app, registry)
        return Inspection(tuple(found_images), ())
    declared_text = read_within(dockyard_file.SOURCE, MAX_DOCKYARD_FILE_BYTES) if dockyard_file.SOURCE in paths else None
    variables = declared_variables(dockyard_file.load(declared_text) if declared_text is not None else None,
                                   environment, variables or {}, secret_names)
    texts = {p: read_within(p, MAX_DOCKERFILE_BYTES) or "" for p in images.find_dockerfiles(paths)}
    # a stack of images built elsewhere (another repo of the app, a public registry) builds none
    specs = images.discover(texts, app, registry) if texts or not paths & set(stack.COMPOSE_FILES) else []
    found = stack.commit_stack(
        app, paths, read_compose_file, {s.dockerfile: s for s in specs}, Placeholders(), base_domain, domains,
        allowed, variables=variables, folders=folders,
    )
    if secret_names is not None:  # the compose file's secrets: each must be set (refused before any build)
        unset = configuration.unset_secrets(found.services, secret_names)
        if unset:
            name, users = next(iter(unset.items()))
            raise InvalidSource(
                f"the compose file gives the secret {name} to {', '.join(users)}, and {app}'s environment {environment} "
                f"has no secret {name}" + (f" (and {len(unset) - 1} more)" if len(unset) > 1 else ""),
                f"set it (its value from stdin): dockyard secrets set {app} {name} --env {environment}")
    return Inspection(found.images, found.services, found.warnings, declared_text)


def declared_variables(declared: dockyard_file.DockyardFile | None, environment: str, cli: Mapping[str, str],
                       secret_names: Collection[str] | None = None) -> dict[str, str]:
    """The environment's variables: dockyard.yml's and the CLI's together. A variable both set to
    different values, or a required secret not set (when ``secret_names`` is given), is refused."""
    if declared is None:
        return dict(cli)
    problems = dockyard_file.conflicts(declared, environment, cli)
    if problems:
        raise InvalidSource(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                            "set it in one place only: dockyard.yml, or dockyard env set/unset")
    if secret_names is not None:
        missing = dockyard_file.missing_secrets(declared, environment, secret_names)
        if missing:
            raise InvalidSource(
                f"dockyard.yml: environment {environment} needs the secret(s) {', '.join(missing)}, which are not set",
                f"set each (its value from stdin): dockyard secrets set APP {missing[0]} --env {environment}")
    env = declared.environment(environment)
    return {**dict(env.variables if env is not None else ()), **cli}


# -- the server's side --------------------------------------------------------------------------


def inspect_commit(
    repo: Path, commit: str, app: str, *, base_domain: str, domains: tuple[str, ...] = (), registry: str = "",
    allowed: frozenset[str] = frozenset(), variables: Mapping[str, str] | None = None, limits: Limits | None = None,
    environment: str = DEFAULT_ENVIRONMENT, secret_names: Collection[str] | None = None,
) -> Inspection:
    """Parse ``commit`` of the bare repository ``repo`` in a bounded child process."""
    from dockyard.adapters.git import Tree

    with Tree(repo, commit) as tree:
        return inspect_source(tree.paths(), tree.read, app, base_domain=base_domain, domains=domains,
                              registry=registry, allowed=allowed, variables=variables, limits=limits,
                              environment=environment, secret_names=secret_names)


def inspect_source(
    files: Collection[str], read: Read, app: str, *, base_domain: str, domains: tuple[str, ...] = (),
    registry: str = "", allowed: frozenset[str] = frozenset(), variables: Mapping[str, str] | None = None,
    limits: Limits | None = None, environment: str = DEFAULT_ENVIRONMENT, secret_names: Collection[str] | None = None,
    images_only: bool = False,
) -> Inspection:
    """``parse_source`` in a bounded child process; ``read(path, limit)`` runs here, in the
    caller's process, and serves the child's reads."""
    limits = limits or Limits()
    candidates = [p for p in files if images.is_dockerfile(p) or (p in stack.COMPOSE_FILES and not images_only)]
    if dockyard_file.SOURCE in files and not images_only:
        candidates.append(dockyard_file.SOURCE)
    # Sent with the request, each within its limit: the child asks only for env files.
    texts = {p: read(p, MAX_DOCKERFILE_BYTES) for p in images.find_dockerfiles(candidates)}
    texts.update((p, read(p, MAX_COMPOSE_BYTES)) for p in candidates if p in stack.COMPOSE_FILES)
    if dockyard_file.SOURCE in candidates:
        texts[dockyard_file.SOURCE] = read(dockyard_file.SOURCE, MAX_DOCKYARD_FILE_BYTES)
    if any(p in stack.COMPOSE_FILES for p in candidates) and DOTENV in files and not images_only:  # the compose file's variables
        candidates.append(DOTENV)
        texts[DOTENV] = read(DOTENV, MAX_ENV_FILE_BYTES)
    request = {"files": candidates, "texts": texts, "app": app, "base_domain": base_domain,
               "domains": list(domains), "registry": registry, "allowed": sorted(allowed),
               "variables": dict(variables or {}), "environment": environment,
               "secret_names": sorted(secret_names) if secret_names is not None else None,
               "images_only": images_only,
               # where a compose file's build contexts may be: the child sees only the files above
               "folders": sorted(stack.folders_of(files)) if any(p in stack.COMPOSE_FILES for p in candidates)
               else None}
    key = _recent.key(request, limits)
    found = _recent.get(key, read)
    if found is not None:
        return found
    reads: list[tuple[str, int, str | None]] = []

    def recorded(path: str, limit: int) -> str | None:
        text = read(path, limit)
        reads.append((path, limit, text))
        return text

    child = _spares.take(limits)
    try:
        answer = child.exchange(request, recorded)
    finally:
        child.close()
        _spares.refill_later(limits)  # not now: the build that follows wants the CPU
    found = Inspection(
        tuple(_build(ImageSpec, d) for d in answer["images"]),
        tuple(_build(ServiceSpec, d) for d in answer["services"]),
        tuple(str(w) for w in answer.get("warnings", ())),
        answer.get("dockyard_yml"),
    )
    _recent.put(key, found, reads)
    return found


class _Recent:
    """The last few inspections, by request: the push's check (pre-receive) and the deploy that
    follows parse the same files the same way, and the deploy takes the check's result. A
    request holds the texts it parses; the files the child asked for besides (env files) are
    read again and compared before a result is reused."""

    def __init__(self, count: int = 16, seconds: float = 300.0) -> None:
        import threading

        self.count, self.seconds = count, seconds
        self._entries: dict[str, tuple[float, Inspection, list[tuple[str, int, str | None]]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(request: dict[str, Any], limits: Limits) -> str:
        import hashlib

        return hashlib.sha256(json.dumps([request, asdict(limits)], sort_keys=True).encode()).hexdigest()

    def get(self, key: str, read: Read) -> Inspection | None:
        import time

        with self._lock:
            entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.seconds:
            return None
        _, found, reads = entry
        try:
            if any(read(path, limit) != text for path, limit, text in reads):
                return None
        except DockyardError:
            return None
        return found

    def put(self, key: str, found: Inspection, reads: list[tuple[str, int, str | None]]) -> None:
        import time

        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (time.monotonic(), found, reads)
            while len(self._entries) > self.count:
                self._entries.pop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_recent = _Recent()


def warm(limits: Limits | None = None) -> None:
    """Start the spare child now (at server start), so that the first parse does not wait for
    a Python start (~70 ms)."""
    _spares.refill(limits or Limits())


def shutdown() -> None:
    """Stop the spare child (at server stop; it also exits when the server's process does)."""
    _spares.close()
    _recent.clear()


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _build(cls: type[T], data: dict[str, Any]) -> T:
    return cls(**{f.name: _tuples(data[f.name]) for f in fields(cls) if f.name in data})  # type: ignore[arg-type]


# The child's first lines: limits before anything else, then the parent's import path.
_BOOT = (
    "import sys\n"
    "from dockyard.services.inspect import child_main\n"
    "child_main(sys.argv[1:])\n"
)


class _Child:
    """One child process, used for one parse."""

    def __init__(self, limits: Limits) -> None:
        import subprocess

        self.limits = limits
        cpu = max(1, int(limits.seconds + 0.999))
        path = [p for p in sys.path if p]
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {path!r}\n" + _BOOT,
             str(limits.megabytes), str(cpu)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self.stdin, False)
        os.set_blocking(self.stdout, False)
        self.buffer = b""

    def usable(self, limits: Limits) -> bool:
        return self.limits == limits and self.proc.poll() is None

    def exchange(self, request: dict[str, Any], read: Read) -> dict[str, Any]:
        """Send the request, serve the child's reads with ``read``; its answer, or an error."""
        import time

        deadline = time.monotonic() + self.limits.seconds
        self._send(request, deadline)
        while True:
            message = self._receive(deadline)
            if "read" in message:
                limit = min(int(message.get("limit") or _MAX_READ), _MAX_READ)
                self._send({"text": read(str(message["read"]), limit)}, deadline)
            elif "ok" in message:
                return dict(message["ok"])
            elif "error" in message:
                raise self._error(message["error"])
            else:
                raise DockyardError(f"the parser process failed: {str(message.get('crash', message))[-1500:]}")

    def _error(self, error: dict[str, Any]) -> DockyardError:
        if error.get("kind") == "memory":
            return InvalidSource(
                f"parsing the pushed files needed more than {self.limits.megabytes} MB of memory",
                "simplify the Dockerfiles and the compose file (dockyard stopped parsing them)",
            )
        kind = getattr(errors, str(error.get("kind")), DockyardError)
        if not (isinstance(kind, type) and issubclass(kind, DockyardError)):
            kind = DockyardError
        return kind(str(error.get("message")), str(error.get("hint", "")))

    def _timeout(self) -> InvalidSource:
        return InvalidSource(
            f"parsing the pushed files took longer than {self.limits.seconds:g} s",
            "simplify the Dockerfiles and the compose file (dockyard stopped parsing them)",
        )

    def _send(self, message: dict[str, Any], deadline: float) -> None:
        import select
        import time

        data = memoryview(json.dumps(message).encode() + b"\n")
        while data:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise self._timeout()
            select.select([], [self.stdin], [], wait)
            try:
                data = data[os.write(self.stdin, data[:65536]):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise self._died() from None

    def _receive(self, deadline: float) -> dict[str, Any]:
        import select
        import time

        while b"\n" not in self.buffer:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise self._timeout()
            select.select([self.stdout], [], [], wait)
            try:
                chunk = os.read(self.stdout, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise self._died()
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        message = json.loads(line)
        assert isinstance(message, dict)
        return message

    def _died(self) -> DockyardError:
        import signal

        code = self.proc.wait()
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            return self._timeout()
        if code == 3:
            return self._error({"kind": "memory"})
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read(4000).decode(errors="replace")
        if "MemoryError" in stderr:
            return self._error({"kind": "memory"})
        return DockyardError(f"the parser process exited ({code}): {stderr.strip()[-1500:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


class _Spares:
    """At most one started child, waiting for a parse."""

    def __init__(self) -> None:
        self._spare: _Child | None = None
        self._lock: Any = None
        self._closes = 0  # a refill planned before a close does not happen

    def _guard(self) -> Any:
        if self._lock is None:
            import threading

            self._lock = threading.Lock()
        return self._lock

    def take(self, limits: Limits) -> _Child:
        with self._guard():
            child, self._spare = self._spare, None
        if child is not None and child.usable(limits):
            return child
        if child is not None:
            child.close()
        return _Child(limits)

    def refill(self, limits: Limits) -> None:
        with self._guard():
            if self._spare is None:
                self._spare = _Child(limits)

    def refill_later(self, limits: Limits, delay: float = 2.0) -> None:
        """Start the next spare child in ``delay`` seconds, in the background (a Python start is
        ~70 ms of CPU, which a build starting now would share)."""
        import threading

        closes = self._closes

        def later() -> None:
            if self._closes == closes:
                self.refill(limits)

        timer = threading.Timer(delay, later)
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        with self._guard():
            self._closes += 1
            child, self._spare = self._spare, None
        if child is not None:
            child.close()


_spares = _Spares()  # holds no process until the first parse


# -- the child's side ---------------------------------------------------------------------------


def child_main(argv: list[str]) -> None:
    """The child: limit itself, then answer one request on stdin, reading files through stdout."""
    import resource

    megabytes, cpu_seconds = int(argv[0]), int(argv[1])
    # yaml, jsonschema and the Compose schema are loaded while the child waits, not once asked,
    # and before the limits: an import cut short by the memory limit is no answer about the push
    compose_yaml.load_compose("{}")
    compose_schema.validator()
    resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    out, inp = sys.stdout.buffer, sys.stdin.buffer

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    try:
        line = inp.readline()
        if not line:
            return  # the server went away, or stopped its spare

        request = json.loads(line)
        texts: dict[str, str | None] = request["texts"]

        def read(path: str, limit: int) -> str | None:
            if path in texts:
                text = texts[path]
            else:
                send({"read": path, "limit": limit})
                text = json.loads(inp.readline())["text"]
            if text is not None and len(text) > limit:
                raise too_large(path, len(text), limit)
            return None if text is None else str(text)

        found = parse_source(
            request["files"], read, request["app"], base_domain=request["base_domain"],
            domains=tuple(request["domains"]), registry=request["registry"], allowed=frozenset(request["allowed"]),
            variables=request.get("variables") or {}, environment=request.get("environment") or DEFAULT_ENVIRONMENT,
            secret_names=request.get("secret_names"),
            folders=set(request["folders"]) if request.get("folders") is not None else None,
            images_only=bool(request.get("images_only")),
        )
        send({"ok": {"images": [asdict(s) for s in found.images], "services": [asdict(s) for s in found.services],
                     "warnings": list(found.warnings), "dockyard_yml": found.dockyard_yml}})
    except DockyardError as exc:
        send({"error": {"kind": type(exc).__name__, "message": exc.message, "hint": exc.hint}})
    except MemoryError:
        out.write(_MEMORY_ERROR)
        out.flush()
        os._exit(3)
    except RecursionError:
        send({"error": {"kind": "InvalidSource", "message": "the pushed files nest too deeply to be parsed",
                        "hint": "simplify the Dockerfiles and the compose file"}})
    except Exception:
        import traceback

        send({"crash": traceback.format_exc()[-1500:]})
