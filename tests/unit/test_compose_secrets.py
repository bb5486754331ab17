"""Compose ``secrets:``: the top level declares the environment's dockyard secrets a stack uses
(``file:`` refused), each service receives only those it lists (a file at /run/secrets/<target>,
and its variable), and a new version of one secret changes the spec hash of exactly the services
that receive it. A compose file without a top-level ``secrets:`` keeps today's behaviour and
today's hashes."""

from __future__ import annotations

import hashlib
import json
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pytest

from dockyard.adapters.secret_box import KeyFile
from dockyard.domain import configuration as cfg
from dockyard.domain import stack
from dockyard.domain.compose_load import load
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.model import App, RunningService, ServiceSpec
from dockyard.domain.records import service_from_dict
from dockyard.fakes import (
    FakeBuilder,
    FakeOrchestrator,
    FakeProxy,
    FakeRegistry,
    FakeRepos,
    FakeSecretFiles,
    FakeStore,
)
from dockyard.services.configuration import Configuration
from dockyard.services.deploy import Deployer
from dockyard.services.inspect import parse_source
from dockyard.services.plan import Planner
from tests.support import static_site

SOURCE = "docker-compose.yml"
APP, ENV = "shop", "production"

SCOPED = """\
    services:
      api:
        image: api
        secrets:
          - token
          - source: db
            target: /run/secrets/db_password
      worker:
        image: worker
        secrets: [db]
      web:
        image: web
        ports: ["8000"]
    secrets:
      token: {external: true}
      db: {name: db_password, environment: DB_PASSWORD}
    """
UNSCOPED = """\
    services:
      api:
        image: api
      web:
        image: web
        ports: ["8000"]
    """


def load_stack(text: str) -> stack.Stack:
    return stack.compose_stack(APP, textwrap.dedent(text), {}, {}, lambda path: None, "localhost", (),
                               source=SOURCE)


def services(text: str) -> dict[str, ServiceSpec]:
    return {s.name: s for s in load_stack(text).services}


def refusal(text: str) -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        load_stack(text)
    return info.value


def mount(keys: list[tuple[str, int]] | tuple[tuple[str, int], ...]) -> str:
    """As the secret files adapter names a volume: by what it holds."""
    return f"vol-{cfg.versions_digest(keys)}:{cfg.SECRETS_DIR}:ro"


def configured(text: str, secrets: list[tuple[str, int]], variables: dict[str, str] | None = None,
               ) -> dict[str, ServiceSpec]:
    return {name: cfg.configure(s, variables or {}, secrets, mount) for name, s in services(text).items()}


# -- parsing --------------------------------------------------------------------------------------
def test_each_service_lists_its_secrets_as_name_and_file() -> None:
    found = services(SCOPED)
    assert found["api"].secret_files == ("token:token", "db_password:db_password")
    assert found["worker"].secret_files == ("db_password:db",)  # the file is named by the compose key
    assert found["web"].secret_files == ()  # lists none: receives none


def test_without_a_top_level_secrets_every_service_receives_every_secret() -> None:
    assert {s.secret_files for s in services(UNSCOPED).values()} == {None}


@pytest.mark.parametrize("declared,entry,expected", [
    ("token: {}", "- token", "token:token"),
    ("token: {external: true}", "- source: token", "token:token"),
    ("token: {external: {name: api_token}}", "- token", "api_token:token"),
    ("token: {name: api_token, external: true}", "- {source: token, target: key.txt}", "api_token:key.txt"),
    ("token: {environment: token}", "- {source: token, target: /run/secrets/api-key}", "token:api-key"),
    ("token: {}", "- {source: token, target: /run/secrets/./nested/../key}", "token:key"),
    ("my-token: {name: token}", "- my-token", "token:my-token"),
    ("token: {}", "- {source: token, uid: '1000', gid: '1000', mode: 0440}", "token:token"),
])
def test_the_forms_of_both_levels(declared: str, entry: str, expected: str) -> None:
    text = f"services:\n  api:\n    image: api\n    secrets:\n      {entry}\nsecrets:\n  {declared}\n"
    assert services(text)["api"].secret_files == (expected,)


