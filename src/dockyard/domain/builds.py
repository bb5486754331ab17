"""Which of an app's builds an image reference means, across its repos (pure).

A stack in the deploy repo names its images as the seed did, by the name and version the source
repo's Dockerfile header gives them (``registry.example.com/crigen/api:0.2``), and a Dockerfile
builds ``FROM`` another repo's image the same way (``crigen/nodejs:0.1``). Such a reference means
the newest build of that name and version by any repo of the app: one of the same branch first,
else of any branch. A reference without a tag, or tagged ``latest``, means the newest build of the
name, whatever its version. A reference to dockyard's own registry (``REGISTRY/APP/NAME:TAG``)
means the build pushed under that repository and tag. A reference pinned by digest means itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dockyard.domain.images import ImageSpec
from dockyard.domain.model import BuiltImage
from dockyard.domain.references import Reference, parse_reference, same_registry


def _matches(image: BuiltImage, ref: Reference, registry: str) -> bool:
    ours = bool(registry) and bool(ref.host) and same_registry(ref.host, registry)
    if ours:
        return image.repository == ref.path and ref.tag in (None, image.tag)
    if not image.name or image.name != ref.name:
        return False
    return ref.tag in (None, "latest", image.source_version or image.version, image.version)


def newest_build(images: Iterable[BuiltImage], reference: str, branch: str = "",
                 registry: str = "") -> BuiltImage | None:
    """The build ``reference`` means (``images``: the app's builds, newest first, as the store
    lists them), or None: not one of the app's images."""
    try:
        ref = parse_reference(reference)
    except ValueError:
        return None
    if ref.digest:
        return None
    found = [image for image in images if _matches(image, ref, registry)]
    return next((i for i in found if i.branch == branch), None) or (found[0] if found else None)


def pinned(image: BuiltImage, registry: str) -> str:
    """The build's reference in dockyard's registry, pinned by its digest."""
    return f"{registry}/{image.repository}@{image.digest}"


def bases_from_builds(spec: ImageSpec, images: Sequence[BuiltImage], branch: str,
                      registry: str) -> dict[str, BuiltImage]:
    """For each FROM of ``spec`` that names one of the app's builds (another repo's image, or
    one of an earlier push), the word as written and that build."""
    out: dict[str, BuiltImage] = {}
    for base in spec.bases:
        found = newest_build(images, base, branch, registry)
        if found is not None:
            out[base] = found
    return out


def depends_on_names(spec: ImageSpec, built: Iterable[BuiltImage]) -> bool:
    """True when a FROM of ``spec`` names one of the ``built`` images (by header name and version)."""
    builds = [b for b in built if b.name]
    return any(newest_build(builds, base) is not None for base in spec.bases)
