"""Subnets for the networks dockyard creates, taken from a pool it manages (pure).

Docker's default address pools hold about 30 bridge networks, so a host would run out at about
28 apps. dockyard gives each network a small subnet of its own from ``DOCKYARD_NETWORK_POOL``
(default below), skipping every subnet that overlaps a network the engine has already or a route
of the host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from dockyard.domain.errors import DockyardError, Unavailable

DEFAULT_POOL = "10.213.0.0/16"
DEFAULT_PREFIX = 26  # 61 containers per network; 1,024 networks in the default pool

Network = ipaddress.IPv4Network


def parse_pool(pool: str, prefix: int) -> Network:
    """The pool as a network, checked against the subnet size it is cut into."""
    try:
        net = ipaddress.IPv4Network(pool, strict=False)
    except ValueError:
        raise DockyardError(
            f"DOCKYARD_NETWORK_POOL={pool!r} is not an IPv4 network",
            f"write it as an address and a prefix length, e.g. {DEFAULT_POOL}",
        ) from None
    if not 16 <= prefix <= 29 or prefix < net.prefixlen:
        raise DockyardError(
            f"DOCKYARD_NETWORK_PREFIX={prefix} does not fit the pool {net}",
            f"use a prefix length between {max(16, net.prefixlen)} and 29 (default {DEFAULT_PREFIX})",
        )
    return net


def parse_taken(subnets: Iterable[str]) -> list[Network]:
    """The IPv4 subnets among ``subnets``; anything else (IPv6, garbage) is skipped."""
    out = []
    for text in subnets:
        try:
            out.append(ipaddress.IPv4Network(text, strict=False))
        except ValueError:
            continue
    return out


def pick_subnet(pool: Network, prefix: int, taken: Iterable[Network]) -> Network:
    """The first subnet of ``pool`` of length ``prefix`` that overlaps nothing in ``taken``."""
    busy = sorted((t for t in taken if t.overlaps(pool) and t.prefixlen > 0), key=lambda n: int(n.network_address))
    step = 1 << (32 - prefix)
    candidate = int(pool.network_address)
    end = int(pool.broadcast_address)
    for net in busy:
        # every candidate before this busy range is free
        if candidate + step - 1 < int(net.network_address):
            return ipaddress.IPv4Network((candidate, prefix))
        # skip past it, aligned to the subnet size
        after = int(net.broadcast_address) + 1
        candidate = max(candidate, -(-after // step) * step)
        if candidate + step - 1 > end:
            break
    if candidate + step - 1 <= end:
        return ipaddress.IPv4Network((candidate, prefix))
    raise Unavailable(
        f"the network pool {pool} has no free /{prefix} subnet left "
        f"({pool.num_addresses >> (32 - prefix)} networks in all)",
        "remove apps you no longer need (dockyard apps delete), or give dockyard a larger pool: "
        "set DOCKYARD_NETWORK_POOL (e.g. 10.212.0.0/15) or a longer DOCKYARD_NETWORK_PREFIX, and restart it",
    )
