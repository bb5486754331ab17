"""Images as the source declares them: references, Dockerfile headers, build order, versions."""

from __future__ import annotations

import pytest

from dockyard.domain import images
from dockyard.domain.add_urls import add_urls
from dockyard.domain.dockerfile_syntax import label_pairs
from dockyard.domain.errors import InvalidSource
from dockyard.domain.images import ImageSpec, parse_dockerfile
from dockyard.domain.references import Reference, parse_reference

DIGEST = "sha256:" + "ab" * 32
COMMIT = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678"

SEED_API = """\
# reg.example.com/crigen/api
#
# VERSION   0.2

FROM python:3.12-slim
EXPOSE 8000
CMD ["python", "-m", "http.server"]
"""

SEED_TOOLS = """\
FROM reg.example.com/crigen/api:0.2
RUN pip install tools
"""


def spec(
    dockerfile: str = "Dockerfile",
    basename: str = "app",
    declared: str | None = None,
    version: str | None = None,
    bases: tuple[str, ...] = ("alpine",),
) -> ImageSpec:
    return ImageSpec(
        dockerfile=dockerfile,
        basename=basename,
        declared_name=declared,
        version=version,
        version_source="header" if version else "commit",
        bases=bases,
    )


# -- parse_reference --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,name,tag,digest,path",
    [
        ("ubuntu", "ubuntu", None, None, "ubuntu"),
        ("ubuntu:22.04", "ubuntu", "22.04", None, "ubuntu"),
        ("library/ubuntu:latest", "library/ubuntu", "latest", None, "library/ubuntu"),
        ("python:3.12-slim", "python", "3.12-slim", None, "python"),
        ("reg.example.com/crigen/api", "reg.example.com/crigen/api", None, None, "crigen/api"),
        ("reg.example.com/crigen/api:0.2", "reg.example.com/crigen/api", "0.2", None, "crigen/api"),
        ("localhost:5000/shop/web", "localhost:5000/shop/web", None, None, "shop/web"),
        ("localhost:5000/shop/web:1.0_g1a2b", "localhost:5000/shop/web", "1.0_g1a2b", None, "shop/web"),
        ("localhost/shop", "localhost/shop", None, None, "shop"),
        ("10.0.0.1:5000/a/b:v1", "10.0.0.1:5000/a/b", "v1", None, "a/b"),
        (f"reg.example.com:443/a/b@{DIGEST}", "reg.example.com:443/a/b", None, DIGEST, "a/b"),
        (f"a/b:1.0@{DIGEST}", "a/b", "1.0", DIGEST, "a/b"),
        ("my-org/my_image__x", "my-org/my_image__x", None, None, "my-org/my_image__x"),
        ("a/b---c", "a/b---c", None, None, "a/b---c"),
    ],
)
def test_parse_reference(text: str, name: str, tag: str | None, digest: str | None, path: str) -> None:
    ref = parse_reference(text)
    assert ref == Reference(name=name, tag=tag, digest=digest)
    assert ref.path == path
    assert str(ref) == text


@pytest.mark.parametrize(
    "text,what",
    [
        ("", "repository path"),
        ("Ubuntu", "repository path"),
        ("team/API", "repository path"),
        ("a//b", "repository path"),
        ("/a", "repository path"),
        ("a/", "repository path"),
        ("-api", "repository path"),
        ("api-", "repository path"),
        ("a..b", "repository path"),
        ("a b", "repository path"),
        ("reg.example.com/", "repository path"),
        ("api:", "tag"),
        ("api:1.0+g1a2b", "tag"),
        ("api:.1", "tag"),
        ("api:-1", "tag"),
        ("api:a b", "tag"),
        ("api:" + "x" * 102, "tag"),
        ("api@sha256:abc", "digest"),
        ("api@md5:" + "ab" * 16, "digest"),
        ("api@sha256:" + "AB" * 32, "digest"),
        ("bad_host.com/x", "registry host"),
        ("reg.example.com:http/x", "registry host"),
        ("reg.example.com:5000:1/x", "registry host"),
        ("api;rm -rf /", "repository path"),
        ("$(id)/x", "repository path"),
    ],
)
def test_parse_reference_rejects(text: str, what: str) -> None:
    with pytest.raises(ValueError, match=f"bad {what}") as info:
        parse_reference(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["api@", "reg.example.com/a/b:1.0@"])
def test_parse_reference_rejects_empty_digest(text: str) -> None:
    with pytest.raises(ValueError, match="bad digest"):
        parse_reference(text)


