"""What a deploy would change (planning/changes.py): pure, per service, with every reason."""

from __future__ import annotations

from dataclasses import replace

from dockyard.domain.model import ServiceSpec
from dockyard.planning.changes import CREATE, KEEP, REMOVE, REPLACE, REROUTE, UNBUILT, ServiceChange, changes

WEB = ServiceSpec(name="web", image="reg:5000/shop/web@sha256:" + "a" * 64, image_id="sha256:" + "1" * 64, port=8000,
                  hosts=("shop.localhost",), environment=(("MODE", "prod"), ("token", "<secret:token@1>")),
                  secrets=(("token", 1),))
DB = ServiceSpec(name="db", image="redis:7", volumes=("data:/data",))


def test_nothing_changed_keeps_everything() -> None:
    assert changes([WEB, DB], [DB, WEB]) == [ServiceChange("db", KEEP), ServiceChange("web", KEEP)]


def test_every_difference_is_named_and_values_are_not() -> None:
    new = replace(WEB, image="reg:5000/shop/web@sha256:" + "b" * 64, image_id="sha256:" + "2" * 64, port=8080,
                  environment=(("MODE", "recette"), ("NEW", "x"), ("token", "<secret:token@2>")),
                  secrets=(("token", 2),), command=("serve",), memory=512 * 1024**2)
    [change] = changes([WEB], [new])
    assert change.action == REPLACE
    assert change.reasons == (
        f"image web@{'a' * 12} -> web@{'b' * 12}", "variable NEW added", "variable MODE changed",
        "secret token version 1 -> 2", "port 8000 -> 8080", "command changed", "memory changed")
    assert not any("recette" in r or "prod" in r for r in change.reasons)  # which variable, never its value


def test_hosts_alone_reroute_without_a_new_container() -> None:
    [change] = changes([WEB], [replace(WEB, hosts=("shop.localhost", "www.shop.example"))])
    assert change == ServiceChange("web", REROUTE, ("hosts +www.shop.example",))


def test_new_and_removed_services() -> None:
    worker = ServiceSpec(name="worker", image=f"{UNBUILT}worker/Dockerfile@{'c' * 40}")
    assert changes([WEB, DB], [WEB, worker]) == [
        ServiceChange("web", KEEP),
        ServiceChange("worker", CREATE, (f"new service (built from worker/Dockerfile at {'c' * 10})",)),
        ServiceChange("db", REMOVE, ("not in the commit's stack any more",)),
    ]


def test_an_image_not_built_yet_may_turn_out_the_same() -> None:
    unbuilt = replace(WEB, image=f"{UNBUILT}Dockerfile@{'d' * 40}", image_id="")
    [change] = changes([WEB], [unbuilt])
    assert change.action == REPLACE
    assert change.reasons[0] == f"image web@{'a' * 12} -> built from Dockerfile at {'d' * 10}"
    assert "the container is then kept" in change.reasons[1]


def test_volumes_and_settings_other_fields_are_named() -> None:
    [change] = changes([DB], [replace(DB, volumes=("data:/data", "logs:/logs"), user="redis")])
    assert change.reasons == ("volumes +logs:/logs", "user changed")
