"""Which Compose keys dockyard honours, and a warning for each valid key it does not honour yet:
nothing a compose file says is dropped silently.

Honoured today (``stack``, ``compose_service``): ``version`` (informational, as in Compose v2),
``services`` with ``image``, ``build`` (``context``, ``dockerfile``, ``args``, ``target``:
``compose_build``), ``ports`` (the first container port is routed by host name; host ports are
published, through the proxy or by Docker: ``published_ports``), ``expose`` (documentation:
every port is reachable on the app's network), ``environment``, ``env_file``, ``command``,
``entrypoint``, ``depends_on`` (start order, and its conditions: ``service_healthy`` waits until
the dependency is ready, ``service_completed_successfully`` until it exited 0), ``healthcheck``,
``restart``, ``labels``, ``user``, ``working_dir``, ``stop_signal``, ``stop_grace_period``,
``hostname``, ``container_name`` and ``networks`` (with ``aliases``: names on the app's network),
limits (``deploy.resources.limits``, ``mem_limit``, ``cpus``, ``pids_limit``), named volumes and
bind mounts among ``volumes``, the host access keys (``host_access``), ``secrets`` (files in
/run/secrets, and variables; not their ``uid``, ``gid``, ``mode``: root's, 0400); top-level ``volumes``, ``networks`` (every network is the app's one network
per environment: several are merged, with a warning; ``external`` ones are refused) and
``secrets`` (the environment's dockyard secrets; ``file`` is refused). ``x-*``
extension keys are accepted silently everywhere. Everything else the schema accepts gets a
warning, by key path; when a key becomes honoured, take it out of here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.domain import published_ports
from dockyard.domain.errors import shown

Parts = tuple[str | int, ...]
KeyWarning = tuple[Parts, str]  # (key path, message)

TOP_KEYS = frozenset({"version", "services", "volumes", "networks", "secrets"})
SERVICE_KEYS = frozenset({
    "image", "build", "ports", "expose", "environment", "env_file", "command", "entrypoint", "depends_on",
    "volumes", "healthcheck", "restart", "labels", "user", "working_dir", "stop_signal", "stop_grace_period",
    "hostname", "container_name", "networks", "mem_limit", "cpus", "pids_limit", "secrets", "scale",
    # host access: refused unless allowed, applied when allowed (host_access.py)
    "privileged", "cap_add", "devices", "network_mode", "pid", "ipc", "userns_mode", "security_opt",
})
BUILD_KEYS = frozenset({"context", "dockerfile", "args", "target"})
ENV_FILE_KEYS = frozenset({"path", "required"})
PORT_KEYS = frozenset({"target", "published", "host_ip", "protocol", "mode"})
HEALTHCHECK_KEYS = frozenset({"test", "interval", "timeout", "retries", "start_period", "disable"})
STARTED, HEALTHY, COMPLETED = "service_started", "service_healthy", "service_completed_successfully"

NOT_YET = "not honoured yet"
_WHY = {
    "init": "dockyard runs every container with an init process",
    "profiles": "dockyard starts every service, whatever its profiles",
    "extends": "the service is not merged with the one it extends",
    "logging": "dockyard keeps json-file logs, rotated (3 x 10 MB)",
}
_DEPLOY_WHY = {
    "restart_policy": "give the service's 'restart' instead",
    "labels": "give the service's 'labels' instead",
}
_NETWORK_WHY = {
    "ipam": "dockyard gives each app network a subnet from its pool",
    "name": "dockyard names the app's network itself",
    "internal": "the app's network is not isolated from the outside",
}
_TOP_WHY = {
    "name": "dockyard names the project after the app",
    "configs": "dockyard does not hand configs to containers yet",
    "include": "the included files are not read: their services are not started",
}
_SECRET_WHY = {
    "labels": "a secret is a file in the container, not an object of the engine: it carries no labels",
    "driver": "dockyard keeps every secret itself, sealed (dockyard secrets set)",
    "driver_opts": "dockyard keeps every secret itself, sealed (dockyard secrets set)",
    "template_driver": "the file holds the secret's value as it was set",
}
_SECRET_FILE_DEFAULTS = {"uid": ("0",), "gid": ("0",), "mode": ("256", "0400", "400", "0o400")}
_IGNORED = "dockyard ignores it for now"


def _extension(key: object) -> bool:
    return isinstance(key, str) and key.startswith("x-")


def conditions(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dependency, condition) of a service's depends_on, in file order (a list: service_started)."""
    raw = body.get("depends_on")
    if isinstance(raw, list):
        return [(str(d), STARTED) for d in raw]
    if isinstance(raw, Mapping):
        return [(str(d), str(how.get("condition", STARTED)) if isinstance(how, Mapping) else STARTED)
                for d, how in raw.items()]
    return []


