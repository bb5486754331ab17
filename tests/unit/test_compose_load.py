"""Compose files load as people write them: every version, variables interpolated from the
environment's variables over the repository's `.env`, checked against the Compose schema (errors
name file, line and key path), and a warning for each valid key dockyard does not honour yet."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from dockyard.domain import compose_load, compose_schema, stack
from dockyard.domain.compose_yaml import MAX_YAML_CHARS, MAX_YAML_NODES, load_located
from dockyard.domain.dotenv import MAX_DOTENV_CHARS, parse_dotenv
from dockyard.domain.errors import InvalidSource
from dockyard.domain.interpolation import MAX_NESTING, InterpolationError, interpolate
from dockyard.domain.limits import MAX_ENV_FILE_BYTES
from tests.support import unlocated
from tests.unit.test_bounds import assert_linear, within

SOURCE = "docker-compose.yml"


def load(text: str, variables: dict[str, str] | None = None) -> compose_load.Compose:
    return compose_load.load(textwrap.dedent(text), source=SOURCE, variables=variables or {})


def refused(text: str, variables: dict[str, str] | None = None) -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        load(text, variables)
    return info.value


def stack_of(files: dict[str, str], variables: dict[str, str] | None = None) -> stack.Stack:
    files = {name: textwrap.dedent(text) for name, text in files.items()}
    return stack.commit_stack("shop", set(files), files.get, {}, {}, "localhost", (),
                              variables=variables or {})


# -- versions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["version: '2'\n", "version: '2.4'\n", "version: '3'\n", "version: '3.7'\n",
                                     "version: \"3.9\"\n", "version: 3.7\n", "version: 2\n", ""])
def test_every_version_loads(version: str) -> None:
    found = load(version + "services:\n  web:\n    image: nginx\n    ports: ['80']\n")
    assert list(found.doc["services"]) == ["web"]
    assert found.warnings == ()  # the version is informational, as in Compose v2


def test_a_version_of_the_wrong_shape_is_a_schema_violation() -> None:
    err = refused("version: [3]\nservices:\n  web:\n    image: nginx\n")
    assert err.message == f"{SOURCE} line 1: version: should be a string, not a list"


# -- interpolation, one string ------------------------------------------------------------------

VARS = {"A": "a", "EMPTY": "", "PORT": "8000", "B": "b"}


@pytest.mark.parametrize(
    "text,expected,missing",
    [
        ("plain text", "plain text", ()),
        ("$A", "a", ()),
        ("${A}", "a", ()),
        ("x${A}y$B.z", "xayb.z", ()),
        ("$A_B", "", ("A_B",)),  # the longest name, as in Compose
        ("${A}_B", "a_B", ()),
        ("$NOPE", "", ("NOPE",)),
        ("${NOPE}-${NOPE}-$OTHER", "--", ("NOPE", "OTHER")),
        # defaults: ':-' when unset or empty, '-' when unset
        ("${NOPE:-d}", "d", ()),
        ("${EMPTY:-d}", "d", ()),
        ("${A:-d}", "a", ()),
        ("${NOPE-d}", "d", ()),
        ("${EMPTY-d}", "", ()),
        ("${A-d}", "a", ()),
        ("${NOPE:-}", "", ()),
        # alternatives: ':+' when set and not empty, '+' when set
        ("${A:+alt}", "alt", ()),
        ("${EMPTY:+alt}", "", ()),
        ("${NOPE:+alt}", "", ()),
        ("${EMPTY+alt}", "alt", ()),
        ("${NOPE+alt}", "", ()),
        # required, and set
        ("${A:?needed}", "a", ()),
        ("${EMPTY?needed}", "", ()),
        # nested, as Compose allows
        ("${NOPE:-${B:-c}}", "b", ()),
        ("${NOPE:-${ALSO:-c}}", "c", ()),
        ("${A:-${NOPE}}", "a", ()),  # an unused default is not evaluated: no warning
        ("${A:-${NOPE:?never}}", "a", ()),
        ("${NOPE:-x${B}y$A}", "xbya", ()),
        ("${NOPE:-{a}}", "{a}", ()),
        ("${NOPE:-a}b}", "ab}", ()),
        ("http://$A:${PORT:-80}/x", "http://a:8000/x", ()),
        # $$ is a literal $, and a $ that starts no variable stays
        ("$$", "$", ()),
        ("$$A", "$A", ()),
        ("$${A}", "${A}", ()),
        ("$$$A", "$a", ()),
        ("cost: 5$", "cost: 5$", ()),
        ("$1 $- $ $. $}", "$1 $- $ $. $}", ()),
        ("${NOPE:-$}", "$", ()),
        ("a}b{c", "a}b{c", ()),
        ("é${A}ü", "éaü", ()),
    ],
)
def test_interpolation(text: str, expected: str, missing: tuple[str, ...]) -> None:
    assert interpolate(text, VARS) == (expected, missing)


@pytest.mark.parametrize(
    "text,variable,message",
    [
        ("${NOPE:?set NOPE first}", "NOPE", "required variable NOPE is not set: set NOPE first"),
        ("${NOPE?}", "NOPE", "required variable NOPE is not set"),
        ("${EMPTY:?must not be empty}", "EMPTY", "required variable EMPTY is empty: must not be empty"),
        ("${NOPE:?port ${PORT}}", "NOPE", "required variable NOPE is not set: port 8000"),
        ("${NOPE:-${ALSO:?inner}}", "ALSO", "required variable ALSO is not set: inner"),
    ],
)
def test_required_variables(text: str, variable: str, message: str) -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate(text, VARS)
    assert info.value.variable == variable
    assert info.value.message == message
    assert variable in info.value.hint and ".env" in info.value.hint


@pytest.mark.parametrize(
    "text,words",
    [
        ("${}", "is not a variable"),
        ("${1A}", "is not a variable"),
        ("${ A}", "is not a variable"),
        ("${A B}", "is not an operator"),
        ("${A:x}", "is not an operator"),
        ("${A/a/b}", "is not an operator"),
        ("${A", "is not an operator"),
        ("${A:-x", "is not closed"),
        ("${A:-${B}", "is not closed"),
    ],
)
def test_invalid_interpolation(text: str, words: str) -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate(text, VARS)
    assert words in info.value.message
    assert "$$" in info.value.hint


def test_a_value_that_expands_past_its_cap_is_refused() -> None:
    big = {"X": "x" * 1000}
    assert len(interpolate("$X" * 100, big, limit=100_000)[0]) == 100_000
    with pytest.raises(InterpolationError, match="expands to more than 100000 characters"):
        interpolate("$X" * 101, big, limit=100_000)
    with pytest.raises(InterpolationError, match="more than 10 characters"):
        interpolate("${NOPE:-0123456789x}", {}, limit=10)


def test_nesting_is_bounded() -> None:
    nested = "${A:-" * MAX_NESTING + "x" + "}" * MAX_NESTING
    assert interpolate(nested, {}) == ("x", ())
    with pytest.raises(InterpolationError, match=f"nested deeper than {MAX_NESTING} levels"):
        interpolate("${A:-" + nested + "}", {})


@pytest.mark.parametrize(
    "unit",
    ["$A", "${A}", "${NOPE:-x}", "$$", "${A:-${NOPE:-y}}", "plain ", "${NOPE:-{x}}", "$", "${NOPE:+a}"],
)
def test_interpolation_takes_linear_work(unit: str) -> None:
    assert_linear(lambda n: unit * n, lambda text: interpolate(text, VARS), n=500)


def test_a_long_default_is_scanned_once() -> None:
    # each level's default holds the next: a naive parser would rescan the tail at every level
    text = "${A:-" * MAX_NESTING + "x" * 200_000 + "}" * MAX_NESTING
    assert within(1.0, interpolate, text, {"A": "a"}) == ("a", ())  # the default is scanned, not evaluated
    assert within(1.0, interpolate, text, {}) == ("x" * 200_000, ())


# -- interpolation in the document --------------------------------------------------------------


def test_values_are_interpolated_and_keys_are_not() -> None:
    found = load("""\
        services:
          web:
            image: "nginx:${TAG:-1.25}"
            ports: ["${PORT}"]
            environment:
              $$KEY: "${GREETING:-hi} $$HOME"
              OTHER: 3
            labels:
              "$$NOT_A_VARIABLE": x
        """, {"PORT": "8000"})
    web = found.doc["services"]["web"]
    assert web["image"] == "nginx:1.25"
    assert web["ports"] == ["8000"]
    assert web["environment"] == {"$$KEY": "hi $HOME", "OTHER": 3}
    assert "$$NOT_A_VARIABLE" in web["labels"]


def test_an_unset_variable_becomes_empty_with_a_warning_naming_where() -> None:
    found = load("""\
        services:
          web:
            image: nginx
            command: ["echo", "$MISSING", "${MISSING}", "$OTHER"]
        """)
    assert found.doc["services"]["web"]["command"] == ["echo", "", "", ""]
    missing = [w for w in found.warnings if "is not set" in w]
    assert missing == [
        f"{SOURCE} line 4: services/web/command/1: the variable MISSING is not set, so it is replaced by an empty "
        "string (set it in the environment's variables or in .env, or give it a default: ${MISSING:-value})",
        f"{SOURCE} line 4: services/web/command/3: the variable OTHER is not set, so it is replaced by an empty "
        "string (set it in the environment's variables or in .env, or give it a default: ${OTHER:-value})",
    ]


def test_a_required_variable_names_file_line_key_and_variable() -> None:
    err = refused("""\
        services:
          web:
            image: nginx
            environment:
              DATABASE_URL: ${DATABASE_URL:?the database to use}
        """)
    assert err.message == (f"{SOURCE} line 5: services/web/environment/DATABASE_URL: required variable "
                           "DATABASE_URL is not set: the database to use")
    assert "DATABASE_URL" in err.hint


def test_an_invalid_interpolation_names_file_line_and_key() -> None:
    err = refused("services:\n  web:\n    image: nginx\n    command: ['echo', '${oops']\n")
    assert err.message.startswith(f"{SOURCE} line 4: services/web/command/1: ")
    assert "$$" in err.hint


def test_interpolation_stays_within_the_documents_character_bound() -> None:
    big = "x" * (MAX_YAML_CHARS // 8 - 100)
    items = ", ".join(["$BIG"] * 8)
    assert load(f"services:\n  web:\n    image: nginx\n    command: [{items}]\n", {"BIG": big})
    err = refused(f"services:\n  web:\n    image: nginx\n    command: [{items}, $BIG]\n", {"BIG": big})
    assert err.message.startswith(f"{SOURCE} line 4: services/web/command/8: the compose file expands to more than")


def test_variables_win_over_dotenv_and_dotenv_over_nothing() -> None:
    files = {
        "docker-compose.yml": """\
            services:
              web:
                image: "nginx:${TAG:-latest}"
                ports: ["${PORT:-8000}"]
                environment: {MODE: "${MODE-dev}"}
            """,
        ".env": "TAG=1.25\nPORT=9000\nMODE=staging\n",
    }
    (web,) = stack_of(files).services
    assert (web.image, web.port, web.environment) == ("nginx:1.25", 9000, (("MODE", "staging"),))
    (web,) = stack_of(files, {"PORT": "7000", "MODE": ""}).services
    assert (web.image, web.port, web.environment) == ("nginx:1.25", 7000, (("MODE", ""),))
    (web,) = stack_of({"docker-compose.yml": files["docker-compose.yml"]}).services
    assert (web.image, web.port, web.environment) == ("nginx:latest", 8000, (("MODE", "dev"),))


def test_dotenv_is_read_only_with_a_compose_file() -> None:
    reads: list[str] = []
    files = {"Dockerfile": "FROM alpine\nEXPOSE 80\n", ".env": "A=\"unclosed\n"}

    def read(path: str) -> str | None:
        reads.append(path)
        return files.get(path)

    from dockyard.domain.images import parse_dockerfile

    spec = parse_dockerfile("Dockerfile", files["Dockerfile"], "shop")
    found = stack.commit_stack("shop", set(files), read, {"Dockerfile": spec}, {"Dockerfile": "ref"}, "localhost", ())
    assert reads == [] and found.services[0].name == "web"


def test_an_oversized_dotenv_is_refused_by_its_name() -> None:
    files = {"compose.yaml": "services: {web: {image: nginx}}\n", ".env": "A=1\n" * (MAX_ENV_FILE_BYTES // 4 + 1)}
    with pytest.raises(InvalidSource, match=r"^\.env is \d+ bytes, more than the 256 KiB"):
        stack_of(files)


# -- .env, as Compose reads it ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("A=1\nB=2\n", {"A": "1", "B": "2"}),
        ("# a comment\n\n  \nA=1\n# another\n", {"A": "1"}),
        ("export A=1\nexport\tB=2\n", {"A": "1", "B": "2"}),
        ("A = spaced value  \n", {"A": "spaced value"}),
        ("A=value # a comment\nB=value#not a comment\n", {"A": "value", "B": "value#not a comment"}),
        ("A='single $B \\n # kept'\nB=x\n", {"A": "single $B \\n # kept", "B": "x"}),
        ('A="double\\nline \\"q\\" \\\\ \\t"\n', {"A": 'double\nline "q" \\ \t'}),
        ('A="multi\nline"\nB=after\n', {"A": "multi\nline", "B": "after"}),
        ('A="x" # comment after quotes\n', {"A": "x"}),
        ("A=1\nB=${A}2\nC=\"$A-${NOPE:-d}\"\nD='$A'\n", {"A": "1", "B": "12", "C": "1-d", "D": "$A"}),
        ('A=$$literal\nB="\\$literal"\n', {"A": "$literal", "B": "$literal"}),
        ("A:yaml style\n", {"A": "yaml style"}),
        ("A=\nB=''\nC=\"\"\n", {"A": "", "B": "", "C": ""}),
        ("URL=postgres://u:p@db:5432/x?a=b\n", {"URL": "postgres://u:p@db:5432/x?a=b"}),
        ("a.b-c[0]=x\nÉTÉ=été\n", {"a.b-c[0]": "x", "ÉTÉ": "été"}),
        ("A=1\nA=2\n", {"A": "2"}),
        ("INHERITED\nMISSING\n", {"INHERITED": "from the environment"}),
        ("", {}),
        ("A=no newline at the end", {"A": "no newline at the end"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ],
)
def test_dotenv(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text, {"INHERITED": "from the environment"}).variables == expected


def test_dotenv_sees_the_environments_variables_first() -> None:
    found = parse_dotenv("HOST=db\nURL=http://${HOST}:${PORT}/\n", {"HOST": "prod-db", "PORT": "5432"})
    assert found.variables["URL"] == "http://prod-db:5432/"


def test_dotenv_warns_of_unset_variables_by_line() -> None:
    found = parse_dotenv("A=1\n\nB=${NOPE}\nC=$NOPE\n", {})
    assert found.variables["B"] == found.variables["C"] == ""
    assert found.warnings == (".env line 3: B: the variable NOPE is not set: it is replaced by an empty string",)
    many = parse_dotenv("".join(f"A{i}=$V{i}\n" for i in range(100)), {})
    assert len(many.warnings) == 21 and many.warnings[-1] == ".env: 80 more unset variables not shown"


@pytest.mark.parametrize(
    "text,message",
    [
        ('A=1\nB="not closed\n', ".env line 2: the quoted value of B is not closed"),
        ("A=1\n\nB='x\\'\n", ".env line 3: the quoted value of B is not closed"),
        ("A=1\nBAD KEY=1\n", ".env line 2: unexpected character ' ' in variable name 'BAD KEY'"),
        ("A$=1\n", ".env line 1: unexpected character '$' in variable name 'A$'"),
        ("=value\n", ".env line 1: a line without a key"),
        ("A=${B:?needed}\n", ".env line 1: A: required variable B is not set: needed"),
        ("A=${}\n", ".env line 1: A: '${}' is not a variable"),
    ],
)
def test_dotenv_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidSource) as info:
        parse_dotenv(text, {})
    assert info.value.message.startswith(message)
    assert info.value.hint


def test_dotenv_expansion_is_bounded() -> None:
    line = "B=" + "$A" * 200 + "\n"
    text = "A=" + "x" * 1000 + "\n" + line * (MAX_DOTENV_CHARS // 200_000 + 1)
    with pytest.raises(InvalidSource, match="the values add up to more than"):
        within(2.0, parse_dotenv, text, {})


@pytest.mark.parametrize("unit", ["A{i}=x\n", "export A{i}='x'\n", 'A{i}="x\\n$B"\n', "# c\n", "A{i}=${{B:-x}}\n"])
def test_dotenv_takes_linear_work(unit: str) -> None:
    assert_linear(lambda n: "".join(unit.format(i=i) for i in range(n)), lambda t: parse_dotenv(t, {}), n=300)


# -- the schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,message",
    [
        ("    ports: {bad: 1}\n", "line 4: services/web/ports: should be a list, not a mapping"),
        ("    ports:\n      - {bad: 1}\n", "line 5: services/web/ports/0/bad: unknown key (not in the Compose specification)"),
        ("    hostnme: web\n", "line 4: services/web/hostnme: unknown key (not in the Compose specification)"),
        ("    restart: 3\n", "line 4: services/web/restart: should be a string, not a number"),
        ("    depends_on: {db: {}}\n", "line 4: services/web/depends_on/db: needs 'condition'"),
        ("    depends_on:\n      db: {condition: soon}\n",
         "line 5: services/web/depends_on/db/condition: should be one of 'service_started', 'service_healthy', "
         "'service_completed_successfully', not 'soon'"),
        ("    build: {context: ., bogus: 1}\n", "line 4: services/web/build/bogus: unknown key"),
        ("    environment: [A=1, A=1]\n", "line 4: services/web/environment: has 'A=1' more than once"),
        ("    cap_add: [NET_ADMIN, 3]\n", "line 4: services/web/cap_add/1: should be a string, not a number"),
        ("    healthcheck: {interval: [1]}\n", "line 4: services/web/healthcheck/interval: should be a string, not a list"),
    ],
)
def test_schema_violations_name_file_line_and_key(body: str, message: str) -> None:
    err = refused("services:\n  web:\n    image: nginx\n" + body + "  db:\n    image: postgres\n")
    assert err.message.startswith(f"{SOURCE} {message}"), err.message
    assert "Compose specification" in err.hint


def test_top_level_keys_are_checked_too() -> None:
    err = refused("services:\n  web: {image: nginx}\nnetwork:\n  front: {}\n")
    assert err.message == f"{SOURCE} line 3: network: unknown key (not in the Compose specification)"
    err = refused("services:\n  web: {image: nginx}\nvolumes:\n  'bad name': {}\n")
    assert err.message.startswith(f"{SOURCE} line 4: volumes/bad name: is not a valid name here")


def test_the_first_few_violations_are_given_in_file_order() -> None:
    body = "".join(f"    bad{i}: 1\n" for i in range(40))
    err = refused("services:\n  web:\n    image: nginx\n" + body + "    restart: 3\n")
    assert err.message.startswith(f"{SOURCE} line 4: services/web/bad0: unknown key (not in the Compose specification); "
                                  "line 5: services/web/bad1: unknown key (not in the Compose specification); "
                                  "line 6: services/web/bad2: unknown key")
    assert err.message.endswith(" (and 38 more)")
    many = "".join(f"    restart: {i}\n" if i == 0 else f"  s{i}:\n    image: 1\n" for i in range(30))
    err = refused("services:\n  web:\n    image: nginx\n" + many)
    assert err.message.endswith(f" (and at least {compose_schema.MAX_COLLECTED - 3} more)")
    assert len(err.message) < 1000


def test_merged_keys_are_located_where_they_are_written() -> None:
    err = refused("""\
        x-base: &base
          image: nginx
          restart: 3
        services:
          web:
            <<: *base
            ports: ["80"]
        """)
    assert err.message == f"{SOURCE} line 3: services/web/restart: should be a string, not a number"


def test_extension_keys_are_accepted_silently() -> None:
    found = load("""\
        x-defaults: &defaults
          image: nginx
        services:
          web:
            <<: *defaults
            x-team: shop
            ports:
              - target: 80
                x-note: routed
        """)
    assert found.warnings == ()
    assert found.doc["services"]["web"]["image"] == "nginx"


def test_the_schema_is_the_vendored_official_one() -> None:
    schema = compose_schema.validator().schema
    assert schema["$schema"] == "https://json-schema.org/draft-07/schema"
    assert schema["title"] == "Compose Specification"
    assert "hostname" in schema["definitions"]["service"]["properties"]


def test_unique_items_are_checked_in_linear_time() -> None:
    # jsonschema's own check compares every pair of unsortable items: 10 s for these ports
    ports = ", ".join(f"{{target: {i}}}" for i in range(3300))
    found = within(1.0, load, f"services:\n  web:\n    image: nginx\n    ports: [{ports}]\n")
    assert len(found.doc["services"]["web"]["ports"]) == 3300
    err = refused(f"services:\n  web:\n    image: nginx\n    ports: [{ports}, {{target: 7}}]\n")
    assert err.message == f"{SOURCE} line 4: services/web/ports: has \"{{'target': 7}}\" more than once"


def big_documents() -> dict[str, str]:
    n = MAX_YAML_NODES - 20
    mixed = ", ".join(str(i) if i % 2 else f'"p{i}"' for i in range(n))
    services = "".join(f"  s{i}:\n    image: x\n    command: [a, b]\n    depends_on: {{s0: {{condition: service_started}}}}\n"
                       for i in range(n // 14))
    keys = "".join(f"  s{i}:\n    image: x\n    init: true\n" for i in range(n // 7))
    return {
        "mixed ports": f"services:\n  web:\n    image: x\n    ports: [{mixed}]\n",
        "many services": "services:\n" + services,
        "many warnings": "services:\n" + keys,
        "long environment": "services:\n  web:\n    image: x\n    environment: [" + ", ".join(f"A{i}=1" for i in range(n)) + "]\n",
    }


@pytest.mark.parametrize("name", list(big_documents()))
def test_a_document_at_the_node_bound_loads_well_under_a_second(name: str) -> None:
    text = big_documents()[name]
    located = load_located(text)  # YAML alone is measured elsewhere (test_bounds)
    doc, _ = compose_load._substituted(located, SOURCE, {})
    assert within(0.6, compose_schema.violations, doc) == ([], False)
    found = within(1.5, load, text)
    assert len(found.warnings) <= compose_load.MAX_WARNINGS + 1


# -- warnings -----------------------------------------------------------------------------------

FULL = """\
    version: '3.8'
    name: shop
    x-common: &common
      restart: unless-stopped
    services:
      web:
        <<: *common
        build: {context: ., args: {NODE_ENV: production}, x-cache: on}
        container_name: shop-web
        hostname: web
        ports: ["8080:3000", "9229:9229"]
        expose: ["3000"]
        networks: [front]
        volumes: ["data:/var/lib/data", "/cache", {type: tmpfs, target: /tmp}, "/srv/www:/www:ro"]
        depends_on: {db: {condition: service_healthy, restart: true}}
        healthcheck: {test: ["CMD", "true"]}
        labels: {team: shop}
        user: "1000"
        x-owner: team-shop
      db:
        image: postgres
        ports: [{target: 5432, published: 5433, protocol: tcp}]
        env_file: [{path: db.env, required: false, format: raw}]
        deploy: {replicas: 2}
    networks:
      front: {}
    volumes:
      data: {}
    secrets:
      token: {external: true, driver: vault}
    """


def warnings_of(text: str) -> list[str]:
    return list(load(text).warnings)


def test_every_valid_key_dockyard_ignores_is_warned_about() -> None:
    merged = "the networks 'default', 'front' are merged into the app's one network: every service reaches every other"
    no_healthcheck = ("'db' has no healthcheck here: dockyard waits until it is ready as it would without one "
                      "(healthy if its image has a HEALTHCHECK, else running, or answering HTTP for a web service)")
    assert warnings_of(FULL) == [
        f"{SOURCE} line {line}: {path}: {why if why in (merged, no_healthcheck) else 'not honoured yet: ' + why}"
        for line, path, why in [
            (2, "name", "dockyard names the project after the app"),
            (14, "services/web/volumes/1", "the anonymous volume at '/cache' is not created; what the container "
                                          "writes there is lost when it is replaced"),
            (14, "services/web/volumes/2", "the tmpfs mount at '/tmp' is not made"),
            (15, "services/web/depends_on/db/condition", no_healthcheck),
            (15, "services/web/depends_on/db/restart", "dockyard ignores it for now"),
            (23, "services/db/env_file/0/format", "dockyard ignores it for now"),
            (25, "networks", merged),
            (30, "secrets/token/driver", "dockyard keeps every secret itself, sealed (dockyard secrets set)"),
        ]
    ]


def test_what_dockyard_honours_gives_no_warning() -> None:
    assert warnings_of("""\
        version: '2'
        services:
          web:
            build: {context: ., dockerfile: Dockerfile}
            ports: ["3000", {target: 3001}]
            environment: [A=1]
            env_file: [{path: a.env, required: false}]
            command: ["serve"]
            depends_on: {db: {condition: service_started}}
            volumes: ["/srv/www:/www:ro", {type: bind, source: /etc, target: /e}]
            privileged: false
            cap_add: []
            security_opt: [no-new-privileges]
          db:
            image: postgres
        """) == [f"{SOURCE} line 5: services/web/ports/1: not honoured yet: only the first port is routed, through "
                 "the proxy (the app's other services reach port 3001)"]


@pytest.mark.parametrize(
    "ports,why",
    [('"8080:3000"', None), ('"127.0.0.1:8080:3000/tcp"', None), ("{target: 3000, published: '8080'}", None),
     ('"[::1]:8080:3000"', None), ('"0.0.0.0:8080-8081:3000-3001"', None),
     ('"127.0.0.1::3000"', "not honoured yet: a random host port is not published (give one, such as '50011:3000')"),
     ("{target: 3000, host_ip: 127.0.0.1}", "not honoured yet: a random host port is not published (give one, such "
                                            "as '50011:3000')"),
     ('"10.1.2.3:8080:3000"', "not honoured yet: the host address '10.1.2.3' is not honoured: the port is published "
                              "on every interface (only 127.0.0.1 and ::1 narrow it)"),
     ('"5353:53/udp"', "published by Docker (udp), not through the proxy: the service is released stop-first (its "
                       "old container stops before the new one starts)"),
     ("{target: 25, published: 2525, mode: host}", "published by Docker (tcp), not through the proxy: the service is "
                                                   "released stop-first (its old container stops before the new one "
                                                   "starts)")],
)
def test_published_host_ports_are_honoured_and_what_differs_is_warned_about(ports: str, why: str | None) -> None:
    warnings = warnings_of(f"services:\n  web:\n    image: nginx\n    ports: [{ports}]\n")
    assert warnings == ([] if why is None else [f"{SOURCE} line 4: services/web/ports/0: {why}"])


def test_warnings_are_capped() -> None:
    services = "".join(f"  s{i}:\n    image: nginx\n    init: true\n    command: [$V{i}]\n" for i in range(60))
    warnings = warnings_of("services:\n" + services)
    assert len(warnings) == compose_load.MAX_WARNINGS + 1
    assert warnings[-1] == f"{SOURCE}: 70 more warnings not shown"
    assert sum("is not set" in w for w in warnings) == compose_load.MAX_WARNINGS  # variables come first


def test_stack_carries_the_warnings_and_services() -> None:
    found = stack_of({"docker-compose.yml": "services:\n  web:\n    image: nginx\n    init: true\n",
                      ".env": "A=${NOPE}\n"})
    assert [s.name for s in found.services] == ["web"]
    assert found.warnings == (
        ".env line 1: A: the variable NOPE is not set: it is replaced by an empty string",
        f"{SOURCE} line 4: services/web/init: not honoured yet: dockyard runs every container with an init process",
    )


def test_services_of_a_compose_file_keep_dockyards_own_checks() -> None:
    # the schema accepts these; dockyard's own rules still apply, with their usual messages
    for body, message in [
        ("web:\n    image: nginx\n    depends_on: [db]\n", "compose file: services/web/depends_on: unknown service 'db'"),
        ("Web:\n    image: nginx\n", "compose file: services/Web: invalid service name"),
        ("web:\n    image: nginx\n    privileged: true\n", "compose file: services/web/privileged: privileged: true"),
    ]:
        with pytest.raises(InvalidSource) as info:
            stack_of({"docker-compose.yml": "services:\n  " + body})
        assert unlocated(info.value.message).startswith(message), info.value.message
        assert info.value.message.startswith("docker-compose.yml line "), info.value.message  # file and line


def located_lines(text: str) -> dict[tuple[Any, ...], int]:
    found = load_located(text)
    return {parts: found.lines.line_of(parts) for parts in [
        ("services",), ("services", "web"), ("services", "web", "ports", 1), ("services", "web", "image"),
        ("services", "web", "nope", "deeper"), ("services", "db", "environment", "A"), ()]}


def test_key_lines_follow_aliases_and_merges() -> None:
    assert located_lines(textwrap.dedent("""\

        x-base: &b
          image: nginx
          environment: {A: 1}
        services:
          web:
            <<: *b
            ports:
              - "80"
              - 81
          db: *b
        """)) == {("services",): 5, ("services", "web"): 6, ("services", "web", "ports", 1): 10,
                  ("services", "web", "image"): 3, ("services", "web", "nope", "deeper"): 6,
                  ("services", "db", "environment", "A"): 4, (): 2}
