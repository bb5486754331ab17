"""Compose `build:` as people write it: context, dockerfile, args and target; and what an image is
(one per distinct Dockerfile, context, args and target), how it is named, and how it is built."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from dockyard.domain import compose_build, images
from dockyard.domain.errors import InvalidSource
from dockyard.domain.images import ImageSpec, parse_dockerfile
from dockyard.domain.limits import MAX_DOCKERFILES
from dockyard.fakes import FakeBuilder, FakeRepos
from dockyard.services.deploy import Deployer
from dockyard.services.inspect import Inspection, parse_source, placeholder
from dockyard.services.plan import Planner
from tests.unit.on_fakes import deployer_on_fakes, sql_store

APP = "shop"
SOURCE = "docker-compose.yml"

API = "# reg.example.com/crigen/api\n# VERSION 0.2\nFROM python\nCOPY shared/lib.py /lib.py\nEXPOSE 8000\n"
STAGES = "# reg.example.com/crigen/site\nFROM busybox AS base\nFROM base AS Dev\nFROM base AS prod\nEXPOSE 80\n"
TREE = {
    "api/Dockerfile": API,
    "api/main.py": "print()\n",
    "shared/lib.py": "x = 1\n",
    "site/Dockerfile": STAGES,
    "site/index.html": "hi\n",
}


def parse(compose: str, files: dict[str, str] | None = None, variables: dict[str, str] | None = None) -> Inspection:
    tree = {**TREE, **(files or {}), SOURCE: textwrap.dedent(compose)}
    return parse_source(sorted(tree), lambda path, limit: tree.get(path), APP, base_domain="localhost",
                        variables=variables)


def refused(compose: str, files: dict[str, str] | None = None, variables: dict[str, str] | None = None,
            ) -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        parse(compose, files, variables)
    return info.value


def built(found: Inspection, dockerfile: str) -> list[ImageSpec]:
    return [s for s in found.images if s.dockerfile == dockerfile]


def image_of(found: Inspection, service: str) -> str:
    return next(s.image for s in found.services if s.name == service)


def spec_of(found: Inspection, service: str) -> ImageSpec:
    return next(s for s in found.images if placeholder(s.key) == image_of(found, service))


# -- context and dockerfile -----------------------------------------------------------------------


def test_the_repository_root_as_the_context_of_a_dockerfile_in_a_folder() -> None:
    found = parse("""
        services:
          api:
            build: {context: ., dockerfile: api/Dockerfile}
        """)
    [api] = built(found, "api/Dockerfile")  # as `docker build -f api/Dockerfile .`; not in api/ besides
    assert (api.context, api.dockerfile_in_context, api.build_context) == ("", "api/Dockerfile", "")
    assert (api.variant, api.key, api.repository(APP)) == ("", "api/Dockerfile", "shop/api")
    assert image_of(found, "api") == placeholder("api/Dockerfile")
    [site] = built(found, "site/Dockerfile")  # named by no build: built as it always was
    assert (site.context, site.build_context, site.args, site.target) == ("site", None, (), "")


@pytest.mark.parametrize("build", ["api", "./api/", "{context: api}", "{context: ./x/../api, dockerfile: Dockerfile}"])
def test_the_dockerfiles_own_folder_is_its_plain_build(build: str) -> None:
    found = parse(f"services:\n  api:\n    build: {build}\n")
    [api] = built(found, "api/Dockerfile")
    assert api == parse_dockerfile("api/Dockerfile", API, APP)


def test_a_dockerfile_outside_its_context_is_sent_with_it() -> None:
    found = parse("services:\n  api:\n    build: {context: shared, dockerfile: ../api/Dockerfile}\n")
    [api] = built(found, "api/Dockerfile")
    assert (api.context, api.dockerfile_in_context) == ("shared", None)


def test_a_context_that_is_no_folder_of_the_repository() -> None:
    err = refused("services:\n  api:\n    build: {context: nowhere, dockerfile: ../api/Dockerfile}\n")
    assert err.message == f"{SOURCE} line 3: services/api/build/context: context 'nowhere' is not a folder of the repository"


@pytest.mark.parametrize(
    "build,at,message",
    [
        ("../elsewhere", "services/api/build", "context '../elsewhere' is outside the repository"),
        ("{context: /srv/app}", "services/api/build/context", "context '/srv/app' is outside the repository"),
        ("{context: api, dockerfile: ../../Dockerfile}", "services/api/build/dockerfile",
         "dockerfile '../Dockerfile' is outside the repository"),
        ("{dockerfile: /etc/Dockerfile}", "services/api/build/dockerfile",
         "dockerfile '/etc/Dockerfile' is outside the repository"),
        ("{context: 'https://github.com/acme/api.git'}", "services/api/build/context",
         "the remote context 'https://github.com/acme/api.git' is not supported"),
        ("{context: ., dockerfile: api/Dockerfile.prod}", "services/api/build/dockerfile",
         "no Dockerfile at 'api/Dockerfile.prod' in the repository"),
    ],
)
def test_paths_stay_inside_the_repository(build: str, at: str, message: str) -> None:
    err = refused(f"services:\n  api:\n    build: {build}\n")
    assert err.message == f"{SOURCE} line 3: {at}: {message}"
    assert err.hint


# -- args ----------------------------------------------------------------------------------------


def test_args_as_a_mapping_or_a_list_interpolated_like_the_rest_of_the_file() -> None:
    found = parse("""
        services:
          a:
            build:
              context: api
              args: {GREETING: "${GREETING:-hello}", N: 3, DEBUG: true, EMPTY: "", FROM_ENV: null, UNSET: null}
          b:
            build:
              context: api
              args: ["GREETING=${GREETING:-hello}", N=3, DEBUG=true, EMPTY=, FROM_ENV, UNSET, "EQ=a=b"]
        """, variables={"FROM_ENV": "from the environment"})
    a, b = spec_of(found, "a"), spec_of(found, "b")
    expected = {"GREETING": "hello", "N": "3", "DEBUG": "true", "EMPTY": "", "FROM_ENV": "from the environment"}
    assert dict(a.args) == expected  # UNSET: left out, as Compose does without such a variable
    assert dict(b.args) == {**expected, "EQ": "a=b"}


def test_an_arg_without_a_value_takes_the_environments_variable_over_dot_env() -> None:
    compose = "services:\n  a:\n    build: {context: api, args: [TOKEN, MODE]}\n"
    found = parse(compose, {".env": "MODE=dev\nTOKEN=from-dotenv\n"}, variables={"TOKEN": "from-env"})
    assert dict(spec_of(found, "a").args) == {"MODE": "dev", "TOKEN": "from-env"}


def test_a_required_variable_in_an_arg_refuses_the_push() -> None:
    err = refused("services:\n  a:\n    build: {context: api, args: {KEY: '${KEY:?set KEY}'}}\n")
    assert err.message.startswith(f"{SOURCE} line 3: services/a/build/args/KEY: ")
    assert "set KEY" in err.message


@pytest.mark.parametrize(
    "args,at,message",
    [
        ("{'A B': x}", "services/a/build/args/A B", "'A B' is not a build arg name"),
        ("['=x']", "services/a/build/args/0", "'' is not a build arg name"),
        ("{K: \"a\\0b\"}", "services/a/build/args/K", "the value holds a NUL character"),
    ],
)
def test_bad_args(args: str, at: str, message: str) -> None:
    err = refused(f"services:\n  a:\n    build: {{context: api, args: {args}}}\n")
    assert err.message == f"{SOURCE} line 3: {at}: {message}"


def test_args_are_bounded_in_size() -> None:
    half = "x" * (compose_build.MAX_BUILD_ARGS_BYTES // 2)
    found = parse(f"services:\n  a:\n    build: {{context: api, args: {{A: {half[:-10]}}}}}\n")
    assert dict(spec_of(found, "a").args) == {"A": half[:-10]}
    err = refused(f"services:\n  a:\n    build:\n      context: api\n      args:\n        A: {half}\n"
                  f"        B: {half}\n")
    assert err.message == f"{SOURCE} line 7: services/a/build/args/B: the build args add up to more than 64 KiB"
    assert "dockyard secrets" in err.hint


# -- target ----------------------------------------------------------------------------------------


def test_a_target_is_a_stage_of_the_dockerfile_compared_without_case() -> None:
    found = parse("services:\n  a:\n    build: {context: site, target: DEV}\n")
    [site] = built(found, "site/Dockerfile")
    assert (site.target, site.variant, site.repository(APP)) == ("dev", "dev", "shop/site/dev")


@pytest.mark.parametrize(
    "target,message,hint",
    [
        ("staging", "site/Dockerfile has no stage 'staging'", "its stages: base, dev, prod"),
        ("'9lives'", "'9lives' is not a stage name", "a stage name is a letter"),
        ("'a b'", "'a b' is not a stage name", "a stage name is a letter"),
        ("x" * 129, "'xxxxxxxx", "a stage name is a letter"),
    ],
)
def test_bad_targets(target: str, message: str, hint: str) -> None:
    err = refused(f"services:\n  a:\n    build: {{context: site, target: {target}}}\n")
    assert err.message.startswith(f"{SOURCE} line 3: services/a/build/target: {message}")
    assert err.hint.startswith(hint)


def test_a_dockerfile_without_stages_has_no_target() -> None:
    err = refused("services:\n  a:\n    build: {context: api, target: prod}\n")
    assert err.message == f"{SOURCE} line 3: services/a/build/target: api/Dockerfile has no stage 'prod'"
    assert "FROM image AS NAME" in err.hint


# -- warnings ------------------------------------------------------------------------------------


def test_args_and_target_give_no_warning_other_build_keys_do_each_by_path() -> None:
    found = parse("""
        services:
          a:
            build:
              context: site
              args: {A: "1"}
              target: prod
              x-mine: yes
              cache_from: [site:cache]
              labels: {team: shop}
              network: host
              ssh: [default]
              secrets: [token]
              platforms: [linux/arm64]
              shm_size: 1g
        secrets:
          token: {environment: TOKEN}
        """)
    warned = [w for w in found.warnings if "/build" in w]
    assert [re.sub(r" line \d+", "", w).split(": ")[1] for w in warned] == [
        f"services/a/build/{key}" for key in ("cache_from", "labels", "network", "ssh", "secrets", "platforms",
                                              "shm_size")]
    assert all("not honoured yet: dockyard builds with context, dockerfile, args and target only" in w for w in warned)


# -- what an image is ------------------------------------------------------------------------------


def test_services_that_build_alike_share_one_image() -> None:
    found = parse("""
        services:
          a: {build: {context: site, target: prod, args: {A: "1", B: "2"}}}
          b: {build: {context: ./site/, dockerfile: ./Dockerfile, target: PROD, args: [B=2, A=1]}}
          c: {build: site}
          d: {build: {context: site}}
        """)
    assert image_of(found, "a") == image_of(found, "b") != image_of(found, "c") == image_of(found, "d")
    assert [s.key for s in built(found, "site/Dockerfile")] == ["site/Dockerfile", spec_of(found, "a").key]
    assert len(found.images) == 3  # with api/Dockerfile, which no build names


def test_services_that_build_one_dockerfile_differently_get_images_of_their_own() -> None:
    found = parse("""
        services:
          dev: {build: {context: site, target: dev}}
          prod: {build: {context: site, target: prod}}
          hello: {build: {context: site, args: {GREETING: hello}}}
          bye: {build: {context: site, args: {GREETING: bye}}}
          root: {build: {context: ., dockerfile: site/Dockerfile, target: prod}}
        """)
    names = {s.name: spec_of(found, s.name).repository(APP) for s in found.services}
    assert names["dev"] == "shop/site/dev" and names["prod"] == "shop/site/prod"
    assert re.fullmatch(r"shop/site/build-[0-9a-f]{8}", names["hello"]), names
    assert re.fullmatch(r"shop/site/build-[0-9a-f]{8}", names["bye"]) and names["bye"] != names["hello"]
    assert re.fullmatch(r"shop/site/prod-[0-9a-f]{8}", names["root"])  # another context than site's
    assert len(set(names.values())) == 5 == len({image_of(found, n) for n in names})
    assert all(placeholder(s.key) in {image_of(found, n) for n in names} for s in built(found, "site/Dockerfile"))


def test_names_come_from_the_build_alone_and_stay_from_push_to_push() -> None:
    first = parse("""
        services:
          hello: {build: {context: site, args: {GREETING: hello}}}
          prod: {build: {context: site, target: prod}}
        """)
    later = parse("""
        services:
          web: {image: nginx}
          prod2: {build: {context: site, target: prod}}
          greeter: {build: {context: site, args: [GREETING=hello]}}
          other: {build: {context: site, args: {GREETING: bye}}}
        """, {"site/more.txt": "a file more\n"})
    assert spec_of(first, "hello").repository(APP) == spec_of(later, "greeter").repository(APP)
    assert spec_of(first, "prod").repository(APP) == spec_of(later, "prod2").repository(APP) == "shop/site/prod"
    # the hash is of the context, args and target: here, pinned down
    spec = spec_of(first, "hello")
    assert spec.variant == images.variant_for(spec, "site") == "build-" + images.hashlib.sha256(
        b'["site", [["GREETING", "hello"]], ""]').hexdigest()[:8]


def test_the_shared_context_of_a_dockerfiles_builds_is_its_home() -> None:
    found = parse("""
        services:
          api: {build: {context: ., dockerfile: api/Dockerfile}}
          dev: {build: {context: ., dockerfile: site/Dockerfile, target: dev}}
          prod: {build: {context: ., dockerfile: site/Dockerfile, target: prod}}
        """)
    assert [spec_of(found, n).repository(APP) for n in ("api", "dev", "prod")] == [
        "shop/api", "shop/site/dev", "shop/site/prod"]
    # in two contexts, the Dockerfile's own folder is the plain one
    found = parse("""
        services:
          a: {build: {context: ., dockerfile: api/Dockerfile}}
          b: {build: api}
        """)
    assert spec_of(found, "b").repository(APP) == "shop/api"
    assert re.fullmatch(r"shop/api/build-[0-9a-f]{8}", spec_of(found, "a").repository(APP))


@pytest.mark.parametrize("target,variant", [("my.stage_1", "my.stage_1"), ("a__b", r"a-b-[0-9a-f]{8}"),
                                            ("b-", r"b-[0-9a-f]{8}")])
def test_a_target_that_is_no_repository_name_is_written_with_a_hash(target: str, variant: str) -> None:
    site = replace(parse_dockerfile("site/Dockerfile", STAGES, APP), stages=(target,))
    spec = images.with_build(site, "site", {}, target)
    assert re.fullmatch(variant, images.variant_for(spec, "site"))


def test_two_builds_that_would_share_a_name_are_refused() -> None:
    site = parse_dockerfile("site/Dockerfile", STAGES, APP)
    a = replace(images.with_build(site, "site", {}, "prod"), variant="prod")
    b = replace(images.with_build(site, "site", {"A": "1"}, ""), variant="prod")
    with pytest.raises(InvalidSource, match="site/Dockerfile is built two ways that get the same image name"):
        images.build_order([a, b])


def test_at_most_so_many_images() -> None:
    services = "".join(f"  s{i}: {{build: {{context: site, args: {{N: '{i}'}}}}}}\n" for i in range(MAX_DOCKERFILES))
    err = refused("services:\n" + services)
    assert f"asks for {MAX_DOCKERFILES + 1} images" in err.message


# -- a header name names one build -----------------------------------------------------------------


def test_an_image_by_header_name_is_the_plain_build_else_the_only_one() -> None:
    found = parse("""
        services:
          web: {image: "reg.example.com/crigen/site:latest"}
          dev: {build: {context: site, target: dev}}
          plain: {build: site}
        """)
    assert image_of(found, "web") == image_of(found, "plain") == placeholder("site/Dockerfile")
    found = parse("""
        services:
          web: {image: "reg.example.com/crigen/site"}
          dev: {build: {context: site, target: dev}}
        """)
    assert image_of(found, "web") == image_of(found, "dev") == placeholder("site/Dockerfile#dev")


def test_an_image_by_header_name_of_a_dockerfile_built_several_ways_is_refused() -> None:
    err = refused("""
        services:
          web: {image: "reg.example.com/crigen/site"}
          dev: {build: {context: site, target: dev}}
          prod: {build: {context: site, target: prod}}
        """)
    assert err.message.startswith(f"{SOURCE} line 3: services/web/image: 'reg.example.com/crigen/site' is the image "
                                  "of site/Dockerfile, which this file builds in several ways")


def test_from_another_dockerfile_means_its_named_build() -> None:
    tools = {"tools/Dockerfile": "FROM reg.example.com/crigen/site\nRUN true\n"}
    found = parse("""
        services:
          tools: {build: tools}
          prod: {build: {context: site, target: prod}}
        """, tools)
    assert [s.key for s in found.images] == ["api/Dockerfile", "site/Dockerfile#prod", "tools/Dockerfile"]
    err = refused("""
        services:
          tools: {build: tools}
          dev: {build: {context: site, target: dev}}
          prod: {build: {context: site, target: prod}}
        """, tools)
    assert err.message.startswith("tools/Dockerfile: FROM 'reg.example.com/crigen/site' names the image of "
                                  "site/Dockerfile, which the compose file builds 2 ways (dev, prod)")


# -- built, pushed and released (the deploy pipeline on the fakes) ---------------------------------


@pytest.fixture
def deployer(tmp_path: Path) -> Deployer:
    return deployer_on_fakes(APP, sql_store(tmp_path))


PIPELINE = {
    **TREE,
    "jobs/Dockerfile": "FROM python\nCOPY lib.py /lib.py\n",
    SOURCE: textwrap.dedent("""\
        services:
          api:
            build: {context: ., dockerfile: api/Dockerfile, args: {GREETING: "${GREETING:-hello}"}}
            ports: ["8000"]
          dev:
            build: {context: site, target: dev}
            ports: ["80"]
          prod:
            build: {context: site, target: prod}
            ports: ["80"]
          job:
            build: {context: shared, dockerfile: ../jobs/Dockerfile}
        """),
}


def deploy(deployer: Deployer, files: dict[str, str]) -> list[str]:
    assert isinstance(deployer.repos, FakeRepos)
    commit = deployer.repos.commit(APP, files)
    said: list[str] = []
    job = deployer.store.enqueue("deploy", APP, {"commit": commit, "branch": "main"})
    deployer.deploy_job(job, said.append)
    return said


def repositories(deployer: Deployer) -> dict[str, str]:
    """Service -> the repository of the image it runs."""
    by_id = {i.image_id: i.repository for i in deployer.store.list_images(APP)}
    return {c.service: by_id[c.image] for c in deployer.orchestrator.observe(APP)}


def test_each_build_is_built_with_its_args_and_target_and_runs_in_its_service(deployer: Deployer) -> None:
    said = deploy(deployer, PIPELINE)
    builder = deployer.builder
    assert isinstance(builder, FakeBuilder)
    running = repositories(deployer)
    assert re.fullmatch(r"shop/api/build-[0-9a-f]{8}", running.pop("api"))
    assert running == {"dev": "shop/site/dev", "prod": "shop/site/prod", "job": "shop/jobs"}
    ids = {c.service: c.image for c in deployer.orchestrator.observe(APP)}
    assert len(set(ids.values())) == 4
    assert builder.options[ids["api"]] == ({"GREETING": "hello"}, "")
    assert (builder.options[ids["dev"]], builder.options[ids["prod"]]) == (({}, "dev"), ({}, "prod"))
    assert builder.dockerfiles[ids["job"]] == PIPELINE["jobs/Dockerfile"]  # outside its context: sent with it
    assert builder.dockerfiles[ids["dev"]] is None
    assert any(re.fullmatch(r"-----> Building api/Dockerfile \(context \., args GREETING\) -> shop/api/build-\w{8}",
                            line) for line in said)
    assert "-----> Building site/Dockerfile (target dev) -> shop/site/dev" in said


def test_an_unchanged_push_keeps_every_container_and_plans_to_keep_them(deployer: Deployer) -> None:
    deploy(deployer, PIPELINE)
    before = {c.service: c.id for c in deployer.orchestrator.observe(APP)}
    said = deploy(deployer, PIPELINE)
    assert {c.service: c.id for c in deployer.orchestrator.observe(APP)} == before
    assert sum("unchanged, keeping" in line for line in said) == 4
    planner = Planner(deployer.store, deployer.repos, deployer, deployer.registry.address, "")
    assert sorted((c["service"], c["action"]) for c in planner.plan(APP, "production", branch="main")["changes"]) == [
        ("api", "keep"), ("dev", "keep"), ("job", "keep"), ("prod", "keep")]


def test_another_arg_value_is_another_image_and_replaces_only_its_service(deployer: Deployer) -> None:
    deploy(deployer, PIPELINE)
    before, names = {c.service: c.id for c in deployer.orchestrator.observe(APP)}, repositories(deployer)
    deploy(deployer, {**PIPELINE, SOURCE: PIPELINE[SOURCE].replace("${GREETING:-hello}", "bonjour")})
    after, renamed = {c.service: c.id for c in deployer.orchestrator.observe(APP)}, repositories(deployer)
    assert after["api"] != before["api"] and renamed["api"] != names["api"]
    assert {s: after[s] for s in ("dev", "prod", "job")} == {s: before[s] for s in ("dev", "prod", "job")}
    assert {s: renamed[s] for s in ("dev", "prod", "job")} == {s: names[s] for s in ("dev", "prod", "job")}


def test_a_from_is_pinned_to_the_build_the_header_name_means(deployer: Deployer) -> None:
    files = {**TREE, "tools/Dockerfile": "FROM reg.example.com/crigen/site\nRUN true\n",
             SOURCE: "services:\n  prod: {build: {context: site, target: prod}}\n  tools: {build: tools}\n"}
    said = deploy(deployer, files)
    ids = {c.service: c.image for c in deployer.orchestrator.observe(APP)}
    builder = deployer.builder
    assert isinstance(builder, FakeBuilder)
    assert builder.dockerfiles[ids["tools"]] == f"FROM {ids['prod']}\nRUN true\n"
    assert f"       FROM reg.example.com/crigen/site: the image built above ({ids['prod'][7:19]})" in said
