"""Which of an app's builds an image reference means, across its repos (domain/builds.py), and the
names an app's repos take (domain/names.py: repo_name, repo_key)."""

from __future__ import annotations

import pytest

from dockyard.domain import builds, names
from dockyard.domain.errors import InvalidName
from dockyard.domain.images import ImageSpec, parse_dockerfile
from dockyard.domain.model import BuiltImage

APP = "crigen"
REGISTRY = "127.0.0.1:5000"
NODEJS = "dockyard.test/crigen/nodejs"
API = "dockyard.test/crigen/api"


def build(name: str, version: str, *, source_version: str = "", branch: str = "main", repo: str = "api",
          repository: str = "", tag: str = "", serial: int = 0) -> BuiltImage:
    """One of the app's builds; ``serial`` tells apart builds otherwise alike."""
    repository = repository or f"{APP}/{name.rsplit('/', 1)[-1] if name else 'web'}"
    mark = f"{name}|{version}|{branch}|{serial}"
    return BuiltImage(app=APP, repository=repository, version=version, tag=tag or version.replace("+", "_"),
                      digest=f"sha256:m-{mark}", image_id=f"sha256:i-{mark}", commit="c" * 40, size=1,
                      dockerfile="Dockerfile", name=name, source_version=source_version or version, repo=repo,
                      branch=branch)


def spec(text: str) -> ImageSpec:
    return parse_dockerfile("Dockerfile", text, APP)


API_DOCKERFILE = f"# {API}\n#\n# VERSION 0.2\nFROM {NODEJS}:0.1\n"


# -- by the header's name and version -------------------------------------------------------------


def test_a_reference_means_the_build_of_that_header_name_and_version() -> None:
    v1, v2 = build(API, "0.1"), build(API, "0.2")
    images = [v2, v1]  # newest first, as the store lists them
    assert builds.newest_build(images, f"{API}:0.1") == v1
    assert builds.newest_build(images, f"{API}:0.2") == v2
    assert builds.newest_build(images, f"{API}:0.3") is None
    assert builds.newest_build(images, f"{NODEJS}:0.1") is None  # another name
    assert builds.newest_build(images, "dockyard.test/crigen/ap:0.1") is None
    assert builds.newest_build([], f"{API}:0.1") is None


def test_the_newest_of_several_builds_of_one_version() -> None:
    newer, older = build(API, "0.2", serial=2), build(API, "0.2", serial=1)
    assert builds.newest_build([newer, older], f"{API}:0.2") == newer


def test_the_version_the_source_asked_for_names_a_build_released_under_a_distinct_version() -> None:
    # a changed build of an unchanged VERSION is released as 0.2+gabc (tag 0.2_gabc)
    distinct = build(API, "0.2+gabc", source_version="0.2")
    assert distinct.tag == "0.2_gabc"
    assert builds.newest_build([distinct], f"{API}:0.2") == distinct
    first = build(API, "0.2")
    assert builds.newest_build([distinct, first], f"{API}:0.2") == distinct  # the newest of both
    assert builds.newest_build([distinct], f"{API}:0.3") is None


def test_an_image_without_source_version_matches_by_its_version() -> None:
    old = BuiltImage(app=APP, repository=f"{APP}/api", version="0.2", tag="0.2", digest="sha256:m", image_id="sha256:i",
                     commit="c" * 40, size=1, dockerfile="Dockerfile", name=API)  # recorded before source_version
    assert builds.newest_build([old], f"{API}:0.2") == old


@pytest.mark.parametrize("reference", [API, f"{API}:latest"])
def test_no_tag_or_latest_means_the_newest_build_of_any_version(reference: str) -> None:
    images = [build(API, "0.1", serial=3), build(API, "0.3"), build(API, "0.2")]  # 0.1 rebuilt last
    assert builds.newest_build(images, reference) == images[0]
    assert builds.newest_build([build(NODEJS, "0.1")], reference) is None


# -- branches -------------------------------------------------------------------------------------


def test_a_build_of_the_same_branch_over_a_newer_one_of_another_branch() -> None:
    feature, main = build(API, "0.2", branch="feature"), build(API, "0.2", branch="main")
    images = [feature, main]  # the feature branch built last
    assert builds.newest_build(images, f"{API}:0.2", branch="main") == main
    assert builds.newest_build(images, f"{API}:0.2", branch="feature") == feature
    assert builds.newest_build(images, API, branch="main") == main