@pytest.mark.parametrize(
    "text,what",
    [
        ("ubuntu\n", "repository path"),
        ("ubuntu:22.04\n", "tag"),
        (f"ubuntu@{DIGEST}\n", "digest"),
        ("reg.example.com\n/a/b", "registry host"),
        ("a\n/b", "repository path"),
    ],
)
def test_parse_reference_rejects_trailing_newline(text: str, what: str) -> None:
    with pytest.raises(ValueError, match=f"bad {what}"):
        parse_reference(text)


def test_reference_str_roundtrip_without_tag_keeps_digest() -> None:
    assert str(Reference("a/b", None, DIGEST)) == f"a/b@{DIGEST}"
    assert str(Reference("a/b", "1", None)) == "a/b:1"


@pytest.mark.parametrize("name,path", [("shop/web", "shop/web"), ("web", "web"), ("reg:5000/x", "x")])
def test_reference_path(name: str, path: str) -> None:
    assert Reference(name).path == path


# -- find_dockerfiles / is_dockerfile -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "Dockerfile",
        "Dockerfile-tools",
        "Dockerfile-worker_2",
        "Dockerfile-a.b",
        "sub/Dockerfile",
        "sub/dir/Dockerfile-x",
        "Sub/Dockerfile",
    ],
)
def test_is_dockerfile(path: str) -> None:
    assert images.is_dockerfile(path)


@pytest.mark.parametrize(
    "path",
    [
        "Dockerfile.bak",
        "Dockerfile.dev",
        "Dockerfile-",
        "Dockerfile-Tools",
        "Dockerfile--x",
        "Dockerfile_tools",
        "dockerfile",
        "DOCKERFILE",
        "api.Dockerfile",
        "MyDockerfile",
        "Dockerfile/x",
        "sub/Dockerfile.bak",
        "Dockerfiles",
        "README.md",
        "",
    ],
)
def test_is_not_dockerfile(path: str) -> None:
    assert not images.is_dockerfile(path)


def test_find_dockerfiles_filters_and_sorts() -> None:
    tree = [
        "sub/Dockerfile",
        "README.md",
        "Dockerfile-tools",
        "Dockerfile.bak",
        "Dockerfile",
        "docker-compose.yml",
        "app/main.py",
        "worker/Dockerfile-job",
    ]
    assert images.find_dockerfiles(tree) == [
        "Dockerfile",
        "Dockerfile-tools",
        "sub/Dockerfile",
        "worker/Dockerfile-job",
    ]
    assert images.find_dockerfiles(iter(tree)) == images.find_dockerfiles(tree)
    assert images.find_dockerfiles([]) == []


# -- parse_dockerfile: header -----------------------------------------------------------------


def test_seed_header() -> None:
    s = parse_dockerfile("Dockerfile", SEED_API, "crigen")
    assert s.dockerfile == "Dockerfile"
    assert s.declared_name == "reg.example.com/crigen/api"
    assert s.basename == "api"
    assert s.version == "0.2"
    assert s.version_source == "header"
    assert s.bases == ("python:3.12-slim",)
    assert s.exposed_ports == (8000,)
    assert s.repository("shop") == "shop/api"


@pytest.mark.parametrize(
    "header,declared,version",
    [
        ("# registry.example.com/crigen/api\n#\n# VERSION   0.2\n", "registry.example.com/crigen/api", "0.2"),
        ("# VERSION 1.0.0\n# reg.example.com/a/b\n", "reg.example.com/a/b", "1.0.0"),
        ("#reg.example.com/a/b\n#VERSION 3\n", "reg.example.com/a/b", "3"),
        ("   # localhost:5000/team/web\n\n#   VERSION\t2.1-rc_1\n", "localhost:5000/team/web", "2.1-rc_1"),
        ("# crigen/api\n", "crigen/api", None),
        ("# VERSION 0.9\n", None, "0.9"),
        ("# syntax=docker/dockerfile:1\n# reg.example.com/x/y\n# VERSION 1\n", "reg.example.com/x/y", "1"),
        ("# syntax=docker/dockerfile:1.4\n", None, None),
        ("# escape=`\n", None, None),
        ("# Build me with: docker build -t foo/bar .\n", None, None),
        ("# a/b\n# c/d\n", "a/b", None),
    ],
)
def test_header_variants(header: str, declared: str | None, version: str | None) -> None:
    s = parse_dockerfile("Dockerfile", header + "FROM alpine\n", "shop")
    assert s.declared_name == declared
    assert s.version == version
    assert s.version_source == ("header" if version else "commit")


def test_parser_directive_is_not_an_image_name() -> None:
    s = parse_dockerfile("Dockerfile", "# syntax=docker/dockerfile:1\nFROM alpine\n", "shop")
    assert s.declared_name is None
    assert s.basename == "shop"


