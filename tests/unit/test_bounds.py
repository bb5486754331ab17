"""Pushed content is parsed within bounds: sizes, YAML expansion, linear time, a bounded child
process for the server, whose last results a deploy reuses."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.domain import compose_yaml, images, limits, stack
from dockyard.domain.dockerfile_syntax import label_pairs
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.model import ServiceSpec
from dockyard.domain.shell_words import split_words
from dockyard.services import inspect
from tests.support import unlocated

# -- counting the work ------------------------------------------------------------------------


def lines_run(fn: Callable[..., Any], *args: Any) -> int:
    """How many lines of dockyard's domain code ``fn(*args)`` runs: a measure of the work that
    does not depend on the machine (work done inside a regex is linear by construction, see
    references.py and dockerfile_syntax.py, and is covered by the generous time bounds below)."""
    count = 0
    domain = images.__file__.rsplit("/", 1)[0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(domain) else None

    sys.settrace(calls)
    try:
        fn(*args)
    except DockyardError:
        pass
    finally:
        sys.settrace(None)
    return count


def assert_linear(make: Callable[[int], Any], run: Callable[[Any], Any], n: int = 2000) -> None:
    """Twice the input takes at most a little over twice the work."""
    small, large = lines_run(run, make(n)), lines_run(run, make(2 * n))
    assert small > 0
    assert large <= 2.2 * small, (small, large)


def within(seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn`` runs within ``seconds`` of this process's CPU time: a guard against work that grows
    out of bounds (quadratic, exponential), not a speed measure (bench/ measures speed), so other
    processes loading the machine do not fail it. Wall-clock time only catches a hang (10x)."""
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        assert time.process_time() - cpu < seconds
        assert time.perf_counter() - wall < 10 * seconds


# -- the Dockerfile in linear time ------------------------------------------------------------


def dockerfile(body: str) -> str:
    return f"FROM alpine\n{body}\nEXPOSE 80\n"


def test_a_64_kib_label_without_equals_is_parsed_quickly() -> None:
    text = dockerfile("LABEL " + "a" * 64 * 1024)
    spec = within(1.0, images.parse_dockerfile, "Dockerfile", text, "shop")  # was 2.3 s for 16 KiB
    assert spec.exposed_ports == (80,)
    assert spec.version is None