def test_a_secret_given_twice_in_two_files_is_one_variable_and_two_files() -> None:
    text = ("services:\n  api:\n    image: api\n    secrets: [a, b]\n"
            "secrets:\n  a: {name: token}\n  b: {name: token}\n")
    [api] = load_stack(text).services
    assert api.secret_files == ("token:a", "token:b")
    done = cfg.configure(api, {}, [("token", 2)], mount)
    assert done.secrets == (("token", 2),) and dict(done.environment) == {"token": "<secret:token@v2>"}
    assert cfg.secret_files(done) == [("a", "token"), ("b", "token")]


# -- refusals, each with its file, line and key path ------------------------------------------------
@pytest.mark.parametrize("text,where,message", [
    ("services:\n  api:\n    image: api\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n",
     "line 7: secrets/token/file", "a secret's value is not read from a file of the repository"),
    ("services:\n  api:\n    image: api\n    secrets: [token]\n",
     "line 4: services/api/secrets/0", "the secret 'token' is not declared under the top-level 'secrets'"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - other\nsecrets:\n  token: {}\n",
     "line 5: services/api/secrets/0", "the secret 'other' is not declared"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - source: other\nsecrets:\n  token: {}\n",
     "line 5: services/api/secrets/0/source", "the secret 'other' is not declared"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - target: x\nsecrets:\n  token: {}\n",
     "line 5: services/api/secrets/0", "needs 'source'"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - {source: token, target: a/b}\nsecrets:\n  token: {}\n",
     "line 5: services/api/secrets/0/target", "'a/b' is not a file name for /run/secrets"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - {source: token, target: ..}\nsecrets:\n  token: {}\n",
     "line 5: services/api/secrets/0/target", "'..' is not a file name for /run/secrets"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - {source: token, target: ''}\nsecrets:\n  token: {}\n",
     "line 5: services/api/secrets/0/target", "'' is not a file name for /run/secrets"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - {source: token, target: /etc/passwd}\n"
     "secrets:\n  token: {}\n", "line 5: services/api/secrets/0/target", "'/etc/passwd' is not in /run/secrets"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - {source: token, target: /run/secrets/../x}\n"
     "secrets:\n  token: {}\n", "line 5: services/api/secrets/0/target", "is not in /run/secrets"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - {source: token, target: /run/secrets/a/b}\n"
     "secrets:\n  token: {}\n", "line 5: services/api/secrets/0/target", "is not in /run/secrets"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - ..\nsecrets:\n  ..: {name: token}\n",
     "line 5: services/api/secrets/0", "'..' is not a file name for /run/secrets"),
    ("services:\n  api:\n    image: api\n    secrets:\n      - a\n      - {source: b, target: a}\n"
     "secrets:\n  a: {}\n  b: {}\n", "line 6: services/api/secrets/1", "/run/secrets/a is given twice"),
    ("services:\n  api:\n    image: api\nsecrets:\n  api-token: {}\n",
     "line 5: secrets/api-token", "'api-token' is not the name of a dockyard secret"),
    ("services:\n  api:\n    image: api\nsecrets:\n  token:\n    name: 1bad\n",
     "line 6: secrets/token/name", "'1bad' is not the name of a dockyard secret"),
    ("services:\n  api:\n    image: api\nsecrets:\n  token:\n    external: {name: a.b}\n",
     "line 6: secrets/token/external/name", "'a.b' is not the name of a dockyard secret"),
])
def test_bad_secrets_are_refused_naming_file_line_and_key(text: str, where: str, message: str) -> None:
    error = refusal(text)
    assert error.message.startswith(f"{SOURCE} {where}: "), error.message
    assert message in error.message


