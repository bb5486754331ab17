"""``dockyard.yml``: an app's configuration as code, at the root of its repository.

It declares the app's environments and, for each: the target it runs on (today only ``local``,
this Docker host), the branch that deploys to it, its variables, the names of the secrets it
needs (never their values), its routes (host → ``service:port``), and per service its replicas,
HTTP health check, host port remappings and whether it is stateful. ``examples/dockyard.yml``
documents every key.

Pure: text in, frozen dataclasses out. Reading it:

1. YAML within the compose loader's bounds (nodes, characters, depth, aliases), at most
   MAX_DOCKYARD_FILE_BYTES, with the line of every key path (``compose_yaml.load_located``).
   Variables are not substituted: the file says what it means.
2. A secret's value written in the file is refused first, and never quoted back.
3. The shape (keys, types, ranges) against ``schemas/dockyard.schema.json``, through
   ``compose_schema``: strict, ``x-*`` keys allowed where keys are fixed, as in Compose.
4. What a schema does not say: names (``names``, ``configuration``), hosts, ``service:port``,
   durations, targets, a host routed by two environments, a host port published twice on one
   target.

A refusal names file, line and key path, as the compose file's do
(``dockyard.yml line 12: environments/production/routes/www.example.com: ...``), with a hint.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dockyard.domain import compose_schema, configuration, names
from dockyard.domain.compose_load import key_text, located, refusal
from dockyard.domain.compose_yaml import KeyLines, load_located
from dockyard.domain.errors import DockyardError, InvalidSource, shown
from dockyard.domain.limits import MAX_DOCKYARD_FILE_BYTES
from dockyard.domain.model import LOCAL_TARGET
from dockyard.domain.shell_words import split_words

SOURCE = "dockyard.yml"
SCHEMA_FILE = "dockyard.schema.json"
SCHEMA_HINT = ("dockyard.yml is described key by key in examples/dockyard.yml (and the README's 'dockyard.yml' "
               "section): fix what is named; quote values YAML reads as numbers or booleans ('8080', 'true')")
DOCKER = "docker"  # the one target type today; 'swarm' comes with Swarm clusters
DEFAULT_STATUS = 0  # any 2xx or 3xx
DEFAULT_INTERVAL = datetime.timedelta(seconds=10)
DEFAULT_TIMEOUT = datetime.timedelta(seconds=5)
MAX_DURATION = datetime.timedelta(hours=1)
MAX_SOAK = datetime.timedelta(days=7)
MAX_COMMAND_TIMEOUT = datetime.timedelta(hours=24)  # a release command's deadline
MAX_COMMAND_CHARS = 4096
MAX_DURATION_CHARS = 32
MAX_PATH_CHARS = 1024

Parts = tuple[str | int, ...]

_DURATION = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:us|µs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(us|µs|ms|s|m|h)")
_MICROSECONDS = {"us": 1, "µs": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_PORT = re.compile(r"[1-9][0-9]{0,4}")  # as written, so its text is its key
_URL_PATH = re.compile(r"/[!-~]*")  # printable ASCII, no spaces
VOLUME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a compose file's named volume
_TAG_PATTERN = re.compile(r"[A-Za-z0-9._/*?-]{1,200}")  # a tag name, with fnmatch's * and ? (no [...])


@dataclass(frozen=True)
class TargetDecl:
    """Where an environment's containers run: ``local`` (this Docker host) is built in."""

    name: str
    type: str = DOCKER


@dataclass(frozen=True)
class RouteDecl:
    """A host the proxy routes to a service's container port."""

    host: str
    service: str
    port: int


@dataclass(frozen=True)
class HealthDecl:
    """An HTTP health check: the service is healthy when ``GET path`` answers ``status`` (0, the
    default: any 2xx or 3xx)."""

    path: str
    status: int = DEFAULT_STATUS
    interval: datetime.timedelta = DEFAULT_INTERVAL
    timeout: datetime.timedelta = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class PortMapping:
    """A host port the compose file publishes (``ports: ["50011:8080"]``: 50011), published as
    another in this environment (51011), so two environments of one stack share a host."""

    compose: int
    published: int


