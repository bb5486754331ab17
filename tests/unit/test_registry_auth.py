"""Registry credentials go to dockyard's registry address exactly, never to a look-alike."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dockyard.adapters.docker_orchestrator import DockerOrchestrator

AUTH = {"username": "dockyard", "password": "secret", "serveraddress": "127.0.0.1:5100"}


@pytest.fixture
def orchestrator() -> DockerOrchestrator:
    return DockerOrchestrator(SimpleNamespace(api=None), "inst", "dy", AUTH)


@pytest.mark.parametrize("image", [
    "127.0.0.1:5100/shop/web@sha256:" + "a" * 64,
    "127.0.0.1:5100/shop/web:1.0",
])
def test_images_of_dockyards_registry_get_its_credentials(orchestrator: DockerOrchestrator, image: str) -> None:
    assert orchestrator._is_ours(image)


@pytest.mark.parametrize("image", [
    "127.0.0.1:51000/shop/web:1.0",  # starts with the address, is another registry
    "127.0.0.1:5100.evil.example/shop/web:1.0",
    "127.0.0.1/shop/web:1.0",
    "evil.example/127.0.0.1:5100/web:1.0",
    "debian:12",
    "library/127.0.0.1",
    "not a reference",
])
def test_other_images_get_none(orchestrator: DockerOrchestrator, image: str) -> None:
    assert not orchestrator._is_ours(image)
