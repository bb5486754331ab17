"""From built images and a compose file to the services a release runs."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import replace

import pytest

from dockyard.domain import limits, stack
from dockyard.domain.errors import InvalidSource
from dockyard.domain.images import parse_dockerfile
from dockyard.domain.model import HOST_ACCESS_KEYS, ServiceSpec
from dockyard.domain.shell_words import split_words
from tests.support import unlocated

REG = "127.0.0.1:5000"
D = "sha256:" + "1" * 64
API_REF = f"{REG}/shop/api@{D}"
WEB_REF = f"{REG}/shop/shop@{D}"
WORKER_REF = f"{REG}/shop/worker-job@{D}"

IMAGES = {
    "Dockerfile": parse_dockerfile("Dockerfile", "FROM node\nEXPOSE 3000\n", "shop"),
    "api/Dockerfile": parse_dockerfile(
        "api/Dockerfile", "# reg.example.com/crigen/api\n# VERSION 0.2\nFROM python\nEXPOSE 8000\n", "shop"
    ),
    "worker/Dockerfile-job": parse_dockerfile("worker/Dockerfile-job", "FROM python\n", "shop"),
}
PINNED = {"Dockerfile": WEB_REF, "api/Dockerfile": API_REF, "worker/Dockerfile-job": WORKER_REF}


def no_files(path: str) -> str | None:
    return None


def compose(
    text: str,
    read_file: Callable[[str], str | None] = no_files,
    domains: tuple[str, ...] = (),
    app: str = "shop",
) -> tuple[ServiceSpec, ...]:
    return stack.compose_services(app, textwrap.dedent(text), IMAGES, PINNED, read_file, "localhost", domains)


def one(text: str, **kwargs) -> ServiceSpec:
    services = compose(text, **kwargs)
    assert len(services) == 1
    return services[0]


def compose_error(text: str, read_file: Callable[[str], str | None] = no_files) -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        compose(text, read_file)
    return info.value


# -- single image -----------------------------------------------------------------------------


def test_single_image_services() -> None:
    spec = parse_dockerfile("Dockerfile", "FROM node\nEXPOSE 3000 9229\n", "shop")
    (web,) = stack.single_image_services("shop", spec, WEB_REF, "localhost", ("shop.example.com", "www.shop.io"))
    assert web == ServiceSpec(
        name="web", image=WEB_REF, port=3000, hosts=("shop.localhost", "shop.example.com", "www.shop.io")
    )
    assert web.is_web


def test_single_image_services_without_domains() -> None:
    spec = parse_dockerfile("Dockerfile", "FROM node\nEXPOSE 8000/tcp\n", "blog")
    (web,) = stack.single_image_services("blog", spec, WEB_REF, "apps.example.net", ())
    assert web.hosts == ("blog.apps.example.net",)
    assert web.port == 8000


def test_single_image_without_expose() -> None:
    spec = parse_dockerfile("sub/Dockerfile", "FROM node\n", "shop")
    with pytest.raises(InvalidSource) as info:
        stack.single_image_services("shop", spec, WEB_REF, "localhost", ())
    assert "sub/Dockerfile exposes no port" in info.value.message
    assert "EXPOSE" in info.value.hint


# -- hosts_for --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "service,first,domains,expected",
    [
        ("web", True, (), ("shop.localhost", "web.shop.localhost")),
        ("web", True, ("shop.io",), ("shop.localhost", "shop.io", "web.shop.localhost")),
        ("shop", True, ("shop.io",), ("shop.localhost", "shop.io")),
        ("admin", False, ("shop.io",), ("admin.shop.localhost",)),
        ("shop", False, (), ()),
    ],
)
def test_hosts_for(service: str, first: bool, domains: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert stack.hosts_for("shop", service, first, "localhost", domains) == expected


# -- compose: images --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,ref",
    [
        (".", WEB_REF),
        ("./", WEB_REF),
        ("api", API_REF),
        ("./api", API_REF),
        ("api/", API_REF),
        ("{context: ., dockerfile: Dockerfile}", WEB_REF),
        ("{context: api}", API_REF),
        ("{context: worker, dockerfile: Dockerfile-job}", WORKER_REF),
        ("{context: ./worker, dockerfile: Dockerfile-job}", WORKER_REF),
    ],
)
def test_build_maps_to_pinned_image(build: str, ref: str) -> None:
    svc = one(f"""
        services:
          app:
            build: {build}
        """)
    assert svc.image == ref


def test_build_of_unknown_dockerfile() -> None:
    err = compose_error("""
        services:
          web:
            build: {context: web, dockerfile: Dockerfile-x}
        """)
    assert err.message == ("compose file line 4: services/web/build/dockerfile: no Dockerfile at 'web/Dockerfile-x' "
                           "in the repository")


@pytest.mark.parametrize(
    "build",
    [".docker", "./.docker", ".docker/", "{context: .docker}", "./x/../.docker"],
)
def test_build_context_in_a_dot_directory(build: str) -> None:
    images = {"Dockerfile": IMAGES["Dockerfile"],
              ".docker/Dockerfile": replace(IMAGES["Dockerfile"], dockerfile=".docker/Dockerfile", basename="docker")}
    pinned = {"Dockerfile": WEB_REF, ".docker/Dockerfile": API_REF}
    doc = f"services:\n  web:\n    build: {build}\n"
    (svc,) = stack.compose_services("shop", doc, images, pinned, no_files, "localhost", ())
    assert svc.image == API_REF


@pytest.mark.parametrize(
    "build,what,value",
    [
        ("../api", "context", "../api"),
        ("..", "context", ".."),
        ("./..", "context", "./.."),
        ("api/../..", "context", "api/../.."),
        ("/srv/api", "context", "/srv/api"),
        ("{context: ../api, dockerfile: Dockerfile}", "context", "../api"),
        ("{context: api, dockerfile: ../../Dockerfile}", "dockerfile", "../Dockerfile"),
        ("{dockerfile: /etc/Dockerfile}", "dockerfile", "/etc/Dockerfile"),
    ],
)
def test_build_context_outside_the_repository(build: str, what: str, value: str) -> None:
    err = compose_error(f"""
        services:
          web:
            build: {build}
        """)
    assert re.fullmatch(rf"compose file line 4: services/web/build(/{what})?: {what} {re.escape(repr(value))} is "
                        "outside the repository", err.message), err.message
    assert "inside" in err.hint


def test_build_dockerfile_is_relative_to_the_context() -> None:
    svc = one("""
        services:
          web:
            build: {context: worker, dockerfile: Dockerfile-job}
        """)
    assert svc.image == WORKER_REF


@pytest.mark.parametrize(
    "build,ref",
    [("{dockerfile: api/Dockerfile}", API_REF), ("{context: worker/sub, dockerfile: ../Dockerfile-job}", WORKER_REF)],
)
def test_build_context_may_be_another_folder_than_the_dockerfiles(build: str, ref: str) -> None:
    # the only build of its Dockerfile: its plain image (tests/unit/test_compose_build.py has more)
    assert one(f"""
        services:
          web:
            build: {build}
        """).image == ref


@pytest.mark.parametrize(
    "image,ref",
    [
        ("reg.example.com/crigen/api", API_REF),
        ("reg.example.com/crigen/api:0.2", API_REF),
        ("nginx", "nginx"),
        ("postgres:16-alpine", "postgres:16-alpine"),
        ("ghcr.io/acme/tool:1.0", "ghcr.io/acme/tool:1.0"),
        (f"redis@{D}", f"redis@{D}"),
        ("crigen/api", "crigen/api"),
    ],
)
def test_image_by_declared_name_or_external(image: str, ref: str) -> None:
    svc = one(f"""
        services:
          api:
            image: {image}
        """)
    assert svc.image == ref


def test_build_wins_over_image() -> None:
    svc = one("""
        services:
          web:
            image: nginx
            build: api
        """)
    assert svc.image == API_REF


@pytest.mark.parametrize("body", ["{}", "{ports: ['80']}", "{image: ''}"])
def test_service_without_image_or_build(body: str) -> None:
    err = compose_error(f"services:\n  web: {body}\n")
    assert unlocated(err.message) == "compose file: services/web: needs 'image' or 'build'"


def test_an_image_that_is_not_a_string_is_a_schema_violation() -> None:
    err = compose_error("services:\n  web: {image: 3}\n")
    assert err.message == "compose file line 2: services/web/image: should be a string, not a number"


@pytest.mark.parametrize("image", ["Nginx", "nginx:1+2", "a//b", "nginx@sha256:zz"])
def test_invalid_image_reference(image: str) -> None:
    err = compose_error(f"services:\n  web:\n    image: '{image}'\n")
    assert unlocated(err.message).startswith("compose file: services/web/image: bad ")
    assert repr(image) in err.message


# -- compose: ports and hosts -----------------------------------------------------------------


@pytest.mark.parametrize(
    "ports,port",
    [
        ('["8080:3000"]', 3000),
        ('["3000"]', 3000),
        ("[3000]", 3000),
        ('["127.0.0.1:8080:3000"]', 3000),
        ('["8080:3000/tcp"]', 3000),
        ('["3000/udp"]', None),  # the proxy routes HTTP: a UDP port is never routed
        ('["3000-3005"]', 3000),
        ('["9000-9005:3000-3005"]', 3000),
        ("[{target: 3000, published: 8080}]", 3000),
        ('["8080:3000", "9229:9229"]', 3000),
        ("[]", None),
    ],
)
def test_ports(ports: str, port: int | None) -> None:
    svc = one(f"services:\n  web:\n    image: nginx\n    ports: {ports}\n")
    assert svc.port == port
    assert svc.is_web is (port is not None)


@pytest.mark.parametrize("ports", ['["abc"]', '["8080:http"]', '["0"]', '["70000"]', "[{published: 80}]", '[""]'])
def test_bad_ports(ports: str) -> None:
    err = compose_error(f"services:\n  web:\n    image: nginx\n    ports: {ports}\n")
    assert re.match(r"compose file line \d+: services/web/ports/0: port ", err.message), err.message
    assert "8080:3000" in err.hint


@pytest.mark.parametrize(
    "field,where,what",
    [("ports: '8080:3000'", "ports", "a string"), ("expose: 3000", "expose", "a number"),
     ("ports: {a: 1}", "ports", "a mapping")],
)
def test_ports_must_be_a_list(field: str, where: str, what: str) -> None:
    err = compose_error(f"services:\n  web:\n    image: nginx\n    {field}\n")
    assert err.message == f"compose file line 4: services/web/{where}: should be a list, not {what}"


def test_hosts_go_to_the_first_web_service() -> None:
    services = compose(
        """
        services:
          worker:
            image: busybox
          web:
            image: nginx
            ports: ["80"]
          admin:
            image: nginx
            ports: ["8080"]
          shop:
            image: nginx
            ports: ["81"]
        """,
        domains=("shop.io",),
    )
    by_name = {s.name: s for s in services}
    assert by_name["worker"].hosts == ()
    assert by_name["web"].hosts == ("shop.localhost", "shop.io", "web.shop.localhost")
    assert by_name["admin"].hosts == ("admin.shop.localhost",)
    # A later web service named like the app gets no host of its own.
    assert by_name["shop"].hosts == ()


# -- compose: environment and env_file --------------------------------------------------------


@pytest.mark.parametrize(
    "env,expected",
    [
        ("{A: '1', B: two}", (("A", "1"), ("B", "two"))),
        ("{PORT: 3000, DEBUG: null, RATIO: 0.5}", (("PORT", "3000"), ("DEBUG", ""), ("RATIO", "0.5"))),
        ('["A=1", "B=x=y", "C=", "D"]', (("A", "1"), ("B", "x=y"), ("C", ""), ("D", ""))),
        ('["A=1", "A=2"]', (("A", "2"),)),
        ("[]", ()),
        ("{}", ()),
    ],
)
def test_environment(env: str, expected: tuple[tuple[str, str], ...]) -> None:
    svc = one(f"services:\n  web:\n    image: nginx\n    environment: {env}\n")
    assert svc.environment == expected


@pytest.mark.parametrize("env,what", [("A=1", "not a string"), ("3", "not a number"), ("null", "and is empty")])
def test_environment_of_wrong_type(env: str, what: str) -> None:
    # as in Compose, an `environment:` left empty (its entries commented out) is refused
    err = compose_error(f"services:\n  web:\n    image: nginx\n    environment: {env}\n")
    assert err.message == f"compose file line 4: services/web/environment: should be a mapping or a list, {what}"


def test_env_file_read_through_callback() -> None:
    reads: list[str] = []
    files = {"config/web.env": "# comment\nA=from-file\nB='quoted'\n"}

    def read(path: str) -> str | None:
        reads.append(path)
        return files.get(path)

    svc = one(
        """
        services:
          web:
            image: nginx
            env_file: config/web.env
            environment:
              A: explicit
              C: c
        """,
        read_file=read,
    )
    assert reads == ["config/web.env"]
    # environment overrides env_file, as in Compose.
    assert dict(svc.environment) == {"A": "explicit", "B": "quoted", "C": "c"}


def test_env_file_list() -> None:
    files = {"a.env": "A=1\n", "b.env": "B=2\n"}
    svc = one("services:\n  web:\n    image: nginx\n    env_file: [a.env, b.env]\n", read_file=files.get)
    assert dict(svc.environment) == {"A": "1", "B": "2"}


def test_later_env_file_wins() -> None:
    files = {"a.env": "X=a\n", "b.env": "X=b\n"}
    svc = one("services:\n  web:\n    image: nginx\n    env_file: [a.env, b.env]\n", read_file=files.get)
    assert dict(svc.environment) == {"X": "b"}


def test_environment_wins_over_every_env_file() -> None:
    files = {"a.env": "X=a\nY=a\nZ=a\n", "b.env": "X=b\nY=b\n"}
    svc = one(
        "services:\n  web:\n    image: nginx\n    env_file: [a.env, b.env]\n    environment: [X=explicit]\n",
        read_file=files.get,
    )
    assert dict(svc.environment) == {"X": "explicit", "Y": "b", "Z": "a"}


@pytest.mark.parametrize(
    "env_file,index,missing",
    [("missing.env", 0, "missing.env"), ("[ok.env, missing.env]", 1, "missing.env"), ("[gone.env]", 0, "gone.env")],
)
def test_missing_env_file(env_file: str, index: int, missing: str) -> None:
    files = {"ok.env": "A=1\n"}
    err = compose_error(f"services:\n  web:\n    image: nginx\n    env_file: {env_file}\n", read_file=files.get)
    assert unlocated(err.message) == f"compose file: services/web/env_file/{index}: {missing!r} is not in the repository"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("A=1\nB=2\n", [("A", "1"), ("B", "2")]),
        ("  A = 1  \n", [("A", "1")]),
        ("# c\n\nNOEQUALS\nA=1", [("A", "1")]),
        ('A="x y"\nB=\'z\'\nC="', [("A", "x y"), ("B", "z"), ("C", '"')]),
        ("A=\"mismatch'", [("A", "\"mismatch'")]),
        ('A=""', [("A", "")]),
        ("URL=postgres://u:p@db/x?a=b", [("URL", "postgres://u:p@db/x?a=b")]),
        ("A=", [("A", "")]),
        ("", []),
    ],
)
def test_parse_env_file(text: str, expected: list[tuple[str, str]]) -> None:
    assert stack.parse_env_file(text) == expected


# -- compose: command -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command,expected",
    [
        ("gunicorn app:wsgi -w 4", ("gunicorn", "app:wsgi", "-w", "4")),
        ('["python", "-m", "http.server", "8000"]', ("python", "-m", "http.server", "8000")),
        ("[]", ()),
    ],
)
def test_command(command: str, expected: tuple[str, ...]) -> None:
    svc = one(f"services:\n  web:\n    image: nginx\n    command: {command}\n")
    assert svc.command == expected


def test_no_command() -> None:
    assert one("services:\n  web:\n    image: nginx\n").command is None


def test_command_string_with_quotes() -> None:
    svc = one('services:\n  web:\n    image: nginx\n    command: sh -c "echo hello world"\n')
    assert svc.command == ("sh", "-c", "echo hello world")


def test_command_string_with_single_quotes_and_escapes() -> None:
    svc = one("services:\n  web:\n    image: nginx\n    command: >-\n      echo 'a  b' c\\ d\n")
    assert svc.command == ("echo", "a  b", "c d")


@pytest.mark.parametrize("command", ['sh -c "echo hi', "echo 'unbalanced"])
def test_command_string_with_unbalanced_quotes(command: str) -> None:
    err = compose_error(f"services:\n  web:\n    image: nginx\n    command: >-\n      {command}\n")
    assert unlocated(err.message).startswith(f"compose file: services/web/command: cannot split {command!r}")
    assert "quotes" in err.hint


@pytest.mark.parametrize("command,what", [("{a: b}", "a mapping"), ("3", "a number")])
def test_command_of_wrong_type(command: str, what: str) -> None:
    err = compose_error(f"services:\n  web:\n    image: nginx\n    command: {command}\n")
    assert err.message == f"compose file line 4: services/web/command: should be a string or a list, not {what}"


def test_a_command_list_holds_strings_only() -> None:
    # as in Compose: quote a number to make it a word of the command
    err = compose_error("services:\n  web:\n    image: nginx\n    command: [python, -m, http.server, 8000]\n")
    assert err.message == "compose file line 4: services/web/command/3: should be a string, not a number"


# -- compose: depends_on and order ------------------------------------------------------------


def test_depends_on_orders_services() -> None:
    services = compose("""
        services:
          web:
            image: nginx
            ports: ["80"]
            depends_on: [api, cache]
          api:
            build: api
            depends_on:
              db:
                condition: service_healthy
          cache:
            image: redis
          db:
            image: postgres
        """)
    names = [s.name for s in services]
    assert names.index("db") < names.index("api") < names.index("web")
    assert names.index("cache") < names.index("web")
    assert names == ["cache", "db", "api", "web"]
    by_name = {s.name: s for s in services}
    assert by_name["web"].depends_on == ("api", "cache")
    assert by_name["api"].depends_on == ("db",)
    # Hosts follow the file order, not the start order.
    assert by_name["web"].hosts[0] == "shop.localhost"


def test_unknown_dependency() -> None:
    err = compose_error("""
        services:
          web:
            image: nginx
            depends_on: [db]
        """)
    assert unlocated(err.message) == "compose file: services/web/depends_on: unknown service 'db'"


def test_dependency_cycle() -> None:
    err = compose_error("""
        services:
          a: {image: nginx, depends_on: [b]}
          b: {image: nginx, depends_on: [a]}
          c: {image: nginx}
        """)
    assert unlocated(err.message) == "compose file: services: depends_on forms a cycle: a, b"


def _svc(name: str, *deps: str) -> ServiceSpec:
    return ServiceSpec(name=name, image="x", depends_on=deps)


@pytest.mark.parametrize(
    "services,expected",
    [
        ([], []),
        ([_svc("a"), _svc("b")], ["a", "b"]),
        ([_svc("a", "b"), _svc("b")], ["b", "a"]),
        ([_svc("a", "c"), _svc("b", "a"), _svc("c")], ["c", "a", "b"]),
        ([_svc("web", "db", "cache"), _svc("cache"), _svc("db", "cache")], ["cache", "db", "web"]),
    ],
)
def test_start_order(services: list[ServiceSpec], expected: list[str]) -> None:
    assert [s.name for s in stack.start_order(services)] == expected


def test_start_order_self_cycle() -> None:
    with pytest.raises(InvalidSource, match="cycle: a"):
        stack.start_order([_svc("a", "a")])


# -- compose: document shape ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["services: [a", "services:\n  web:\n   image: x\n  - y\n", "\tservices: {}"])
def test_invalid_yaml(text: str) -> None:
    with pytest.raises(InvalidSource) as info:
        stack.compose_services("shop", text, IMAGES, PINNED, no_files, "localhost", ())
    assert info.value.message.startswith("compose file is not valid YAML")
    assert "YAML" in info.value.hint


@pytest.mark.parametrize(
    "text",
    ["", "version: '3'\n", "services:\n", "services: {}\n", "services: [web]\n", "- a\n", "just text\n"],
)
def test_missing_services(text: str) -> None:
    with pytest.raises(InvalidSource) as info:
        stack.compose_services("shop", text, IMAGES, PINNED, no_files, "localhost", ())
    assert unlocated(info.value.message) == "compose file: services: should be a mapping of service names to definitions"


@pytest.mark.parametrize("name", ["Web", "-web", "web.1", "a;b", "$(id)"])
def test_invalid_service_name(name: str) -> None:
    err = compose_error(f"services:\n  '{name}':\n    image: nginx\n")
    assert unlocated(err.message).startswith(f"compose file: services/{name}: invalid service name")


@pytest.mark.parametrize("body", ["nginx", "[nginx]", "null", "3"])
def test_service_body_not_a_mapping(body: str) -> None:
    err = compose_error(f"services:\n  web: {body}\n")
    assert unlocated(err.message) == "compose file: services/web: should be a mapping"


def test_full_compose_file() -> None:
    files = {".env": "SECRET=s3cret\n"}
    services = compose(
        """
        services:
          web:
            build: .
            ports: ["8080:3000"]
            env_file: .env
            environment: [NODE_ENV=production]
            depends_on: [api]
          api:
            image: reg.example.com/crigen/api:0.2
            ports: ["8000"]
            command: ["serve"]
          job:
            build: {context: worker, dockerfile: Dockerfile-job}
        """,
        read_file=files.get,
        domains=("shop.io",),
    )
    assert services == (
        ServiceSpec(
            name="api",
            image=API_REF,
            port=8000,
            hosts=("api.shop.localhost",),
            command=("serve",),
        ),
        ServiceSpec(name="job", image=WORKER_REF),
        ServiceSpec(
            name="web",
            image=WEB_REF,
            port=3000,
            hosts=("shop.localhost", "shop.io", "web.shop.localhost"),
            environment=(("SECRET", "s3cret"), ("NODE_ENV", "production")),
            depends_on=("api",),
            published=((8080, 3000, "http", ""),),
        ),
    )


def test_compose_file_names() -> None:
    assert "docker-compose.yml" in stack.COMPOSE_FILES
    assert "compose.yaml" in stack.COMPOSE_FILES
    assert stack.COMPOSE_FILES[0] == "compose.yaml"


def test_env_file_path_is_normalised_and_kept_inside() -> None:
    files = {"app.env": "A=1\n"}
    doc = "services:\n  web:\n    build: .\n    env_file: [./app.env]\n"
    (svc,) = stack.compose_services("shop", doc, IMAGES, PINNED, files.get, "localhost", ())
    assert ("A", "1") in svc.environment
    bad = "services:\n  web:\n    build: .\n    env_file: [../outside.env]\n"
    with pytest.raises(InvalidSource, match="env_file/0"):
        stack.compose_services("shop", bad, IMAGES, PINNED, files.get, "localhost", ())


# -- compose: keys that hand a container the host ---------------------------------------------


def access_error(body: str, allowed: frozenset[str] = frozenset()) -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        stack.compose_services("shop", "services:\n  web:\n    image: nginx\n" + textwrap.indent(body, "    "),
                               IMAGES, PINNED, no_files, "localhost", (), allowed)
    return info.value


def with_access(body: str, allowed: frozenset[str]) -> ServiceSpec:
    services = stack.compose_services(
        "shop", "services:\n  web:\n    image: nginx\n" + textwrap.indent(body, "    ") + "  db:\n    image: pg\n"
        + "volumes:\n  data: {}\n  x: {}\n",
        IMAGES, PINNED, no_files, "localhost", (), allowed)
    return next(s for s in services if s.name == "web")


HOST_ACCESS = [
    ("privileged: true\n", "privileged", "services/web/privileged", {"privileged": True}),
    ("privileged: 'yes'\n", "privileged", "services/web/privileged", {"privileged": True}),
    ("cap_add: [SYS_ADMIN, NET_ADMIN]\n", "cap_add", "services/web/cap_add", {"cap_add": ("SYS_ADMIN", "NET_ADMIN")}),
    ("devices: ['/dev/fuse:/dev/fuse:rwm']\n", "devices", "services/web/devices/0", {"devices": ("/dev/fuse:/dev/fuse:rwm",)}),
    ("devices: [{source: /dev/kvm, target: /dev/kvm}]\n", "devices", "services/web/devices/0",
     {"devices": ("/dev/kvm:/dev/kvm",)}),
    ("network_mode: host\n", "network_mode", "services/web/network_mode", {"network_mode": "host"}),
    ("network_mode: 'container:other-app-web'\n", "network_mode", "services/web/network_mode",
     {"network_mode": "container:other-app-web"}),
    ("network_mode: 'service:elsewhere'\n", "network_mode", "services/web/network_mode",
     {"network_mode": "service:elsewhere"}),
    ("network_mode: bridge\n", "network_mode", "services/web/network_mode", {"network_mode": "bridge"}),
    ("pid: host\n", "pid", "services/web/pid", {"pid": "host"}),
    ("pid: 'container:x'\n", "pid", "services/web/pid", {"pid": "container:x"}),
    ("ipc: host\n", "ipc", "services/web/ipc", {"ipc": "host"}),
    ("userns_mode: host\n", "userns_mode", "services/web/userns_mode", {}),
    ("security_opt: [no-new-privileges, 'seccomp=unconfined']\n", "security_opt", "services/web/security_opt/1",
     {"security_opt": ("no-new-privileges", "seccomp=unconfined")}),
    ("security_opt: ['apparmor=unconfined']\n", "security_opt", "services/web/security_opt/0",
     {"security_opt": ("apparmor=unconfined",)}),
    ("security_opt: ['apparmor:unconfined']\n", "security_opt", "services/web/security_opt/0",
     {"security_opt": ("apparmor:unconfined",)}),
    ("volumes: [data:/data, '/srv/www:/www:ro']\n", "bind_mounts", "services/web/volumes/1",
     {"binds": ("/srv/www:/www:ro",)}),
    ("volumes: [{type: bind, source: /etc, target: /host-etc, read_only: true}]\n", "bind_mounts",
     "services/web/volumes/0", {"binds": ("/etc:/host-etc:ro",)}),
    ("volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n", "docker_socket", "services/web/volumes/0",
     {"binds": ("/var/run/docker.sock:/var/run/docker.sock",)}),
    ("volumes: [{type: bind, source: /run//docker.sock, target: /d.sock}]\n", "docker_socket", "services/web/volumes/0",
     {"binds": ("/run/docker.sock:/d.sock",)}),
    ("devices: ['/var/run/docker.sock']\n", "docker_socket", "services/web/devices/0", None),
]


@pytest.mark.parametrize("body,key,where,fields", HOST_ACCESS)
def test_host_access_is_refused_naming_the_key_path(body: str, key: str, where: str, fields: object) -> None:
    err = access_error(body)
    assert unlocated(err.message).startswith(f"compose file: {where}: ")
    assert "hands the container the host" in err.message
    assert err.hint == f"an admin can allow it for this app: dockyard apps allow shop {key}"


@pytest.mark.parametrize("body,key,where,fields", [h for h in HOST_ACCESS if h[3] is not None])
def test_allowed_host_access_is_carried_into_the_service(body: str, key: str, where: str, fields: dict) -> None:
    allowed = frozenset({key, "devices"} if key == "docker_socket" else {key})
    svc = with_access(body, allowed)
    for name, value in fields.items():
        assert getattr(svc, name) == value
    assert svc.spec_hash != with_access("", frozenset()).spec_hash or not fields


def test_allowing_one_key_does_not_allow_another() -> None:
    err = access_error("privileged: true\ncap_add: [ALL]\n", frozenset({"privileged"}))
    assert unlocated(err.message).startswith("compose file: services/web/cap_add: ")


@pytest.mark.parametrize(
    "source,keys",
    [("/", ("bind_mounts", "docker_socket")), ("/var", ("bind_mounts", "docker_socket")),
     ("/var/run/", ("bind_mounts", "docker_socket")), ("/run/containerd", ("bind_mounts", "docker_socket")),
     ("/home/me/.docker/run/docker.sock", ("docker_socket",)), ("/srv/data", ("bind_mounts",))],
)
def test_a_folder_holding_the_docker_socket_needs_both_keys(source: str, keys: tuple[str, ...]) -> None:
    body = f"volumes: ['{source}:/mnt']\n"
    for key in keys:
        others = frozenset(keys) - {key}
        assert access_error(body, others).hint.endswith(f"allow shop {key}")
    assert with_access(body, frozenset(keys)).binds[0].endswith(":/mnt")


@pytest.mark.parametrize("source", ["./data", "~/data", "../up"])
def test_relative_bind_mounts_are_refused_even_when_allowed(source: str) -> None:
    assert access_error(f"volumes: ['{source}:/data']\n").hint.endswith("allow shop bind_mounts")
    err = access_error(f"volumes: ['{source}:/data']\n", frozenset({"bind_mounts"}))
    assert unlocated(err.message).startswith("compose file: services/web/volumes/0: the bind mount source")
    assert "absolute" in err.hint


@pytest.mark.parametrize(
    "body,field,value",
    [
        ("privileged: false\n", "privileged", False),
        ("cap_add: []\n", "cap_add", ()),
        ("volumes: [data:/data, /anonymous, {type: volume, source: x, target: /y}, {type: tmpfs, target: /t}]\n",
         "binds", ()),
        ("network_mode: none\n", "network_mode", "none"),
        ("network_mode: 'service:db'\n", "network_mode", "service:db"),
        ("pid: 'service:db'\n", "pid", "service:db"),
        ("ipc: shareable\n", "ipc", "shareable"),
        ("security_opt: [no-new-privileges]\n", "security_opt", ("no-new-privileges",)),
        ("security_opt: ['no-new-privileges:true']\n", "security_opt", ("no-new-privileges:true",)),
    ],
)
def test_what_stays_inside_the_app_needs_no_allowance(body: str, field: str, value: object) -> None:
    assert getattr(with_access(body, frozenset()), field) == value


def test_a_service_without_host_access_keeps_its_hash() -> None:
    plain = with_access("", frozenset())
    assert plain == ServiceSpec(name="web", image="nginx")
    assert plain.spec_hash == ServiceSpec(name="web", image="nginx").spec_hash


@pytest.mark.parametrize(
    "body,where",
    [("privileged: maybe\n", "services/web/privileged"), ("cap_add: ALL\n", "services/web/cap_add"),
     ("devices: /dev/x\n", "services/web/devices"), ("volumes: /x:/y\n", "services/web/volumes"),
     ("security_opt: 'seccomp=unconfined'\n", "services/web/security_opt")],
)
def test_host_access_keys_of_the_wrong_shape(body: str, where: str) -> None:
    # the schema refuses a string where a list belongs; host_access refuses a flag it cannot read
    message = access_error(body, frozenset(HOST_ACCESS_KEYS)).message
    assert re.match(rf"compose file( line 4)?: {where}: ", message), message


def test_host_access_keys_are_the_fixed_public_set() -> None:
    assert HOST_ACCESS_KEYS == ("privileged", "cap_add", "devices", "network_mode", "pid", "ipc",
                                      "userns_mode", "security_opt", "bind_mounts", "docker_socket")


def test_commit_services_passes_allowed_keys_on() -> None:
    files = {"docker-compose.yml": "services:\n  web:\n    image: nginx\n    privileged: true\n"}
    with pytest.raises(InvalidSource, match="services/web/privileged"):
        stack.commit_services("shop", set(files), files.get, IMAGES, PINNED, "localhost", ())
    (svc,) = stack.commit_services("shop", set(files), files.get, IMAGES, PINNED, "localhost", (),
                                   frozenset({"privileged"}))
    assert svc.privileged


# -- compose: env_file shapes, commands -------------------------------------------------------


def test_env_file_long_syntax_and_optional_files() -> None:
    files = {"a.env": "A=1\n"}
    svc = one("services:\n  web:\n    image: nginx\n    env_file:\n      - path: a.env\n"
              "      - {path: missing.env, required: false}\n", read_file=files.get)
    assert svc.environment == (("A", "1"),)
    err = compose_error("services:\n  web:\n    image: nginx\n    env_file: [{required: true}]\n")
    assert err.message == "compose file line 4: services/web/env_file/0: needs 'path'"


@pytest.mark.parametrize("env_file", ["3", "{a: b}", "true"])
def test_env_file_of_the_wrong_shape(env_file: str) -> None:
    err = compose_error(f"services:\n  web:\n    image: nginx\n    env_file: {env_file}\n")
    assert err.message.startswith("compose file line 4: services/web/env_file: should be a string or a list, not ")


@pytest.mark.parametrize(
    "command",
    ["a b", "a  'b c'  d", 'a "b \\" c" d', "a\\ b", "'' x", 'x ""', '"a\\b"', "tab\tsep\nnewline", "a'b'c\"d\"e",
     "", "   ", "é ü"],
)
def test_split_words_is_shlex_split(command: str) -> None:
    import shlex

    assert split_words(command) == shlex.split(command)


@pytest.mark.parametrize("command", ["'a", '"a', "a\\", '"a\\'])
def test_split_words_refuses_what_shlex_refuses(command: str) -> None:
    import shlex

    with pytest.raises(ValueError):
        shlex.split(command)
    with pytest.raises(ValueError):
        split_words(command)


def test_an_oversized_compose_file_is_refused_by_its_name() -> None:
    files = {"compose.yaml": "services: {web: {image: nginx}}\n" + "#\n" * limits.MAX_COMPOSE_BYTES}
    with pytest.raises(InvalidSource) as info:
        stack.commit_services("shop", set(files), files.get, IMAGES, PINNED, "localhost", ())
    assert info.value.message.startswith("compose.yaml is ")
    assert info.value.message.endswith("more than the 256 KiB dockyard reads of such a file")


# -- the seed's compose file, as written ------------------------------------------------------

# The seed's docker-compose.yml (its write-up, "Composition des conteneurs"), image names changed
# only: obfuscated1.westeurope.cloudapp.azure.com/crigen/obfuscated10-NAME is reg.example.com/crigen/NAME.
SEED_COMPOSE = """\
version: '2'
services:
  vitrine1:
    image: reg.example.com/crigen/vitrine:0.1
    container_name: vitrine1
    ports:
      - "50001:3001"
    networks:
      - obfuscated10net
  vitrine2:
    image: reg.example.com/crigen/vitrine:0.1
    container_name: vitrine2
    ports:
      - "50002:3001"
    networks:
      - obfuscated10net
  api1:
    image: reg.example.com/crigen/api:0.2
    container_name: api1
    ports:
      - "50011:8894"
    networks:
      - obfuscated10net
    env_file:
      - docker-compose.env
  api2:
    image: reg.example.com/crigen/api:0.2
    container_name: api2
    ports:
      - "50012:8894"
    networks:
      - obfuscated10net
    env_file:
      - docker-compose.env
  supervision1:
    image: reg.example.com/crigen/supervision:0.1
    container_name: supervision1
    ports:
      - "50021:3001"
    networks:
      - obfuscated10net
    env_file:
      - docker-compose.env
  supervision2:
    image: reg.example.com/crigen/supervision:0.1
    container_name: supervision2
    ports:
      - "50022:3001"
    networks:
      - obfuscated10net
    env_file:
      - docker-compose.env
  mongodb-master:
    image: reg.example.com/crigen/mongodb-replicaset:0.1
    networks:
      - obfuscated10net
    environment:
      ROLE: "master"
      SLAVE1: "slave1"
      SLAVE2: "slave2"
    hostname: mongodb
    container_name: mongodb
  mongodb-slave1:
    image: reg.example.com/crigen/mongodb-replicaset:0.1
    networks:
      - obfuscated10net
    hostname: slave1
    container_name: slave1
    depends_on:
      - mongodb-master
  mongodb-slave2:
    image: reg.example.com/crigen/mongodb-replicaset:0.1
    networks:
      - obfuscated10net
    hostname: slave2
    container_name: slave2
    depends_on:
      - mongodb-master
  api-tools:
    image: reg.example.com/crigen/api-tools:0.1
    container_name: api-tools
    networks:
      - obfuscated10net
    env_file:
      - docker-compose.env
    depends_on:
      - mongodb-master
      - mongodb-slave1
      - mongodb-slave2
      - api1
      - api2