@dataclass(frozen=True)
class ServiceDecl:
    """What an environment changes of one compose service; None: as the compose file says."""

    name: str
    replicas: int | None = None
    health: HealthDecl | None = None
    ports: tuple[PortMapping, ...] = ()
    stateful: bool | None = None  # True: released stop-first, one container at a time


@dataclass(frozen=True)
class PromotionDecl:
    """An environment that takes the releases of another (``source``) once its gates pass: a soak
    time upstream, approvals by its approvers (domain/promotion.py)."""

    source: str
    soak: datetime.timedelta = datetime.timedelta(0)
    approvals: int = 0
    approvers: tuple[str, ...] = ()
    self_approval: bool = False
    smoke: str = ""  # a URL path of the upstream environment's site that must answer 2xx/3xx first


@dataclass(frozen=True)
class CommandDecl:
    """A release command: ``command`` run in a one-off container of ``service``'s new image."""

    service: str
    command: tuple[str, ...]
    timeout: datetime.timedelta = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class BackupDecl:
    """A volume's scheduled backups: ``every`` so long, the ``keep`` newest kept, ``before`` and
    ``after`` commands around each (to quiesce the data)."""

    volume: str
    every: datetime.timedelta
    keep: int = 7
    before: CommandDecl | None = None
    after: CommandDecl | None = None


@dataclass(frozen=True)
class EnvironmentDecl:
    """One environment as declared, in file order. ``secrets`` are names only."""

    name: str
    target: str = LOCAL_TARGET
    branch: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = ()
    routes: tuple[RouteDecl, ...] = ()
    services: tuple[ServiceDecl, ...] = ()
    promotion: PromotionDecl | None = None
    tag: str | None = None  # pushed tags matching this pattern (fnmatch: * and ?) deploy here
    backups: tuple[BackupDecl, ...] = ()  # scheduled backups of its volumes

    def service(self, name: str) -> ServiceDecl | None:
        return next((s for s in self.services if s.name == name), None)

    def takes_tag(self, name: str) -> bool:
        """Whether a push of tag ``name`` deploys this environment."""
        return self.tag is not None and fnmatch.fnmatchcase(name, self.tag)


LOCAL = TargetDecl(LOCAL_TARGET, DOCKER)


def _no_lines() -> KeyLines:
    return KeyLines(1, {})


@dataclass(frozen=True)
class DockyardFile:
    """A checked dockyard.yml: its targets (``local`` always among them) and environments, in
    file order; ``lines`` locates its key paths for later messages (``conflicts``)."""

    environments: tuple[EnvironmentDecl, ...]
    targets: tuple[TargetDecl, ...] = (LOCAL,)
    source: str = SOURCE
    repos: tuple[str, ...] = ()  # the app's source repos (services/repos.py), by name
    before: tuple[CommandDecl, ...] = ()  # release commands: before the switch
    after: tuple[CommandDecl, ...] = ()  # and after it
    lines: KeyLines = field(default_factory=_no_lines, compare=False, repr=False)

    def environment(self, name: str) -> EnvironmentDecl | None:
        return next((e for e in self.environments if e.name == name), None)


class _Refused(Exception):
    """A problem at a key path, located once the path is known to the caller."""

    def __init__(self, parts: Parts, message: str, hint: str) -> None:
        super().__init__(message)
        self.parts, self.message, self.hint = parts, message, hint


# -- reading ------------------------------------------------------------------------------------


def load(text: str, source: str = SOURCE) -> DockyardFile:
    """The checked declarations of a dockyard.yml named ``source``; InvalidSource, naming file,
    line and key path, when it cannot be read or declares something dockyard refuses."""
    found = load_located(text, source, MAX_DOCKYARD_FILE_BYTES)
    doc = _plain(found.doc)
    try:
        _refuse_secret_values(doc)
    except _Refused as exc:
        raise InvalidSource(located(source, found.lines, exc.parts, exc.message), exc.hint) from None
    problems, more = compose_schema.violations(doc, SCHEMA_FILE, "dockyard.yml's schema")
    if problems:
        raise refusal(source, found.lines, problems, more, SCHEMA_HINT)
    try:
        return _declarations(doc, source, found.lines)
    except _Refused as exc:
        raise InvalidSource(located(source, found.lines, exc.parts, exc.message), exc.hint) from None