def test_any_branch_when_the_branch_has_no_such_build() -> None:
    feature, main = build(API, "0.2", branch="feature"), build(API, "0.2", branch="main")
    assert builds.newest_build([feature, main], f"{API}:0.2", branch="recette") == feature
    # the branch's build of another version does not count: the newest of the version asked for
    other = build(API, "0.1", branch="recette")
    assert builds.newest_build([other, feature, main], f"{API}:0.2", branch="recette") == feature


# -- dockyard's own registry ----------------------------------------------------------------------


@pytest.mark.parametrize("host", [REGISTRY, "localhost:5000"])
def test_a_reference_into_dockyards_registry_means_the_build_pushed_under_it(host: str) -> None:
    v2 = build(API, "0.2", repository="app/api")
    v1 = build(API, "0.1", repository="app/api")
    distinct = build(API, "0.2+gabc", source_version="0.2", repository="app/api")
    images = [distinct, v2, v1]
    assert builds.newest_build(images, f"{host}/app/api:0.2", registry=REGISTRY) == v2
    assert builds.newest_build(images, f"{host}/app/api:0.1", registry=REGISTRY) == v1
    assert builds.newest_build(images, f"{host}/app/api:0.2_gabc", registry=REGISTRY) == distinct
    assert builds.newest_build(images, f"{host}/app/api", registry=REGISTRY) == distinct  # no tag: the newest
    assert builds.newest_build(images, f"{host}/app/api:0.3", registry=REGISTRY) is None
    assert builds.newest_build(images, f"{host}/app/web:0.2", registry=REGISTRY) is None


def test_a_registry_reference_matches_by_repository_whatever_the_header_name() -> None:
    unnamed = build("", "g1a2b3c4", repository="app/tools")
    assert builds.newest_build([unnamed], f"{REGISTRY}/app/tools:g1a2b3c4", registry=REGISTRY) == unnamed
    # the registry's repository and tag only: not the header name's version
    named = build(API, "0.2", repository="app/api", tag="0.2")
    assert builds.newest_build([named], f"{REGISTRY}/app/api:latest", registry=REGISTRY) is None


def test_a_registry_reference_prefers_the_same_branch() -> None:
    feature = build(API, "0.2", branch="feature", repository="app/api")
    main = build(API, "0.2", branch="main", repository="app/api")
    assert builds.newest_build([feature, main], f"{REGISTRY}/app/api:0.2", "main", REGISTRY) == main


def test_another_registry_or_port_is_not_dockyards() -> None:
    images = [build(API, "0.2", repository="app/api")]
    assert builds.newest_build(images, "localhost:5001/app/api:0.2", registry=REGISTRY) is None
    assert builds.newest_build(images, "registry.example.com/app/api:0.2", registry=REGISTRY) is None
    assert builds.newest_build(images, f"{REGISTRY}/app/api:0.2") is None  # no registry given: a name


# -- what never matches ---------------------------------------------------------------------------


@pytest.mark.parametrize("registry", ["", REGISTRY])
def test_a_reference_pinned_by_digest_means_itself(registry: str) -> None:
    images = [build(API, "0.2", repository="app/api")]
    digest = "sha256:" + "a" * 64
    assert builds.newest_build(images, f"{API}:0.2@{digest}", registry=registry) is None
    assert builds.newest_build(images, f"{API}@{digest}", registry=registry) is None
    assert builds.newest_build(images, f"{REGISTRY}/app/api@{digest}", registry=registry) is None


@pytest.mark.parametrize("reference", ["", "Bad/Name:0.2", f"{API}:bad tag", f"{API}:0.2+gabc", f"{API}@sha256:xyz",
                                       "not a reference", f"{API}:"])
def test_a_reference_that_does_not_parse_means_no_build(reference: str) -> None:
    images = [build(API, "0.2"), build(API, "0.2+gabc", source_version="0.2")]
    assert builds.newest_build(images, reference) is None
    assert builds.newest_build(images, reference, registry=REGISTRY) is None


def test_an_image_without_a_name_never_matches_a_plain_name() -> None:
    unnamed = build("", "0.2", repository=f"{APP}/api")
    for reference in (f"{APP}/api:0.2", f"{APP}/api", "api:0.2", "api", f"{API}:0.2"):
        assert builds.newest_build([unnamed], reference) is None, reference
        assert builds.newest_build([unnamed], reference, registry=REGISTRY) is None, reference


# -- FROM lines -----------------------------------------------------------------------------------


def test_the_spec_parsed_from_a_header() -> None:
    api = spec(API_DOCKERFILE)
    assert (api.declared_name, api.version, api.bases) == (API, "0.2", (f"{NODEJS}:0.1",))