def one_shot_services(services: Mapping[str, Any]) -> dict[str, str]:
    """Services that run once, as another waits for them with service_completed_successfully:
    name -> the first such dependant."""
    found: dict[str, str] = {}
    for name, body in services.items():
        for dependency, condition in conditions(body) if isinstance(body, Mapping) else ():
            if condition == COMPLETED:
                found.setdefault(dependency, str(name))
    return found


def not_honoured(doc: Mapping[str, Any]) -> list[KeyWarning]:
    """A warning for each key of a valid compose document that dockyard does not honour yet."""
    found: list[KeyWarning] = [((key,), f"{NOT_YET}: {_TOP_WHY.get(key, _IGNORED)}")
                            for key in doc if key not in TOP_KEYS and not _extension(key)]
    services = doc.get("services") or {}
    once = one_shot_services(services)
    for name, body in services.items():
        if isinstance(body, Mapping):
            found += _service(str(name), body, services, once)
    found += _networks(doc)
    found += _secrets(doc)
    return found


def _service(name: str, body: Mapping[str, Any], services: Mapping[str, Any], once: Mapping[str, str],
             ) -> list[KeyWarning]:
    at: Parts = ("services", name)
    found: list[KeyWarning] = []
    for key, value in body.items():
        if key == "deploy" and isinstance(value, Mapping):
            found += _deploy(at, value)
        elif key not in SERVICE_KEYS and key != "deploy" and not _extension(key):
            found.append(((*at, key), f"{NOT_YET}: {_WHY.get(key, _IGNORED)}"))
    build = body.get("build")
    if isinstance(build, Mapping):
        found += [((*at, "build", k), f"{NOT_YET}: dockyard builds with context, dockerfile, args and target only")
                  for k in build if k not in BUILD_KEYS and not _extension(k)]
    env_files = body.get("env_file")
    for i, entry in enumerate(env_files if isinstance(env_files, list) else []):
        if isinstance(entry, Mapping):
            found += [((*at, "env_file", i, k), f"{NOT_YET}: {_IGNORED}")
                      for k in entry if k not in ENV_FILE_KEYS and not _extension(k)]
    health = body.get("healthcheck")
    if isinstance(health, Mapping):
        found += [((*at, "healthcheck", k), f"{NOT_YET}: the engine checks every 'interval', from the start")
                  for k in health if k not in HEALTHCHECK_KEYS and not _extension(k)]
    found += _depends_on(at, body.get("depends_on"), services)
    found += _service_networks(at, body.get("networks"))
    if body.get("network_mode"):  # "none", or another's namespace: the service is not on the app's network
        found += [((*at, k), f"{NOT_YET}: with network_mode, the service has no names on the app's network")
                  for k in ("hostname", "container_name", "networks") if body.get(k) is not None]
    if name in once and body.get("ports"):
        found.append(((*at, "ports"), f"not routed: {shown(once[name], 60)} waits for it to complete "
                                      "(service_completed_successfully), so it runs once"))
    else:
        found += _ports(at, body.get("ports"), body.get(published_ports.PUBLISH_KEY, "proxy"))
    found += _volumes(at, body.get("volumes"))
    found += _service_secrets(at, body.get("secrets"))
    return found