def test_a_secret_in_a_file_of_the_repository_is_refused_with_the_command_that_sets_it() -> None:
    error = refusal("services:\n  api:\n    image: api\nsecrets:\n  token: {file: ./token.txt, name: api_token}\n")
    assert error.message == f"{SOURCE} line 5: secrets/token/file: a secret's value is not read from a file of " \
                            "the repository"
    assert "a value committed to the repository is not secret" in error.hint
    assert "dockyard secrets set APP api_token --env ENV" in error.hint


def test_an_undeclared_secret_is_refused_with_how_to_declare_it() -> None:
    error = refusal("services:\n  api:\n    image: api\n    secrets: [token]\n")
    assert "secrets: {token: {external: true}}" in error.hint and "dockyard secrets set APP token" in error.hint


# -- warnings -------------------------------------------------------------------------------------
def warnings_of(text: str) -> list[str]:
    return list(load(textwrap.dedent(text), source=SOURCE).warnings)


def test_secrets_are_no_longer_warned_about() -> None:
    assert warnings_of(SCOPED.replace("environment: DB_PASSWORD", "environment: db_password")) == []
    assert warnings_of("""\
        services:
          api:
            image: api
            secrets: [{source: token, target: t, uid: "0", gid: "0", mode: 0400}]
        secrets:
          token: {external: true}
        """) == []


def test_what_is_not_honoured_of_secrets_is_warned_about() -> None:
    assert warnings_of("""\
        services:
          api:
            image: api
            secrets:
              - source: token
                uid: "1000"
                gid: "1000"
                mode: 0440
        secrets:
          token:
            environment: API_TOKEN
            labels: {team: shop}
            template_driver: golang
        """) == [
        f"{SOURCE} line 6: services/api/secrets/0/uid: not honoured yet: every secret file is owned by root with "
        "mode 0400 (a service that runs as another user reads the secret from its environment variable)",
        f"{SOURCE} line 7: services/api/secrets/0/gid: not honoured yet: every secret file is owned by root with "
        "mode 0400 (a service that runs as another user reads the secret from its environment variable)",
        f"{SOURCE} line 8: services/api/secrets/0/mode: not honoured yet: every secret file is owned by root with "
        "mode 0400 (a service that runs as another user reads the secret from its environment variable)",
        f"{SOURCE} line 11: secrets/token/environment: the value is the environment's secret 'token' (dockyard "
        "secrets set APP token --env ENV), not the variable 'API_TOKEN'",
        f"{SOURCE} line 12: secrets/token/labels: not honoured yet: a secret is a file in the container, not an "
        "object of the engine: it carries no labels",
        f"{SOURCE} line 13: secrets/token/template_driver: not honoured yet: the file holds the secret's value as "
        "it was set",
    ]


# -- what each service receives -------------------------------------------------------------------
SET = [("db_password", 4), ("other", 1), ("token", 2)]


def test_each_service_receives_only_the_secrets_it_lists_as_files_and_variables() -> None:
    found = configured(SCOPED, SET, {"other": "a variable", "LOG": "info"})
    api, worker, web = found["api"], found["worker"], found["web"]
    assert api.secrets == (("db_password", 4), ("token", 2))
    assert dict(api.environment) == {"other": "a variable", "LOG": "info", "db_password": "<secret:db_password@v4>",
                                     "token": "<secret:token@v2>"}
    assert cfg.secret_files(api) == [("token", "token"), ("db_password", "db_password")]
    assert api.binds == (mount([("db_password", 4), ("token", 2)]),)  # files named as their secrets: as before
    assert worker.secrets == (("db_password", 4),) and cfg.secret_files(worker) == [("db", "db_password")]
    assert worker.binds == (mount([("db_password:db", 4)]),)  # a file named otherwise: a volume of its own
    assert dict(worker.environment) == {"other": "a variable", "LOG": "info", "db_password": "<secret:db_password@v4>"}
    assert (web.secrets, web.binds) == ((), ())
    assert dict(web.environment) == {"other": "a variable", "LOG": "info"}  # no secret, not even 'other'


