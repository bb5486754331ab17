"""ADD from a URL: which ADD sources are URLs, the hosts they name, and which of those hosts are
this machine or its private network (and so refused).

``parse_dockerfile`` refuses a Dockerfile whose ADD names such a host; the build resolves the
names again just before it runs (``services/build.py``), with the same ``local_host``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import unquote, urlsplit

from dockyard.domain.dockerfile_syntax import instructions
from dockyard.domain.errors import InvalidSource, shown

_INET_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")


def _is_url(source: str) -> bool:
    lower = source.lower()
    if "://" in lower:
        return lower.split("://", 1)[0] in ("http", "https", "git", "ssh", "ftp")
    # scp-like git addresses: git@github.com:team/repo.git
    user, at, rest = lower.partition("@")
    return bool(at and user and ":" in rest and "/" not in user and (user == "git" or lower.endswith(".git")))


def add_urls(text: str) -> list[tuple[int, str]]:
    """(line, source) of every ``ADD`` whose source is a URL: http(s), git, ssh, ``git@host:...``.

    The build adapter resolves these names again at build time; ``parse_dockerfile`` refuses the
    ones whose host is this machine or its private network (see ``local_host``)."""
    found: list[tuple[int, str]] = []
    for number, keyword, args in instructions(text):
        if keyword != "ADD":
            continue
        words: list[str] = []
        if args.startswith("["):
            try:
                parsed = json.loads(args)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                words = [w for w in parsed if isinstance(w, str)]
        if not words:
            words = args.split()
        words = [w for w in words if not w.startswith("--")]
        sources = words[:-1] if len(words) > 1 else words
        found.extend((number, s) for s in sources if _is_url(s))
    return found


def url_host(url: str) -> str | None:
    """The host an ADD source names, lowercased; None when it cannot be told."""
    if "://" in url:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return None
        return host or None
    rest = url.partition("@")[2]
    host = rest[1:].partition("]")[0] if rest.startswith("[") else rest.split(":", 1)[0]
    return host.lower() or None


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """What C's inet_aton reads a numeric host as: 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(len(p) <= 12 and _INET_NUMBER.fullmatch(p) for p in parts):
        return None
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not all(c in "01234567" for c in part):
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part, 10))
    *first, last = numbers
    if any(n > 255 for n in first) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in first:
        value = value * 256 + n
    return ipaddress.IPv4Address(value * 256 ** (5 - len(numbers)) + last)


def local_host(host: str) -> str | None:
    """Why a host names this machine or a private network (a reason to refuse it), else None."""
    name = unquote(host).strip().rstrip(".").lower()  # Go's URL parser decodes %xx in hosts
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return "it is not a host name dockyard can check"
    if name == "localhost" or name.endswith(".localhost"):
        return "a name of the machine itself"
    if "$" in name:
        return "it is a build variable, so dockyard cannot tell where it points"
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = _inet_aton(name)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address of the machine itself"
    if address.is_unspecified:
        return "the unspecified address, which reaches the machine itself"
    if address.is_link_local:
        return "a link-local address (such as a cloud metadata service)"
    if address.is_private:
        return "an address of a private network"
    return None


def check_add_urls(path: str, text: str) -> None:
    """Refuse a Dockerfile with an ADD from a host that is this machine or its private network."""
    for number, url in add_urls(text):
        host = url_host(url)
        reason = "it names no host dockyard can read" if host is None else local_host(host)
        if reason:
            raise InvalidSource(
                f"{path} line {number}: ADD {shown(url)} is refused: its host {shown(host or '')} is {reason}",
                "the build runs on dockyard's own server: ADD from a public address written literally, "
                "or commit the file and COPY it",
            )