def test_header_ends_at_first_instruction() -> None:
    text = "FROM alpine\n# reg.example.com/x/y\n# VERSION 9\n"
    s = parse_dockerfile("Dockerfile", text, "shop")
    assert s.declared_name is None
    assert s.version is None
    assert s.version_source == "commit"


def test_malformed_version_after_header_is_ignored() -> None:
    s = parse_dockerfile("Dockerfile", "FROM alpine\n# VERSION\n# VERSION 1 2\n", "shop")
    assert s.version is None


@pytest.mark.parametrize(
    "line,lineno",
    [
        ("# VERSION", 3),
        ("# VERSION   ", 3),
        ("# VERSION 0.2 0.3", 3),
        ("# VERSION 0.2+build", 3),
        ("# VERSION .2", 3),
        ("# VERSION 0.2;id", 3),
        ("# VERSION $(id)", 3),
        ("# VERSION " + "1" * 102, 3),
    ],
)
def test_malformed_version_header(line: str, lineno: int) -> None:
    text = f"# reg.example.com/crigen/api\n#\n{line}\nFROM alpine\n"
    with pytest.raises(InvalidSource) as info:
        parse_dockerfile("sub/Dockerfile-tools", text, "shop")
    assert f"sub/Dockerfile-tools line {lineno}" in info.value.message
    assert "malformed VERSION" in info.value.message
    assert "# VERSION 1.2.3" in info.value.hint


@pytest.mark.parametrize(
    "name",
    ["reg.example.com/crigen/api:0.2", "reg.example.com/crigen/api:latest", f"reg.example.com/crigen/api@{DIGEST}"],
)
def test_header_name_with_tag(name: str) -> None:
    with pytest.raises(InvalidSource) as info:
        parse_dockerfile("Dockerfile", f"# {name}\nFROM alpine\n", "shop")
    assert "Dockerfile line 1" in info.value.message
    assert "carries a tag" in info.value.message
    assert repr(name) in info.value.message
    assert "VERSION" in info.value.hint


@pytest.mark.parametrize("name", ["reg.example.com/Crigen/API", "a//b", "bad_host.com/x", "a/b+c"])
def test_header_name_invalid(name: str) -> None:
    with pytest.raises(InvalidSource) as info:
        parse_dockerfile("Dockerfile", f"#\n# {name}\nFROM alpine\n", "shop")
    assert "Dockerfile line 2" in info.value.message
    assert repr(name) in info.value.message
    assert "not a valid image reference" in info.value.message
    assert "without a tag" in info.value.hint


# -- parse_dockerfile: OCI label ----------------------------------------------------------------


@pytest.mark.parametrize(
    "label,version",
    [
        ('LABEL org.opencontainers.image.version="1.4.0"', "1.4.0"),
        ("LABEL org.opencontainers.image.version='1.4.0'", "1.4.0"),
        ("LABEL org.opencontainers.image.version=1.4.0", "1.4.0"),
        ('LABEL "org.opencontainers.image.version"="2"', "2"),
        ('label org.opencontainers.image.version="v3"', "v3"),
        ('LABEL a=b org.opencontainers.image.version="1.0" c="d e"', "1.0"),
        (
            'LABEL org.opencontainers.image.title="x" \\\n'
            '      org.opencontainers.image.version="5.6" \\\n'
            "      org.opencontainers.image.vendor=acme",
            "5.6",
        ),
        (
            "LABEL org.opencontainers.image.title=x \\\n"
            "  # a comment inside the continuation\n"
            "  org.opencontainers.image.version=7.0",
            "7.0",
        ),
    ],
)
def test_oci_label_version(label: str, version: str) -> None:
    s = parse_dockerfile("Dockerfile", f"FROM alpine\n{label}\nEXPOSE 80\n", "shop")
    assert s.version == version
    assert s.version_source == "label"
    assert s.exposed_ports == (80,)


@pytest.mark.parametrize(
    "label",
    [
        "LABEL org.opencontainers.image.version=$VERSION",
        'LABEL org.opencontainers.image.version="${VERSION}"',
        "LABEL org.opencontainers.image.version=${VERSION:-1.0}",
        'LABEL org.opencontainers.image.version=""',
        'LABEL org.opencontainers.image.title="1.0"',
        'LABEL org.opencontainers.image.versions="1.0"',
    ],
)
def test_oci_label_ignored(label: str) -> None:
    s = parse_dockerfile("Dockerfile", f"FROM alpine\n{label}\n", "shop")
    assert s.version is None
    assert s.version_source == "commit"