def test_without_a_top_level_secrets_every_service_receives_every_secret_as_before() -> None:
    found = configured(UNSCOPED, SET)
    for service in found.values():
        assert service.secrets == tuple(SET) and service.binds == (mount(SET),)
        assert cfg.secret_files(service) == [(name, name) for name, _ in SET]
        assert cfg.volume_keys(service) == SET


def test_a_listed_secret_that_is_not_set_is_refused() -> None:
    with pytest.raises(DockyardError, match="service api: the secret token is not set"):
        configured(SCOPED, [("db_password", 1)])
    assert cfg.unset_secrets(list(services(SCOPED).values()), ["other"]) == {
        "db_password": ["api", "worker"], "token": ["api"]}
    assert cfg.unset_secrets(list(services(UNSCOPED).values()), []) == {}


def test_a_resolved_service_gets_the_values_of_its_own_secrets_only() -> None:
    api = configured(SCOPED, SET)["api"]
    resolved = cfg.resolve(api, {"token": "tok-value", "db_password": "pw-value"})
    assert dict(resolved.environment)["token"] == "tok-value" and resolved.spec_hash == api.spec_hash
    with pytest.raises(DockyardError, match="no value for secret db_password"):
        cfg.resolve(api, {"token": "tok-value"})


# -- spec hashes: a new version restarts exactly the services that receive it ---------------------
def test_a_new_version_of_one_secret_changes_the_hash_of_the_services_that_receive_it_only() -> None:
    before = configured(SCOPED, SET)
    token = configured(SCOPED, [("db_password", 4), ("other", 1), ("token", 3)])
    assert {n for n in before if before[n].spec_hash != token[n].spec_hash} == {"api"}
    db = configured(SCOPED, [("db_password", 5), ("other", 1), ("token", 2)])
    assert {n for n in before if before[n].spec_hash != db[n].spec_hash} == {"api", "worker"}
    other = configured(SCOPED, [("db_password", 4), ("other", 9), ("token", 2)])
    assert {n for n in before if before[n].spec_hash != other[n].spec_hash} == set()
    added = configured(SCOPED, [*SET, ("new", 1)])
    assert {n for n in before if before[n].spec_hash != added[n].spec_hash} == set()
    assert configured(SCOPED, SET) == before  # the same versions: the same specs


def test_without_a_top_level_secrets_every_service_changes_with_any_secret() -> None:
    before, after = configured(UNSCOPED, SET), configured(UNSCOPED, [*SET[:2], ("token", 3)])
    assert all(before[n].spec_hash != after[n].spec_hash for n in before)


def old_hash(service: ServiceSpec) -> str:
    """spec_hash as it was computed before compose secrets (a service with no other compose keys)."""
    names = {name for name, _ in service.secrets}
    environment = tuple(pair for pair in service.environment if pair[0] not in names)
    parts: tuple[object, ...] = (service.image_id or service.image, service.port, environment, service.command)
    parts += (*service.host_access, service.secrets)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def test_an_app_without_a_top_level_secrets_keeps_its_hashes() -> None:
    for service in configured(UNSCOPED, SET, {"A": "1"}).values():
        assert service.secret_files is None and service.spec_hash == old_hash(service)
        legacy = cfg.configure(services(UNSCOPED)[service.name], {"A": "1"}, SET, mount(SET))
        assert legacy == service  # the bind the volume of every secret gave before


def test_a_service_that_receives_what_it_received_before_keeps_its_hash() -> None:
    one = "services:\n  api:\n    image: api\n"
    listed = one + "    secrets: [token]\nsecrets:\n  token: {}\n"
    before = cfg.configure(services(one)["api"], {}, [("token", 2)], mount)
    after = cfg.configure(services(listed)["api"], {}, [("token", 2)], mount)
    assert after.spec_hash == before.spec_hash  # adopting compose secrets restarts nothing it need not
    moved = listed.replace("[token]", "[{source: token, target: api_key}]")
    assert cfg.configure(services(moved)["api"], {}, [("token", 2)], mount).spec_hash != before.spec_hash


