"""The compose keys of a service beyond image, ports, environment, command and volumes, as
ServiceSpec fields (pure): what ``stack.compose_stack`` adds to each service it reads.

- names on the app network: ``hostname`` (also the container's own host name), ``container_name``
  and ``networks/*/aliases`` become network aliases beside the service's name; none may be another
  service's name or a name of two services. The container keeps dockyard's own unique name.
- ``networks``: every network a file declares is the app's one network (a warning says so when
  there are several, ``compose_support``); a service may only join declared ones (or
  ``default``); an ``external`` network is refused: dockyard runs each app on a network of its own.
- ``healthcheck`` (Docker's Test, intervals in nanoseconds), ``depends_on`` conditions (the start
  order of ``planning/deploy.py``): a service others wait for with
  ``service_completed_successfully`` runs once (restart policy "no", ready once it exited 0).
- ``restart``, ``labels`` (never ``dockyard.*``: ours), ``user``, ``working_dir``, ``entrypoint``,
  ``stop_signal``, ``stop_grace_period``, and limits: ``deploy.resources.limits`` (memory, cpus,
  pids) or ``mem_limit``/``cpus``/``pids_limit``, over dockyard's defaults.
- ``deploy.replicas`` (or the legacy ``scale``, the same number when both): how many containers run
  the service, 0 to 100 (domain/replicas.py refuses more than one where two would clash).
- ``secrets``: with a top-level ``secrets:``, each service receives only the secrets it lists
  (``secret_files``: each "NAME:FILE"), at ``/run/secrets/<target or key>``; each top-level entry
  stands for the environment's dockyard secret of its name (or ``name``); ``file:`` is refused (a
  value committed to the repository is not secret), as is a service listing an undeclared
  secret, or a ``target`` that is no file name in /run/secrets. Without a top-level ``secrets:``,
  ``secret_files`` is None: every service receives every secret of its environment.

Every refusal names file, line and key path (``docker-compose.yml line 7: services/db/hostname:
...``); the file's lines are read again only when there is something to refuse.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from dockyard.domain.compose_load import located, path_text
from dockyard.domain.compose_support import COMPLETED, HEALTHY, conditions, one_shot_services
from dockyard.domain.compose_yaml import load_located
from dockyard.domain.configuration import SECRETS_DIR, secret_name
from dockyard.domain.errors import InvalidName, InvalidSource, shown
from dockyard.domain.shell_words import split_words

Parts = tuple[str | int, ...]

MIN_MEMORY = 6 * 1024 * 1024  # the engine refuses less
MAX_DURATION_NS = 24 * 3600 * 10**9
MAX_STOP_GRACE_S = 3600
MAX_REPLICAS = 100  # as domain/replicas.py

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_RESTART = re.compile(r"no|always|unless-stopped|on-failure(?::[0-9]{1,4})?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?")
_SIGNAL = re.compile(r"(?:SIG)?[A-Z][A-Z0-9]{1,15}(?:[+-][0-9]{1,2})?|[0-9]{1,2}", re.IGNORECASE)
_DURATION = re.compile(r"(?:[0-9]{1,12}(?:\.[0-9]{1,9})?(?:h|ms|m|s|us|µs|ns))+")
_DURATION_PART = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,9})?)(h|ms|m|s|us|µs|ns)")
_UNIT_NS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1}
_SIZE = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,9})?) ?([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_SIZE_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_SECRET_FILE = re.compile(r"[A-Za-z0-9_.-]{1,128}")  # a file name in /run/secrets ("." and ".." aside)


class Where:
    """Refusals at key paths of one compose file, naming its line."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    def line(self, parts: Parts) -> int:
        return load_located(self.text).lines.line_of(parts)

    def error(self, parts: Parts, message: str, hint: str = "") -> InvalidSource:
        try:
            return InvalidSource(located(self.source, load_located(self.text).lines, parts, message), hint)
        except InvalidSource:  # it loaded once already: never expected
            return InvalidSource(f"{self.source}: {path_text(parts)}: {message}", hint)