def _plain(value: Any) -> Any:
    """The document as JSON sees it: keys as strings, dates as written. No interpolation."""
    if isinstance(value, dict):
        return {key_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.date):
        return str(value)
    return value


def _refuse_secret_values(doc: Any) -> None:
    """A secret's value written under ``secrets`` (``NAME: value``, ``- NAME=value``, or a
    string that is no secret name) is refused before anything quotes it."""
    envs = doc.get("environments") if isinstance(doc, dict) else None
    for env, body in (envs.items() if isinstance(envs, dict) else ()):
        secrets = body.get("secrets") if isinstance(body, dict) else None
        at: Parts = ("environments", env, "secrets")
        if isinstance(secrets, dict):
            for name, value in secrets.items():
                if value is not None:
                    raise _secret_value((*at, name), env, name)
        elif isinstance(secrets, list):
            for i, item in enumerate(secrets):
                if isinstance(item, dict) and item:
                    raise _secret_value((*at, i), env, key_text(next(iter(item))))
                if isinstance(item, str) and "=" in item:
                    raise _secret_value((*at, i), env, item.partition("=")[0])
                if isinstance(item, str):
                    try:
                        configuration.secret_name(item)
                    except DockyardError as exc:
                        raise _Refused((*at, i), "is not a secret name (it is not shown: it may be a value); "
                                       "dockyard.yml lists the names of secrets, never their values",
                                       exc.hint) from None


def _secret_value(parts: Parts, env: str, name: str) -> _Refused:
    try:
        named = configuration.secret_name(name)
    except DockyardError:
        named = "NAME"
    env = env if names.is_app_name(env) else "ENV"
    return _Refused(
        parts,
        "a secret's value does not belong in dockyard.yml (it is not shown): list the secret's name only",
        f"write `secrets: [{named}]`, set the value with `dockyard secrets set APP {named} --env {env}` (from "
        "stdin or --from-file), and change the secret: a value pushed once stays in the repository's history",
    )


def _declarations(doc: dict[str, Any], source: str, lines: KeyLines) -> DockyardFile:
    """The declarations of a document that follows the schema."""
    targets = _targets(doc.get("targets") or {})
    envs: dict[str, Any] = doc["environments"]
    if not envs:
        raise _Refused(("environments",), "declares no environment",
                       "declare at least one, e.g. `environments: {production: {branch: main}}`")
    declared = tuple(_environment(name, body or {}, {t.name for t in targets}) for name, body in envs.items())
    _check_stages(declared)
    _check_hosts(declared, lines)
    _check_published_ports(declared, lines)
    repos = tuple(_named(("repos", name), names.repo_name, name) for name in doc.get("repos") or {})
    phases = doc.get("release") or {}
    before, after = (tuple(_command(("release", phase, i), c) for i, c in enumerate(phases.get(phase) or ()))
                     for phase in ("before", "after"))
    return DockyardFile(environments=declared, targets=targets, source=source, repos=repos, before=before,
                        after=after, lines=lines)


def _backup(parts: Parts, volume: str, body: dict[str, Any]) -> BackupDecl:
    if not VOLUME.fullmatch(volume):
        raise _Refused(parts, f"{shown(volume, 60)} is not a volume name", "name a volume of the compose file")
    try:
        every = duration(body["every"])
    except ValueError:
        every = datetime.timedelta(0)
    if not datetime.timedelta(minutes=1) <= every <= datetime.timedelta(days=366):
        raise _Refused((*parts, "every"), f"{shown(body['every'], 40)} is not a duration from 1m to a year",
                       "write a number and a unit (m, h), e.g. '24h'")
    return BackupDecl(volume, every, int(body.get("keep", 7)),
                      _command((*parts, "before"), body["before"]) if body.get("before") else None,
                      _command((*parts, "after"), body["after"]) if body.get("after") else None)


