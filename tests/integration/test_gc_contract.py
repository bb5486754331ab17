"""What garbage collection needs of the Registry and the ImageBuilder, run against the fakes and
the real parts alike (a Distribution registry in its container, the Docker engine): a manifest
deleted takes its tags along and no other; the registry's own collection frees the blobs only
it used, and an image kept is still pulled whole; a local image goes with dockyard's tags, stays
while another tag names it or a container uses it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

from dockyard.adapters.docker_builder import DockerBuilder
from dockyard.adapters.registry import DistributionRegistry
from dockyard.fakes import FakeBuilder, FakeRegistry
from dockyard.ports import ImageBuilder, Registry
from tests.integration.test_contracts import distribution as distribution  # the fixture, re-exported
from tests.integration.test_contracts import tar_of
from tests.support import BASE_IMAGE

pytestmark = pytest.mark.integration

LAYER_BYTES = 300_000  # each test image's own layer: random bytes, so it compresses to about as much


@dataclass
class Side:
    registry: Registry
    builder: ImageBuilder
    engine: docker.DockerClient | None = None  # the real side's
    built: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def build(self) -> str:
        """An image with a layer of its own (random bytes), FROM the base image."""
        dockerfile = (f"FROM {BASE_IMAGE}\nLABEL dockyard.test.unique={uuid.uuid4().hex}\n"
                      f"RUN head -c {LAYER_BYTES} /dev/urandom > /blob\n")
        image_id = self.builder.build(tar_of({"Dockerfile": dockerfile}), "Dockerfile", "", lambda line: None)
        self.built.append(image_id)
        return image_id

    def push(self, image_id: str, repository: str, tag: str) -> str:
        reference = f"{self.registry.address}/{repository}:{tag}"
        self.builder.tag(image_id, reference)
        self.tags.append(reference)
        return self.builder.push(reference, lambda line: None)


def clean_up(engine: docker.DockerClient, images: list[str]) -> None:
    """The test's containers, then its images (tags and ids), whatever is left of them."""
    for c in engine.containers.list(all=True, filters={"label": "dockyard.test=gc-contract"}):
        c.remove(force=True)
    for image in images:
        try:
            engine.images.remove(image, force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture(params=["fake", "distribution"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    if request.param == "fake":
        fake = FakeRegistry()
        fake.ensure_running()
        yield Side(fake, FakeBuilder(fake))
        return
    engine: docker.DockerClient = request.getfixturevalue("engine")
    registry: DistributionRegistry = request.getfixturevalue("distribution")
    real = Side(registry, DockerBuilder(engine, registry.auth), engine)
    try:
        yield real
    finally:
        clean_up(engine, [*real.tags, *real.built])


def test_a_deleted_manifest_takes_its_tags_and_no_other(side: Side) -> None:
    repository = f"contract/gc{uuid.uuid4().hex[:8]}"
    first, second = side.build(), side.build()
    digest = side.push(first, repository, "1.0")
    assert side.push(first, repository, "latest") == digest  # one manifest, two tags
    other = side.push(second, repository, "2.0")

    assert side.registry.delete_manifest(repository, digest) is True
    assert side.registry.config_digest(repository, "1.0") is None
    assert side.registry.config_digest(repository, "latest") is None
    assert side.registry.config_digest(repository, "2.0") == second
    assert side.registry.delete_manifest(repository, digest) is False  # gone already
    assert side.registry.delete_manifest(f"contract/never{uuid.uuid4().hex[:8]}", other) is False

    swept = side.registry.collect_garbage()
    assert swept.blobs is None or swept.blobs >= 1
    assert side.registry.config_digest(repository, "2.0") == second  # what is tagged stays
    again = side.registry.collect_garbage()  # nothing left to free
    assert again.blobs in (None, 0) and again.bytes_freed == 0


def test_a_local_image_goes_with_dockyard_s_tags_and_stays_while_another_tag_names_it(side: Side) -> None:
    ours = side.registry.address + "/"
    repository = f"contract/gc{uuid.uuid4().hex[:8]}"
    image_id = side.build()
    side.push(image_id, repository, "1.0")
    side.builder.tag(image_id, f"{ours}{repository}:1.0-copy")
    foreign = f"dytest-gc-foreign/{uuid.uuid4().hex[:8]}:keep"
    side.builder.tag(image_id, foreign)
    side.tags.append(foreign)

    why = side.builder.remove_image(image_id, ours)
    assert why is not None and foreign in why
    assert side.builder.image_id(f"{ours}{repository}:1.0") is None  # dockyard's tags went
    assert side.builder.image_id(f"{ours}{repository}:1.0-copy") is None
    assert side.builder.image_id(foreign) == image_id  # the image stays, with the other tag

    side.builder.untag(foreign)
    assert side.builder.remove_image(image_id, ours) is None
    assert side.builder.image_id(foreign) is None
    assert side.builder.remove_image(image_id, ours) is None  # gone already: no error


def test_real_an_image_a_container_uses_is_never_removed(
    distribution: DistributionRegistry, engine: docker.DockerClient
) -> None:
    side = Side(distribution, DockerBuilder(engine, distribution.auth), engine)
    ours = distribution.address + "/"
    try:
        image_id = side.build()
        side.push(image_id, f"contract/gc{uuid.uuid4().hex[:8]}", "1.0")
        engine.containers.create(image_id, ["true"], labels={"dockyard.test": "gc-contract"})
        why = side.builder.remove_image(image_id, ours)
        assert why is not None and "container" in why, why
        assert engine.images.get(image_id).id == image_id
    finally:
        clean_up(engine, side.built)


def test_real_the_registry_frees_the_blobs_only_a_deleted_image_used_and_a_kept_one_still_pulls(
    distribution: DistributionRegistry, engine: docker.DockerClient, tmp_path: Path
) -> None:
    side = Side(distribution, DockerBuilder(engine, distribution.auth), engine)
    repository = f"contract/gc{uuid.uuid4().hex[:8]}"
    try:
        gone, kept = side.build(), side.build()
        gone_digest = side.push(gone, repository, "1.0")
        kept_digest = side.push(kept, repository, "2.0")
        assert distribution.delete_manifest(repository, gone_digest)

        swept = distribution.collect_garbage()
        # the deleted image's own layer, its config and its manifest; the base's layers stay
        assert swept.blobs is not None and swept.blobs >= 3, swept
        assert swept.bytes_freed >= LAYER_BYTES * 0.9, swept
        print(f"registry garbage collection: {swept.blobs} blobs, {swept.bytes_freed} bytes freed")

        ours = distribution.address + "/"
        assert side.builder.remove_image(kept, ours) is None  # not on the host any more...
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(kept)
        engine.api.pull(f"{ours}{repository}", tag=kept_digest, auth_config=distribution.auth)
        assert engine.images.get(f"{ours}{repository}@{kept_digest}").id == kept  # ...and pulled back whole
        side.built.append(kept)
        with pytest.raises(docker.errors.APIError):
            engine.api.pull(f"{ours}{repository}", tag=gone_digest, auth_config=distribution.auth)
    finally:
        for image_id in side.built:
            try:
                engine.images.remove(image_id, force=True)
            except docker.errors.NotFound:
                pass