def test_header_version_wins_over_label() -> None:
    text = "# VERSION 1.0\nFROM alpine\nLABEL org.opencontainers.image.version=2.0\n"
    s = parse_dockerfile("Dockerfile", text, "shop")
    assert (s.version, s.version_source) == ("1.0", "header")


def test_header_version_wins_even_over_a_bad_label() -> None:
    text = "# VERSION 1.0\nFROM alpine\nLABEL org.opencontainers.image.version=1.0+x\n"
    assert parse_dockerfile("Dockerfile", text, "shop").version == "1.0"


def test_first_label_wins() -> None:
    text = "FROM alpine\nLABEL org.opencontainers.image.version=1\nLABEL org.opencontainers.image.version=2\n"
    assert parse_dockerfile("Dockerfile", text, "shop").version == "1"


@pytest.mark.parametrize("value", ["1.0+build", '"1.0 beta"', ".1"])
def test_bad_oci_label_version(value: str) -> None:
    text = f"FROM alpine\nRUN true\nLABEL org.opencontainers.image.version={value}\n"
    with pytest.raises(InvalidSource) as info:
        parse_dockerfile("web/Dockerfile", text, "shop")
    assert "web/Dockerfile line 3" in info.value.message
    assert images.OCI_VERSION_LABEL in info.value.message
    assert info.value.hint


# -- parse_dockerfile: FROM and EXPOSE ----------------------------------------------------------


@pytest.mark.parametrize(
    "body,bases",
    [
        ("FROM alpine", ("alpine",)),
        ("from alpine:3.19", ("alpine:3.19",)),
        ("FROM --platform=$BUILDPLATFORM golang:1.22 AS build", ("golang:1.22",)),
        ("FROM golang AS build\nFROM build AS test\nFROM alpine\nCOPY --from=build /x /x", ("golang", "alpine")),
        ("FROM golang as Build\nFROM BUILD", ("golang",)),
        ("FROM node AS deps\nFROM node AS build\nFROM deps\nFROM nginx", ("node", "node", "nginx")),
        ("FROM scratch", ("scratch",)),
        ("FROM ${BASE}", ("${BASE}",)),
        ("ARG BASE=alpine\nFROM $BASE", ("$BASE",)),
        ("FROM \\\n  python:3.12", ("python:3.12",)),
        ("RUN echo FROM evil\nFROM alpine", ("alpine",)),
        ("FROM reg.example.com:5000/crigen/api:0.2", ("reg.example.com:5000/crigen/api:0.2",)),
    ],
)
def test_from_collection(body: str, bases: tuple[str, ...]) -> None:
    assert parse_dockerfile("Dockerfile", body + "\n", "shop").bases == bases


@pytest.mark.parametrize(
    "body,ports",
    [
        ("EXPOSE 8000", (8000,)),
        ("EXPOSE 8000/tcp", (8000,)),
        ("expose 53/udp", (53,)),
        ("EXPOSE 80 443/tcp", (80, 443)),
        ("EXPOSE 80\nEXPOSE 9090", (80, 9090)),
        ("EXPOSE $PORT", ()),
        ("EXPOSE 0 65536 65535 1", (65535, 1)),
        ("EXPOSE 8000-8010", ()),
        ("EXPOSE 80 \\\n  81", (80, 81)),
        ("# EXPOSE 80", ()),
        ("", ()),
    ],
)
def test_expose_parsing(body: str, ports: tuple[int, ...]) -> None:
    assert parse_dockerfile("Dockerfile", f"FROM alpine\n{body}\n", "shop").exposed_ports == ports


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "# reg.example.com/x/y\n# VERSION 1\n", "RUN echo hi\n", "# FROM alpine\n", "LABEL a=b\n"],
)
def test_no_from_is_invalid(text: str) -> None:
    with pytest.raises(InvalidSource) as info:
        parse_dockerfile("sub/Dockerfile", text, "shop")
    assert info.value.message == "sub/Dockerfile: no FROM instruction"
    assert "FROM" in info.value.hint


@pytest.mark.parametrize("text", ["FROM\n", "FROM --platform=linux/amd64\n"])
def test_from_without_image(text: str) -> None:
    with pytest.raises(InvalidSource, match="Dockerfile line 1: FROM without an image"):
        parse_dockerfile("Dockerfile", text, "shop")


def test_from_without_image_reports_first_line_of_the_instruction() -> None:
    with pytest.raises(InvalidSource, match="Dockerfile line 3: FROM without an image"):
        parse_dockerfile("Dockerfile", "FROM alpine\n\nFROM \\\n  --platform=x\n", "shop")


