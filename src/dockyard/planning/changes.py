"""What a deploy would change, per service, and why: a pure function from the live release's
services and the services a commit would release (``dockyard plan``).

A service is *created* (not live yet), *removed* (live, no longer wanted), *replaced* (its
container must be new: anything its spec hash covers changed), *rerouted* (only its hosts
changed: the container stays), *scaled* (only its replica count changed: the running containers
stay, the difference starts or stops) or *kept*. Every difference is named: the image, each variable,
each secret's version, ports, hosts, volumes, command and any other setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from dockyard.domain.model import ServiceSpec

CREATE, REPLACE, REROUTE, SCALE, KEEP, REMOVE = "create", "replace", "reroute", "scale", "keep", "remove"
UNBUILT = "build:"  # the image a commit's Dockerfile would build, not built yet: "build:DOCKERFILE@COMMIT"

# Fields told apart below; any other field that differs is named as "<field> changed".
_TOLD = {"name", "image", "image_id", "environment", "secrets", "port", "hosts", "volumes", "command", "replicas",
         "container_name"}


@dataclass(frozen=True)
class ServiceChange:
    service: str
    action: str  # CREATE, REPLACE, REROUTE, KEEP or REMOVE
    reasons: tuple[str, ...] = ()


def short_image(reference: str) -> str:
    """A reference as a person reads it: the name's last part and a short digest."""
    if reference.startswith(UNBUILT):
        dockerfile, _, commit = reference.removeprefix(UNBUILT).rpartition("@")
        return f"built from {dockerfile} at {commit[:10]}"
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    return f"{last}@{digest[7:19]}" if digest.startswith("sha256:") else last


def _variables(spec: ServiceSpec) -> dict[str, str]:
    secret_names = {name for name, _ in spec.secrets}
    return {k: v for k, v in spec.environment if k not in secret_names}


def reasons(live: ServiceSpec, desired: ServiceSpec) -> list[str]:
    """Each difference between two specs of one service, in a fixed order. Variable values are
    not shown (they may be sensitive): only which variable changed."""
    out: list[str] = []
    if (live.image_id or live.image) != (desired.image_id or desired.image):
        out.append(f"image {short_image(live.image)} -> {short_image(desired.image)}")
    old, new = _variables(live), _variables(desired)
    out += [f"variable {k} added" for k in sorted(new.keys() - old.keys())]
    out += [f"variable {k} removed" for k in sorted(old.keys() - new.keys())]
    out += [f"variable {k} changed" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
    old_s, new_s = dict(live.secrets), dict(desired.secrets)
    out += [f"secret {k} added (version {new_s[k]})" for k in sorted(new_s.keys() - old_s.keys())]
    out += [f"secret {k} removed" for k in sorted(old_s.keys() - new_s.keys())]
    out += [f"secret {k} version {old_s[k]} -> {new_s[k]}" for k in sorted(old_s.keys() & new_s.keys())
            if old_s[k] != new_s[k]]
    if live.port != desired.port:
        out.append(f"port {live.port} -> {desired.port}")
    if live.command != desired.command:
        out.append("command changed")
    if set(live.volumes) != set(desired.volumes):
        out.append("volumes " + _added_removed(live.volumes, desired.volumes))
    for f in fields(ServiceSpec):
        if f.name not in _TOLD and getattr(live, f.name) != getattr(desired, f.name):
            out.append(f"{f.name.replace('_', ' ')} changed")
    if set(live.hosts) != set(desired.hosts):
        out.append("hosts " + _added_removed(live.hosts, desired.hosts))
    if live.replicas != desired.replicas:
        out.append(f"replicas {live.replicas} -> {desired.replicas}")
    return out


def _added_removed(old: Sequence[str], new: Sequence[str]) -> str:
    parts = [f"+{x}" for x in new if x not in old] + [f"-{x}" for x in old if x not in new]
    return " ".join(parts)


def changes(live: Sequence[ServiceSpec], desired: Sequence[ServiceSpec]) -> list[ServiceChange]:
    """Per service, in the desired start order, then the removed ones by name."""
    by_name = {s.name: s for s in live}
    out: list[ServiceChange] = []
    for spec in desired:
        before = by_name.get(spec.name)
        if before is None:
            out.append(ServiceChange(spec.name, CREATE, (f"new service ({short_image(spec.image)})",)))
            continue
        why = tuple(reasons(before, spec))
        unbuilt = spec.image.startswith(UNBUILT) and not spec.image_id
        if unbuilt or before.spec_hash != spec.spec_hash:
            action = REPLACE if why else KEEP
        else:
            action = (REROUTE if set(before.hosts) != set(spec.hosts)
                      else SCALE if before.replicas != spec.replicas else KEEP)
        if unbuilt and action == REPLACE and why == (f"image {short_image(before.image)} -> {short_image(spec.image)}",):
            why += ("the build may give the same image (unchanged files, cached layers): the container is then kept",)
        out.append(ServiceChange(spec.name, action, why))
    wanted = {s.name for s in desired}
    out += [ServiceChange(s.name, REMOVE, ("not in the commit's stack any more",))
            for s in sorted(live, key=lambda s: s.name) if s.name not in wanted]
    return out
