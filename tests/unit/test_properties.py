"""Properties of the parsers of pushed content, checked on generated input: they fail only with
dockyard's own errors, every failure names where (file and line, or the compose key path), and
what they return stays within bounds."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.domain import images, names, stack
from dockyard.domain.add_urls import add_urls, local_host, url_host
from dockyard.domain.compose_yaml import MAX_YAML_NODES, load_compose
from dockyard.domain.dockerfile_syntax import label_pairs
from dockyard.domain.errors import DockyardError, InvalidName, InvalidSource
from dockyard.domain.model import HOST_ACCESS_KEYS
from dockyard.domain.references import parse_reference
from dockyard.domain.shell_words import split_words

FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

# -- the Dockerfile -----------------------------------------------------------------------------

WORDS = [
    "FROM", "from", " AS ", "LABEL", "EXPOSE", "ADD", "RUN", "COPY", "#", "# VERSION ", "VERSION", "=", '"', "'", "\\",
    "\n", "\n", "\n", " ", "\t", "--platform=x ", "--checksum=sha256:1 ", "http://", "https://", "git@", "localhost",
    "127.0.0.1", "[::1]", "reg.example.com/a/b", "127.0.0.1:5100/other/x", "a/b", ":1.0", "@sha256:",
    "org.opencontainers.image.version", "[", "]", '", "', "${X}", "8080", "99999999", "/tcp", "1.2", "\r", "\x00",
]
dockerfile_texts = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), max_size=80).map("".join)


@FAST
@given(dockerfile_texts, st.sampled_from(["Dockerfile", "api/Dockerfile-x"]))
def test_dockerfile_parser_fails_only_with_a_located_error(text: str, path: str) -> None:
    lines = max(1, len(text.splitlines()))
    try:
        spec = images.parse_dockerfile(path, text, "shop", registry="127.0.0.1:5100")
    except InvalidSource as exc:
        assert exc.message.startswith(f"{path}: ") or exc.message.startswith(f"{path} line ")
        number = re.match(rf"{re.escape(path)} line (\d+):", exc.message)
        assert number is None or 1 <= int(number.group(1)) <= lines
        assert exc.hint
        return
    assert 1 <= len(spec.bases) <= lines
    assert len(spec.exposed_ports) <= len(text.split())
    assert all(0 < p < 65536 for p in spec.exposed_ports)
    assert spec.version is None or len(spec.version) <= 101


@FAST
@given(dockerfile_texts)
def test_add_urls_are_found_on_add_lines_only(text: str) -> None:
    lines = text.splitlines()
    for number, url in add_urls(text):
        assert 1 <= number <= len(lines)
        assert url in text
        assert lines[number - 1].lstrip().upper().startswith("ADD")


@FAST
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9.]{0,12}", fullmatch=True),
                       st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12), max_size=6),
       st.data())
def test_label_pairs_read_back_what_was_written(pairs: dict[str, str], data: Any) -> None:
    parts = []
    for key, value in pairs.items():
        style = data.draw(st.sampled_from(["double", "single", "bare"]))
        if style == "bare" and re.fullmatch(r"[A-Za-z0-9._-]+", value):
            parts.append(f"{key}={value}")
        elif style == "single" and "'" not in value:
            parts.append(f"{key}='{value}'")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{key}="{escaped}"')
    separator = data.draw(st.sampled_from([" ", "  ", "\t", " \t "]))
    assert label_pairs(separator.join(parts)) == pairs


@FAST
@given(st.text(max_size=300))
def test_label_pairs_never_fail(args: str) -> None:
    pairs = label_pairs(args)
    assert sum(len(k) + len(v) for k, v in pairs.items()) <= len(args)


@FAST
@given(st.ip_addresses())
def test_add_hosts_that_are_addresses_are_refused_exactly_when_local(address: Any) -> None:
    mapped = getattr(address, "ipv4_mapped", None) or address
    local = mapped.is_loopback or mapped.is_unspecified or mapped.is_link_local or mapped.is_private
    assert (local_host(str(address)) is not None) == local
    host = f"[{address}]" if address.version == 6 else str(address)
    assert (local_host(url_host(f"http://{host}:80/x") or "") is not None) == local


@FAST
@given(st.text(max_size=60))
def test_local_host_and_url_host_never_fail(text: str) -> None:
    local_host(text)
    url_host(text)
    url_host("http://" + text)


@FAST
@given(st.text(max_size=120))
def test_parse_reference_fails_only_with_value_error(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ValueError as exc:
        assert len(str(exc)) < 300
        return
    assert str(ref) == text


# -- the compose file -----------------------------------------------------------------------------

LOCATED = re.compile(r"compose file(: \S.*?: | line \d+: | is not valid YAML: line \d+| is \d+ bytes)", re.S)


def assert_located(exc: InvalidSource) -> None:
    assert LOCATED.match(exc.message), exc.message


YAML_WORDS = ["services:", "\n  ", "\n    ", "web:", "image:", " nginx", "build:", " .", "ports:", " [", "]", "{", "}",
              ",", "- ", "&a ", "*a", "&b ", "*b", "<<: ", "'", '"', ":", "#", "!!binary ", "!!set ", "1:2:3", "0x1F",
              "2020-13-45", "~", "null", "true", "\t", "\n", "env_file:", "depends_on:", "command:", "privileged: true",
              "volumes:", "/:/host", "\x07", "---\n"]
yaml_texts = st.lists(st.one_of(st.sampled_from(YAML_WORDS), st.text(max_size=6)), max_size=60).map("".join)


@FAST
@given(yaml_texts)
def test_compose_loader_fails_only_with_a_located_error(text: str) -> None:
    try:
        stack.compose_services("shop", text, {}, {}, lambda p: None, "localhost", ())
    except InvalidSource as exc:
        assert_located(exc)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["/var/run/docker.sock:/s", "./x:/y", "host", "8080:80",
                                                           "service:db", "seccomp=unconfined", "a=b", "nginx"]))
KEYS = ["image", "build", "ports", "expose", "environment", "env_file", "command", "depends_on", "privileged",
        "cap_add", "devices", "network_mode", "pid", "ipc", "userns_mode", "security_opt", "volumes", "context",
        "dockerfile", "target", "type", "source", "path", "required", "db", "web"]
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)
services = st.dictionaries(st.one_of(st.sampled_from(["web", "db", "api"]), st.text(max_size=6)),
                           st.dictionaries(st.sampled_from(KEYS), values, max_size=6), min_size=1, max_size=4)


@SLOW
@given(services, st.frozensets(st.sampled_from(HOST_ACCESS_KEYS)))
def test_compose_services_fail_only_with_a_located_error(body: dict[str, Any], allowed: frozenset[str]) -> None:
    text = yaml.safe_dump({"services": body})
    files = {"app.env": "A=1\n"}
    try:
        out = stack.compose_services("shop", text, {}, {}, files.get, "localhost", (), allowed)
    except InvalidSource as exc:
        assert_located(exc)
        return
    assert len(out) == len(body)
    for service in out:
        if service.privileged:
            assert "privileged" in allowed
        if any(":/" in b and "docker.sock" in b for b in service.binds):
            assert "docker_socket" in allowed


@st.composite
def anchored(draw: Any) -> str:
    """A document of anchored lists, each built from aliases of earlier ones."""
    count = draw(st.integers(1, 12))
    lines = []
    for i in range(count):
        refs = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=12)) if i else [None]
        items = ", ".join("x" if r is None else f"*a{r}" for r in refs)
        lines.append(f"k{i}: &a{i} [{items}]")
    return "\n".join(lines) + "\n"


def expanded(value: Any) -> int:
    """Nodes of a loaded document, every alias counted where it is used."""
    if isinstance(value, dict):
        return 1 + sum(expanded(k) + expanded(v) for k, v in value.items())
    if isinstance(value, list):
        return 1 + sum(expanded(v) for v in value)
    return 1


@FAST
@given(anchored())
def test_aliases_expand_within_the_node_bound(text: str) -> None:
    try:
        doc = load_compose(text)
    except InvalidSource as exc:
        assert re.match(r"compose file line \d+: this value expands to more than", exc.message)
        return
    assert expanded(doc) <= MAX_YAML_NODES


@FAST
@given(st.text(alphabet=" \t\n'\"\\ab$é", max_size=40))
def test_split_words_agrees_with_shlex(text: str) -> None:
    try:
        expected = shlex.split(text)
    except ValueError:
        try:
            split_words(text)
        except ValueError:
            return
        raise AssertionError(f"split_words accepted {text!r}, which shlex refuses")
    assert split_words(text) == expected


def rounds_by_rescanning(deps: list[list[int]]) -> tuple[list[int], list[int]]:
    """The quadratic algorithm in_rounds replaces: scan what is pending, round after round."""
    pending, done = list(range(len(deps))), []
    while pending:
        ready = [i for i in pending if all(0 <= d < len(deps) and d in done for d in deps[i])]
        if not ready:
            break
        done += ready
        pending = [i for i in pending if i not in ready]
    return done, pending


@FAST
@given(st.integers(0, 12).flatmap(
    lambda n: st.lists(st.lists(st.integers(-1, n - 1) if n else st.just(-1), max_size=3), min_size=n, max_size=n)))
def test_in_rounds_orders_as_the_rescanning_algorithm_did(deps: list[list[int]]) -> None:
    assert images.in_rounds(deps) == rounds_by_rescanning(deps)


# -- names --------------------------------------------------------------------------------------

NAME_CHECKS = [names.app_name, names.service_name, names.branch_name, names.domain_name, names.token_name]


@FAST
@given(st.sampled_from(NAME_CHECKS), st.one_of(st.text(max_size=300), st.from_regex(r"[a-z0-9.-]{1,70}", fullmatch=True)))
def test_name_checks_fail_only_with_invalid_name(check: Any, value: str) -> None:
    try:
        assert check(value) == value
    except InvalidName as exc:
        assert exc.message.startswith(("invalid ", "unknown ")) and exc.hint
        assert len(exc.message) < 300  # a long value is shown cut short
        return
    assert len(value) <= 253


@FAST
@given(st.lists(st.one_of(st.sampled_from(HOST_ACCESS_KEYS), st.text(max_size=10)), max_size=5))
def test_host_access_keys_fail_only_with_invalid_name(values: list[str]) -> None:
    try:
        keys = names.host_access_keys(values)
    except InvalidName as exc:
        assert "unknown host access key" in exc.message and exc.hint
        return
    except DockyardError as exc:  # pragma: no cover - a different error is a failure
        raise AssertionError(exc) from None
    assert set(keys) == set(values) and set(keys) <= set(HOST_ACCESS_KEYS)
