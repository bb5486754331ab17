"""Outgoing webhooks, the pure part (domain/webhooks.py): the signature (known answers), its
check, the retry schedule, accepted URLs, secrets and events, the mapping from the bus, payloads."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dockyard.domain import webhooks as wh
from dockyard.domain.errors import DockyardError
from dockyard.domain.webhooks import Backoff, Reply, Webhook


# -- signature ------------------------------------------------------------------------------------
def test_the_signature_is_github_s_scheme_known_answers() -> None:
    # GitHub's documented example (docs: "Validating webhook deliveries")
    assert wh.signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    # RFC 4231, test case 2
    assert wh.signature(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_verify_accepts_the_signature_of_the_exact_body_only() -> None:
    body = b'{"event":"ping"}'
    header = wh.signature("s3cret-s3cret-s3cret", body)
    assert wh.verify("s3cret-s3cret-s3cret", body, header)
    assert wh.verify(b"s3cret-s3cret-s3cret", body, f" {header} ")
    assert not wh.verify("s3cret-s3cret-s3cret", body + b" ", header)  # one byte more
    assert not wh.verify("another-secret-here", body, header)
    assert not wh.verify("s3cret-s3cret-s3cret", body, header.replace("sha256=", "sha1="))
    assert not wh.verify("s3cret-s3cret-s3cret", body, header[:-1])
    assert not wh.verify("s3cret-s3cret-s3cret", body, None)
    assert not wh.verify("s3cret-s3cret-s3cret", body, "")


def test_the_headers_of_a_delivery() -> None:
    body = b"{}"
    assert wh.headers("k" * 16, body, "release.failed", 7, 3) == {
        "Content-Type": "application/json",
        "User-Agent": "dockyard-webhooks",
        "X-Dockyard-Event": "release.failed",
        "X-Dockyard-Delivery": "7",
        "X-Dockyard-Webhook": "3",
        "X-Dockyard-Signature": wh.signature("k" * 16, body),
    }


# -- retries --------------------------------------------------------------------------------------
def test_the_delays_double_up_to_the_cap() -> None:
    assert Backoff(first=1, cap=8, attempts=8).schedule() == [1, 2, 4, 8, 8, 8, 8]
    assert Backoff().schedule() == [10, 20, 40, 80, 160, 320, 640]  # ~21 minutes of retries
    assert Backoff(attempts=1).schedule() == []
    assert Backoff(first=1, attempts=3).delay(3) is None


def test_after_an_attempt() -> None:
    backoff = Backoff(first=2, attempts=3)
    assert wh.outcome(1, Reply(204), backoff) == (wh.DELIVERED, None)
    assert wh.outcome(3, Reply(200), backoff) == (wh.DELIVERED, None)
    assert wh.outcome(1, Reply(500), backoff) == (wh.PENDING, 2.0)
    assert wh.outcome(2, None, backoff) == (wh.PENDING, 4.0)
    assert wh.outcome(3, Reply(404), backoff) == (wh.FAILED, None)
    assert wh.outcome(3, None, backoff) == (wh.FAILED, None)


def test_why_an_answer_is_no_delivery() -> None:
    assert wh.failure(Reply(500, "  oops\n\n trace ")) == "HTTP 500: oops trace"
    assert wh.failure(Reply(404)) == "HTTP 404"
    assert "redirects are not followed" in wh.failure(Reply(301, "moved"))
    assert len(wh.failure(Reply(500, "x" * 5000))) < 220
    assert [Reply(s).ok for s in (199, 200, 204, 299, 300)] == [False, True, True, True, False]


# -- what is accepted -----------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["https://ci.example.com/hooks/dockyard", "http://127.0.0.1:8000/x?token=1",
                                 "HTTPS://Example.COM", "http://[::1]:9000/"])
def test_good_urls(url: str) -> None:
    assert wh.url(url) == url


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("example.com/hook", "only http and https"),
    ("https://user:pass@example.com/", "user name or password"),
    ("https://token@example.com/", "user name or password"),
    ("https:///path", "no host"),
    ("https://example.com:99999/", "out of range"),
    ("https://exa mple.com/", "white space"),
    ("https://example.com/\nX-Injected: 1", "control characters"),
    ("", "empty"),
    ("https://example.com/" + "a" * 2100, "over 2048"),
])
def test_bad_urls(url: str, why: str) -> None:
    with pytest.raises(DockyardError, match=why):
        wh.url(url)


def test_secrets() -> None:
    assert wh.secret("x" * 16) == "x" * 16
    for bad in ("short", "x" * 257, "x" * 15 + "\n", "\x00" * 20):
        with pytest.raises(DockyardError, match="16 to 256 printable"):
            wh.secret(bad)


def test_event_names() -> None:
    assert wh.event_names(["release.failed", "release.succeeded", "release.failed"]) == (
        "release.succeeded", "release.failed")
    assert wh.event_names([]) == ()
    with pytest.raises(DockyardError, match=r"unknown webhook event 'deploy\.succeeded'") as caught:
        wh.event_names(["deploy.succeeded"])
    assert "release.rolled_back" in caught.value.hint
    with pytest.raises(DockyardError, match="unknown webhook event 'ping'"):
        wh.event_names(["ping"])  # every webhook gets a ping asked for; none subscribes to it


# -- events and payloads --------------------------------------------------------------------------
def test_the_bus_events_a_webhook_is_sent() -> None:
    assert wh.FROM_BUS == {
        "deploy.succeeded": "release.succeeded",
        "deploy.failed": "release.failed",
        "promote.succeeded": "release.succeeded",
        "promote.failed": "release.failed",
        "rollback.succeeded": "release.rolled_back",
        "rollback.failed": "rollback.failed",
        "approval.needed": "approval.needed",
    }
    assert set(wh.FROM_BUS.values()) == set(wh.EVENTS)
    assert "scale.succeeded" not in wh.FROM_BUS


def test_which_webhook_wants_what() -> None:
    every = Webhook(1, "shop", None, "https://x.example", ())
    staging_failures = Webhook(2, "shop", "staging", "https://x.example", ("release.failed",))
    assert every.wants("release.succeeded", "production") and every.wants("approval.needed", "staging")
    assert staging_failures.wants("release.failed", "staging")
    assert not staging_failures.wants("release.failed", "production")
    assert not staging_failures.wants("release.succeeded", "staging")
    assert staging_failures.wants("ping", "staging")


def test_the_payload_has_every_key_null_when_it_does_not_apply() -> None:
    at = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)
    content = wh.payload("release.rolled_back", "shop", "production", at, 4, "alice",
                         {"job": 17, "release": 42, "to": 40, "commit": "c" * 40, "branch": "main", "secret": "no"},
                         "http://127.0.0.1:7700/api/v1/jobs/17/logs")
    assert content == {
        "event": "release.rolled_back", "app": "shop", "environment": "production", "actor": "alice",
        "release": 42, "to_release": 40, "commit": "c" * 40, "branch": "main", "job": 17, "error": None,
        "log_url": "http://127.0.0.1:7700/api/v1/jobs/17/logs", "webhook": 4, "at": "2026-11-28T12:00:01Z",
    }
    ping = wh.payload("ping", "shop", None, at, 4)
    assert ping["event"] == "ping" and ping["release"] is None and ping["environment"] is None
    text = wh.body(content)
    assert json.loads(text) == content and ", " not in text and list(json.loads(text)) == list(content)


# -- a secret sealed under several keys -----------------------------------------------------------
def test_pack_and_unpack() -> None:
    sealed = {"k1" * 8: b"\x00\x01sealed", "other": b"", "k3": bytes(range(256)) * 3}
    assert wh.unpack(wh.pack(sealed)) == sealed
    assert wh.unpack(b"") == {}
    assert wh.unpack(wh.pack(sealed)[:-1]) == {"k1" * 8: b"\x00\x01sealed", "other": b""}  # cut short
    assert wh.associated_data("shop", 3) != wh.associated_data("shop", 4) != wh.associated_data("blog", 4)


def test_the_readme_s_verify_snippet_agrees() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    found = re.search(r"### Webhooks.*?```python\n(.*?)```", readme, re.S)
    assert found is not None
    namespace: dict[str, Any] = {}
    exec(found.group(1), namespace)
    body = b'{"event":"ping"}'
    header = wh.signature("a-secret-of-16-chars", body)
    assert namespace["verify"](b"a-secret-of-16-chars", body, header)
    assert not namespace["verify"](b"a-secret-of-16-chars", body + b" ", header)
    assert not namespace["verify"](b"another-secret-16-chars", body, header)