def test_tab_after_keyword() -> None:
    s = parse_dockerfile("Dockerfile", "FROM\tpython:3.12\nEXPOSE\t8000\n", "shop")
    assert s.bases == ("python:3.12",)
    assert s.exposed_ports == (8000,)


def test_tabs_and_runs_of_whitespace_between_keyword_and_arguments() -> None:
    text = f"FROM \t python:3.12\tAS\tbuild\nFROM\tbuild\nLABEL\t{images.OCI_VERSION_LABEL}=1.4\nEXPOSE\t \t8000\n"
    s = parse_dockerfile("Dockerfile", text, "shop")
    assert s.bases == ("python:3.12",)
    assert s.version == "1.4"
    assert s.exposed_ports == (8000,)


def test_keyword_alone_on_a_continued_line() -> None:
    s = parse_dockerfile("Dockerfile", "FROM\\\n\tpython:3.12\n\\\n", "shop")
    assert s.bases == ("python:3.12",)


# -- basename_for -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dockerfile,declared,app,expected",
    [
        ("Dockerfile", None, "shop", "shop"),
        ("Dockerfile-tools", None, "shop", "shop-tools"),
        ("Dockerfile-Tools", None, "shop", "shop-tools"),
        ("worker/Dockerfile", None, "shop", "worker"),
        ("worker/Dockerfile-cron", None, "shop", "worker-cron"),
        ("services/Api/Dockerfile", None, "shop", "services-api"),
        ("my dir/Dockerfile", None, "shop", "my-dir"),
        ("Dockerfile", "reg.example.com/crigen/api", "shop", "api"),
        ("sub/Dockerfile-x", "crigen/api", "shop", "api"),
        ("Dockerfile", "api", "shop", "api"),
    ],
)
def test_basename_for(dockerfile: str, declared: str | None, app: str, expected: str) -> None:
    assert images.basename_for(dockerfile, declared, app) == expected


def test_parse_dockerfile_basename_without_header() -> None:
    assert parse_dockerfile("Dockerfile-tools", "FROM alpine\n", "shop").basename == "shop-tools"
    assert parse_dockerfile("jobs/Dockerfile", "FROM alpine\n", "shop").basename == "jobs"


# -- depends_on / build_order -----------------------------------------------------------------


def test_seed_build_order_even_when_reversed() -> None:
    api = parse_dockerfile("Dockerfile", SEED_API, "crigen")
    tools = parse_dockerfile("Dockerfile-tools", SEED_TOOLS, "crigen")
    assert tools.basename == "crigen-tools"
    assert tools.depends_on(api)
    assert not api.depends_on(tools)
    assert images.build_order([tools, api]) == [api, tools]
    assert images.build_order([api, tools]) == [api, tools]


@pytest.mark.parametrize(
    "base,depends",
    [
        ("reg.example.com/crigen/api:0.2", True),
        ("reg.example.com/crigen/api", True),
        ("reg.example.com/crigen/api:latest", True),
        ("reg.example.com/crigen/api:0.1", False),
        ("reg.example.com/crigen/api:0.2-slim", False),
        ("other.example.com/crigen/api:0.2", False),
        ("crigen/api:0.2", False),
        ("api:0.2", False),
        ("${BASE}", False),
    ],
)
def test_depends_on(base: str, depends: bool) -> None:
    api = spec("Dockerfile", "api", "reg.example.com/crigen/api", "0.2")
    tools = spec("Dockerfile-tools", "tools", bases=("alpine", base))
    assert tools.depends_on(api) is depends


def test_depends_on_unversioned_image() -> None:
    api = spec("Dockerfile", "api", "reg.example.com/crigen/api", None)
    assert spec("b", "b", bases=("reg.example.com/crigen/api",)).depends_on(api)
    assert spec("b", "b", bases=("reg.example.com/crigen/api:latest",)).depends_on(api)
    assert not spec("b", "b", bases=("reg.example.com/crigen/api:0.2",)).depends_on(api)


def test_no_dependency_on_undeclared_or_self() -> None:
    anon = spec("Dockerfile", "shop", None, None)
    other = spec("Dockerfile-x", "x", bases=("shop",))
    assert not other.depends_on(anon)
    me = spec("Dockerfile", "api", "reg/x/api", "2", bases=("reg/x/api:2",))
    assert not me.depends_on(me)
    assert images.build_order([me]) == [me]


def test_different_tag_is_not_a_dependency_and_keeps_given_order() -> None:
    api = parse_dockerfile("Dockerfile", SEED_API, "crigen")
    tools = parse_dockerfile("Dockerfile-tools", "FROM reg.example.com/crigen/api:0.1\n", "crigen")
    assert images.build_order([tools, api]) == [tools, api]


