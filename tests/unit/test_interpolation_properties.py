"""Properties of interpolation, `.env` reading and compose loading, checked on generated input:
they fail only with dockyard's own errors (located: file and line, or key path), text without `$`
is left as it is, `$$` reads back as `$`, defaults and alternatives behave as Compose documents
them, and the work and the result stay within bounds."""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dockyard.domain import compose_load, stack
from dockyard.domain.dotenv import parse_dotenv
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.interpolation import InterpolationError, interpolate
from tests.unit.test_bounds import lines_run

FAST = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
variables = st.dictionaries(names, st.text(max_size=8), max_size=5)
TOKENS = ["$", "$$", "${", "}", "{", ":-", "-", ":?", "?", ":+", "+", "A", "B", "_x", "1", " ", "\n", "é", "${A}",
          "${B:-", "$A", "${A:?no}", "${NOPE-d}", "$$A", "\\"]
templates = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=40).map("".join)
plain = st.text(alphabet=st.characters(blacklist_characters="$", blacklist_categories=["Cs"]), max_size=60)


# -- interpolation of one string ----------------------------------------------------------------


@FAST
@given(plain, variables)
def test_text_without_a_dollar_is_left_as_it_is(text: str, values: dict[str, str]) -> None:
    assert interpolate(text, values) == (text, ())


@FAST
@given(st.text(max_size=60), variables)
def test_doubled_dollars_read_back_as_written(text: str, values: dict[str, str]) -> None:
    assert interpolate(text.replace("$", "$$"), values) == (text, ())


@FAST
@given(names, st.one_of(st.none(), st.text(max_size=8)), plain.filter(lambda t: not set(t) & set("{}")))
def test_defaults_alternatives_and_requirements_behave_as_compose_documents(
    name: str, value: str | None, word: str
) -> None:
    values = {} if value is None else {name: value}
    is_set, filled = value is not None, bool(value)
    assert interpolate(f"${{{name}:-{word}}}", values)[0] == (value if filled else word)
    assert interpolate(f"${{{name}-{word}}}", values)[0] == (value if is_set else word)
    assert interpolate(f"${{{name}:+{word}}}", values)[0] == (word if filled else "")
    assert interpolate(f"${{{name}+{word}}}", values)[0] == (word if is_set else "")
    assert interpolate(f"${{{name}}}", values) == interpolate(f"${name}", values) == (
        (value, ()) if is_set else ("", (name,)))
    for op, fails in ((":?", not filled), ("?", not is_set)):
        try:
            assert interpolate(f"${{{name}{op}{word}}}", values)[0] == value
            assert not fails
        except InterpolationError as exc:
            assert fails and exc.variable == name


@FAST
@given(names, names, st.one_of(st.none(), st.text(max_size=5)), plain.filter(lambda t: not set(t) & set("{}")))
def test_nested_defaults_are_the_defaults_of_the_defaults(outer: str, inner: str, value: str | None, word: str) -> None:
    assume(outer != inner)
    values = {} if value is None else {inner: value}
    assert interpolate(f"${{{outer}:-${{{inner}:-{word}}}}}", values)[0] == (value or word)


@FAST
@given(templates, variables)
def test_interpolation_fails_only_with_its_own_error_and_stays_within_its_cap(text: str, values: dict[str, str]) -> None:
    try:
        result, missing = interpolate(text, values, limit=50)
    except InterpolationError as exc:
        assert exc.message and exc.hint and len(exc.message) < 400
        return
    assert len(result) <= 50
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m) and m not in values for m in missing)
    assert len(set(missing)) == len(missing)


@SLOW
@given(templates, variables)
def test_interpolation_work_is_linear_in_the_text(text: str, values: dict[str, str]) -> None:
    def run() -> None:
        try:
            interpolate(text, values)
        except InterpolationError:
            pass

    assert lines_run(run) <= 30 * len(text) + 30


# -- .env ---------------------------------------------------------------------------------------

DOTENV_TOKENS = ["A", "B_1", "=", ":", "export ", "#", " #", "'", '"', "\\", "\\n", "\n", "\n", " ", "\t", "${A}",
                 "$B_1", "${NOPE:-x}", "${X:?e}", "$$", "é", "\r\n", "-", "."]
dotenv_texts = st.lists(st.one_of(st.sampled_from(DOTENV_TOKENS), st.text(max_size=4)), max_size=50).map("".join)


@FAST
@given(dotenv_texts, variables)
def test_dotenv_fails_only_with_an_error_naming_its_line(text: str, environment: dict[str, str]) -> None:
    try:
        found = parse_dotenv(text, environment)
    except InvalidSource as exc:
        line = re.match(r"\.env line (\d+): ", exc.message)
        assert line and 1 <= int(line.group(1)) <= text.count("\n") + 1, exc.message
        assert exc.hint
        return
    assert all(k.strip() == k and k for k in found.variables)
    assert all(w.startswith(".env line ") for w in found.warnings)


