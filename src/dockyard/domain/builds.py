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

from collections.abc import Iterable, Mapping, Sequence

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


def rebuild_order(built: Iterable[str], repos: Mapping[str, Sequence[ImageSpec]]) -> list[str]:
    """The repos to rebuild once images named ``built`` (Dockerfile header names) were built, in
    order: every repo one of whose Dockerfiles builds FROM one of them, or FROM an image of a repo
    so rebuilt, each after every rebuilt repo it takes a base from (``repos``: each other repo's
    images at the head of the branch, in the order to list them). Names are compared without
    their versions: a repo that may take a new base is rebuilt. Repos that take bases from each
    other (a cycle) are rebuilt in the order listed."""
    names_of = {repo: {s.declared_name for s in specs if s.declared_name} for repo, specs in repos.items()}
    bases_of = {repo: _base_names(specs) for repo, specs in repos.items()}
    chosen: list[str] = []
    reach = set(built)
    grown = True
    while grown:
        grown = False
        for repo in repos:
            if repo not in chosen and bases_of[repo] & reach:
                chosen.append(repo)
                reach |= names_of[repo]
                grown = True
    order: list[str] = []
    while len(order) < len(chosen):
        left = [r for r in chosen if r not in order]
        ready = [r for r in left if not any(o != r and names_of[o] & bases_of[r] for o in left)] or left[:1]
        order += ready
    return order


def _base_names(specs: Sequence[ImageSpec]) -> set[str]:
    out = set()
    for spec in specs:
        for base in spec.bases:
            try:
                out.add(parse_reference(base).name)
            except ValueError:
                continue
    return out
