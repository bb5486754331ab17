"""The store's part in garbage collection, on the FakeStore and SqlStore alike: a collected
manifest's images leave the listing, their tags' image ids are remembered (first one wins), and
nothing else moves."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dockyard.domain.model import App, BuiltImage
from tests.integration.test_store_contract import AnyStore
from tests.integration.test_store_contract import store as store  # the fixture, re-exported

pytestmark = pytest.mark.integration


def image(app: str, version: str, repository: str = "") -> BuiltImage:
    return BuiltImage(app=app, repository=repository or f"{app}/web", version=version, tag=version,
                      digest=f"sha256:m{version}", image_id=f"sha256:i{version}", commit="c" * 40, size=123,
                      dockerfile="Dockerfile")


def test_collected_images_leave_the_listing_and_their_tags_stay_bound(store: AnyStore) -> None:
    for name in ("shop", "blog"):
        store.create_app(App(name))
    store.add_image(image("shop", "1"))
    store.add_image(replace(image("shop", "1"), version="1-again"))  # the same manifest pushed again
    store.add_image(image("shop", "2"))
    store.add_image(image("shop", "1", repository="shop/api"))  # another repository, the same digest
    store.add_image(image("blog", "1", repository="shop/web"))  # another app: never its to forget

    assert store.collected_image("shop/web", "1") is None
    assert store.collect_images("shop", "shop/web", "sha256:m1") == 2
    assert [(i.repository, i.version) for i in store.list_images("shop")] == [("shop/api", "1"), ("shop/web", "2")]
    assert len(store.list_images("blog")) == 1
    assert store.collected_image("shop/web", "1") == "sha256:i1"
    assert store.collected_image("shop/web", "2") is None and store.collected_image("shop/api", "1") is None

    assert store.collect_images("shop", "shop/web", "sha256:m1") == 0  # nothing left of it
    store.add_image(image("shop", "1"))  # pushed again after its collection, then collected again
    assert store.collect_images("shop", "shop/web", "sha256:m1") == 1
    assert store.collected_image("shop/web", "1") == "sha256:i1"
    assert store.collect_images("nobody", "nobody/web", "sha256:m9") == 0