def test_build_order_chain_and_ties() -> None:
    a = spec("a/Dockerfile", "a", "r/x/a", "1")
    b = spec("b/Dockerfile", "b", "r/x/b", "1", bases=("r/x/a:1",))
    c = spec("c/Dockerfile", "c", "r/x/c", "1", bases=("r/x/b:1",))
    d = spec("d/Dockerfile", "d", None, None)
    e = spec("e/Dockerfile", "e", None, None, bases=("r/x/a",))
    order = images.build_order([c, e, b, d, a])
    assert order.index(a) < order.index(b) < order.index(c)
    assert order.index(a) < order.index(e)
    # Independent images keep the given order within a round.
    assert order == [d, a, e, b, c]


def test_build_order_accepts_any_iterable() -> None:
    a = spec("a/Dockerfile", "a")
    b = spec("b/Dockerfile", "b")
    assert images.build_order(iter([b, a])) == [b, a]
    assert images.build_order([]) == []


def test_build_order_cycle() -> None:
    a = spec("a/Dockerfile", "a", "r/x/a", "1", bases=("r/x/b:1",))
    b = spec("b/Dockerfile", "b", "r/x/b", "1", bases=("r/x/a:1",))
    free = spec("Dockerfile", "free")
    with pytest.raises(InvalidSource) as info:
        images.build_order([free, a, b])
    # Only the files in the cycle are named, not the free one that could be built.
    assert info.value.message == "Dockerfiles depend on each other in a cycle: a/Dockerfile, b/Dockerfile"
    assert "FROM" in info.value.hint


def test_build_order_duplicate_basenames() -> None:
    one = spec("Dockerfile", "api", None)
    two = spec("Dockerfile-tools", "api", "reg/x/api")
    other = spec("sub/Dockerfile", "sub")
    with pytest.raises(InvalidSource) as info:
        images.build_order([one, other, two])
    assert "'api'" in info.value.message
    assert "Dockerfile, Dockerfile-tools" in info.value.message
    assert "sub/Dockerfile" not in info.value.message
    assert "name header" in info.value.hint


# -- discover ---------------------------------------------------------------------------------


def test_discover_seed() -> None:
    specs = images.discover({"Dockerfile-tools": SEED_TOOLS, "Dockerfile": SEED_API}, "crigen")
    assert [s.dockerfile for s in specs] == ["Dockerfile", "Dockerfile-tools"]
    assert [s.basename for s in specs] == ["api", "crigen-tools"]


def test_discover_orders_by_dependency_not_by_name() -> None:
    files = {
        "a/Dockerfile": "FROM reg.example.com/x/base:1\n",
        "z/Dockerfile": "# reg.example.com/x/base\n# VERSION 1\nFROM alpine\n",
    }
    assert [s.dockerfile for s in images.discover(files, "shop")] == ["z/Dockerfile", "a/Dockerfile"]


def test_discover_sorts_independent_files() -> None:
    files = {"b/Dockerfile": "FROM alpine\n", "a/Dockerfile": "FROM alpine\n", "Dockerfile": "FROM alpine\n"}
    assert [s.dockerfile for s in images.discover(files, "shop")] == ["Dockerfile", "a/Dockerfile", "b/Dockerfile"]


def test_discover_empty() -> None:
    with pytest.raises(InvalidSource) as info:
        images.discover({}, "shop")
    assert "no Dockerfile" in info.value.message
    assert "Dockerfile" in info.value.hint


def test_discover_propagates_parse_errors() -> None:
    with pytest.raises(InvalidSource, match="Dockerfile-x: no FROM"):
        images.discover({"Dockerfile": "FROM alpine\n", "Dockerfile-x": "RUN true\n"}, "shop")


def test_discover_duplicate_from_headers() -> None:
    files = {"a/Dockerfile": "# r/x/api\nFROM alpine\n", "b/Dockerfile": "# r/y/api\nFROM alpine\n"}
    with pytest.raises(InvalidSource, match="a/Dockerfile, b/Dockerfile"):
        images.discover(files, "shop")


# -- versions and tags ------------------------------------------------------------------------


def test_version_for() -> None:
    assert images.version_for(spec(version="0.2"), COMMIT) == "0.2"
    assert images.version_for(spec(version=None), COMMIT) == "g1a2b3c4d"