def test_bases_from_builds_maps_each_from_naming_a_build() -> None:
    nodejs, python = build(NODEJS, "0.1", repo="base"), build("dockyard.test/crigen/python", "3.11", repo="base")
    found = builds.bases_from_builds(spec(API_DOCKERFILE), [nodejs, python], "main", REGISTRY)
    assert found == {f"{NODEJS}:0.1": nodejs}
    assert builds.bases_from_builds(spec(API_DOCKERFILE), [build(NODEJS, "0.2")], "main", REGISTRY) == {}
    assert builds.bases_from_builds(spec(API_DOCKERFILE), [], "main", REGISTRY) == {}


def test_bases_from_builds_with_stages_other_images_and_registry_references() -> None:
    text = (f"# {API}\n# VERSION 0.2\nFROM {NODEJS}:0.1 AS deps\nFROM deps AS test\n"
            f"FROM {REGISTRY}/crigen/tools:0.5 AS tools\nFROM python:3.11\nCOPY --from=deps /a /a\n")
    nodejs = build(NODEJS, "0.1", repo="base")
    tools = build("", "0.5", repository="crigen/tools", repo="tools")
    found = builds.bases_from_builds(spec(text), [tools, nodejs], "main", REGISTRY)
    assert found == {f"{NODEJS}:0.1": nodejs, f"{REGISTRY}/crigen/tools:0.5": tools}  # not python, not a stage


def test_bases_from_builds_takes_the_branchs_build() -> None:
    feature, main = build(NODEJS, "0.1", branch="feature"), build(NODEJS, "0.1", branch="main")
    assert builds.bases_from_builds(spec(API_DOCKERFILE), [feature, main], "main", REGISTRY) == {
        f"{NODEJS}:0.1": main}
    assert builds.bases_from_builds(spec(API_DOCKERFILE), [feature, main], "other", REGISTRY) == {
        f"{NODEJS}:0.1": feature}


def test_dependents_are_rebuilt_after_every_base_they_take_whatever_order_they_were_added_in() -> None:
    web = spec(f"# dockyard.test/crigen/web\n#\n# VERSION 1\nFROM {API}:0.2\nFROM {NODEJS}:0.1\n")
    api, other = spec(API_DOCKERFILE), spec("# x/other\nFROM python:3.11\n")
    repos = {"web": (web,), "other": (other,), "api": (api,)}  # web listed before the api it builds FROM
    assert builds.rebuild_order([NODEJS], repos) == ["api", "web"]
    assert builds.rebuild_order([API], repos) == ["web"]
    assert builds.rebuild_order(["dockyard.test/crigen/unrelated"], repos) == []
    untagged = spec(f"# {API}\nFROM {NODEJS}\n")  # a FROM without a tag names it too
    assert builds.rebuild_order([NODEJS], {"api": (untagged,)}) == ["api"]


def test_repos_that_take_bases_from_each_other_are_rebuilt_once_in_the_order_listed() -> None:
    a = spec("# x/a\nFROM x/b\nFROM x/base\n")
    b = spec("# x/b\nFROM x/a\n")
    assert builds.rebuild_order(["x/base"], {"a": (a,), "b": (b,)}) == ["a", "b"]


# -- repo names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["api", "base-container-images", "a.b_c", "a", "0", "v2", "a" * 64, "x-y.z_1"])
def test_repo_name_accepts(value: str) -> None:
    assert names.repo_name(value) == value


@pytest.mark.parametrize("value", ["Bad", "-x", "x-", "a..b", "x.git", "", "a" * 65, ".x", "x.", "_x", "x_",
                                   "a/b", "../x", "a b", "a;b", "é", "x\n"])
def test_repo_name_refuses(value: str) -> None:
    with pytest.raises(InvalidName) as info:
        names.repo_name(value)
    assert info.value.message.startswith("invalid repo name")
    assert info.value.hint


def test_repo_key() -> None:
    assert names.repo_key("shop") == "shop"
    assert names.repo_key("shop", "") == "shop"
    assert names.repo_key("shop", "api") == "shop/api"
    assert names.repo_key("shop", "base-container-images") == "shop/base-container-images"
    with pytest.raises(InvalidName, match="invalid app name"):
        names.repo_key("Shop", "api")
    with pytest.raises(InvalidName, match="invalid repo name"):
        names.repo_key("shop", "Bad")
    with pytest.raises(InvalidName, match="invalid repo name"):
        names.repo_key("shop", "a/b")