def _deploy(at: Parts, raw: Mapping[str, Any]) -> list[KeyWarning]:
    """``deploy``: its resource limits, replicas and ``update_config``'s ``order`` and
    ``parallelism`` are honoured, nothing else yet."""
    found: list[KeyWarning] = []
    for key, value in raw.items():
        if _extension(key):
            continue
        if key == "resources" and isinstance(value, Mapping):
            found += [((*at, "deploy", key, k), f"{NOT_YET}: " + (
                "dockyard reserves nothing: only limits apply" if k == "reservations" else _IGNORED))
                for k in value if k != "limits" and not _extension(k)]
        elif key == "update_config" and isinstance(value, Mapping):
            found += [((*at, "deploy", key, k), f"{NOT_YET}: {_IGNORED}") for k in value
                      if k not in ("order", "parallelism") and not _extension(k)]
        elif key != "resources" and key != "replicas":
            found.append(((*at, "deploy", key), f"{NOT_YET}: {_DEPLOY_WHY.get(key, _IGNORED)}"))
    return found


def _depends_on(at: Parts, raw: Any, services: Mapping[str, Any]) -> list[KeyWarning]:
    if not isinstance(raw, Mapping):
        return []
    found: list[KeyWarning] = []
    for dependency, how in raw.items():
        for key, value in (how.items() if isinstance(how, Mapping) else ()):
            if _extension(key):
                continue
            if key != "condition":
                found.append(((*at, "depends_on", dependency, key), f"{NOT_YET}: {_IGNORED}"))
            elif value == HEALTHY and not _has_healthcheck(services.get(dependency)):
                found.append(((*at, "depends_on", dependency, key), (
                    f"{shown(str(dependency), 60)} has no healthcheck here: dockyard waits until it is ready as it "
                    "would without one (healthy if its image has a HEALTHCHECK, else running, or answering HTTP "
                    "for a web service)")))
    return found


def _has_healthcheck(body: Any) -> bool:
    health = body.get("healthcheck") if isinstance(body, Mapping) else None
    if not isinstance(health, Mapping):
        return False
    test = health.get("test")
    disabled = health.get("disable") is True or str(health.get("disable")).lower() == "true"
    return not disabled and not (isinstance(test, list) and test[:1] == ["NONE"])


def _service_networks(at: Parts, raw: Any) -> list[KeyWarning]:
    found: list[KeyWarning] = []
    for net, conf in raw.items() if isinstance(raw, Mapping) else ():
        for key in conf if isinstance(conf, Mapping) else ():
            if key != "aliases" and not _extension(key):
                why = "dockyard gives addresses itself" if key in ("ipv4_address", "ipv6_address") else _IGNORED
                found.append(((*at, "networks", net, key), f"{NOT_YET}: {why}"))
    return found


def _networks(doc: Mapping[str, Any]) -> list[KeyWarning]:
    """Top-level networks: each is the app's one network (per environment), on this host a bridge."""
    declared = doc.get("networks")
    if not isinstance(declared, Mapping):
        return []
    found: list[KeyWarning] = []
    for net, conf in declared.items():
        for key, value in conf.items() if isinstance(conf, Mapping) else ():
            where = ("networks", net, key)
            if key == "driver" and value == "overlay":
                found.append((where, "on one host, the overlay network runs as the app's bridge network"))
            elif key == "driver" and value not in ("bridge", "", None):
                found.append((where, f"{NOT_YET}: the network is the app's bridge network, not a "
                                     f"{shown(str(value), 40)} one"))
            elif key not in ("driver", "external") and not _extension(key):
                found.append((where, f"{NOT_YET}: {_NETWORK_WHY.get(key, _IGNORED)}"))
    used = set(declared)
    for body in (doc.get("services") or {}).values():
        joined = body.get("networks") if isinstance(body, Mapping) else None
        used |= set(joined) if joined else {"default"}
    if len(used) > 1:
        names = ", ".join(shown(str(n), 40) for n in sorted(used, key=str))
        found.append((("networks",), f"the networks {names} are merged into the app's one network: every service "
                                     "reaches every other"))
    return found