@pytest.mark.parametrize(
    "commit,expected",
    [(COMMIT, "g1a2b3c4d"), ("abcdef", "gabcdef"), ("0" * 40, "g00000000")],
)
def test_commit_version(commit: str, expected: str) -> None:
    assert images.commit_version(commit) == expected


@pytest.mark.parametrize(
    "version,expected",
    [
        ("0.2", "0.2+g1a2b3c4d"),
        ("1.0.0-rc1", "1.0.0-rc1+g1a2b3c4d"),
        ("g1a2b3c4d", "g1a2b3c4d"),
        ("gdeadbeef", "gdeadbeef+g1a2b3c4d"),
    ],
)
def test_distinct_version(version: str, expected: str) -> None:
    assert images.distinct_version(version, COMMIT) == expected


@pytest.mark.parametrize(
    "version,tag",
    [("0.2", "0.2"), ("0.2+g1a2b3c4d", "0.2_g1a2b3c4d"), ("g1a2b3c4d", "g1a2b3c4d"), ("1.0-rc_1", "1.0-rc_1")],
)
def test_tag_for(version: str, tag: str) -> None:
    assert images.tag_for(version) == tag
    # Every tag produced is a valid OCI tag.
    assert parse_reference(f"reg.example.com/a/b:{tag}").tag == tag


def test_seed_version_pipeline() -> None:
    api = parse_dockerfile("Dockerfile", SEED_API, "crigen")
    version = images.distinct_version(images.version_for(api, COMMIT), COMMIT)
    assert version == "0.2+g1a2b3c4d"
    assert images.tag_for(version) == "0.2_g1a2b3c4d"


@pytest.mark.parametrize("path", [".devcontainer/Dockerfile", "docs/_build/Dockerfile", "Dockerfile-a..b"])
def test_dockerfile_whose_path_gives_no_valid_image_name_is_refused(path: str) -> None:
    with pytest.raises(InvalidSource, match="not a valid image name") as info:
        parse_dockerfile(path, "FROM scratch\n", "shop")
    assert "header" in info.value.hint


def test_build_context_is_the_dockerfiles_folder() -> None:
    spec = parse_dockerfile("api/Dockerfile-tools", "FROM scratch\n", "shop")
    assert (spec.context, spec.dockerfile_in_context) == ("api", "Dockerfile-tools")
    root = parse_dockerfile("Dockerfile", "FROM scratch\n", "shop")
    assert (root.context, root.dockerfile_in_context) == ("", "Dockerfile")


# -- LABEL pairs: the scanner -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args,pairs",
    [
        ("a=b", {"a": "b"}),
        ('a="b c" d=e', {"a": "b c", "d": "e"}),
        ("a='b c'", {"a": "b c"}),
        ('"a b"=c', {"a b": "c"}),
        ('a="say \\"hi\\""', {"a": 'say "hi"'}),
        ("a=b\\ c", {"a": "b c"}),
        ("a=b=c", {"a": "b=c"}),
        ("a= b=c", {"a": "", "b": "c"}),
        ("=a b=c", {"b": "c"}),
        ("aaaa", {}),
        ('a="unterminated', {"a": "unterminated"}),
        ("a='unterminated", {"a": "unterminated"}),
        ("a=x\\", {"a": "x"}),
        ("a\t=\tb", {}),
        ("a=1 a=2", {"a": "2"}),
        ("", {}),
    ],
)
def test_label_pairs(args: str, pairs: dict[str, str]) -> None:
    assert label_pairs(args) == pairs


# -- ADD from a URL ---------------------------------------------------------------------------


def test_add_urls_lists_every_remote_source_with_its_line() -> None:
    text = (
        "FROM alpine\n"
        "ADD https://example.com/a.tgz /a\n"
        "ADD --checksum=sha256:abc --chown=1:1 http://example.com/b /b\n"
        "add local.txt /c\n"
        'ADD ["https://example.com/d", "local", "/d/"]\n'
        "ADD \\\n  git@github.com:acme/tool.git /tool\n"
        "COPY http://example.com/not-add /e\n"
        "ADD https://example.com/x.git#main /x\n"
        "ADD ssh://git@example.com/repo.git /r\n"
    )
    assert add_urls(text) == [
        (2, "https://example.com/a.tgz"),
        (3, "http://example.com/b"),
        (5, "https://example.com/d"),
        (6, "git@github.com:acme/tool.git"),
        (9, "https://example.com/x.git#main"),
        (10, "ssh://git@example.com/repo.git"),
    ]


FULLWIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "localhost")  # read as "localhost" by IDNA


