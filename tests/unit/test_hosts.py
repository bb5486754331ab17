"""Who may answer at a host: hosts under the base domain belong to the app of that name (existing
or not), the base domain to nobody, any other host to the first app that claims it."""

from __future__ import annotations

import pytest

from dockyard.domain import hosts
from dockyard.domain.errors import Conflict, DockyardError, InvalidName

BASE = "apps.example.com"


# -- reserved_for -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "owner"),
    [
        ("shop.apps.example.com", "shop"),
        ("www.shop.apps.example.com", "shop"),
        ("a.b.c.shop.apps.example.com", "shop"),
        ("my-app.apps.example.com", "my-app"),
        ("apps.example.com", ""),  # the base domain itself: nobody's
        ("1shop.apps.example.com", ""),  # no app can be named '1shop'
        ("x.1shop.apps.example.com", ""),
        ("my--app.apps.example.com", ""),
        ("a" * 41 + ".apps.example.com", ""),
        ("example.com", None),
        ("shop.example.com", None),
        ("shopapps.example.com", None),  # a suffix of the text, not of the labels
        ("apps.example.com.evil.org", None),
        ("shop.apps.example.org", None),
    ],
)
def test_reserved_for(host: str, owner: str | None) -> None:
    assert hosts.reserved_for(host, BASE) == owner


def test_reserved_for_reads_the_base_domain_as_dns_does() -> None:
    assert hosts.reserved_for("shop.apps.example.com", "Apps.Example.COM.") == "shop"
    assert hosts.reserved_for("shop.localhost", "localhost") == "shop"
    assert hosts.reserved_for("localhost", "localhost") == ""


# -- claim_domains ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domains",
    [
        [],
        ["shop.apps.example.com"],
        ["www.shop.apps.example.com", "api.v2.shop.apps.example.com"],
        ["shop.example.com", "www.shop.example.com"],
        ["example.com"],  # above the base domain: outside it
        ["shop.io", "shop.io"],
    ],
)
def test_an_app_claims_its_own_hosts_and_free_outside_ones(domains: list[str]) -> None:
    claims = {"shop": (), "blog": ("blog.io",)}
    assert hosts.claim_domains("shop", domains, BASE, claims) == tuple(dict.fromkeys(domains))


@pytest.mark.parametrize(
    ("domain", "owner", "verb"),
    [
        ("blog.apps.example.com", "blog", "already routes to app"),
        ("www.blog.apps.example.com", "blog", "already routes to app"),
        ("future.apps.example.com", "future", "is reserved for app"),  # no app 'future' yet
        ("x.y.future.apps.example.com", "future", "is reserved for app"),
        ("shop-x.apps.example.com", "shop-x", "is reserved for app"),
    ],
)
def test_hosts_under_the_base_domain_belong_to_the_app_of_that_name(domain: str, owner: str, verb: str) -> None:
    with pytest.raises(Conflict) as info:
        hosts.claim_domains("shop", [domain], BASE, {"shop": (), "blog": ()})
    assert info.value.message == f"{domain} {verb} {owner}: hosts under {owner}.{BASE} belong to app {owner}"
    assert info.value.hint == f"give shop a domain under shop.{BASE} or outside {BASE}"
    assert info.value.status == 409


@pytest.mark.parametrize("domain", [BASE, "1x.apps.example.com", "a.my--x.apps.example.com"])
def test_the_base_domain_and_hosts_no_app_can_own_belong_to_nobody(domain: str) -> None:
    with pytest.raises(DockyardError) as info:
        hosts.claim_domains("shop", [domain], BASE, {"shop": ()})
    assert not isinstance(info.value, Conflict)
    assert info.value.status == 400
    assert info.value.message.startswith(f"{domain} cannot be an app's domain")
    assert f"shop.{BASE}" in info.value.hint


def test_a_domain_another_app_claimed_is_refused() -> None:
    claims = {"shop": (), "blog": ("blog.io", "www.blog.io")}
    with pytest.raises(Conflict) as info:
        hosts.claim_domains("shop", ["shop.io", "www.blog.io"], BASE, claims)
    assert info.value.message == "www.blog.io already routes to app blog"
    assert "dockyard domains remove blog www.blog.io" in info.value.hint


def test_an_app_keeps_its_own_claims() -> None:
    claims = {"shop": ("shop.io",), "blog": ("blog.io",)}
    assert hosts.claim_domains("shop", ["shop.io", "new.io"], BASE, claims) == ("shop.io", "new.io")


@pytest.mark.parametrize("domain", ["127.0.0.1", "[::1]", "::1", "shop.apps.example.com.1", "Shop.io", "bad domain"])
def test_claimed_domains_are_validated(domain: str) -> None:
    with pytest.raises(InvalidName):
        hosts.claim_domains("shop", [domain], BASE, {})


# -- check_new_app ----------------------------------------------------------------------------


@pytest.mark.parametrize("taken", ["shop.apps.example.com", "www.shop.apps.example.com", "a.b.shop.apps.example.com"])
def test_a_new_app_whose_hosts_another_app_claims_is_refused(taken: str) -> None:
    """Claims made before the rule (or under another base domain) block the name, not the app."""
    with pytest.raises(Conflict) as info:
        hosts.check_new_app("shop", [], BASE, {"blog": ("blog.io", taken)})
    assert info.value.message == f"app blog answers at {taken}, a host of the app shop would be"
    assert f"dockyard domains remove blog {taken}" in info.value.hint and "another app name" in info.value.hint


@pytest.mark.parametrize("other", ["shopping.apps.example.com", "shop.example.com", "shop.apps.example.org",
                                   "xshop.apps.example.com", "shop.io"])
def test_a_new_app_is_not_blocked_by_lookalike_hosts(other: str) -> None:
    assert hosts.check_new_app("shop", ["www.shop.apps.example.com"], BASE, {"blog": (other,)}) == (
        "www.shop.apps.example.com",
    )


def test_a_new_app_claims_its_domains_like_any_app() -> None:
    with pytest.raises(Conflict):
        hosts.check_new_app("shop", ["blog.io"], BASE, {"blog": ("blog.io",)})
    with pytest.raises(Conflict):
        hosts.check_new_app("shop", ["blog.apps.example.com"], BASE, {})
    assert hosts.check_new_app("shop", ["shop.io"], BASE, {}) == ("shop.io",)