@FAST
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                       st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\\"),
                               max_size=12), max_size=6))
def test_dotenv_single_quoted_values_read_back(pairs: dict[str, str]) -> None:
    pairs = {k: v for k, v in pairs.items() if "'" not in v}
    text = "".join(f"{k}='{v}'\n" for k, v in pairs.items())
    assert parse_dotenv(text, {}).variables == pairs


# -- loading ------------------------------------------------------------------------------------

LOCATED = re.compile(r"(compose file|docker-compose\.yml)(: \S.*?: | line \d+: | is not valid YAML: line \d+| is \d+ bytes)",
                     re.S)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 70000), st.text(max_size=10), templates,
                    st.sampled_from(["8080:80", "${PORT:-8000}", "$$HOME", "nginx:${TAG}", "${REQ:?needed}", "web",
                                     "service_started", "data:/data", "/x:/y", "x=${A}", "$"]))
KEYS = ["image", "build", "ports", "expose", "environment", "env_file", "command", "depends_on", "hostname",
        "container_name", "networks", "volumes", "restart", "healthcheck", "labels", "x-note", "condition", "target",
        "published", "context", "dockerfile", "path", "required", "bogus", "version", "db"]
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)
bodies = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
wild = st.fixed_dictionaries(
    {"services": st.dictionaries(st.sampled_from(["web", "db", "api"]), bodies, min_size=1, max_size=3)},
    optional={"version": st.sampled_from(["2", "3.7", 3.7, 2, "3"]), "x-common": values, "networks": values,
              "name": scalars})
words = st.sampled_from(["a", "b c", "${A}", "$$HOME", "${NOPE:-x}", "${PORT}", "x=${TAG:-1}", "$B", "é"])
valid_bodies = st.fixed_dictionaries(
    {"image": st.sampled_from(["nginx", "nginx:${TAG:-1.25}", "redis:7", "${IMAGE:-busybox}"])},
    optional={
        "ports": st.lists(st.sampled_from(["80", "8080:80", "${PORT:-8000}", 3000, "127.0.0.1:81:80", "9229"]),
                          unique=True, max_size=3),
        "environment": st.one_of(
            st.dictionaries(names, st.one_of(st.none(), st.booleans(), st.integers(0, 99), words, templates), max_size=4),
            st.lists(words.map(lambda w: "K=" + w), unique=True, max_size=3)),
        "command": st.one_of(words, st.lists(words, max_size=3)),
        "hostname": names, "container_name": names,
        "restart": st.sampled_from(["no", "always", "unless-stopped", "${RESTART:-always}"]),
        "x-note": values,
    })
valid = st.fixed_dictionaries(
    {"services": st.dictionaries(st.sampled_from(["web", "db", "api"]), valid_bodies, min_size=1, max_size=3)},
    optional={"version": st.sampled_from(["2", "2.4", "3", "3.7", 3.7]), "x-common": values})
documents = st.one_of(wild, valid)


@SLOW
@given(documents, variables)
def test_loading_fails_only_with_a_located_dockyard_error(doc: dict[str, Any], environment: dict[str, str]) -> None:
    text = yaml.safe_dump(doc)
    files = {"docker-compose.yml": text, "app.env": "A=1\n", ".env": "PORT=8000\nTAG=1\n"}
    try:
        found = stack.commit_stack("shop", set(files), files.get, {}, {}, "localhost", (), variables=environment)
    except InvalidSource as exc:
        assert LOCATED.match(exc.message), exc.message
        assert len(exc.message) < 2000
        return
    except DockyardError as exc:  # pragma: no cover - any other error is a failure
        raise AssertionError(exc) from None
    assert {s.name for s in found.services} == set(doc["services"])
    assert len(found.warnings) <= compose_load.MAX_WARNINGS + 1
    assert all(re.match(r"(docker-compose\.yml|\.env)( line \d+)?: ", w) for w in found.warnings)


@SLOW
@given(documents)
def test_loading_leaves_keys_and_dollar_free_values_as_they_are(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc)
    try:
        found = compose_load.load(text)
    except InvalidSource:
        return
    raw = yaml.safe_load(text)

    def same(loaded: Any, written: Any) -> None:
        if isinstance(written, dict):
            assert list(loaded) == [compose_load.key_text(k) for k in written]
            for k, v in written.items():
                same(loaded[compose_load.key_text(k)], v)
        elif isinstance(written, list):
            assert len(loaded) == len(written)
            for a, b in zip(loaded, written, strict=True):
                same(a, b)
        elif not isinstance(written, str) or "$" not in written:
            assert loaded == written

    version = raw.pop("version", None)
    same({k: v for k, v in found.doc.items() if k != "version"}, raw)
    assert found.doc.get("version") == (None if version is None else str(version))  # informational, a string