@pytest.mark.parametrize(
    "url,host",
    [
        ("http://localhost/x", "localhost"),
        ("http://LOCALHOST./x", "localhost."),
        ("http://api.localhost:8080/x", "api.localhost"),
        ("https://127.0.0.1/x", "127.0.0.1"),
        ("http://127.1/x", "127.1"),
        ("http://2130706433/x", "2130706433"),
        ("http://0x7f.0.0.1/x", "0x7f.0.0.1"),
        ("http://0177.0.0.1/x", "0177.0.0.1"),
        ("http://0.0.0.0:2375/x", "0.0.0.0"),
        ("http://0/x", "0"),
        ("http://[::1]:5000/x", "::1"),
        ("http://[::]/x", "::"),
        ("http://[::ffff:127.0.0.1]/x", "::ffff:127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://[fe80::1]/x", "fe80::1"),
        ("http://10.0.0.5/x", "10.0.0.5"),
        ("http://172.17.0.1:5000/v2/", "172.17.0.1"),
        ("http://192.168.1.1/x", "192.168.1.1"),
        ("http://%31%32%37.0.0.1/x", "%31%32%37.0.0.1"),
        (f"http://{FULLWIDTH}/x", FULLWIDTH),
        ("http://user:pw@localhost/x", "localhost"),
        ("https://${HOST}/x", "${host}"),
        ("git@localhost:team/repo.git", "localhost"),
        ("git@127.0.0.1:team/repo.git", "127.0.0.1"),
        ("ssh://git@10.1.2.3/repo.git", "10.1.2.3"),
        ("http:///x", ""),
    ],
)
def test_add_from_the_servers_own_network_is_refused(url: str, host: str) -> None:
    text = f"FROM alpine\nRUN true\nADD {url} /dst\nEXPOSE 80\n"
    with pytest.raises(InvalidSource) as info:
        parse_dockerfile("web/Dockerfile", text, "shop")
    assert info.value.message.startswith(f"web/Dockerfile line 3: ADD {url!r} is refused: its host {host!r} is ")
    assert "COPY" in info.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.tgz",
        "http://8.8.8.8/x",
        "https://[2606:4700::1111]/x",
        "git@github.com:acme/tool.git",
        "https://github.com/acme/tool.git",
        "https://localhost.example.com/x",
        "https://example.com/${VERSION}/x",
        "http://1.2.3.4.nip.io/x",  # a name: the build adapter resolves names at build time
    ],
)
def test_add_from_a_public_address_is_accepted(url: str) -> None:
    text = f"FROM alpine\nADD --chown=1:1 {url} /dst\n"
    assert parse_dockerfile("Dockerfile", text, "shop").bases == ("alpine",)
    assert add_urls(text) == [(2, url)]


def test_local_files_named_like_addresses_are_not_urls() -> None:
    assert add_urls("FROM a\nADD me@home:notes.txt ./localhost /x\nADD a.git /b\n") == []


# -- a header name in dockyard's registry -----------------------------------------------------

REGISTRY = "127.0.0.1:5100"


@pytest.mark.parametrize(
    "name",
    ["127.0.0.1:5100/other/api", "127.0.0.1:5100/other", "localhost:5100/other/api", "127.0.0.2:5100/x/y"],
)
def test_header_name_in_another_apps_registry_path_is_refused(name: str) -> None:
    with pytest.raises(InvalidSource) as info:
        images.discover({"Dockerfile": f"#\n# {name}\nFROM alpine\n"}, "shop", registry=REGISTRY)
    assert info.value.message.startswith(f"Dockerfile line 2: image name {name!r} is in dockyard's registry")
    assert "which is not this app (shop)" in info.value.message
    assert "127.0.0.1:5100/shop/NAME" in info.value.hint


@pytest.mark.parametrize(
    "name",
    ["127.0.0.1:5100/shop/api", "localhost:5100/shop/api", "127.0.0.1:5101/other/api", "reg.example.com/other/api",
     "other/api"],
)
def test_header_name_in_the_apps_own_path_or_elsewhere_is_accepted(name: str) -> None:
    (spec,) = images.discover({"Dockerfile": f"# {name}\nFROM alpine\n"}, "shop", registry=REGISTRY)
    assert spec.declared_name == name
    # without a registry, nothing is checked
    assert parse_dockerfile("Dockerfile", f"# {name}\nFROM alpine\n", "shop").declared_name == name


def test_in_rounds_orders_by_depth_and_reports_cycles() -> None:
    assert images.in_rounds([[], [0], [1], [0], [2, 3]]) == ([0, 1, 3, 2, 4], [])
    assert images.in_rounds([[1], [0], [], [1], [-1]]) == ([2], [0, 1, 3, 4])
    assert images.in_rounds([]) == ([], [])
