"""The compose keys dockyard honours beyond image, ports, environment and command
(domain/compose_service.py): what each becomes in the ServiceSpec, the refusals that name file,
line and key, and the warnings that are left."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap

import pytest

from dockyard.domain import stack
from dockyard.domain.errors import InvalidSource
from dockyard.domain.model import ServiceSpec
from dockyard.domain.records import service_from_dict
from dockyard.services.inspect import _build

SOURCE = "docker-compose.yml"


def load(text: str) -> stack.Stack:
    return stack.compose_stack("shop", textwrap.dedent(text), {}, {}, lambda path: None, "localhost", (),
                               source=SOURCE)


def services(text: str) -> dict[str, ServiceSpec]:
    return {s.name: s for s in load(text).services}


def one(body: str) -> ServiceSpec:
    """The service ``web`` (image nginx) with ``body`` (its keys, indented by four)."""
    return services("services:\n  web:\n    image: nginx\n" + textwrap.indent(textwrap.dedent(body), "    "))["web"]


def refusal(text: str) -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        load(text)
    return info.value


def refused(body: str) -> str:
    return refusal("services:\n  web:\n    image: nginx\n" + textwrap.indent(textwrap.dedent(body), "    ")).message


# -- names on the app network ---------------------------------------------------------------------
SEED = """\
    services:
      mongodb:
        image: mongo
        hostname: mongodb
      mongodb-slave1:
        image: mongo
        hostname: slave1
        container_name: slave1
      mongodb-slave2:
        image: mongo
        container_name: slave2
        networks:
          back:
            aliases: [replica2, slave2]
      api:
        image: api
        environment:
          MONGODB_HOSTS_PORTS: mongodb:27017,slave1:27017,slave2:27017
        networks: [back, default]
    networks:
      back: {}
    """


def test_hostname_container_name_and_aliases_become_names_on_the_app_network() -> None:
    found = services(SEED)
    assert (found["mongodb"].hostname, found["mongodb"].aliases) == ("", ())  # its own name: nothing more
    assert (found["mongodb-slave1"].hostname, found["mongodb-slave1"].aliases) == ("slave1", ("slave1",))
    assert (found["mongodb-slave2"].hostname, found["mongodb-slave2"].aliases) == ("", ("slave2", "replica2"))
    assert found["api"].aliases == ()


def test_a_service_without_those_keys_keeps_its_hash() -> None:
    plain = ServiceSpec("api", "api", environment=(("A", "1"),), command=("serve",))
    old = hashlib.sha256(repr(("api", None, (("A", "1"),), ("serve",))).encode()).hexdigest()[:16]
    assert plain.spec_hash == old  # as before these fields existed: no container is replaced by an upgrade
    assert services(SEED)["api"].spec_hash == ServiceSpec(
        "api", "api", environment=(("MONGODB_HOSTS_PORTS", "mongodb:27017,slave1:27017,slave2:27017"),)).spec_hash


@pytest.mark.parametrize(
    "text,where,message",
    [
        ("services:\n  a:\n    image: x\n    hostname: b\n  b:\n    image: x\n",
         "line 4: services/a/hostname", "'b' is the name of service 'b'"),
        ("services:\n  a:\n    image: x\n    container_name: api1\n  b:\n    image: x\n    container_name: api1\n",
         "line 7: services/b/container_name", "'api1' is already a name of service 'a'"),
        ("services:\n  a:\n    image: x\n    hostname: db\n  b:\n    image: x\n    container_name: DB\n",
         "line 7: services/b/container_name", "'DB' is already a name of service 'a'"),
        ("services:\n  a:\n    image: x\n    networks:\n      default:\n        aliases: [b]\n  b:\n    image: x\n",
         "line 6: services/a/networks/default/aliases/0", "'b' is the name of service 'b'"),
        ("services:\n  a:\n    image: x\n    hostname: -bad\n", "line 4: services/a/hostname", "'-bad' is not a host name"),
        ("services:\n  a:\n    image: x\n    container_name: 'db 1'\n", "line 4: services/a/container_name",
         "'db 1' is not a container name"),
        ("services:\n  a:\n    image: x\n    networks: [back]\n", "line 4: services/a/networks/0",
         "network 'back' is not declared"),
        ("services:\n  a:\n    image: x\nnetworks:\n  proxy:\n    external: true\n", "line 6: networks/proxy/external",
         "external networks are not supported"),
    ],
)
def test_names_that_would_lead_to_two_services_or_nowhere_are_refused(text: str, where: str, message: str) -> None:
    error = refusal(text)
    assert error.message.startswith(f"{SOURCE} {where}: {message}"), error.message
    assert error.hint


def test_networks_warn_when_merged_and_about_drivers() -> None:
    warnings = load("""\
        services:
          a:
            image: x
            networks:
              front: {ipv4_address: 10.0.0.9}
          b:
            image: x
            networks: [back]
        networks:
          front: {driver: overlay}
          back: {driver: bridge}
        """).warnings
    assert warnings == (
        f"{SOURCE} line 5: services/a/networks/front/ipv4_address: not honoured yet: dockyard gives addresses itself",
        f"{SOURCE} line 9: networks: the networks 'back', 'front' are merged into the app's one network: every "
        "service reaches every other",
        f"{SOURCE} line 10: networks/front/driver: on one host, the overlay network runs as the app's bridge network",
    )
    one_network = load("services:\n  a:\n    image: x\n    networks: [n]\n    expose: ['80']\nnetworks:\n  n: {}\n")
    assert one_network.warnings == ()  # one network, and expose is documentation


# -- healthcheck ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "healthcheck,test",
    [
        ("test: [CMD, pg_isready, -U, app]", ("CMD", "pg_isready", "-U", "app")),
        ("test: [CMD-SHELL, 'pg_isready || exit 1']", ("CMD-SHELL", "pg_isready || exit 1")),
        ("test: wget -q -O- localhost", ("CMD-SHELL", "wget -q -O- localhost")),
        ("test: [NONE]", ("NONE",)),
        ("disable: true", ("NONE",)),
        ("{disable: true, test: [NONE]}", ("NONE",)),
        ("interval: 5s", ()),  # the image's test, checked every 5s
    ],
)
def test_healthcheck_test_in_all_its_forms(healthcheck: str, test: tuple[str, ...]) -> None:
    body = f"healthcheck: {healthcheck}\n" if healthcheck.startswith("{") else f"healthcheck:\n  {healthcheck}\n"
    assert one(body).healthcheck == test


def test_healthcheck_timings_in_nanoseconds() -> None:
    web = one("healthcheck:\n  test: [CMD, 'true']\n  interval: 1m30s\n  timeout: 500ms\n  retries: 5\n"
              "  start_period: 2s\n")
    assert (web.health_interval, web.health_timeout, web.health_retries, web.health_start_period) == (
        90 * 10**9, 500 * 10**6, 5, 2 * 10**9)
    assert load("services:\n  web:\n    image: x\n    healthcheck: {test: [CMD, 'true'], retries: '3'}\n").warnings == ()


@pytest.mark.parametrize(
    "healthcheck,where,message",
    [
        ("{test: [curl, localhost]}", "healthcheck/test", "should start with 'CMD', 'CMD-SHELL' or 'NONE'"),
        ("{test: [CMD]}", "healthcheck/test", "CMD needs a command after it"),
        ("{test: ' '}", "healthcheck/test", "is empty"),
        ("{test: [CMD, 'true'], disable: true}", "healthcheck/disable", "cannot be set together with 'test'"),
        ("{interval: '10'}", "healthcheck/interval", "'10' is not a duration"),
        ("{interval: 1m30}", "healthcheck/interval", "'1m30' is not a duration"),
        ("{timeout: 10us}", "healthcheck/timeout", "should be 0 or at least 1ms"),
        ("{start_period: 25h}", "healthcheck/start_period", "'25h' is longer than 24h"),
        ("{retries: -1}", "healthcheck/retries", "'-1' should be a whole number from 0 to 1000"),
        ("{retries: 1.5}", "healthcheck/retries", "'1.5' should be a whole number"),
    ],
)
def test_a_healthcheck_that_makes_no_sense_is_refused(healthcheck: str, where: str, message: str) -> None:
    assert refused(f"healthcheck: {healthcheck}\n").startswith(f"{SOURCE} line 4: services/web/{where}: {message}")


# -- depends_on conditions and one-shot services ------------------------------------------------------
DEPENDS = """\
    services:
      db:
        image: postgres
        healthcheck: {test: [CMD, pg_isready]}
      cache:
        image: redis
      migrate:
        image: app
        command: migrate
        ports: ['9000']
        depends_on:
          db: {condition: service_healthy}
      web:
        image: app
        ports: ['8000']
        depends_on:
          db: {condition: service_healthy}
          migrate: {condition: service_completed_successfully}
          cache: {condition: service_started}
      worker:
        image: app
        depends_on: [cache, migrate]
    """


def test_depends_on_conditions_and_the_one_shot_service() -> None:
    found = load(DEPENDS)
    by_name = {s.name: s for s in found.services}
    web, migrate, worker = by_name["web"], by_name["migrate"], by_name["worker"]
    assert web.depends_on == ("db", "migrate", "cache")
    assert (web.after_healthy, web.after_completed) == (("db",), ("migrate",))
    assert (worker.after_healthy, worker.after_completed, worker.depends_on) == ((), (), ("cache", "migrate"))
    assert migrate.one_shot and not web.one_shot and not by_name["db"].one_shot
    assert migrate.after_healthy == ("db",)
    assert (migrate.port, migrate.hosts) == (None, ())  # it runs once: never routed
    assert web.hosts == ("shop.localhost", "web.shop.localhost")  # the first web service is the app's
    assert found.warnings == (
        f"{SOURCE} line 10: services/migrate/ports: not routed: 'web' waits for it to complete "
        "(service_completed_successfully), so it runs once",
    )
    assert [s.name for s in found.services].index("migrate") < [s.name for s in found.services].index("web")


def test_waiting_for_a_dependency_without_a_healthcheck_is_warned_about() -> None:
    found = load("services:\n  db:\n    image: x\n  web:\n    image: x\n    depends_on:\n"
                 "      db: {condition: service_healthy}\n")
    assert found.warnings == (
        f"{SOURCE} line 7: services/web/depends_on/db/condition: 'db' has no healthcheck here: dockyard waits until "
        "it is ready as it would without one (healthy if its image has a HEALTHCHECK, else running, or answering "
        "HTTP for a web service)",)
    assert found.services[1].after_healthy == ("db",)


@pytest.mark.parametrize("restart", ["always", "unless-stopped", "on-failure"])
def test_a_one_shot_service_must_not_restart(restart: str) -> None:
    error = refusal(f"services:\n  migrate:\n    image: x\n    restart: {restart}\n  web:\n    image: x\n"
                    "    depends_on:\n      migrate: {condition: service_completed_successfully}\n")
    assert error.message == (f"{SOURCE} line 4: services/migrate/restart: 'web' waits for it to complete "
                             "(service_completed_successfully): it runs once, with the restart policy 'no'")
    ok = load("services:\n  migrate:\n    image: x\n    restart: 'no'\n  web:\n    image: x\n"
              "    depends_on:\n      migrate: {condition: service_completed_successfully}\n")
    assert ok.services[0].one_shot and ok.services[0].restart == "no"


# -- what the container runs as -------------------------------------------------------------------------
@pytest.mark.parametrize("restart", ["no", "always", "on-failure", "on-failure:3", "unless-stopped"])
def test_restart_policies(restart: str) -> None:
    assert one(f"restart: '{restart}'\n").restart == restart


def test_the_default_restart_policy_is_dockyards() -> None:
    assert one("command: serve\n").restart == ""  # unless-stopped, as before


def test_labels_in_both_forms() -> None:
    assert one("labels: [team=shop, tier, 'note=a=b']\n").labels == ("team=shop", "tier=", "note=a=b")
    assert one("labels: {team: shop, n: 1, flag: true, empty: null}\n").labels == (
        "team=shop", "n=1", "flag=true", "empty=")


def test_user_working_dir_entrypoint_and_stopping() -> None:
    web = one("user: '1000:1000'\nworking_dir: /srv/app\nentrypoint: sh -c 'exec \"$0\"'\nstop_signal: SIGINT\n"
              "stop_grace_period: 1m30s\n")
    assert (web.user, web.working_dir, web.entrypoint) == ("1000:1000", "/srv/app", ("sh", "-c", 'exec "$0"'))
    assert (web.stop_signal, web.stop_grace_period) == ("SIGINT", 90)
    assert one("entrypoint: [/bin/tini, --]\n").entrypoint == ("/bin/tini", "--")
    assert one("entrypoint: ''\n").entrypoint == ()  # the image's ENTRYPOINT is cleared
    assert one("command: serve\n").entrypoint is None  # the image's
    assert one("stop_grace_period: 500ms\n").stop_grace_period == 1  # whole seconds, rounded up
    assert one("stop_grace_period: '0'\n").stop_grace_period == 0


def test_limits_from_deploy_or_the_service() -> None:
    web = one("deploy:\n  resources:\n    limits: {memory: 512m, cpus: '0.5', pids: 200}\n")
    assert (web.memory, web.cpus, web.pids) == (512 * 1024**2, 0.5, 200)
    web = one("mem_limit: 2g\ncpus: 1.5\npids_limit: 64\n")
    assert (web.memory, web.cpus, web.pids) == (2 * 1024**3, 1.5, 64)
    assert one("mem_limit: 1073741824\n").memory == 1024**3
    assert one("mem_limit: 1gb\ndeploy: {resources: {limits: {memory: 1024M}}}\n").memory == 1024**3  # equal: fine
    assert one("command: serve\n").memory is None  # dockyard's default
    assert load("services:\n  web:\n    image: x\n    deploy: {resources: {limits: {memory: 1g}}}\n").warnings == ()


def test_the_update_order_and_parallelism_from_deploy_update_config() -> None:
    assert one("deploy: {update_config: {order: stop-first}}\n").stop_first is True
    assert one("deploy: {update_config: {order: start-first}}\n").stop_first is False
    assert one("command: serve\n").stop_first is False  # start-first: dockyard's default
    assert one("deploy: {update_config: {parallelism: 2}}\n").parallelism == 2
    assert one("command: serve\n").parallelism == 0  # all at once
    found = load("services:\n  web:\n    image: x\n    deploy: {update_config: {order: stop-first, parallelism: 2, "
                 "delay: 10s}}\n")
    update = [w for w in found.warnings if "update_config" in w]
    assert len(update) == 1 and "services/web/deploy/update_config/delay" in update[0], update


@pytest.mark.parametrize(
    "body,where,message",
    [
        ("deploy: {update_config: {order: last}}", "deploy/update_config/order", "should be one of 'start-first', 'stop-first'"),
        ("deploy: {update_config: {parallelism: 500}}", "deploy/update_config/parallelism",
         "'500' should be a whole number from 0 to 100"),
        ("labels: [dockyard.app=other]", "labels/0", "the label 'dockyard.app' is dockyard's own"),
        ("labels: {Dockyard.spec: x}", "labels/Dockyard.spec", "the label 'Dockyard.spec' is dockyard's own"),
        ("labels: ['=x']", "labels/0", "a label needs a key"),
        ("restart: sometimes", "restart", "'sometimes' is not a restart policy"),
        ("restart: on-failure:x", "restart", "'on-failure:x' is not a restart policy"),
        ("user: 'root; rm -rf /'", "user", "'root; rm -rf /' is not a user"),
        ("working_dir: app", "working_dir", "'app' should be an absolute path inside the container"),
        ("entrypoint: \"sh -c 'x\"", "entrypoint", "cannot split"),
        ("stop_signal: 'KILL ME'", "stop_signal", "'KILL ME' is not a signal"),
        ("stop_grace_period: 2h", "stop_grace_period", "should be at most 1h"),
        ("stop_grace_period: soon", "stop_grace_period", "'soon' is not a duration"),
        ("mem_limit: 1k", "mem_limit", "'1k' is not a memory limit from 6m to 1p"),
        ("mem_limit: lots", "mem_limit", "'lots' is not a memory limit"),
        ("mem_limit: 0", "mem_limit", "'0' is not a memory limit"),
        ("mem_limit: 2048p", "mem_limit", "'2048p' is not a memory limit"),
        ("cpus: 0", "cpus", "'0' is not a number of CPUs"),
        ("cpus: many", "cpus", "'many' is not a number of CPUs"),
        ("pids_limit: -1", "pids_limit", "'-1' should be a whole number from 1"),
        ("pids_limit: 0", "pids_limit", "'0' should be a whole number from 1"),
        ("deploy: {resources: {limits: {pids: 0}}}", "deploy/resources/limits/pids", "'0' should be a whole number"),
        ("deploy: {resources: {limits: {cpus: '-2'}}}", "deploy/resources/limits/cpus", "'-2' is not a number of CPUs"),
    ],
)
def test_nonsense_is_refused_naming_file_line_and_key(body: str, where: str, message: str) -> None:
    assert refused(body + "\n").startswith(f"{SOURCE} line 4: services/web/{where}: {message}")


def test_two_different_limits_for_one_resource_are_refused() -> None:
    message = refused("mem_limit: 1g\ndeploy:\n  resources:\n    limits: {memory: 2g}\n")
    assert message == f"{SOURCE} line 7: services/web/deploy/resources/limits/memory: differs from mem_limit (line 4)"


def test_the_seed_with_a_hostname_taken_by_another_service_is_refused() -> None:
    error = refusal(SEED.replace("hostname: slave1", "hostname: mongodb"))
    assert error.message == f"{SOURCE} line 7: services/mongodb-slave1/hostname: 'mongodb' is the name of service 'mongodb'"
    assert error.hint == "each name on the app's network must lead to one service: choose another"


# -- no warning for what is honoured, and the spec survives storage ----------------------------------
EVERYTHING = """\
    services:
      db:
        image: postgres
        hostname: database
        container_name: db1
        expose: ['5432']
        healthcheck: {test: [CMD, pg_isready], interval: 1s, timeout: 1s, retries: 3, start_period: 1s}
        restart: always
        labels: {team: shop}
        user: postgres
        working_dir: /var/lib/postgresql
        entrypoint: [docker-entrypoint.sh]
        stop_signal: SIGINT
        stop_grace_period: 30s
        mem_limit: 512m
        cpus: 1
        pids_limit: 100
        networks:
          back: {aliases: [postgres]}
      migrate:
        image: app
        depends_on: {db: {condition: service_healthy}}
        deploy: {resources: {limits: {memory: 256m, cpus: '0.25', pids: 50}}}
        networks: [back]
      web:
        image: app
        ports: ['8000']
        depends_on:
          migrate: {condition: service_completed_successfully}
        networks: [back]
    networks:
      back: {driver: bridge}
    """


def test_what_is_honoured_gives_no_warning() -> None:
    assert load(EVERYTHING).warnings == ()


@pytest.mark.parametrize("service", ["db", "migrate", "web"])
def test_the_spec_and_its_hash_survive_json_and_the_parser_process(service: str) -> None:
    spec = services(EVERYTHING)[service]
    data = json.loads(json.dumps(dataclasses.asdict(spec)))
    assert service_from_dict(data) == spec  # what a release's record gives back (routes are restored by hash)
    assert service_from_dict(data).spec_hash == spec.spec_hash
    assert _build(ServiceSpec, data) == spec  # what services/inspect.py's child hands back


@pytest.mark.parametrize(
    "change",
    [{"hostname": "h"}, {"aliases": ("a",)}, {"healthcheck": ("NONE",)}, {"health_interval": 10**9},
     {"health_retries": 2}, {"restart": "always"}, {"one_shot": True}, {"labels": ("a=b",)}, {"user": "app"},
     {"working_dir": "/app"}, {"entrypoint": ()}, {"stop_signal": "SIGINT"}, {"stop_grace_period": 3},
     {"memory": 10**8}, {"cpus": 0.5}, {"pids": 10}],
)
def test_each_new_field_changes_the_hash_when_set(change: dict[str, object]) -> None:
    base = ServiceSpec("web", "nginx", 80)
    assert dataclasses.replace(base, **change).spec_hash != base.spec_hash


def test_start_order_fields_never_change_the_hash() -> None:
    base = ServiceSpec("web", "nginx", 80)
    assert dataclasses.replace(base, after_healthy=("db",), after_completed=("m",)).spec_hash == base.spec_hash


def test_names_of_a_service_off_the_app_network_are_warned_about() -> None:
    found = load("services:\n  a:\n    image: x\n  b:\n    image: x\n    network_mode: 'service:a'\n"
                 "    hostname: bee\n")
    assert found.warnings == (f"{SOURCE} line 7: services/b/hostname: not honoured yet: with network_mode, the "
                              "service has no names on the app's network",)
