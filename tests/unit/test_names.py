"""Name validation: everything a user types is checked before it reaches git, Docker or a shell."""

from __future__ import annotations

import pytest

from dockyard.domain import names
from dockyard.domain.errors import DockyardError, InvalidName
from dockyard.domain.model import HOST_ACCESS_KEYS

SHELL_NASTIES = [
    "a;rm -rf /",
    "a$(id)",
    "a`id`",
    "a|cat",
    "a&b",
    "a&&b",
    "a>out",
    "a<in",
    "a'b",
    'a"b',
    "a\\b",
    "a*",
    "a?",
    "a b",
    "a\tb",
    "a\nb",
    "a${HOME}",
    "a!b",
    "a~b",
]


def _assert_invalid(func, value: str, kind: str) -> InvalidName:
    with pytest.raises(InvalidName) as info:
        func(value)
    err = info.value
    assert isinstance(err, DockyardError)
    assert err.message.startswith(f"invalid {kind}")
    # The message shows the offending value (as repr, possibly truncated) and a hint follows.
    shown = repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    assert shown in err.message
    assert err.hint
    assert "hint: " + err.hint in str(err)
    assert err.status == 400
    return err


# -- app names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["a", "shop", "my-app", "app1", "a1", "x-1-y", "a" * 40, "a" + "-b" * 19, "crigen", "z9"],
)
def test_app_name_accepts_dns_labels(value: str) -> None:
    assert names.app_name(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "My-App",
        "Shop",
        "SHOP",
        "1app",
        "-app",
        "app-",
        "my--app",
        "my_app",
        "my.app",
        "a" * 41,
        "../etc",
        "app/../x",
        "app/x",
        "-",
        "é",
        *SHELL_NASTIES,
    ],
)
def test_app_name_rejects(value: str) -> None:
    err = _assert_invalid(names.app_name, value, "app name")
    assert "lowercase" in err.hint
    assert not names.is_app_name(value)


@pytest.mark.parametrize("value", ["a", "shop", "my-app", "a" * 40, "x-1-y"])
def test_is_app_name_agrees_with_app_name(value: str) -> None:
    assert names.is_app_name(value) and names.app_name(value) == value


@pytest.mark.parametrize(
    "func,value",
    [
        (names.app_name, "myapp\n"),
        (names.service_name, "web\n"),
        (names.branch_name, "main\n"),
        (names.domain_name, "app.example.com\n"),
        (names.token_name, "ci\n"),
    ],
)
def test_trailing_newline_is_rejected(func, value: str) -> None:
    with pytest.raises(InvalidName):
        func(value)


def test_long_values_are_truncated_in_the_message() -> None:
    value = "A" * 200
    err = _assert_invalid(names.app_name, value, "app name")
    assert value not in err.message
    assert "..." in err.message
    assert len(err.message) < 120


# -- service names ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["web", "db", "worker_1", "api-v2", "0web", "9", "a" * 63])
def test_service_name_accepts(value: str) -> None:
    assert names.service_name(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "Web", "_web", "-web", "web.1", "a" * 64, "../web", "web/x", *SHELL_NASTIES],
)
def test_service_name_rejects(value: str) -> None:
    err = _assert_invalid(names.service_name, value, "service name")
    assert "lowercase" in err.hint


# -- branch names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "main",
        "master",
        "Main",
        "feature/login",
        "release-1.2",
        "v1.2.3",
        "fix_bug",
        "users/alice/wip",
        "2024.01",
        "a",
        "a" * 200,
        "feature.lockdown",
        "x.lock.y",
    ],
)
def test_branch_name_accepts(value: str) -> None:
    assert names.branch_name(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-main",
        "--upload-pack=evil",
        ".hidden",
        "/main",
        "_main",
        "main/",
        "main.",
        "main.lock",
        "feature/x.lock",
        "a..b",
        "..",
        "../etc/passwd",
        "feature/../main",
        "a//b",
        "feature/.hidden",
        "a@{1}",
        "a^",
        "a~1",
        "a:b",
        "a" * 201,
        *SHELL_NASTIES,
    ],
)
def test_branch_name_rejects(value: str) -> None:
    err = _assert_invalid(names.branch_name, value, "branch name")
    assert "'..'" in err.hint