def _secrets(doc: Mapping[str, Any]) -> list[KeyWarning]:
    """Top-level secrets: each is the environment's dockyard secret of its name (or ``name``);
    ``file`` is refused where services are read (``compose_service``)."""
    declared = doc.get("secrets")
    found: list[KeyWarning] = []
    for key, conf in declared.items() if isinstance(declared, Mapping) else ():
        if not isinstance(conf, Mapping):
            continue
        name = str(conf.get("name") or key)
        variable = conf.get("environment")
        if variable is not None and str(variable) != name:
            found.append((("secrets", key, "environment"), (
                f"the value is the environment's secret {shown(name, 60)} (dockyard secrets set APP {name} --env ENV), "
                f"not the variable {shown(str(variable), 60)}")))
        found += [(("secrets", key, k), f"{NOT_YET}: {_SECRET_WHY.get(k, _IGNORED)}")
                  for k in conf if k in _SECRET_WHY]
    return found


def _service_secrets(at: Parts, raw: Any) -> list[KeyWarning]:
    """A service's secrets in the long syntax: the file's owner and mode are not honoured (a bad
    entry is refused where services are read, ``compose_service``)."""
    found: list[KeyWarning] = []
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        for key in ("uid", "gid", "mode") if isinstance(entry, Mapping) else ():
            if entry.get(key) is not None and str(entry[key]).strip() not in _SECRET_FILE_DEFAULTS[key]:
                found.append(((*at, "secrets", i, key), (
                    f"{NOT_YET}: every secret file is owned by root with mode 0400 (a service that runs as another "
                    "user reads the secret from its environment variable)")))
    return found


def _ports(at: Parts, raw: Any, publish: Any) -> list[KeyWarning]:
    """Container ports routed by host name beyond the first, random host ports, host addresses
    that are not honoured, ports Docker publishes (the service is then released stop-first), and
    keys of the long syntax dockyard ignores. A bad entry is refused where services are read
    (``published_ports.service_ports``)."""
    found: list[KeyWarning] = []
    routed = False
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        where = (*at, "ports", i)
        if isinstance(entry, Mapping):
            found += [((*where, k), f"{NOT_YET}: {_IGNORED}") for k in entry if k not in PORT_KEYS and not _extension(k)]
        try:
            port = published_ports.read_entry(entry)
        except ValueError:
            continue
        direct = bool(port.hosts) and published_ports.is_direct(port, str(publish))
        if port.hosts == ():
            found.append((where, f"{NOT_YET}: a random host port is not published (give one, such as "
                                 f"'50011:{port.containers[0]}')"))
        if port.hosts and port.host_ip and port.host_ip not in (*published_ports.EVERY_INTERFACE,
                                                                 *published_ports.LOOPBACK):
            found.append((where, f"{NOT_YET}: the host address {shown(port.host_ip, 60)} is not honoured: the port is "
                                 "published on every interface (only 127.0.0.1 and ::1 narrow it)"))
        if direct:
            found.append((where, f"published by Docker ({port.protocol}), not through the proxy: the service is "
                                 "released stop-first (its old container stops before the new one starts)"))
        elif port.protocol == "tcp" and not port.hosts:
            if routed:
                found.append((where, f"{NOT_YET}: only the first port is routed, through the proxy (the app's other "
                                     f"services reach port {port.containers[0]})"))
            routed = True
        elif port.protocol == "tcp":
            routed = True
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