class ComposeKeys:
    """The ServiceSpec fields of each service of one checked compose document."""

    def __init__(self, doc: Mapping[str, Any], text: str, source: str) -> None:
        self.where = Where(text, source)
        self.services: Mapping[str, Any] = doc["services"]
        self.networks = self._declared_networks(doc.get("networks"))
        self.one_shot = one_shot_services(self.services)
        self.secrets = self._declared_secrets(doc.get("secrets"))
        self._check_names()

    def fields(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        at: Parts = ("services", name)
        deps = conditions(body)
        out: dict[str, Any] = {
            "hostname": "" if body.get("hostname") == name else self._hostname(at, body.get("hostname")),
            "aliases": tuple(self._names(name, body)),
            "depends_on": tuple(d for d, _ in deps),
            "after_healthy": tuple(d for d, c in deps if c == HEALTHY),
            "after_completed": tuple(d for d, c in deps if c == COMPLETED),
            "one_shot": name in self.one_shot,
            "restart": self._restart(at, name, body.get("restart")),
            "labels": self._labels((*at, "labels"), body.get("labels")),
            "user": self._user((*at, "user"), body.get("user")),
            "working_dir": self._working_dir((*at, "working_dir"), body.get("working_dir")),
            "entrypoint": self._words((*at, "entrypoint"), body.get("entrypoint")),
            "stop_signal": self._signal((*at, "stop_signal"), body.get("stop_signal")),
            "stop_grace_period": self._grace((*at, "stop_grace_period"), body.get("stop_grace_period")),
            "secret_files": self._secret_files((*at, "secrets"), body.get("secrets")),
            "replicas": self._replicas(at, body),
            "stop_first": self._order(at, body) == "stop-first",
            "parallelism": self._parallelism(at, body),
            "container_name": "" if body.get("container_name") is None else str(body["container_name"]),
        }
        out.update(self._healthcheck((*at, "healthcheck"), body.get("healthcheck")))
        out.update(self._limits(at, body))
        return out

    # -- names on the app network -------------------------------------------------------------
    def _declared_networks(self, raw: Any) -> set[str]:
        for net, conf in (raw or {}).items():
            external = conf.get("external") if isinstance(conf, Mapping) else None
            if external not in (None, False, "false", "False"):
                raise self.where.error(
                    ("networks", net, "external"), "external networks are not supported: dockyard runs each app "
                    "on a network of its own",
                    "remove the network (the app's services reach each other by name); reach another app "
                    "through its address")
        return set(raw or ())

    def _service_networks(self, name: str, body: Mapping[str, Any]) -> list[tuple[Parts, str, Any]]:
        raw = body.get("networks")
        at: Parts = ("services", name, "networks")
        entries: list[tuple[Parts, str, Any]] = (
            [((*at, i), str(n), None) for i, n in enumerate(raw)] if isinstance(raw, list)
            else [((*at, str(n)), str(n), conf) for n, conf in raw.items()] if isinstance(raw, Mapping) else [])
        for where, net, _ in entries:
            if net != "default" and net not in self.networks:
                raise self.where.error(where, f"network {shown(net, 60)} is not declared",
                                       "declare it under the top-level 'networks', or leave it out")
        return entries

    def _names(self, name: str, body: Mapping[str, Any]) -> list[str]:
        """The service's names on the app network besides its own, each with where it is written."""
        return list(dict.fromkeys(n for _, n in self._named(name, body) if n.lower() != name.lower()))

    def _named(self, name: str, body: Mapping[str, Any]) -> list[tuple[Parts, str]]:
        at: Parts = ("services", name)
        found: list[tuple[Parts, str]] = []
        if body.get("hostname") is not None:
            found.append(((*at, "hostname"), self._hostname(at, body["hostname"])))
        if body.get("container_name") is not None:
            value = str(body["container_name"])
            if not _ALIAS.fullmatch(value):
                raise self.where.error((*at, "container_name"), f"{shown(value, 80)} is not a container name",
                                       "use 1-63 letters, digits, '_', '.' and '-', starting with a letter or digit")
            found.append(((*at, "container_name"), value))
        for where, _, conf in self._service_networks(name, body):
            aliases = conf.get("aliases") if isinstance(conf, Mapping) else None
            for i, alias in enumerate(aliases or []):
                if not _ALIAS.fullmatch(str(alias)):
                    raise self.where.error((*where, "aliases", i), f"{shown(str(alias), 80)} is not a network alias",
                                           "use 1-63 letters, digits, '_', '.' and '-', starting with a letter or digit")
                found.append(((*where, "aliases", i), str(alias)))
        return found

    def _check_names(self) -> None:
        """No name on the app network may be another service's name, nor two services' name."""
        owners = {str(n).lower(): str(n) for n in self.services}
        for name, body in self.services.items():
            for where, value in self._named(str(name), body):
                key = value.lower()
                owner = owners.setdefault(key, str(name))
                if owner != name:
                    what = "the name of service" if owner.lower() == key else "already a name of service"
                    raise self.where.error(where, f"{shown(value, 80)} is {what} {shown(owner, 60)}",
                                           "each name on the app's network must lead to one service: choose another")

    def _hostname(self, at: Parts, raw: Any) -> str:
        if raw is None:
            return ""
        value = str(raw)
        if len(value) > 63 or not _HOSTNAME.fullmatch(value):
            raise self.where.error((*at, "hostname"), f"{shown(value, 80)} is not a host name",
                                   "use at most 63 letters, digits, '-' and '.', such as 'db' or 'db-primary'")
        return value

    # -- health and start order ----------------------------------------------------------------
    def _healthcheck(self, at: Parts, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            return {}
        test = raw.get("test")
        if _flag(raw.get("disable")):
            if test is not None and test != ["NONE"]:
                raise self.where.error((*at, "disable"), "cannot be set together with 'test'",
                                       "keep one of them: 'disable: true' turns the image's healthcheck off")
            return {"healthcheck": ("NONE",)}
        words: tuple[str, ...] = ()
        if isinstance(test, str):
            if not test.strip():
                raise self.where.error((*at, "test"), "is empty", "write the command, such as 'pg_isready'")
            words = ("CMD-SHELL", test)
        elif isinstance(test, list):
            words = tuple(str(w) for w in test)
            kind = words[0] if words else ""
            if kind not in ("CMD", "CMD-SHELL", "NONE"):
                raise self.where.error((*at, "test"), "should start with 'CMD', 'CMD-SHELL' or 'NONE'",
                                       "write [\"CMD\", \"pg_isready\"] or [\"CMD-SHELL\", \"pg_isready || exit 1\"]")
            if kind == "NONE":
                return {"healthcheck": ("NONE",)}
            if len(words) < 2:
                raise self.where.error((*at, "test"), f"{kind} needs a command after it")
        out: dict[str, Any] = {"healthcheck": words}
        for key in ("interval", "timeout", "start_period"):
            if raw.get(key) is not None:
                value = self._duration((*at, key), raw[key])
                if 0 < value < 10**6:
                    raise self.where.error((*at, key), "should be 0 or at least 1ms")
                out[f"health_{key}"] = value
        if raw.get("retries") is not None:
            out["health_retries"] = self._count((*at, "retries"), raw["retries"], 0, 1000)
        return out

    def _restart(self, at: Parts, name: str, raw: Any) -> str:
        value = "" if raw is None else str(raw)
        if raw is not None and not _RESTART.fullmatch(value):
            raise self.where.error((*at, "restart"), f"{shown(value, 60)} is not a restart policy",
                                   "use 'no', 'always', 'on-failure', 'on-failure:3' or 'unless-stopped'")
        if name in self.one_shot and value not in ("", "no"):
            raise self.where.error(
                (*at, "restart"), f"{shown(self.one_shot[name], 60)} waits for it to complete "
                "(service_completed_successfully): it runs once, with the restart policy 'no'",
                "remove 'restart', or set it to \"no\"")
        return value

    # -- what the container runs as -------------------------------------------------------------
    def _labels(self, at: Parts, raw: Any) -> tuple[str, ...]:
        if raw is None:
            return ()
        pairs: list[tuple[Parts, str, str]] = []
        if isinstance(raw, Mapping):
            pairs = [((*at, str(k)), str(k), _text(v)) for k, v in raw.items()]
        elif isinstance(raw, list):
            pairs = [((*at, i), *str(item).partition("=")[::2]) for i, item in enumerate(raw)]
        for where, key, _ in pairs:
            if not key.strip():
                raise self.where.error(where, "a label needs a key", "write 'key=value'")
            if key.lower().startswith("dockyard.") or key.lower() == "dockyard":
                raise self.where.error(where, f"the label {shown(key, 60)} is dockyard's own",
                                       "dockyard finds its containers by the labels dockyard.*: use another prefix")
        return tuple(f"{k}={v}" for k, v in dict((k, v) for _, k, v in pairs).items())

    def _user(self, at: Parts, raw: Any) -> str:
        value = "" if raw is None else str(raw)
        if raw is not None and not _USER.fullmatch(value):
            raise self.where.error(at, f"{shown(value, 60)} is not a user", "write a name or id, and maybe a group: "
                                   "'app', '1000' or '1000:1000'")
        return value

    def _working_dir(self, at: Parts, raw: Any) -> str:
        value = "" if raw is None else str(raw)
        if raw is not None and (not posixpath.isabs(value) or "\0" in value or len(value) > 4096):
            raise self.where.error(at, f"{shown(value, 80)} should be an absolute path inside the container",
                                   "write it from the root, such as '/app'")
        return value

    def _words(self, at: Parts, raw: Any) -> tuple[str, ...] | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            try:
                return tuple(split_words(raw))
            except ValueError as exc:
                raise self.where.error(at, f"cannot split {shown(raw)} into words ({exc})",
                                       "balance the quotes, or give it as a list") from None
        if not isinstance(raw, list):
            raise self.where.error(at, "should be a string or a list")
        return tuple(str(w) for w in raw)

    def _signal(self, at: Parts, raw: Any) -> str:
        value = "" if raw is None else str(raw)
        if raw is not None and not _SIGNAL.fullmatch(value):
            raise self.where.error(at, f"{shown(value, 40)} is not a signal", "write a name such as 'SIGINT', or a number")
        return value

    def _grace(self, at: Parts, raw: Any) -> int | None:
        if raw is None:
            return None
        seconds = -(-self._duration(at, raw) // 10**9)  # rounded up
        if seconds > MAX_STOP_GRACE_S:
            raise self.where.error(at, "should be at most 1h", "a release waits for old containers to stop")
        return seconds

    # -- secrets ---------------------------------------------------------------------------------
    def _declared_secrets(self, raw: Any) -> dict[str, str] | None:
        """Top-level ``secrets``: each key -> the environment's dockyard secret it stands for (its
        own name, or ``name``). None without a top-level ``secrets`` (every service receives every
        secret of its environment)."""
        if raw is None:
            return None
        declared: dict[str, str] = {}
        for key, conf in raw.items():
            at: Parts = ("secrets", str(key))
            conf = conf if isinstance(conf, Mapping) else {}
            external = conf.get("external")
            named: tuple[Parts, Any] = (
                ((*at, "name"), conf["name"]) if conf.get("name") is not None
                else ((*at, "external", "name"), external["name"])
                if isinstance(external, Mapping) and external.get("name") is not None else (at, key))
            name = str(named[1])
            if conf.get("file") is not None:
                shown_name = name if _is_secret_name(name) else "NAME"
                raise self.where.error(
                    (*at, "file"), "a secret's value is not read from a file of the repository",
                    f"a value committed to the repository is not secret: remove 'file' (write 'external: true'), "
                    f"set the value with `dockyard secrets set APP {shown_name} --env ENV` (from stdin), and change "
                    "the secret if it was pushed: it stays in the repository's history")
            if not _is_secret_name(name):
                raise self.where.error(
                    named[0], f"{shown(name, 60)} is not the name of a dockyard secret",
                    "dockyard secrets are named like environment variables (letters, digits and '_', not starting "
                    "with a digit): write `name: NAME` to stand for the secret NAME")
            declared[str(key)] = name
        return declared

    def _secret_files(self, at: Parts, raw: Any) -> tuple[str, ...] | None:
        """A service's ``secrets``: "NAME:FILE" for each (None without a top-level ``secrets``)."""
        entries = raw if isinstance(raw, list) else []
        if self.secrets is None and not entries:
            return None
        files: dict[str, str] = {}  # file -> "NAME:FILE"
        for i, entry in enumerate(entries):
            where: Parts = (*at, i)
            long = isinstance(entry, Mapping)
            source = entry.get("source") if isinstance(entry, Mapping) else entry
            if source is None:
                raise self.where.error(where, "needs 'source': the secret it receives", "write '- source: token'")
            source = str(source)
            name = (self.secrets or {}).get(source)
            if name is None:
                raise self.where.error(
                    (*where, "source") if long else where,
                    f"the secret {shown(source, 60)} is not declared under the top-level 'secrets'",
                    f"declare it at the top level: `secrets: {{{source}: {{external: true}}}}` (its value: "
                    f"dockyard secrets set APP {source if _is_secret_name(source) else 'NAME'} --env ENV)")
            target = entry.get("target") if isinstance(entry, Mapping) else None
            file = self._secret_file((*where, "target") if target is not None else where,
                                     source if target is None else str(target))
            if file in files:
                raise self.where.error(where, f"{SECRETS_DIR}/{file} is given twice",
                                       "give each secret of the service a file of its own ('target')")
            files[file] = f"{name}:{file}"
        return tuple(files.values())

    def _secret_file(self, at: Parts, value: str) -> str:
        """A secret's file name in /run/secrets: a plain name, or a path directly under it."""
        if value.startswith("/"):
            folder, _, file = posixpath.normpath(value).rpartition("/")
            if folder != SECRETS_DIR:
                raise self.where.error(at, f"{shown(value, 80)} is not in {SECRETS_DIR}",
                                       f"dockyard puts secret files in {SECRETS_DIR} only: give a file name, such as "
                                       f"'api_key' (the file {SECRETS_DIR}/api_key)")
            value = file
        if value in (".", "..") or not _SECRET_FILE.fullmatch(value):
            raise self.where.error(at, f"{shown(value, 80)} is not a file name for {SECRETS_DIR}",
                                   "use 1-128 letters, digits, '.', '_' and '-' (no '/'), such as 'api_key'")
        return value

    def _order(self, at: Parts, body: Mapping[str, Any]) -> str:
        """``deploy.update_config.order``: ``start-first`` (dockyard's default) or ``stop-first``."""
        deploy = body.get("deploy")
        update = deploy.get("update_config") if isinstance(deploy, Mapping) else None
        order = update.get("order") if isinstance(update, Mapping) else None
        if order is None:
            return "start-first"
        if order not in ("start-first", "stop-first"):
            raise self.where.error((*at, "deploy", "update_config", "order"),
                                   f"{shown(str(order), 40)} is not an order", "write 'start-first' or 'stop-first'")
        return str(order)

    def _parallelism(self, at: Parts, body: Mapping[str, Any]) -> int:
        """``deploy.update_config.parallelism``: replicas replaced at a time, 0 (all) by default."""
        deploy = body.get("deploy")
        update = deploy.get("update_config") if isinstance(deploy, Mapping) else None
        value = update.get("parallelism") if isinstance(update, Mapping) else None
        if value is None:
            return 0
        return self._count((*at, "deploy", "update_config", "parallelism"), value, 0, 100,
                           "give how many replicas to replace at a time, 0 (all at once) to 100")

    # -- limits ----------------------------------------------------------------------------------
    def _limits(self, at: Parts, body: Mapping[str, Any]) -> dict[str, Any]:
        deploy = body.get("deploy") or {}
        limits = (deploy.get("resources") or {}).get("limits") or {} if isinstance(deploy, Mapping) else {}
        under: Parts = (*at, "deploy", "resources", "limits")
        out: dict[str, Any] = {}
        for field, own, key, read in (("memory", "mem_limit", "memory", self._memory), ("cpus", "cpus", "cpus", self._cpus),
                                      ("pids", "pids_limit", "pids", self._pids)):
            values = [(where, read(where, raw)) for where, raw in (((*at, own), body.get(own)), ((*under, key), limits.get(key)))
                      if raw is not None]
            if len({v for _, v in values}) > 1:
                raise self.where.error(values[1][0], f"differs from {own} (line {self.where.line(values[0][0])})",
                                       "give the limit once")
            if values:
                out[field] = values[0][1]
        return out

    def _memory(self, at: Parts, raw: Any) -> int:
        found = _SIZE.fullmatch(str(raw).strip()) if not isinstance(raw, bool) else None
        value = int(float(found[1]) * _SIZE_UNIT[found[2].lower()]) if found else -1
        if not MIN_MEMORY <= value <= _SIZE_UNIT["p"]:
            raise self.where.error(at, f"{shown(str(raw), 40)} is not a memory limit from 6m to 1p",
                                   "write a size such as '512m' or '2g' (dockyard runs every container with a limit)")
        return value

    def _cpus(self, at: Parts, raw: Any) -> float:
        try:
            value = float(str(raw)) if not isinstance(raw, bool) else -1.0
        except ValueError:
            value = -1.0
        if not 0.01 <= value <= 1024:
            raise self.where.error(at, f"{shown(str(raw), 40)} is not a number of CPUs", "write a number such as 0.5 or 2")
        return round(value, 2)

    def _pids(self, at: Parts, raw: Any) -> int:
        return self._count(at, raw, 1, 4_194_304, "dockyard runs every container with a limit: give a number "
                                                  "of processes, such as 256")

    # -- replicas --------------------------------------------------------------------------------
    def replicas_at(self, at: Parts, body: Mapping[str, Any]) -> Parts:
        """Where the service's replica count is written: ``deploy/replicas``, else ``scale``."""
        deploy = body.get("deploy")
        if isinstance(deploy, Mapping) and deploy.get("replicas") is not None:
            return (*at, "deploy", "replicas")
        return (*at, "scale")

    def _replicas(self, at: Parts, body: Mapping[str, Any]) -> int:
        """``deploy.replicas`` or the legacy ``scale`` (the same number when both), 0 to 100; 1 by default."""
        deploy = body.get("deploy")
        given: list[tuple[Parts, Any]] = []
        if isinstance(deploy, Mapping) and deploy.get("replicas") is not None:
            given.append(((*at, "deploy", "replicas"), deploy["replicas"]))
        if body.get("scale") is not None:
            given.append(((*at, "scale"), body["scale"]))
        counts = [(where, self._count(where, raw, 0, MAX_REPLICAS, "give how many containers run the service"))
                  for where, raw in given]
        if len(counts) == 2 and counts[0][1] != counts[1][1]:
            raise self.where.error(counts[1][0], f"{counts[1][1]} differs from deploy/replicas ({counts[0][1]})",
                                   "give the count once: deploy.replicas")
        return counts[0][1] if counts else 1

    # -- values ----------------------------------------------------------------------------------
    def _count(self, at: Parts, raw: Any, low: int, high: int, hint: str = "") -> int:
        text = str(raw).strip()
        if isinstance(raw, bool) or not re.fullmatch(r"-?[0-9]{1,12}(?:\.0*)?", text) or not low <= int(float(text)) <= high:
            raise self.where.error(at, f"{shown(text, 40)} should be a whole number from {low} to {high}", hint)
        return int(float(text))

    def _duration(self, at: Parts, raw: Any) -> int:
        """A Compose duration (``1m30s``, ``10s``, ``500ms``; ``0``) in nanoseconds."""
        text = str(raw).strip()
        if text == "0":
            return 0
        if isinstance(raw, bool) or not _DURATION.fullmatch(text):
            raise self.where.error(at, f"{shown(text, 40)} is not a duration", "write it as '10s', '1m30s' or '500ms'")
        total = sum(round(float(n) * _UNIT_NS[unit]) for n, unit in _DURATION_PART.findall(text))
        if total > MAX_DURATION_NS:
            raise self.where.error(at, f"{shown(text, 40)} is longer than 24h")
        return total


def _is_secret_name(value: str) -> bool:
    try:
        secret_name(value)
    except InvalidName:
        return False
    return True


def _flag(raw: Any) -> bool:
    return raw is True or str(raw).strip().lower() in ("true", "yes", "1")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