@pytest.mark.parametrize("value", ["feature.lock/x", "a/b.lock/c", "feature/.x/y", "a/.b", "main\n", "a/b\n"])
def test_branch_name_rejects_bad_components(value: str) -> None:
    """git forbids any ref component ending in '.lock' or starting with '.', not only the last."""
    err = _assert_invalid(names.branch_name, value, "branch name")
    assert "'.lock'" in err.hint


# -- domains ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["app.example.com", "example.com", "a.b", "shop.localhost", "x-1.example.co.uk", "a" * 63 + ".com",
     "1.2.3.example.com", "123.example.com", "app.x0", "app.0xg", "host.a1"],
)
def test_domain_name_accepts(value: str) -> None:
    assert names.domain_name(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "localhost",
        "App.Example.com",
        "app..example.com",
        ".example.com",
        "example.com.",
        "-app.example.com",
        "app-.example.com",
        "app_x.example.com",
        "a" * 64 + ".com",
        ".".join(["a" * 60] * 5),
        "app.example.com/path",
        "app.example.com:8080",
        "*.example.com",
        "../example.com",
        *[f"x{bad}.example.com" for bad in (";id", "$(id)", "`id`", "|x", "&x", " x")],
    ],
)
def test_domain_name_rejects(value: str) -> None:
    err = _assert_invalid(names.domain_name, value, "domain")
    assert "app.example.com" in err.hint


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1",
        "1.2.3.4",
        "10.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "127.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "127.0.0.0x1",
        "a.0x",
        "example.123",
        "shop.localhost.1",
        "::1",
        "::",
        "[::1]",
        "[2001:db8::1]",
        "2001:db8::1",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "[::ffff:7f00:1]",
        "0:0:0:0:0:0:0:1",
        "[::1]:8080",
        "1.2.3.4:80",
    ],
)
def test_domain_name_refuses_ip_literals(value: str) -> None:
    err = _assert_invalid(names.domain_name, value, "domain")
    assert "an IP address is not a domain" in err.message
    assert "app.example.com" in err.hint


# -- host access keys -------------------------------------------------------------------------


def test_host_access_keys_are_the_documented_ones() -> None:
    assert HOST_ACCESS_KEYS == ("privileged", "cap_add", "devices", "network_mode", "pid", "ipc", "userns_mode",
                                "security_opt", "bind_mounts", "docker_socket")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ([], ()),
        (["privileged"], ("privileged",)),
        (["docker_socket", "privileged", "docker_socket"], ("privileged", "docker_socket")),
        (list(HOST_ACCESS_KEYS), HOST_ACCESS_KEYS),
        (list(reversed(HOST_ACCESS_KEYS)), HOST_ACCESS_KEYS),
    ],
)
def test_host_access_keys_accepts_known_keys(given: list[str], kept: tuple[str, ...]) -> None:
    assert names.host_access_keys(given) == kept


@pytest.mark.parametrize("bad", ["Privileged", "volumes", "cap-add", "", "privileged ", "user", "*"])
def test_host_access_keys_refuses_unknown_keys_and_lists_the_valid_ones(bad: str) -> None:
    with pytest.raises(InvalidName) as info:
        names.host_access_keys(["privileged", bad])
    assert info.value.message == f"unknown host access key {bad!r}"
    assert info.value.status == 400
    assert all(key in info.value.hint for key in HOST_ACCESS_KEYS)


# -- token names ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["ci", "CI-Token", "alice@laptop", "deploy.bot_1", "a" * 64, "0"])
def test_token_name_accepts(value: str) -> None:
    assert names.token_name(value) == value


@pytest.mark.parametrize("value", ["", "@ci", "-ci", ".ci", "a" * 65, "a/b", "../x", *SHELL_NASTIES])
def test_token_name_rejects(value: str) -> None:
    err = _assert_invalid(names.token_name, value, "token name")
    assert "'@'" in err.hint