networks:
  obfuscated10net:
    driver: ${DOCKER_NETWORK_TYPE}
""".replace("ports:\n", "ports: \n")  # as the seed writes it, with a space after "ports:"
SEED_ENV = """\
MONGODB_HOSTS_PORTS=mongodb:27017,slave1:27017,slave2:27017
MONGODB_USER=obfuscated3
MONGODB_PASSWORD=obfuscated4
MONGODB_DB=crigen
MONGODB_DEBUG=true
"""


def test_the_seeds_compose_file_loads_with_warnings_and_no_error() -> None:
    files = {"docker-compose.yml": SEED_COMPOSE, "docker-compose.env": SEED_ENV}
    found = stack.commit_stack("crigen", set(files), files.get, IMAGES, PINNED, "localhost", ())
    by_name = {s.name: s for s in found.services}
    assert [s.name for s in found.services] == [
        "vitrine1", "vitrine2", "api1", "api2", "supervision1", "supervision2", "mongodb-master", "mongodb-slave1",
        "mongodb-slave2", "api-tools"]
    assert by_name["api1"].image == by_name["api2"].image == API_REF  # the repository's own api image
    assert by_name["vitrine1"].image == "reg.example.com/crigen/vitrine:0.1"
    assert {n: s.port for n, s in by_name.items() if s.port} == {
        "vitrine1": 3001, "vitrine2": 3001, "api1": 8894, "api2": 8894, "supervision1": 3001, "supervision2": 3001}
    assert by_name["vitrine1"].hosts == ("crigen.localhost", "vitrine1.crigen.localhost")
    assert dict(by_name["api-tools"].environment)["MONGODB_DB"] == "crigen"
    assert dict(by_name["mongodb-master"].environment) == {"ROLE": "master", "SLAVE1": "slave1", "SLAVE2": "slave2"}
    assert by_name["api-tools"].depends_on == ("mongodb-master", "mongodb-slave1", "mongodb-slave2", "api1", "api2")

    kinds: dict[str, list[str]] = {}
    for warning in found.warnings:
        where = re.match(r"docker-compose\.yml line \d+: (\S+): ", warning)
        assert where, warning
        kinds.setdefault(where.group(1).rsplit("/", 1)[-1] if "/" in where.group(1) else where.group(1),
                         []).append(warning)
    # hostname, container_name, networks and the host ports are honoured: the unset variable is left
    assert {k: len(v) for k, v in kinds.items()} == {"driver": 1}
    assert (by_name["mongodb-master"].hostname, by_name["mongodb-master"].aliases) == ("mongodb", ("mongodb",))
    assert by_name["mongodb-slave1"].aliases == ("slave1",) and by_name["mongodb-slave2"].aliases == ("slave2",)
    assert by_name["api1"].aliases == () and by_name["api1"].hostname == ""  # container_name == its own name
    assert by_name["api1"].published == ((50011, 8894, "http", ""),)  # served by the proxy on the host port
    assert {s.published[0][0] for s in found.services if s.published} == {50001, 50002, 50011, 50012, 50021, 50022}
    assert kinds["driver"][0].startswith("docker-compose.yml line 94: networks/obfuscated10net/driver: the variable "
                                         "DOCKER_NETWORK_TYPE is not set, so it is replaced by an empty string")
    assert found.warnings == tuple(sorted(found.warnings, key=lambda w: int(w.split()[2].rstrip(":"))))


def test_every_refusal_of_the_compose_file_names_its_file_line_and_key() -> None:
    from dockyard.services.inspect import parse_source

    base = {"Dockerfile": "FROM scratch\nEXPOSE 80\n"}
    for compose, expected in [
        ("services:\n  web:\n    build: .\n    env_file: missing.env\n",
         "docker-compose.yml line 4: services/web/env_file/0: 'missing.env' is not in the repository"),
        ("services:\n  web:\n    build: .\n    depends_on: [nope]\n",
         "docker-compose.yml line 4: services/web/depends_on: unknown service 'nope'"),
        ("services:\n  web:\n    build: .\n  db:\n    image: redis\n    volumes: ['data:/x']\n",
         "docker-compose.yml line 6: services/db/volumes/0: volume 'data' is not declared"),
    ]:
        files = {**base, "docker-compose.yml": compose}
        with pytest.raises(InvalidSource) as info:
            parse_source(list(files), lambda path, limit, files=files: files.get(path), "shop", base_domain="localhost")
        assert info.value.message == expected
