"""dockyard.yml, the app's configuration as code: the documented example loads and says what it
says, every refusal names file, line and key path (and never quotes a secret's value), the YAML
stays within the compose loader's bounds, conflicts with `dockyard env set` are reported, and
generated declarations round-trip while generated garbage fails only with dockyard's own error."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dockyard.domain import compose_schema, dockyard_file, limits
from dockyard.domain.compose_yaml import MAX_YAML_DEPTH, MAX_YAML_NODES
from dockyard.domain.dockyard_file import (
    LOCAL,
    SCHEMA_FILE,
    DockyardFile,
    EnvironmentDecl,
    HealthDecl,
    PortMapping,
    RouteDecl,
    ServiceDecl,
    conflicts,
    duration,
    load,
    missing_secrets,
)
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.model import ServiceSpec
from tests.unit.test_bounds import assert_linear, within

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dockyard.yml"
SEED_COMPOSE = ROOT / "examples" / "seed" / "docker-compose.yml"

FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def dump(doc: Any, **options: Any) -> str:
    """YAML text of a document, as libyaml writes it (and as fast)."""
    text: str = yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), **options)
    return text


def refused(text: str, source: str = "dockyard.yml") -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        load(textwrap.dedent(text), source)
    assert info.value.hint
    return info.value


def seconds(n: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=n)


# -- the example ----------------------------------------------------------------------------------


def test_the_example_loads_and_declares_the_seed_stack() -> None:
    declared = load(EXAMPLE.read_text())
    assert [e.name for e in declared.environments] == ["recette", "production"]
    assert declared.targets == (LOCAL,)
    recette, production = declared.environments
    assert (recette.target, recette.branch) == ("local", "develop")
    assert (production.target, production.branch) == ("local", "main")

    assert dict(recette.variables)["MONGODB_DB"] == "crigen_recette"
    assert dict(production.variables)["MONGODB_DB"] == "crigen"
    assert dict(recette.variables)["MONGODB_DEBUG"] == "true"
    assert dict(production.variables)["MONGODB_DEBUG"] == "false"
    assert recette.secrets == production.secrets == ("MONGODB_PASSWORD",)
    assert all("MONGODB_PASSWORD" not in dict(e.variables) for e in declared.environments)

    assert production.routes == (
        RouteDecl("www.crigen.example.com", "vitrine1", 3001),
        RouteDecl("api.crigen.example.com", "api1", 8894),
        RouteDecl("supervision.crigen.example.com", "supervision1", 3001),
    )
    assert recette.routes == (RouteDecl("recette.crigen.example.com", "vitrine1", 3001),)

    remaps = {s.name: s.ports for s in recette.services}
    assert remaps == {
        "vitrine1": (PortMapping(50001, 51001),), "vitrine2": (PortMapping(50002, 51002),),
        "api1": (PortMapping(50011, 51011),), "api2": (PortMapping(50012, 51012),),
        "supervision1": (PortMapping(50021, 51021),), "supervision2": (PortMapping(50022, 51022),),
    }
    assert all(s.ports == () for s in production.services)

    shared = HealthDecl("/health", 200, seconds(10), seconds(2))
    vitrine1 = production.service("vitrine1")
    assert vitrine1 == ServiceDecl("vitrine1", replicas=1, health=shared)
    api1 = production.service("api1")
    assert api1 is not None and api1.health == HealthDecl("/health", 200, seconds(10), seconds(5))  # merged, then changed
    assert recette.service("vitrine1") == ServiceDecl("vitrine1", health=shared, ports=(PortMapping(50001, 51001),))
    assert production.service("mongodb-master") == ServiceDecl("mongodb-master", stateful=True)  # stop-first


def test_the_example_follows_the_schema_alone() -> None:
    schema = json.loads(resources.files("dockyard.domain").joinpath(f"schemas/{SCHEMA_FILE}").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft-07/schema"
    doc = yaml.safe_load(EXAMPLE.read_text())
    for service in doc["environments"]["recette"]["services"].values():  # JSON keys are strings
        service["ports"] = {str(k): v for k, v in service.get("ports", {}).items()}
    assert compose_schema.violations(doc, SCHEMA_FILE, "dockyard.yml's schema") == ([], False)


def test_the_example_names_the_seed_compose_services_and_ports() -> None:
    """The example speaks of the seed's compose file: its services, published host ports and
    container ports."""
    compose = yaml.safe_load(SEED_COMPOSE.read_text())["services"]
    published = {int(p.split(":")[0]): name for name, s in compose.items() for p in s.get("ports", [])}
    container = {name: {int(p.split(":")[1]) for p in s.get("ports", [])} for name, s in compose.items()}
    declared = load(EXAMPLE.read_text())
    for env in declared.environments:
        for service in env.services:
            assert service.name in compose
            for mapping in service.ports:
                assert published[mapping.compose] == service.name
                assert mapping.published not in published
        for route in env.routes:
            assert route.port in container[route.service]


def test_the_example_is_documented_line_by_line() -> None:
    text = EXAMPLE.read_text()
    for key in ("targets:", "type:", "environments:", "target:", "branch:", "variables:", "secrets:", "routes:",
                "services:", "replicas:", "health:", "ports:", "path:", "status:", "interval:", "timeout:"):
        line = next(line for line in text.splitlines() if line.strip().startswith(key))
        index = text.splitlines().index(line)
        above = text.splitlines()[index - 1].strip()
        assert "#" in line or above.startswith("#"), key
    assert "dockyard secrets set" in text


def test_the_readme_excerpt_loads() -> None:
    section = (ROOT / "README.md").read_text().split("## dockyard.yml\n", 1)[1]
    excerpt = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    declared = load(excerpt)
    assert [e.name for e in declared.environments] == ["recette", "production"]
    recette = declared.environments[0]
    assert recette.services[0].ports == (PortMapping(50011, 51011),)


# -- refusals name file, line and key path ----------------------------------------------------------

ENV = "environments:\n  production:\n"


@pytest.mark.parametrize(
    "body,message",
    [
        # unknown keys, at every level
        ("    bogus: 1\n", "line 3: environments/production/bogus: unknown key (not in dockyard.yml's schema)"),
        ("    services:\n      web:\n        replica: 2\n",
         "line 5: environments/production/services/web/replica: unknown key (not in dockyard.yml's schema)"),
        ("    services:\n      web:\n        health: {path: /h, retries: 3}\n",
         "line 5: environments/production/services/web/health/retries: unknown key"),
        # wrong types
        ("    variables:\n      PORT: 8080\n", "line 4: environments/production/variables/PORT: should be a string, not a number"),
        ("    variables:\n      DEBUG: true\n", "line 4: environments/production/variables/DEBUG: should be a string, not true or false"),
        ("    variables: [A=1]\n", "line 3: environments/production/variables: should be a mapping, not a list"),
        ("    secrets: MONGODB_PASSWORD\n", "line 3: environments/production/secrets: should be a list, not a string"),
        ("    routes:\n      www.example.com: 80\n", "line 4: environments/production/routes/www.example.com: should be a string, not a number"),
        ("    services:\n      web:\n        replicas: two\n",
         "line 5: environments/production/services/web/replicas: should be a whole number, not a string"),
        ("    services:\n      web:\n        health: {path: /h, interval: 10}\n",
         "line 5: environments/production/services/web/health/interval: should be a string, not a number"),
        ("    target: [local]\n", "line 3: environments/production/target: should be a string, not a list"),
        ("    secrets: [A, A]\n", "line 3: environments/production/secrets: has 'A' more than once"),
        # names
        ("    variables:\n      1BAD: x\n", "line 4: environments/production/variables/1BAD: invalid variable name '1BAD'"),
        ("    services:\n      Web: {}\n", "line 4: environments/production/services/Web: invalid service name 'Web'"),
        ("    branch: 'a..b'\n", "line 3: environments/production/branch: invalid branch name 'a..b'"),
        ("    branch: 'main; rm -rf /'\n", "line 3: environments/production/branch: invalid branch name"),
        # hosts
        ("    routes:\n      WWW.example.com: web:80\n", "line 4: environments/production/routes/WWW.example.com: invalid domain"),
        ("    routes:\n      localhost: web:80\n", "line 4: environments/production/routes/localhost: invalid domain 'localhost'"),
        ("    routes:\n      10.0.0.1: web:80\n",
         "line 4: environments/production/routes/10.0.0.1: invalid domain '10.0.0.1': an IP address is not a domain"),
        # routes and ports
        ("    routes:\n      www.example.com: web:70000\n",
         "line 4: environments/production/routes/www.example.com: the route's port '70000' is not a port (1-65535)"),
        ("    routes:\n      www.example.com: web:0\n", "line 4: environments/production/routes/www.example.com: the route's port '0'"),
        ("    routes:\n      www.example.com: web\n",
         "line 4: environments/production/routes/www.example.com: 'web' should be SERVICE:PORT"),
        ("    routes:\n      www.example.com: ':80'\n", "line 4: environments/production/routes/www.example.com: ':80' should be SERVICE:PORT"),
        ("    routes:\n      www.example.com: 'We b:80'\n",
         "line 4: environments/production/routes/www.example.com: invalid service name 'We b'"),
        ("    services:\n      web:\n        ports:\n          50011: 70000\n",
         "line 6: environments/production/services/web/ports/50011: should be at most 65535, not '70000'"),
        ("    services:\n      web:\n        ports:\n          0: 8000\n",
         "line 6: environments/production/services/web/ports/0: the compose file's host port '0' is not a port"),
        ("    services:\n      web:\n        ports:\n          50011/udp: 51011\n",
         "line 6: environments/production/services/web/ports/50011/udp: the compose file's host port '50011/udp'"),
        ("    services:\n      web:\n        replicas: 101\n",
         "line 5: environments/production/services/web/replicas: should be at most 100, not '101'"),
        # health checks and durations
        ("    services:\n      web:\n        health: {interval: 10s}\n", "line 5: environments/production/services/web/health: needs 'path'"),
        ("    services:\n      web:\n        health: {path: health}\n",
         "line 5: environments/production/services/web/health/path: 'health' is not a URL path"),
        ("    services:\n      web:\n        health: {path: /a b}\n", "line 5: environments/production/services/web/health/path: '/a b'"),
        ("    services:\n      web:\n        health: {path: /, status: 700}\n",
         "line 5: environments/production/services/web/health/status: should be at most 599, not '700'"),
        ("    services:\n      web:\n        health:\n          path: /\n          interval: 10 seconds\n",
         "line 7: environments/production/services/web/health/interval: '10 seconds' is not a duration"),
        ("    services:\n      web:\n        health:\n          path: /\n          timeout: 2h\n",
         "line 7: environments/production/services/web/health/timeout: '2h' is not a duration between 1us and 1h"),
        ("    services:\n      web:\n        health:\n          path: /\n          timeout: 0s\n",
         "line 7: environments/production/services/web/health/timeout: '0s' is not a duration"),
        ("    services:\n      web:\n        health:\n          path: /\n          timeout: '-1s'\n",
         "line 7: environments/production/services/web/health/timeout: '-1s' is not a duration"),
        # targets
        ("    target: cluster\n", "line 3: environments/production/target: unknown target 'cluster'"),
        # variables and secrets
        ("    variables: {A: x}\n    secrets: [A]\n", "line 3: environments/production/variables/A: A is both a variable and a secret"),
        ("    variables: {A: \"x\\0y\"}\n", "line 3: environments/production/variables/A: variable A: a value may not hold a NUL"),
    ],
)
def test_refusals_name_file_line_and_key_path(body: str, message: str) -> None:
    err = refused(ENV + body)
    assert err.message.startswith(f"dockyard.yml {message}"), err.message


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "line 1: should be a mapping, and is empty"),
        ("- production\n", "line 1: should be a mapping, not a list"),
        ("targets: {}\n", "line 1: needs 'environments'"),
        ("environments: {}\n", "line 1: environments: declares no environment"),
        ("environments: [production]\n", "line 1: environments: should be a mapping, not a list"),
        ("environment:\n  production: {}\n",
         "line 1: needs 'environments'; line 1: environment: unknown key (not in dockyard.yml's schema)"),
        ("environments:\n  Production: {}\n", "line 2: environments/Production: invalid environment name 'Production'"),
        ("environments:\n  pro--d: {}\n", "line 2: environments/pro--d: invalid environment name"),
        ("environments:\n  production: []\n", "line 2: environments/production: should be a mapping, not a list"),
        ("targets:\n  cluster: {type: swarm}\nenvironments:\n  production: {target: cluster}\n",
         "line 2: targets/cluster: Swarm targets are not supported yet: the only target is the built-in 'local'"),
        ("targets:\n  local: {type: swarm}\nenvironments:\n  production: {}\n", "line 2: targets/local: Swarm targets are not supported yet"),
        ("targets:\n  other: {type: docker}\nenvironments:\n  production: {target: other}\n",
         "line 2: targets/other: targets other than 'local' are not supported yet"),
        ("targets:\n  local: {type: kubernetes}\nenvironments:\n  production: {}\n",
         "line 2: targets/local/type: should be one of 'docker', 'swarm', not 'kubernetes'"),
        ("targets:\n  local: {}\nenvironments:\n  production: {}\n", "line 2: targets/local: needs 'type'"),
        ("environments:\n  recette:\n    routes:\n      www.example.com: web:80\n  production:\n    routes:\n"
         "      www.example.com: web:80\n",
         "line 7: environments/production/routes/www.example.com: the host www.example.com is already routed by "
         "environment 'recette' (line 4)"),
        ("environments:\n  recette:\n    services:\n      web: {ports: {50011: 51011}}\n  production:\n    services:\n"
         "      api: {ports: {50012: 51011}}\n",
         "line 7: environments/production/services/api/ports/50012: the host port 51011 is already published on "
         "target 'local' by environments/recette/services/web/ports/50011 (line 4)"),
        ("environments:\n  production:\n    services:\n      web: {ports: {80: 8080, 81: 8080}}\n",
         "line 4: environments/production/services/web/ports/81: the host port 8080 is already published"),
    ],
)
def test_refusals_of_the_whole_file_name_line_and_key_path(text: str, message: str) -> None:
    err = refused(text)
    assert err.message.startswith(f"dockyard.yml {message}"), err.message


def test_refusals_name_the_file_as_given() -> None:
    err = refused(ENV + "    bogus: 1\n", source="shop/dockyard.yml")
    assert err.message.startswith("shop/dockyard.yml line 3: environments/production/bogus: unknown key")
    err = refused("environments: [\n", source="shop/dockyard.yml")
    assert err.message.startswith("shop/dockyard.yml is not valid YAML: line 2")


def test_schema_refusals_give_the_first_few_in_file_order_with_a_hint() -> None:
    body = "".join(f"    bad{i}: 1\n" for i in range(10))
    err = refused(ENV + body)
    assert err.message.startswith("dockyard.yml line 3: environments/production/bad0: unknown key (not in dockyard.yml's "
                                  "schema); line 4: environments/production/bad1: unknown key")
    assert err.message.endswith(" (and 7 more)")
    assert "examples/dockyard.yml" in err.hint


def test_merged_keys_are_located_where_they_are_written() -> None:
    err = refused("""\
        x-health: &health
          path: /health
          interval: soon
        environments:
          production:
            services:
              web:
                health: {<<: *health, status: 204}
        """)
    assert err.message.startswith("dockyard.yml line 3: environments/production/services/web/health/interval: 'soon' "
                                  "is not a duration")


def test_extension_keys_are_accepted_where_keys_are_fixed() -> None:
    declared = load(textwrap.dedent("""\
        x-team: shop
        targets:
          local: {type: docker, x-note: this host}
        environments:
          production:
            x-owner: ops
            services:
              web:
                x-why: front
                health: {path: /, x-also: 1}
        """))
    assert declared.environments == (EnvironmentDecl("production", services=(ServiceDecl("web", health=HealthDecl("/")),)),)


def test_defaults() -> None:
    declared = load("environments:\n  dev:\n  production: {}\n")
    assert declared == DockyardFile((EnvironmentDecl("dev"), EnvironmentDecl("production")))
    assert declared.environments[0] == EnvironmentDecl("dev", "local", None, (), (), (), ())
    assert HealthDecl("/") == HealthDecl("/", 0, seconds(10), seconds(5))  # status 0: any 2xx or 3xx
    assert declared.environment("staging") is None


def test_interpolation_is_not_applied() -> None:
    declared = load("environments:\n  production:\n    variables:\n      URL: ${HOST:-x}/$PATH\n")
    assert declared.environments[0].variables == (("URL", "${HOST:-x}/$PATH"),)


def test_values_yaml_reads_as_dates_are_kept_as_written() -> None:
    declared = load("environments:\n  production:\n    variables:\n      SINCE: 2024-01-02\n")
    assert declared.environments[0].variables == (("SINCE", "2024-01-02"),)


# -- a secret's value is refused, and never quoted ---------------------------------------------------

SECRET = "hunter2-Sup3r-s3cret"


@pytest.mark.parametrize(
    "secrets,where",
    [
        (f"      MONGODB_PASSWORD: {SECRET}\n", "line 4: environments/production/secrets/MONGODB_PASSWORD"),
        (f"      - MONGODB_PASSWORD={SECRET}\n", "line 4: environments/production/secrets/0"),
        (f"      - MONGODB_PASSWORD: {SECRET}\n", "line 4: environments/production/secrets/0"),
        (f"      - A\n      - {{MONGODB_PASSWORD: {SECRET}}}\n", "line 5: environments/production/secrets/1"),
    ],
)
def test_a_secret_value_is_refused_with_the_command_that_sets_it(secrets: str, where: str) -> None:
    err = refused(ENV + "    secrets:\n" + secrets)
    assert err.message.startswith(f"dockyard.yml {where}: a secret's value does not belong in dockyard.yml"), err.message
    assert "dockyard secrets set APP MONGODB_PASSWORD --env production" in err.hint
    assert SECRET not in str(err)


@pytest.mark.parametrize("item", [SECRET + "!", f"'{SECRET} x'", f"'MONGODB_PASSWORD {SECRET}'"])
def test_a_string_that_is_no_secret_name_is_not_quoted(item: str) -> None:
    err = refused(ENV + f"    secrets:\n      - {item}\n")
    assert err.message.startswith("dockyard.yml line 4: environments/production/secrets/0: is not a secret name")
    assert SECRET not in str(err)


def test_a_secret_value_is_refused_before_any_other_problem() -> None:
    err = refused(ENV + f"    bogus: 1\n    routes: {{www.example.com: 80}}\n    secrets: {{A: {SECRET}}}\n")
    assert "a secret's value" in err.message
    assert SECRET not in str(err)


def test_secret_names_without_values_in_a_mapping_are_a_shape_error() -> None:
    err = refused(ENV + "    secrets:\n      A:\n      B:\n")
    assert err.message == "dockyard.yml line 3: environments/production/secrets: should be a list, not a mapping"


def secret_refusal(value: str, form: str) -> str:
    secrets = {"mapping": {"DB_PASSWORD": value}, "pair": [f"DB_PASSWORD={value}"],
               "item": [{"DB_PASSWORD": value}], "bare": [value]}[form]
    text = dump({"environments": {"production": {"secrets": secrets}}}, allow_unicode=True)
    with pytest.raises(InvalidSource) as info:
        load(text)
    return str(info.value)


@FAST
@given(st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=6, max_size=40),
       st.sampled_from(["mapping", "pair", "item", "bare"]))
def test_no_secret_value_is_ever_quoted(value: str, form: str) -> None:
    assume(not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value))
    assume(value not in secret_refusal("¤" * 6, form))  # the refusal's own words
    assert value not in secret_refusal(value, form)


# -- durations --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [("10s", seconds(10)), ("1m30s", seconds(90)), ("2.5s", seconds(2.5)), ("500ms", seconds(0.5)), ("1h", seconds(3600)),
     ("1h2m3s", seconds(3723)), ("250us", datetime.timedelta(microseconds=250)), ("1.s", seconds(1)), (".5s", seconds(0.5)),
     ("1m1m", seconds(120)), ("0s", seconds(0))],
)
def test_durations_are_read_as_compose_reads_them(text: str, expected: datetime.timedelta) -> None:
    assert duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "s", "10 s", "-1s", "+1s", "1d", "1.2.3s", "1e3s", "10S", "1m 30s",
                                  "9" * 40 + "h", "99999999999999999999h", "\u0661s"])
def test_other_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        duration(text)


def test_health_durations_are_bounded() -> None:
    declared = load(ENV + "    services:\n      web:\n        health: {path: /, interval: 1h, timeout: 1us}\n")
    health = declared.environments[0].services[0].health
    assert health == HealthDecl("/", 0, seconds(3600), datetime.timedelta(microseconds=1))


# -- within bounds ---------------------------------------------------------------------------------

LAUGHS = (
    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    + "environments:\n  production:\n    secrets: *i\n"
)


def test_billion_laughs_is_refused_quickly() -> None:
    assert len(LAUGHS) < 600
    with pytest.raises(InvalidSource) as info:
        within(2.0, load, LAUGHS)
    assert info.value.message.startswith(f"dockyard.yml line 5: this value expands to more than {MAX_YAML_NODES} YAML nodes")
    assert "alias" in info.value.hint


@pytest.mark.parametrize(
    "text,message",
    [
        ("environments: " + "[" * 10_000 + "]" * 10_000 + "\n", "dockyard.yml is not valid YAML: line 1"),
        ("environments: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n", "dockyard.yml is not valid YAML: line 1"),
        ("- " * 10_000 + "x\n", "dockyard.yml is not valid YAML: line 1"),
        ("environments: " + "[" * 70 + "]" * 70 + "\n",
         f"dockyard.yml line 1: values are nested deeper than {MAX_YAML_DEPTH} levels"),
        ("environments: &a {production: {services: *a}}\n", "dockyard.yml line 1: an alias refers to the value that contains it"),
        ("environments:\n  production: {variables: {A: " + "1" * 5000 + "}}\n", "dockyard.yml line 2: the number"),
        ("environments:\n  production: {variables: {A: 2020-13-45}}\n", "dockyard.yml line 2: '2020-13-45' is not a date"),
        ("environments:\n  production: !!python/object:os.system x\n", "dockyard.yml is not valid YAML: line 2"),
        ("environments: {}\n---\nenvironments: {}\n", "dockyard.yml is not valid YAML: line 2"),
        ("environments:\n  production: \x07\n", "dockyard.yml is not valid YAML: line 2: character #x0007 is not allowed"),
    ],
)
def test_yaml_beyond_bounds_is_refused_quickly_naming_its_line(text: str, message: str) -> None:
    with pytest.raises(InvalidSource) as info:
        within(2.0, load, text)
    assert info.value.message.startswith(message), info.value.message
    assert info.value.hint


def test_a_file_over_its_cap_is_refused_before_it_is_parsed() -> None:
    assert limits.MAX_DOCKYARD_FILE_BYTES == 256 * 1024
    head = "environments: {production: {}}\n"
    padding = "#" * 99 + "\n"
    fits = head + padding * ((limits.MAX_DOCKYARD_FILE_BYTES - len(head)) // 100)
    assert load(fits).environments == (EnvironmentDecl("production"),)
    with pytest.raises(InvalidSource) as info:
        within(1.0, load, fits + padding)
    assert info.value.message.startswith("dockyard.yml is ")
    assert "more than the 256 KiB" in info.value.message
    assert "dockyard.yml" in info.value.hint


def many_environments(n: int) -> str:
    return "environments:\n" + "".join(
        f"  e{i}:\n    variables: {{A: x}}\n    routes: {{h{i}.example.com: web:80}}\n"
        f"    services: {{web: {{ports: {{{1000 + i}: {20000 + i}}}}}}}\n" for i in range(n))


def test_a_large_file_loads_in_linear_work_and_well_under_a_second() -> None:
    assert_linear(many_environments, load, n=100)
    declared = within(2.0, load, many_environments(MAX_YAML_NODES // 25))
    assert len(declared.environments) == MAX_YAML_NODES // 25


# -- against the environment's configuration ---------------------------------------------------------

DECLARED = textwrap.dedent("""\
    environments:
      recette:
        variables:
          MONGODB_DB: crigen_recette
          LOG_LEVEL: debug
        secrets: [MONGODB_PASSWORD, API_TOKEN]
      production:
        variables:
          MONGODB_DB: crigen
    """)


def test_a_variable_set_in_both_places_to_different_values_is_a_conflict() -> None:
    declared = load(DECLARED)
    found = conflicts(declared, "recette", {"MONGODB_DB": "other", "LOG_LEVEL": "debug", "EXTRA": "1"})
    assert found == [
        "dockyard.yml line 4: environments/recette/variables/MONGODB_DB: MONGODB_DB is 'crigen_recette' in dockyard.yml "
        "but 'other' by `dockyard env set` for recette: keep one (edit dockyard.yml, or "
        "`dockyard env unset APP MONGODB_DB --env recette`)",
    ]


def test_conflicts_are_reported_in_file_order_and_per_environment() -> None:
    declared = load(DECLARED, "shop/dockyard.yml")
    found = conflicts(declared, "recette", {"LOG_LEVEL": "info", "MONGODB_DB": "x"})
    assert [f.split(": ")[1] for f in found] == ["environments/recette/variables/MONGODB_DB",
                                                 "environments/recette/variables/LOG_LEVEL"]
    assert all(f.startswith("shop/dockyard.yml line ") and "in shop/dockyard.yml but" in f for f in found)
    assert conflicts(declared, "production", {"MONGODB_DB": "crigen"}) == []
    assert conflicts(declared, "production", {"LOG_LEVEL": "info"}) == []
    assert len(conflicts(declared, "production", {"MONGODB_DB": ""})) == 1  # an empty value is a value
    assert conflicts(declared, "dev", {"MONGODB_DB": "x"}) == []  # the file says nothing of dev
    assert conflicts(declared, "recette", {}) == []


def test_missing_secrets_are_listed_in_file_order() -> None:
    declared = load(DECLARED)
    assert missing_secrets(declared, "recette", set()) == ["MONGODB_PASSWORD", "API_TOKEN"]
    assert missing_secrets(declared, "recette", {"API_TOKEN", "OTHER"}) == ["MONGODB_PASSWORD"]
    assert missing_secrets(declared, "recette", ["MONGODB_PASSWORD", "API_TOKEN"]) == []
    assert missing_secrets(declared, "production", set()) == []
    assert missing_secrets(declared, "dev", set()) == []


def test_the_example_conflicts_and_missing_secrets() -> None:
    declared = load(EXAMPLE.read_text(), "dockyard.yml")
    found = conflicts(declared, "production", {"MONGODB_DB": "crigen_v2", "MONGODB_USER": "crigen"})
    assert len(found) == 1 and "MONGODB_DB is 'crigen' in dockyard.yml but 'crigen_v2'" in found[0]
    line = int(found[0].split(" ")[2].rstrip(":"))
    assert EXAMPLE.read_text().splitlines()[line - 1].strip() == "MONGODB_DB: crigen"
    assert missing_secrets(declared, "production", {"MONGODB_PASSWORD"}) == []


# -- properties -------------------------------------------------------------------------------------

env_names = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True)
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
service_names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
labels = st.from_regex(r"[a-z](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
branches = st.from_regex(r"[a-z][a-z0-9_-]{0,10}(/[a-z0-9_-]{1,8})?", fullmatch=True)
values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)
ports = st.integers(1, 65535)
durations = st.one_of(
    st.integers(1, 3600).map(lambda n: (f"{n}s", seconds(n))),
    st.integers(1, 999).map(lambda n: (f"{n}ms", datetime.timedelta(milliseconds=n))),
    st.tuples(st.integers(1, 59), st.integers(0, 59)).map(lambda t: (f"{t[0]}m{t[1]}s", seconds(60 * t[0] + t[1]))),
)


@st.composite
def healths(draw: Any) -> tuple[dict[str, Any], HealthDecl]:
    path = "/" + draw(st.from_regex(r"[a-z0-9/_.?=-]{0,20}", fullmatch=True))
    doc: dict[str, Any] = {"path": path}
    health = HealthDecl(path)
    if draw(st.booleans()):
        doc["status"] = draw(st.integers(100, 599))
        health = HealthDecl(path, doc["status"])
    for key in ("interval", "timeout"):
        if draw(st.booleans()):
            doc[key], value = draw(durations)
            health = dataclasses.replace(health, **{key: value})
    return doc, health


@st.composite
def environments(draw: Any, name: str, published: set[int]) -> tuple[dict[str, Any], EnvironmentDecl]:
    doc: dict[str, Any] = {}
    target = draw(st.sampled_from([None, "local"]))
    if target:
        doc["target"] = target
    branch = draw(st.none() | branches)
    if branch:
        doc["branch"] = branch
    variables = draw(st.dictionaries(keys, values, max_size=4))
    secrets = draw(st.lists(keys.filter(lambda k: k not in variables), max_size=3, unique=True))
    hosts = draw(st.lists(labels, max_size=3, unique=True))
    routes = [RouteDecl(f"{label}.{name}.example.com", draw(service_names), draw(ports)) for label in hosts]
    services = []
    for service in draw(st.lists(service_names, max_size=3, unique=True)):
        replicas = draw(st.none() | st.integers(0, 100))
        health = draw(st.none() | healths())
        mappings = []
        for compose in draw(st.lists(ports, max_size=2, unique=True)):
            port = draw(ports.filter(lambda p: p not in published))
            published.add(port)
            mappings.append(PortMapping(compose, port))
        services.append((service, replicas, health, mappings))
    if variables or draw(st.booleans()):
        doc["variables"] = variables
    if secrets:
        doc["secrets"] = secrets
    if routes:
        doc["routes"] = {r.host: f"{r.service}:{r.port}" for r in routes}
    if services:
        doc["services"] = {}
        for service, replicas, health, mappings in services:
            body: dict[str, Any] = {}
            if replicas is not None:
                body["replicas"] = replicas
            if health is not None:
                body["health"] = health[0]
            if mappings:
                body["ports"] = {m.compose if draw(st.booleans()) else str(m.compose): m.published for m in mappings}
            if draw(st.booleans()):
                body["x-note"] = draw(values)
            doc["services"][service] = body
    declared = EnvironmentDecl(
        name=name, target="local", branch=branch or None, variables=tuple(variables.items()), secrets=tuple(secrets),
        routes=tuple(routes),
        services=tuple(ServiceDecl(s, r, h[1] if h else None, tuple(m)) for s, r, h, m in services),
    )
    return doc, declared


@st.composite
def dockyard_files(draw: Any) -> tuple[dict[str, Any], DockyardFile]:
    names = draw(st.lists(env_names, min_size=1, max_size=4, unique=True))
    published: set[int] = set()
    envs = [draw(environments(name, published)) for name in names]
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["targets"] = {"local": {"type": "docker"}}
    if draw(st.booleans()):
        doc["x-anything"] = draw(st.lists(values, max_size=3))
    doc["environments"] = {name: env_doc for name, (env_doc, _) in zip(names, envs, strict=True)}
    return doc, DockyardFile(tuple(decl for _, decl in envs))


@SLOW
@given(dockyard_files(), st.booleans(), st.booleans())
def test_valid_declarations_round_trip_through_yaml(case: tuple[dict[str, Any], DockyardFile], flow: bool,
                                                    unicode: bool) -> None:
    doc, expected = case
    text = dump(doc, sort_keys=False, default_flow_style=flow, allow_unicode=unicode)
    assert load(text) == expected


@SLOW
@given(dockyard_files())
def test_every_declared_key_path_has_its_line(case: tuple[dict[str, Any], DockyardFile]) -> None:
    doc, _ = case
    text = dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
    declared = load(text)
    lines = text.splitlines()
    for env in declared.environments:
        for key, _ in env.variables:
            line = lines[declared.lines.line_of(("environments", env.name, "variables", key)) - 1]
            assert line.lstrip().startswith((key, f"'{key}'", f'"{key}"')), (key, line)


WORDS = ["environments:", "targets:", "variables:", "secrets:", "routes:", "services:", "health:", "ports:",
         "replicas:", "path:", "interval:", "timeout:", "status:", "target:", "branch:", "local", "docker", "swarm",
         "production", "recette", " ", "  ", "\n", "\n  ", "\n    ", "- ", "{", "}", "[", "]", ",", ": ", ":", "&a ",
         "*a", "<<: ", "'", '"', "#", "10s", "1m30s", "web:80", "www.example.com", "50011", "70000", "A=1", "!!",
         "x-", "~", "null", "true", "1.5", "2024-01-01", "\t", "\x00", "\ufeff", "é"]
garbage_texts = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=4)), max_size=60).map("".join)


def assert_own_error(text: str) -> None:
    try:
        load(text)
    except InvalidSource as exc:
        assert exc.message.startswith("dockyard.yml"), exc.message
        assert exc.hint
        number = re.match(r"dockyard\.yml (?:is not valid YAML: )?line (\d+)", exc.message)
        # YAML breaks lines at \r and \x85 too (\u2028...), which splitlines counts (and more)
        assert number is None or 1 <= int(number.group(1)) <= len(text.splitlines()) + 2
    except DockyardError as exc:  # pragma: no cover - would be a bug: every refusal is an InvalidSource
        raise AssertionError(f"not an InvalidSource: {exc!r}") from exc


@FAST
@given(garbage_texts)
def test_garbage_text_fails_only_with_dockyards_own_error(text: str) -> None:
    assert_own_error(text)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), values,
                    st.sampled_from(["web:80", "web:0", "10s", "/health", "docker", "swarm", "local", "-1s", "A=1"]))
shape_keys = st.one_of(st.sampled_from(["targets", "environments", "production", "recette", "target", "branch",
                                        "variables", "secrets", "routes", "services", "web", "health", "path",
                                        "status", "interval", "timeout", "ports", "replicas", "type", "local",
                                        "www.example.com", "50011", "x-a"]), values, st.integers(0, 70000))
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(shape_keys, inner, max_size=4),
                     max_leaves=30)


@FAST
@given(st.dictionaries(shape_keys, trees, max_size=4), st.dictionaries(env_names, trees, max_size=3))
def test_garbage_structures_fail_only_with_dockyards_own_error(top: dict[Any, Any], envs: dict[str, Any]) -> None:
    doc = {**top, "environments": envs} if envs else top
    assert_own_error(dump(doc, allow_unicode=True))


@SLOW
@given(dockyard_files(), st.lists(st.tuples(st.integers(0, 10_000), trees), min_size=1, max_size=3))
def test_valid_files_with_a_value_spoiled_fail_only_with_dockyards_own_error(
        case: tuple[dict[str, Any], DockyardFile], spoils: list[tuple[int, Any]]) -> None:
    doc, _ = case
    spots: list[tuple[Any, Any]] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                spots.append((node, key))
                collect(value)

    collect(doc)
    for index, value in spoils:
        node, key = spots[index % len(spots)]
        node[key] = value
    assert_own_error(dump(doc, allow_unicode=True))


def test_a_service_declared_stateful_is_released_stop_first_and_runs_one_container() -> None:
    from dockyard.domain.declared import with_stateful

    text = ("environments:\n  production:\n    services:\n      db: {stateful: true}\n"
            "      web: {stateful: false}\n")
    declared = load(text)
    db, web = ServiceSpec(name="db", image="postgres"), ServiceSpec(name="web", image="nginx", port=80)
    assert [(s.name, s.stop_first) for s in with_stateful((db, web), declared, "production")] == [
        ("db", True), ("web", False)]
    assert with_stateful((db, web), declared, "recette") == (db, web)  # another environment: as it is
    with pytest.raises(InvalidSource, match="runs 2 replicas, and a stateful service runs one container at a time"):
        with_stateful((dataclasses.replace(db, replicas=2), web), declared, "production")


def test_an_environment_takes_the_tags_its_pattern_matches() -> None:
    found = dockyard_file.load("environments:\n  live: {tag: 'v*'}\n  beta: {branch: main, tag: 'v?.?-rc*'}\n")
    live, beta = found.environment("live"), found.environment("beta")
    assert live is not None and beta is not None
    assert live.takes_tag("v1.0") and live.takes_tag("v") and not live.takes_tag("release-1")
    assert beta.takes_tag("v1.2-rc3") and not beta.takes_tag("v1.2") and beta.branch == "main"
    assert not found.environment("live").takes_tag("V1")  # type: ignore[union-attr]  # case counts
    for text, words in (("environments:\n  live: {tag: 'v[0-9]*'}\n", "is not a tag pattern"),
                        ("environments:\n  r: {}\n  live: {tag: 'v*', promotion: {from: r}}\n",
                         "live is promoted from r: no tag deploys it")):
        with pytest.raises(InvalidSource, match=re.escape(words)):
            dockyard_file.load(text)


def test_release_commands_are_read_with_their_deadlines_and_bad_ones_refused() -> None:
    found = dockyard_file.load("release:\n  before:\n    - {service: api, command: \"sh -c 'echo a b'\", timeout: 2m}\n"
                               "  after: [{service: web, command: [notify, --all]}]\n"
                               "environments:\n  production: {branch: main}\n")
    assert [(c.service, c.command, c.timeout) for c in found.before] == [
        ("api", ("sh", "-c", "echo a b"), datetime.timedelta(minutes=2))]
    assert [(c.service, c.command, c.timeout.total_seconds()) for c in found.after] == [
        ("web", ("notify", "--all"), 600)]
    for text, words in (
        ("release: {before: [{service: api, command: 'x', timeout: 25h}]}\n", "release/before/0/timeout"),
        ("release: {before: [{service: api, command: 'a \"b'}]}\n", "cannot split"),
        ("release: {before: [{service: api, command: []}]}\n", "is empty"),
        ("release: {before: [{command: x}]}\n", "service"),
        ("release: {during: []}\n", "during"),
    ):
        with pytest.raises(InvalidSource, match=re.escape(words)):
            dockyard_file.load(text + "environments:\n  production: {branch: main}\n")
