"""Pure rules: bases pinned by image id (domain/pinning.py) and subnets from the pool (domain/networks.py)."""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.domain import networks
from dockyard.domain.errors import DockyardError, Unavailable
from dockyard.domain.images import parse_dockerfile
from dockyard.domain.pinning import base_pins, pin_bases

BASE_ID = "sha256:" + "a" * 64


def spec(path: str, text: str):  # type: ignore[no-untyped-def]
    return parse_dockerfile(path, text, "shop")


def test_only_from_lines_naming_the_built_base_are_pinned() -> None:
    base = spec("Dockerfile-base", "# crigen/nodejs\n# VERSION 8\nFROM debian\n")
    web_text = (
        "FROM crigen/nodejs:8 AS build\n"
        "RUN echo crigen/nodejs:8\n"
        "from --platform=linux/amd64 crigen/nodejs AS second\n"
        "FROM crigen/nodejs:9\n"
        "FROM other/image:8\n"
        "COPY --from=build /x /x\n"
    )
    web = spec("Dockerfile", web_text)
    pins = base_pins(web, {"Dockerfile-base": (base, BASE_ID)})
    assert pins == {"crigen/nodejs:8": BASE_ID, "crigen/nodejs": BASE_ID}
    out = pin_bases(web_text, pins).splitlines()
    assert out[0] == f"FROM {BASE_ID} AS build"
    assert out[1] == "RUN echo crigen/nodejs:8"  # not a FROM line
    assert out[2] == f"from --platform=linux/amd64 {BASE_ID} AS second"
    assert out[3:] == ["FROM crigen/nodejs:9", "FROM other/image:8", "COPY --from=build /x /x"]


def test_nothing_to_pin_leaves_the_text_as_it_is() -> None:
    web_text = "FROM debian\r\nRUN true\r\n"
    web = spec("Dockerfile", web_text)
    assert base_pins(web, {}) == {}
    assert pin_bases(web_text, {}) is web_text
    assert pin_bases(web_text, {"debian": BASE_ID}) == f"FROM {BASE_ID}\r\nRUN true\r\n"


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_subnets_are_taken_in_order_skipping_what_overlaps() -> None:
    pool = networks.parse_pool("10.213.0.0/16", 26)
    assert networks.pick_subnet(pool, 26, []) == net("10.213.0.0/26")
    taken = [net("10.213.0.0/26"), net("10.213.0.64/26")]
    assert networks.pick_subnet(pool, 26, taken) == net("10.213.0.128/26")
    # a larger foreign network (a host route, a VPN) inside the pool is skipped whole
    assert networks.pick_subnet(pool, 26, [net("10.213.0.0/24")]) == net("10.213.1.0/26")
    # a gap between busy ranges is used
    assert networks.pick_subnet(pool, 26, [net("10.213.0.0/26"), net("10.213.0.128/26")]) == net("10.213.0.64/26")
    # nested, unsorted and unrelated ranges, and the default route, change nothing wrong
    busy = [net("10.213.0.64/26"), net("0.0.0.0/0"), net("10.213.0.0/25"), net("192.168.1.0/24"), net("10.213.0.16/28")]
    assert networks.pick_subnet(pool, 26, busy) == net("10.213.0.128/26")


def test_a_full_pool_says_what_to_do() -> None:
    pool = networks.parse_pool("10.213.0.0/24", 26)
    taken = list(pool.subnets(new_prefix=26))
    with pytest.raises(Unavailable) as caught:
        networks.pick_subnet(pool, 26, taken)
    assert "no free /26 subnet" in caught.value.message and "4 networks" in caught.value.message
    assert "DOCKYARD_NETWORK_POOL" in caught.value.hint
    with pytest.raises(Unavailable):
        networks.pick_subnet(pool, 26, [net("10.0.0.0/8")])  # a route covers the whole pool


def test_every_subnet_of_the_pool_can_be_handed_out_once() -> None:
    pool = networks.parse_pool("10.213.0.0/20", 26)
    taken: list[ipaddress.IPv4Network] = []
    for _ in range(64):
        subnet = networks.pick_subnet(pool, 26, taken)
        assert subnet.subnet_of(pool) and not any(subnet.overlaps(t) for t in taken)
        taken.append(subnet)
    with pytest.raises(Unavailable):
        networks.pick_subnet(pool, 26, taken)


@pytest.mark.parametrize(("pool", "prefix"), [("10.213.0.0/16", 15), ("10.213.0.0/16", 30), ("not-a-net", 26),
                                              ("10.213.0.0/24", 20), ("fd00::/64", 26)])
def test_bad_pool_settings_are_refused_with_a_hint(pool: str, prefix: int) -> None:
    with pytest.raises(DockyardError) as caught:
        networks.parse_pool(pool, prefix)
    assert "DOCKYARD_NETWORK_" in caught.value.message and caught.value.hint


def test_taken_subnets_skip_what_is_not_ipv4() -> None:
    assert networks.parse_taken(["10.1.0.0/16", "fd00::/64", "", "junk", "172.17.0.1/16"]) == [
        net("10.1.0.0/16"), net("172.17.0.0/16")]