def _command(parts: Parts, body: dict[str, Any]) -> CommandDecl:
    service = _named((*parts, "service"), names.service_name, body["service"])
    words = body["command"]
    if isinstance(words, str):
        try:
            words = split_words(words)
        except ValueError as exc:
            raise _Refused((*parts, "command"), f"cannot split {shown(words, 60)} into words ({exc})",
                           "balance the quotes, or give the command as a list") from None
    if not words or sum(len(w) for w in words) > MAX_COMMAND_CHARS:
        raise _Refused((*parts, "command"), "is empty or longer than 4 KiB", "give a command, or a script of the image")
    timeout = datetime.timedelta(minutes=10)
    if body.get("timeout") is not None:
        try:
            timeout = duration(body["timeout"])
        except ValueError:
            timeout = datetime.timedelta(0)
        if not datetime.timedelta(0) < timeout <= MAX_COMMAND_TIMEOUT:
            raise _Refused((*parts, "timeout"), f"{shown(body['timeout'], 40)} is not a duration up to 24h",
                           "write a number and a unit (s, m, h), e.g. '10m'")
    return CommandDecl(service, tuple(words), timeout)


def _named(parts: Parts, check: Callable[[str], str], value: str) -> str:
    """``check(value)`` (a validator of ``names`` or ``configuration``), its error located."""
    try:
        return check(value)
    except DockyardError as exc:
        raise _Refused(parts, exc.message, exc.hint) from None


def _targets(declared: dict[str, Any]) -> tuple[TargetDecl, ...]:
    """Today: ``local`` only, of type docker. (A Swarm cluster will be a declared target of type
    ``swarm``: the schema knows the word, and this is where it will be read.)"""
    for name, spec in declared.items():
        if name != LOCAL_TARGET or spec["type"] != DOCKER:
            what = "Swarm targets are" if spec["type"] == "swarm" else f"targets other than {LOCAL_TARGET!r} are"
            raise _Refused(("targets", name), f"{what} not supported yet: the only target is the built-in "
                           f"{LOCAL_TARGET!r} (this Docker host, type {DOCKER!r})",
                           f"remove this target and leave `target:` out (or write `target: {LOCAL_TARGET}`); "
                           "Swarm clusters will be declared here once dockyard supports them")
    return (LOCAL,)


def _environment(name: str, body: dict[str, Any], targets: set[str]) -> EnvironmentDecl:
    at: Parts = ("environments", name)
    _named(at, names.environment_name, name)
    target = body.get("target", LOCAL_TARGET)
    if target not in targets:
        raise _Refused((*at, "target"), f"unknown target {shown(target, 60)}",
                       f"use one of: {', '.join(sorted(targets))} ({LOCAL_TARGET!r} is this Docker host)")
    branch = body.get("branch")
    if branch is not None:
        _named((*at, "branch"), names.branch_name, branch)
    variables = _variables(at, body.get("variables") or {})
    secrets = tuple(body.get("secrets") or ())  # names already checked by _refuse_secret_values
    for secret in secrets:
        if any(key == secret for key, _ in variables):
            raise _Refused((*at, "variables", secret), f"{secret} is both a variable and a secret here",
                           "keep it in one place: a secret's value is set with `dockyard secrets set`")
    promotion = _promotion((*at, "promotion"), body["promotion"]) if body.get("promotion") is not None else None
    if promotion is not None and branch is not None:
        raise _Refused((*at, "branch"), f"{name} is promoted from {promotion.source}: no branch deploys it",
                       "remove `branch:` (its releases come from the upstream environment), or remove `promotion:`")
    tag = body.get("tag")
    if tag is not None and not _TAG_PATTERN.fullmatch(tag):
        raise _Refused((*at, "tag"), f"{shown(tag, 60)} is not a tag pattern",
                       "use letters, digits, '.', '_', '/', '-' and the wildcards '*' and '?', e.g. 'v*'")
    if promotion is not None and tag is not None:
        raise _Refused((*at, "tag"), f"{name} is promoted from {promotion.source}: no tag deploys it",
                       "remove `tag:` (its releases come from the upstream environment), or remove `promotion:`")
    backups = tuple(_backup((*at, "backups", volume), volume, spec) for volume, spec in (body.get("backups") or {}).items())
    return EnvironmentDecl(
        name=name, target=target, branch=branch, variables=variables, secrets=secrets, promotion=promotion, tag=tag,
        backups=backups,
        routes=tuple(_route((*at, "routes", host), host, value) for host, value in (body.get("routes") or {}).items()),
        services=tuple(_service((*at, "services", service), service, spec)
                       for service, spec in (body.get("services") or {}).items()),
    )