@pytest.mark.parametrize(
    "unit",
    [
        "a", "a=", "=", "a=b ", '"', '"a', "'a", '\\"', "\\", '"\\a', "'", 'a="b\\"', "\t", "a=b=c ", "==",
    ],
)
def test_label_pairs_take_linear_work(unit: str) -> None:
    assert_linear(lambda n: unit * n, label_pairs)
    # and a generous bound on 64 KiB of it, regex work included
    within(1.0, label_pairs, unit * (64 * 1024 // len(unit)))


@pytest.mark.parametrize(
    "unit",
    ["RUN a \\\n", "\\\n", "# c\n", "FROM x AS y\n", "ADD http://example.com/a /b\n", "LABEL a=b \\\n", "EXPOSE 1 \\\n",
     "ADD [\"http://x/\", \"/y\"]\n", "\n", "# example.com/a/b\n"],
)
def test_dockerfiles_take_linear_work(unit: str) -> None:
    assert_linear(lambda n: "FROM alpine\n" + unit * n + "\nEXPOSE 80\n",
                  lambda text: images.parse_dockerfile("Dockerfile", text, "shop"), n=500)


def test_many_chained_dockerfiles_are_ordered_in_linear_work() -> None:
    def chain(n: int) -> dict[str, str]:
        files = {}
        for i in range(n):
            base = f"reg.example.com/x/i{i - 1}" if i else "alpine"
            files[f"d{i:04}/Dockerfile"] = f"# reg.example.com/x/i{i}\nFROM {base}\n"
        return files

    order = images.discover(dict(reversed(list(chain(80).items()))), "shop")
    assert [s.basename for s in order] == [f"i{i}" for i in range(80)]
    assert_linear(chain, lambda files: images.build_order(
        [images.parse_dockerfile(p, t, "shop") for p, t in files.items()]), n=40)


def test_expose_with_a_huge_number_is_ignored_not_a_crash() -> None:
    spec = images.parse_dockerfile("Dockerfile", dockerfile("EXPOSE " + "9" * 5000 + " ²³ ٣"), "shop")
    assert spec.exposed_ports == (80,)


# -- sizes ------------------------------------------------------------------------------------


def test_a_dockerfile_over_its_limit_is_refused() -> None:
    text = dockerfile("RUN true\n" * (limits.MAX_DOCKERFILE_BYTES // 9))
    with pytest.raises(InvalidSource) as info:
        images.parse_dockerfile("api/Dockerfile", text, "shop")
    assert info.value.message.startswith("api/Dockerfile is ")
    assert "256 KiB" in info.value.message
    assert info.value.hint


def test_too_many_dockerfiles_are_refused_before_reading() -> None:
    paths = [f"d{i}/Dockerfile" for i in range(limits.MAX_DOCKERFILES + 1)]
    with pytest.raises(InvalidSource, match=f"at most {limits.MAX_DOCKERFILES} images"):
        images.find_dockerfiles(paths)
    assert len(images.find_dockerfiles(paths[:-1])) == limits.MAX_DOCKERFILES


def test_a_compose_file_over_its_limit_is_refused() -> None:
    text = "services: {web: {image: nginx}}\n" + "# padding\n" * (limits.MAX_COMPOSE_BYTES // 10)
    with pytest.raises(InvalidSource) as info:
        compose_yaml.load_compose(text)
    assert info.value.message.startswith("compose file is ")
    assert "256 KiB" in info.value.message


def test_an_env_file_over_its_limit_is_refused_naming_key_and_file() -> None:
    files = {"big.env": "A=1\n" * (limits.MAX_ENV_FILE_BYTES // 4 + 1)}
    with pytest.raises(InvalidSource) as info:
        stack.compose_services("shop", "services: {web: {image: nginx, env_file: [big.env]}}", {}, {},
                               files.get, "localhost", ())
    assert unlocated(info.value.message).startswith("compose file: services/web/env_file/0: big.env is ")
    assert "256 KiB" in info.value.message


def test_all_parsed_files_together_are_bounded() -> None:
    body = "FROM alpine\n" + "#" * (limits.MAX_DOCKERFILE_BYTES - 20) + "\n"
    files = {f"d{i}/Dockerfile": body for i in range(inspect.MAX_PARSED_BYTES // len(body) + 1)}
    with pytest.raises(InvalidSource, match="add up to more than 16 MiB"):
        inspect.parse_source(list(files), lambda p, limit: files.get(p), "shop", base_domain="localhost")


# -- YAML within bounds -----------------------------------------------------------------------

LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
services: {web: {image: nginx, environment: *i}}
"""


def test_billion_laughs_is_refused_before_it_is_built() -> None:
    assert len(LAUGHS) < 500
    with pytest.raises(InvalidSource) as info:
        within(2.0, stack.compose_services, "shop", LAUGHS, {}, {}, lambda p: None, "localhost", ())
    assert info.value.message.startswith("compose file line 5: this value expands to more than 10000 YAML nodes")
    assert "alias" in info.value.hint


def test_aliases_of_a_long_string_count_their_characters() -> None:
    long = "x" * 200_000
    text = f"big: &s {long}\nservices: {{web: {{image: nginx, command: [{', '.join(['*s'] * 8)}]}}}}\n"
    with pytest.raises(InvalidSource, match=r"compose file line 2: .* KiB of text"):
        compose_yaml.load_compose(text)
    # used a few times it is fine
    doc = compose_yaml.load_compose(f"big: &s {long}\nservices: {{web: {{image: nginx, command: [*s, *s]}}}}\n")
    assert doc["services"]["web"]["command"] == [long, long]


def test_a_document_at_the_node_limit_loads() -> None:
    items = ", ".join("x" for _ in range(compose_yaml.MAX_YAML_NODES - 3))
    assert len(compose_yaml.load_compose(f"k: [{items}]")["k"]) == compose_yaml.MAX_YAML_NODES - 3
    with pytest.raises(InvalidSource, match="compose file line 1: this value expands"):
        compose_yaml.load_compose(f"k: [{items}, y, z]")


@pytest.mark.parametrize(
    "text,message",
    [
        ("a: &a [*a]\n", "compose file line 1: an alias refers to the value that contains it"),
        ("a:\n  b: &a {c: *a}\n", "compose file line 2: an alias refers to the value that contains it"),
        ("a: " + "[" * 70 + "]" * 70 + "\n", "compose file line 1: values are nested deeper than 64 levels"),
        ("- " * 70 + "x\n", "compose file line 1: values are nested deeper than 64 levels"),
        ("a: " + "[" * 2000 + "]" * 2000 + "\n", "compose file is not valid YAML: line 1, column"),
        ("\n\na: 1" + ":1" * 50_000 + "\n", "compose file line 3: the number"),
        ("a: " + "1" * 5000 + "\n", "compose file line 1: the number"),
        ("x: 1\na: 2020-13-45\n", "compose file line 2: '2020-13-45' is not a date"),
        ("a: 1\nb: \x07\n", "compose file is not valid YAML: line 2: character #x0007 is not allowed"),
        ("a: [\n", "compose file is not valid YAML: line 2, column 1"),
        ("a: *nope\n", "compose file is not valid YAML: line 1, column 4: found undefined alias"),
        ("a: !!python/object:os.system x\n", "compose file is not valid YAML: line 1"),
        ("---\na: 1\n---\nb: 2\n", "compose file is not valid YAML: line 3"),
        ("{[a]: 1}\n", "compose file is not valid YAML: line 1"),
    ],
)
def test_yaml_that_is_refused_names_its_line(text: str, message: str) -> None:
    with pytest.raises(InvalidSource) as info:
        within(2.0, compose_yaml.load_compose, text)
    assert info.value.message.startswith(message)
    assert info.value.hint


def test_quoted_long_numbers_and_dates_are_strings() -> None:
    doc = compose_yaml.load_compose(f"a: '{'1' * 5000}'\nb: '2020-13-45'\nc: 8080\nd: 2024-01-02\n")
    assert doc["a"] == "1" * 5000 and doc["b"] == "2020-13-45" and doc["c"] == 8080
    assert str(doc["d"]) == "2024-01-02"


def test_merge_keys_and_reused_anchors_still_work() -> None:
    services = stack.compose_services("shop", textwrap.dedent("""\
        x-base: &base {image: nginx, environment: {A: "1"}}
        services:
          web: {<<: *base, ports: ["80"]}
          worker: *base
        """), {}, {}, lambda p: None, "localhost", ())
    assert {s.name: s.environment for s in services} == {"web": (("A", "1"),), "worker": (("A", "1"),)}


@pytest.mark.parametrize(
    "unit",
    ["- a\n", "a{i}: b\n", "a{i}: &x{i} [1, 2]\n", "'a{i}': \"b\"\n", "a{i}: |\n  text\n"],
)
def test_compose_loading_takes_linear_work(unit: str) -> None:
    assert_linear(lambda n: "".join(unit.format(i=i) for i in range(n)), compose_yaml.load_compose, n=300)


def test_commands_split_in_linear_work() -> None:
    for unit in ("a", "a ", "'a' ", '"a\\"b" ', "\\a", '"\\x'):
        assert_linear(lambda n, u=unit: u * n, split_words)
    long = within(1.0, split_words, "x" * 256 * 1024)  # shlex.split takes seconds
    assert long == ["x" * 256 * 1024]


def test_start_order_of_a_long_chain_takes_linear_work() -> None:
    def chain(n: int) -> list[Any]:
        return [ServiceSpec(name=f"s{i}", image="x", depends_on=(f"s{i + 1}",) if i + 1 < n else ())
                for i in range(n)]

    assert [s.name for s in stack.start_order(chain(5))] == ["s4", "s3", "s2", "s1", "s0"]
    assert_linear(chain, stack.start_order, n=1000)


# -- the child process ------------------------------------------------------------------------

SITE = {"Dockerfile": "FROM alpine\nEXPOSE 8000\n", "Dockerfile-api": "FROM alpine\nEXPOSE 9000\n",
        "app.env": "GREETING=hi\n",
        "compose.yaml": "services:\n  web: {build: ., ports: ['8000'], env_file: app.env}\n"
                        "  api: {build: {context: ., dockerfile: Dockerfile-api}}\n"}


def read_from(files: dict[str, str]) -> Callable[[str, int], str | None]:
    def read(path: str, limit: int) -> str | None:
        text = files.get(path)
        if text is not None and len(text) > limit:
            raise limits.too_large(path, len(text), limit)
        return text

    return read


@pytest.fixture(autouse=True)
def no_spare_left() -> Any:
    yield
    inspect.shutdown()


def test_the_child_parses_what_the_server_would() -> None:
    read = read_from(SITE)
    here = inspect.parse_source(list(SITE), read, "shop", base_domain="localhost")
    there = inspect.inspect_source(list(SITE), read, "shop", base_domain="localhost")
    assert there == here
    assert [s.dockerfile for s in there.images] == ["Dockerfile", "Dockerfile-api"]
    web = next(s for s in there.services if s.name == "web")
    assert web.image == inspect.placeholder("Dockerfile") == "dockyard-build://Dockerfile"
    assert web.environment == (("GREETING", "hi"),)
    # a second call is served by the spare started after the first
    assert inspect.inspect_source(list(SITE), read, "shop", base_domain="localhost") == here


def test_the_childs_errors_are_the_parsers_errors() -> None:
    files = {**SITE, "compose.yaml": "services:\n  web: {build: ., depends_on: [db]}\n"}
    with pytest.raises(InvalidSource, match=r"line \d+: services/web/depends_on: unknown service 'db'"):
        inspect.inspect_source(list(files), read_from(files), "shop", base_domain="localhost")
    with pytest.raises(InvalidSource, match="compose file line 5: this value expands"):
        inspect.inspect_source(["Dockerfile", "compose.yaml"], read_from({**SITE, "compose.yaml": LAUGHS}), "shop",
                               base_domain="localhost")


def test_an_env_file_too_large_is_refused_by_the_server_side_read() -> None:
    files = {**SITE, "app.env": "A=1\n" * (limits.MAX_ENV_FILE_BYTES // 4 + 1)}
    with pytest.raises(InvalidSource, match=r"app\.env is .* more than the 256 KiB"):
        inspect.inspect_source(list(files), read_from(files), "shop", base_domain="localhost")


def heaviest_push() -> dict[str, str]:
    """The most a push can make dockyard parse: Dockerfiles at their limit, up to the total."""
    body = "FROM alpine\n" + ("RUN echo " + "a" * 100 + " \\\n") * 2300 + "EXPOSE 80\n"
    assert len(body) <= limits.MAX_DOCKERFILE_BYTES
    files = {f"d{i:02}/Dockerfile": body for i in range(inspect.MAX_PARSED_BYTES // len(body) - 1)}
    files["Dockerfile"] = "FROM alpine\nEXPOSE 80\n"
    return files


def test_the_heaviest_push_parses_within_the_default_bounds() -> None:
    files = heaviest_push()
    found = within(30.0, inspect.inspect_source, list(files), read_from(files), "shop", base_domain="localhost")
    assert len(found.images) == len(files)


def test_a_parse_over_its_time_is_stopped_with_a_clear_error() -> None:
    files = heaviest_push()
    with pytest.raises(InvalidSource) as info:
        within(5.0, inspect.inspect_source, list(files), read_from(files), "shop", base_domain="localhost",
               limits=inspect.Limits(seconds=0.01))
    assert info.value.message == "parsing the pushed files took longer than 0.01 s"
    assert "simplify" in info.value.hint


@pytest.mark.parametrize("megabytes", [1, 64])
def test_a_parse_over_its_memory_is_stopped_with_a_clear_error(megabytes: int) -> None:
    files = heaviest_push()
    with pytest.raises(InvalidSource) as info:
        within(10.0, inspect.inspect_source, list(files), read_from(files), "shop", base_domain="localhost",
               limits=inspect.Limits(megabytes=megabytes))
    assert info.value.message == f"parsing the pushed files needed more than {megabytes} MB of memory"


def test_with_references_replaces_placeholders_only() -> None:
    found = inspect.parse_source(list(SITE), read_from(SITE), "shop", base_domain="localhost")
    refs = {"Dockerfile": "reg/shop/shop@sha256:1", "Dockerfile-api": "reg/shop/shop-api@sha256:2"}
    services = {s.name: s.image for s in inspect.with_references(found.services, refs)}
    assert services == {"web": "reg/shop/shop@sha256:1", "api": "reg/shop/shop-api@sha256:2"}
    external = ServiceSpec(name="db", image="postgres:16")
    assert inspect.with_references((external,), refs) == (external,)
    with pytest.raises(DockyardError, match="no image was built from Dockerfile-api"):
        inspect.with_references(found.services, {"Dockerfile": "x"})


def test_warm_starts_the_spare_that_the_next_parse_uses() -> None:
    inspect._recent.clear()
    inspect.warm()
    spare = inspect._spares._spare
    assert spare is not None and spare.proc.poll() is None
    inspect.inspect_source(list(SITE), read_from(SITE), "shop", base_domain="localhost")
    assert spare.proc.poll() is not None  # used once, then stopped
    assert inspect._spares._spare is not spare


def test_a_parse_of_the_same_files_is_answered_from_the_last_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """The push's check and its deploy parse the same files: the deploy takes the check's result,
    unless a file the child read on demand (an env file) reads differently now."""
    inspect._recent.clear()
    first = inspect.inspect_source(list(SITE), read_from(SITE), "shop", base_domain="localhost")

    def no_child(limits: inspect.Limits) -> Any:
        raise AssertionError("parsed again")

    with monkeypatch.context() as m:
        m.setattr(inspect._spares, "take", no_child)
        assert inspect.inspect_source(list(SITE), read_from(SITE), "shop", base_domain="localhost") == first
        with pytest.raises(AssertionError, match="parsed again"):  # another environment's variables
            inspect.inspect_source(list(SITE), read_from(SITE), "shop", base_domain="localhost", variables={"A": "1"})
        with pytest.raises(AssertionError, match="parsed again"):  # the env file the child asked for changed
            inspect.inspect_source(list(SITE), read_from({**SITE, "app.env": "GREETING=bye\n"}), "shop",
                                   base_domain="localhost")
    changed = inspect.inspect_source(list(SITE), read_from({**SITE, "app.env": "GREETING=bye\n"}), "shop",
                                     base_domain="localhost")
    assert changed != first
