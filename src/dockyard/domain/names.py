"""Validation of every name a user can supply. Nothing unvalidated goes further."""

from __future__ import annotations

import re

from dockyard.domain.errors import InvalidName
from dockyard.domain.model import HOST_ACCESS_KEYS

# Always used with ``fullmatch``: ``match`` with ``$`` would accept a trailing newline.
_APP = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")
_REPO = re.compile(r"[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# A last label read as a number (decimal, octal, hex) makes a host an IPv4 address to a browser.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77] + "...")


def is_app_name(value: str) -> bool:
    return bool(_APP.fullmatch(value)) and "--" not in value


def app_name(value: str) -> str:
    """An app name is a DNS label: it becomes a host name, a network name and a registry path."""
    if not is_app_name(value):
        raise InvalidName(
            f"invalid app name {_shown(value)}",
            "use 1-40 lowercase letters, digits and single dashes, starting with a letter "
            "and not ending with a dash (e.g. 'my-app')",
        )
    return value


def repo_name(value: str) -> str:
    """A repo of an app (besides the app's own): its git URL is /git/APP/NAME.git."""
    if not _REPO.fullmatch(value) or ".." in value or value.endswith(".git"):
        raise InvalidName(
            f"invalid repo name {_shown(value)}",
            "use 1-64 lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit, "
            "without '.git' (e.g. 'api' or 'base-container-images')",
        )
    return value


def repo_key(app: str, repo: str = "") -> str:
    """How SourceRepos names a repository: ``APP`` for the app's own, ``APP/NAME`` for another."""
    return f"{app_name(app)}/{repo_name(repo)}" if repo else app_name(app)


def service_name(value: str) -> str:
    if not _SERVICE.fullmatch(value):
        raise InvalidName(
            f"invalid service name {_shown(value)}",
            "use lowercase letters, digits, '-' and '_', starting with a letter or digit",
        )
    return value


def branch_name(value: str) -> str:
    """A conservative subset of git's ref rules, free of shell metacharacters."""
    if (
        not _BRANCH.fullmatch(value)
        or ".." in value
        or "//" in value
        or value.endswith(("/", "."))
        or any(part.startswith(".") or part.endswith(".lock") for part in value.split("/"))
    ):
        raise InvalidName(
            f"invalid branch name {_shown(value)}",
            "use letters, digits, '.', '_', '-' and '/', without '..', spaces or shell characters; "
            "no part may start with '.' or end with '.lock'",
        )
    return value


def domain_name(value: str) -> str:
    """A host name routed by the proxy. IP literals are refused in every form: an address is not a
    name an app can own (browsers read a host whose last label is a number as an IPv4 address)."""
    labels = value.split(".")
    if any(c in value for c in ":[]") or _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise InvalidName(
            f"invalid domain {_shown(value)}: an IP address is not a domain",
            "give a host name such as 'app.example.com'; dockyard routes by host name, and every "
            "app already answers at APP.<base domain>",
        )
    if len(value) > 253 or len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise InvalidName(
            f"invalid domain {_shown(value)}",
            "give a lowercase host name such as 'app.example.com'",
        )
    return value


def token_name(value: str) -> str:
    if not _TOKEN_NAME.fullmatch(value):
        raise InvalidName(
            f"invalid token name {_shown(value)}",
            "use letters, digits, '.', '_', '@' and '-'",
        )
    return value


def host_access_keys(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Compose keys that hand a container the host, as an admin allows them (deduplicated, in
    the order of HOST_ACCESS_KEYS)."""
    unknown = [v for v in values if v not in HOST_ACCESS_KEYS]
    if unknown:
        raise InvalidName(
            f"unknown host access key {_shown(unknown[0])}",
            "use one of: " + ", ".join(HOST_ACCESS_KEYS),
        )
    return tuple(k for k in HOST_ACCESS_KEYS if k in values)


def environment_name(value: str) -> str:
    """An environment's name: a DNS label like an app's (it becomes part of host, network and
    volume names), e.g. 'production', 'recette', 'dev'."""
    if not _APP.fullmatch(value) or "--" in value:
        raise InvalidName(
            f"invalid environment name {_shown(value)}",
            "use 1-40 lowercase letters, digits and single dashes, starting with a letter (e.g. 'recette')",
        )
    return value