def _promotion(at: Parts, body: dict[str, Any]) -> PromotionDecl:
    source = _named((*at, "from"), names.environment_name, body["from"])
    soak = datetime.timedelta(0)
    if body.get("soak") is not None:
        try:
            soak = duration(body["soak"])
        except ValueError:
            soak = MAX_SOAK * 2
        if not datetime.timedelta(0) <= soak <= MAX_SOAK:
            raise _Refused((*at, "soak"), f"{shown(body['soak'], 40)} is not a duration up to 7 days",
                           "write a number and a unit (s, m, h), e.g. '30m' or '24h'")
    approvers = tuple(_named((*at, "approvers", i), names.token_name, a) for i, a in enumerate(body.get("approvers") or ()))
    if len(set(approvers)) != len(approvers):
        raise _Refused((*at, "approvers"), "an approver is listed twice", "list each user once")
    approvals = int(body.get("approvals", 0))
    if approvers and approvals > len(approvers):
        raise _Refused((*at, "approvals"), f"{approvals} approvals needed, but only {len(approvers)} approvers listed",
                       "list more approvers, or need fewer approvals")
    smoke = body.get("smoke") or ""
    if smoke and (len(smoke) > MAX_PATH_CHARS or not _URL_PATH.fullmatch(smoke)):
        raise _Refused((*at, "smoke"), f"{shown(smoke, 60)} is not a URL path",
                       "give a path of the upstream environment's site, starting with '/', e.g. '/health'")
    return PromotionDecl(source, soak, approvals, approvers, bool(body.get("self_approval", False)), smoke)


def _check_stages(declared: tuple[EnvironmentDecl, ...]) -> None:
    """Each promotion names an environment of the file, and the stages form no cycle."""
    upstream = {e.name: e.promotion.source for e in declared if e.promotion is not None}
    known = {e.name for e in declared}
    for name, source in upstream.items():
        at: Parts = ("environments", name, "promotion", "from")
        if source not in known:
            raise _Refused(at, f"unknown environment {source!r}",
                           f"promote from an environment this file declares: {', '.join(sorted(known))}")
        seen = [name]
        while source in upstream or source == name:
            if source in seen:
                raise _Refused(at, "the stages form a cycle: " + " <- ".join([*seen, source]),
                               "an environment cannot be promoted, even indirectly, from itself")
            seen.append(source)
            source = upstream[source]


def _variables(at: Parts, variables: dict[str, str]) -> tuple[tuple[str, str], ...]:
    if len(variables) > configuration.MAX_VARIABLES:
        raise _Refused((*at, "variables"), f"declares {len(variables)} variables, more than "
                       f"{configuration.MAX_VARIABLES}", "keep large configuration in a file of the repository")
    for key, value in variables.items():
        _named((*at, "variables", key), configuration.variable_key, key)
        try:
            configuration.variable_value(key, value)
        except DockyardError as exc:
            raise _Refused((*at, "variables", key), exc.message, exc.hint or SCHEMA_HINT) from None
    return tuple(variables.items())


def _route(parts: Parts, host: str, value: str) -> RouteDecl:
    _named(parts, names.domain_name, host)
    service, colon, port = value.rpartition(":")
    if not colon or not service:
        raise _Refused(parts, f"{shown(value, 60)} should be SERVICE:PORT",
                       "name the service and its container port, e.g. 'web:8080'")
    _named(parts, names.service_name, service)
    return RouteDecl(host, service, _port(parts, port, "the route's port"))


