"""Named volumes of compose services (domain/volumes.py)."""

from __future__ import annotations

import pytest

from dockyard.domain import volumes
from dockyard.domain.errors import InvalidSource

NAMES = {"data", "cache"}


def test_short_and_long_syntax_give_name_target_and_mode() -> None:
    raw = ["data:/var/lib/db", "cache:/cache:ro", {"type": "volume", "source": "cache", "target": "/c2/",
                                                   "read_only": True}]
    assert volumes.named_mounts("services/db", raw, NAMES) == ("data:/var/lib/db", "cache:/cache:ro",
                                                                "cache:/c2:ro")


def test_binds_and_anonymous_volumes_are_not_named_volumes() -> None:
    raw = ["/srv:/srv", "./conf:/conf", "~/x:/x", "/anonymous", {"type": "bind", "source": "/a", "target": "/a"},
           {"type": "volume", "target": "/anon"}]
    assert volumes.named_mounts("services/db", raw, NAMES) == ()


@pytest.mark.parametrize(("raw", "message"), [
    (["nope:/data"], "services/db/volumes/0: volume 'nope' is not declared"),
    (["data:relative"], "services/db/volumes/0: mount target 'relative' should be an absolute path"),
    (["data:/"], "services/db/volumes/0: mount target '/'"),
    (["data:/d", "cache:/d/"], "services/db/volumes: two volumes are mounted at the same path"),
    ("data:/d", "services/db/volumes: should be a list"),
])
def test_mistakes_name_the_key_path(raw: object, message: str) -> None:
    with pytest.raises(InvalidSource) as caught:
        volumes.named_mounts("services/db", raw, NAMES)
    assert message in caught.value.message


def test_top_level_declarations() -> None:
    assert volumes.declared(None) == set()
    assert volumes.declared({"data": None, "cache": {"driver": "local"}}) == {"data", "cache"}
    with pytest.raises(InvalidSource, match="volumes/data/external: external volumes are not supported"):
        volumes.declared({"data": {"external": True}})
    with pytest.raises(InvalidSource, match="is not a volume name"):
        volumes.declared({"../x": None})
    with pytest.raises(InvalidSource, match="should be a mapping"):
        volumes.declared(["data"])
