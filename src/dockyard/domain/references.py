"""Image references: ``[host/]path[:tag][@digest]`` parsed and checked, and registry hosts compared.

Pushed text names images (FROM lines, header names, compose ``image:``), so the patterns here are
linear: no two ways of matching the same characters, and always used with ``fullmatch`` (``match``
with ``$`` would accept a trailing newline).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from dockyard.domain.errors import shown

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,100}")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def is_tag(text: str) -> bool:
    """True for a usable tag (and so a usable version): letters, digits, '.', '_' and '-'."""
    return bool(_TAG.fullmatch(text)) and "+" not in text


@dataclass(frozen=True)
class Reference:
    """An image reference split in its parts: ``[host/]path[:tag][@digest]``."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def path(self) -> str:
        """The name without a registry host."""
        first, _, rest = self.name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return rest
        return self.name

    @property
    def host(self) -> str:
        """The registry host (with its port), or "" when the name has none."""
        first, _, rest = self.name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return first
        return ""

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse an image reference; raise ValueError when it is not one."""
    rest, at, digest = text.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise ValueError(f"bad digest in {shown(text)}")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = rest.rpartition(":")
        if not is_tag(tag):
            raise ValueError(f"bad tag in {shown(text)}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _HOST.fullmatch(parts[0]):
            raise ValueError(f"bad registry host in {shown(text)}")
        parts = parts[1:]
    if not parts or not all(_PATH_COMPONENT.fullmatch(p) for p in parts):
        raise ValueError(f"bad repository path in {shown(text)}")
    return Reference(name=name, tag=tag, digest=digest or None)


def _loopback_name(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def same_registry(host: str, registry: str) -> bool:
    """True when ``host`` (``name[:port]``) is dockyard's registry ``registry``, loopback
    spellings of it (``localhost:5000`` for ``127.0.0.1:5000``) included."""
    if host.lower() == registry.lower():
        return True
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    reg_name, _, reg_port = registry.rpartition(":") if not registry.endswith("]") else (registry, "", "")
    return bool(name) and port == reg_port and _loopback_name(name) and _loopback_name(reg_name)
