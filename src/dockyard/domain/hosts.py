"""Who may answer at a host. Every host under the base domain belongs to the app of that name,
whether that app exists yet or not: ``X.<base>`` and ``anything.X.<base>`` are app ``X``'s, the base
domain itself is nobody's. A host outside the base domain belongs to the first app that claims it.

``claims`` maps each existing app to the custom domains it answers at (besides APP.<base>).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dockyard.domain import names
from dockyard.domain.errors import Conflict, DockyardError
from dockyard.domain.model import DEFAULT_ENVIRONMENT

Claims = Mapping[str, Iterable[str]]


def _base(base_domain: str) -> str:
    return base_domain.strip(".").lower()


def reserved_for(host: str, base_domain: str) -> str | None:
    """The app a host under the base domain belongs to; "" for the base domain itself (nobody)
    or a label no app can be named; None for a host outside the base domain."""
    base = _base(base_domain)
    if host == base:
        return ""
    if not host.endswith(f".{base}"):
        return None
    label = host.removesuffix(f".{base}").rsplit(".", 1)[-1]
    return label if names.is_app_name(label) else ""


def claim_domains(app: str, domains: Iterable[str], base_domain: str, claims: Claims) -> tuple[str, ...]:
    """The domains an app asks for, validated and deduplicated; raises when one is not its to take."""
    base = _base(base_domain)
    out = tuple(dict.fromkeys(names.domain_name(d) for d in domains))
    for domain in out:
        owner = reserved_for(domain, base)
        if owner == "":
            raise DockyardError(
                f"{domain} cannot be an app's domain: "
                + (f"{base} is the base domain" if domain == base else f"no app can be named as its label under {base}"),
                f"every app answers at APP.{base} already; add a domain under {app}.{base} or outside {base}",
            )
        if owner is not None and owner != app:
            held = "already routes to app" if owner in claims else "is reserved for app"
            raise Conflict(
                f"{domain} {held} {owner}: hosts under {owner}.{base} belong to app {owner}",
                f"give {app} a domain under {app}.{base} or outside {base}",
            )
        for other, taken in claims.items():
            if other != app and domain in taken:
                raise Conflict(f"{domain} already routes to app {other}",
                               f"remove it from that app first: dockyard domains remove {other} {domain}")
    return out


def check_new_app(app: str, domains: Iterable[str], base_domain: str, claims: Claims) -> tuple[str, ...]:
    """A new app's own domains (as claim_domains), once no other app answers at a host under
    APP.<base> (a domain claimed before this rule, or under another base domain)."""
    base = _base(base_domain)
    own = f"{app}.{base}"
    for other, taken in claims.items():
        for domain in taken:
            if other != app and (domain == own or domain.endswith(f".{own}")):
                raise Conflict(
                    f"app {other} answers at {domain}, a host of the app {app} would be",
                    f"remove it first (dockyard domains remove {other} {domain}), or pick another app name",
                )
    return claim_domains(app, domains, base, claims)


def environment_site(app: str, environment: str, base_domain: str) -> str:
    """Where an environment answers: production at ``APP.<base>``, another at ``ENV.APP.<base>``
    (a host under APP.<base>, so it is the app's by the rule above, whatever the environment)."""
    base = _base(base_domain)
    return f"{app}.{base}" if environment == DEFAULT_ENVIRONMENT else f"{environment}.{app}.{base}"


def for_environment(hosts: Iterable[str], app: str, environment: str, base_domain: str) -> tuple[str, ...]:
    """A service's hosts, as the commit gives them for production (``APP.<base>``,
    ``SERVICE.APP.<base>``, the app's custom domains), moved to ``environment``: hosts under
    APP.<base> move under its site; custom domains stay production's."""
    if environment == DEFAULT_ENVIRONMENT:
        return tuple(hosts)
    base = _base(base_domain)
    own, site = f"{app}.{base}", environment_site(app, environment, base)
    out: list[str] = []
    for host in hosts:
        if host == own:
            out.append(site)
        elif host.endswith(f".{own}"):
            out.append(f"{host.removesuffix('.' + own)}.{site}")
    return tuple(dict.fromkeys(out))


def clashes(mine: Iterable[str], others: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """(host, other environment) for each host an environment would take that another
    environment of the app routes already (``ENV.APP.<base>`` and ``SERVICE.APP.<base>`` can
    meet when a service is named like an environment)."""
    taken = {h: env for env, hs in others.items() for h in hs}
    return [(h, taken[h]) for h in dict.fromkeys(mine) if h in taken]