def test_a_stored_spec_keeps_its_secret_files_and_its_hash() -> None:
    for service in [*configured(SCOPED, SET).values(), *configured(UNSCOPED, SET).values()]:
        back = service_from_dict(json.loads(json.dumps(asdict(service))))
        assert back == service and back.spec_hash == service.spec_hash


# -- through the deploy pipeline (fakes) ----------------------------------------------------------
class RecordingOrchestrator(FakeOrchestrator):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[ServiceSpec] = []

    def start(self, app: str, release: int, environment: str, service: ServiceSpec,
              replicas: Sequence[int] = (0,)) -> list[RunningService]:
        self.started.append(service)
        return super().start(app, release, environment, service, replicas)


COMPOSE = """\
services:
  api:
    build: .
    secrets:
      - token
      - source: token
        target: /run/secrets/api_key
  web:
    build: .
    ports: ["8000"]
secrets:
  token: {external: true}
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> tuple[Deployer, Configuration, RecordingOrchestrator, FakeSecretFiles, FakeRepos]:
    store = FakeStore()
    store.create_app(App(APP))
    orchestrator, files, repos, registry = RecordingOrchestrator(), FakeSecretFiles(), FakeRepos(), FakeRegistry()
    conf = Configuration(store, KeyFile(tmp_path / "secrets.key"), files)
    deployer = Deployer(store=store, repos=repos, builder=FakeBuilder(registry), registry=registry,
                        orchestrator=orchestrator, proxy=FakeProxy(), base_domain="dockyard.test", proxy_port=8080,
                        route_prefix="dy-unit", ready_timeout=5, inspector=parse_source, configuration=conf)
    files.in_use = lambda: {b for c in orchestrator.observe(APP) for s in orchestrator.started
                            if s.spec_hash == c.spec_hash for b in s.binds}
    repos.create(APP)
    return deployer, conf, orchestrator, files, repos


def test_a_deploy_gives_each_service_its_secrets_and_a_new_version_replaces_only_its_users(
    pipeline: tuple[Deployer, Configuration, RecordingOrchestrator, FakeSecretFiles, FakeRepos],
) -> None:
    deployer, conf, orchestrator, files, repos = pipeline
    tree = {**static_site("scoped"), "docker-compose.yml": COMPOSE}
    said: list[str] = []

    def deploy() -> dict[str, str]:
        commit = repos.commit(APP, tree)
        deployer.deploy_job(deployer.store.enqueue("deploy", APP, {"commit": commit}), said.append)
        return {c.service: c.id for c in orchestrator.observe(APP)}

    with pytest.raises(InvalidSource, match="gives the secret token to api, and shop's environment production has "
                                            "no secret token") as info:
        deploy()
    assert info.value.hint == "set it (its value from stdin): dockyard secrets set shop token --env production"
    assert orchestrator.observe(APP) == []

    conf.set_secret(APP, ENV, "token", "first-value")
    first = deploy()
    by_name = {s.name: s for s in orchestrator.started}
    api, web = by_name["api"], by_name["web"]
    assert ("token", "first-value") in api.environment and web.environment == ()
    assert web.binds == () and web.secrets == ()
    [bind] = api.binds
    assert files.files == {bind: {"token": b"first-value", "api_key": b"first-value"}}

    conf.set_secret(APP, ENV, "token", "second-value")
    planner = Planner(deployer.store, repos, deployer, registry=deployer.registry.address, git_url="")
    plan = planner.plan(APP, ENV)
    assert {c["service"]: (c["action"], c["reasons"]) for c in plan["changes"]} == {
        "api": ("replace", ("secret token version 1 -> 2", "binds changed")), "web": ("keep", ())}
    second = deploy()
    assert second["api"] != first["api"] and second["web"] == first["web"]
    assert f"web: unchanged, keeping {first['web'][:12]}" in "\n".join(said)
    assert ("token", "second-value") in orchestrator.started[-1].environment
    assert [v for f in files.files.values() for v in f.values()] == [b"second-value"] * 2  # the old files went