def _port(parts: Parts, text: str, what: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise _Refused(parts, f"{what} {shown(text, 30)} is not a port (1-65535)", "give a port number, e.g. 8080")
    return int(text)


def _service(parts: Parts, name: str, spec: dict[str, Any]) -> ServiceDecl:
    _named(parts, names.service_name, name)
    health = spec.get("health")
    return ServiceDecl(
        name=name,
        replicas=None if spec.get("replicas") is None else int(spec["replicas"]),
        health=None if health is None else _health((*parts, "health"), health),
        ports=tuple(PortMapping(_port((*parts, "ports", key), key, "the compose file's host port"), int(published))
                    for key, published in (spec.get("ports") or {}).items()),
        stateful=None if spec.get("stateful") is None else bool(spec["stateful"]),
    )


def _health(parts: Parts, spec: dict[str, Any]) -> HealthDecl:
    path = spec["path"]
    if len(path) > MAX_PATH_CHARS or not _URL_PATH.fullmatch(path):
        raise _Refused((*parts, "path"), f"{shown(path, 60)} is not a URL path",
                       "give a path starting with '/', without spaces, e.g. '/health'")
    return HealthDecl(
        path=path,
        status=int(spec.get("status", DEFAULT_STATUS)),
        interval=_duration((*parts, "interval"), spec.get("interval"), DEFAULT_INTERVAL),
        timeout=_duration((*parts, "timeout"), spec.get("timeout"), DEFAULT_TIMEOUT),
    )


def duration(text: str) -> datetime.timedelta:
    """A duration written as in Compose (``10s``, ``1m30s``, ``2.5s``, ``500ms``), to the
    microsecond; ValueError for anything else."""
    if len(text) > MAX_DURATION_CHARS or not _DURATION.fullmatch(text):
        raise ValueError(text)
    total = sum(Decimal(number) * _MICROSECONDS[unit] for number, unit in _DURATION_PART.findall(text))
    try:
        return datetime.timedelta(microseconds=int(total))
    except OverflowError:
        raise ValueError(text) from None


def _duration(parts: Parts, text: str | None, default: datetime.timedelta) -> datetime.timedelta:
    if text is None:
        return default
    try:
        value = duration(text)
    except ValueError:
        value = None
    if value is None or not datetime.timedelta(0) < value <= MAX_DURATION:
        raise _Refused(parts, f"{shown(text, 40)} is not a duration between 1us and 1h",
                       "write it as Compose does: a number and a unit (us, ms, s, m, h), e.g. '10s' or '1m30s'")
    return value


def _check_hosts(declared: tuple[EnvironmentDecl, ...], lines: KeyLines) -> None:
    """Each host is routed by one environment."""
    owner: dict[str, str] = {}
    for env in declared:
        for route in env.routes:
            first = owner.setdefault(route.host, env.name)
            if first != env.name:
                line = lines.line_of(("environments", first, "routes", route.host))
                raise _Refused(("environments", env.name, "routes", route.host),
                               f"the host {route.host} is already routed by environment {first!r} (line {line})",
                               "give each environment its own host, e.g. recette.example.com")


def _check_published_ports(declared: tuple[EnvironmentDecl, ...], lines: KeyLines) -> None:
    """A host port is published once per target by the remappings (the compose file's own
    host ports are checked where the compose file is read)."""
    owner: dict[tuple[str, int], Parts] = {}
    for env in declared:
        for service in env.services:
            for mapping in service.ports:
                parts: Parts = ("environments", env.name, "services", service.name, "ports", str(mapping.compose))
                first = owner.setdefault((env.target, mapping.published), parts)
                if first != parts:
                    raise _Refused(parts, f"the host port {mapping.published} is already published on target "
                                   f"{env.target!r} by {'/'.join(map(str, first))} (line {lines.line_of(first)})",
                                   "give each service and environment its own host port")


# -- against the environment's configuration ------------------------------------------------------


def conflicts(declared: DockyardFile, env: str, cli_variables: Mapping[str, str]) -> list[str]:
    """The variables of ``env`` that dockyard.yml and ``dockyard env set`` both set, to
    different values: one message each, naming both sources, in file order. Neither wins
    silently; an environment the file does not declare has none."""
    found = declared.environment(env)
    if found is None:
        return []
    out = []
    for key, value in found.variables:
        other = cli_variables.get(key)
        if other is not None and other != value:
            out.append(located(
                declared.source, declared.lines, ("environments", env, "variables", key),
                f"{key} is {shown(value, 60)} in {declared.source} but {shown(other, 60)} by `dockyard env set` "
                f"for {env}: keep one (edit {declared.source}, or `dockyard env unset APP {key} --env {env}`)",
            ))
    return out


def missing_secrets(declared: DockyardFile, env: str, set_names: Collection[str]) -> list[str]:
    """The secrets ``env`` declares it needs that are not among ``set_names``, in file order."""
    found = declared.environment(env)
    return [name for name in found.secrets if name not in set_names] if found is not None else []
