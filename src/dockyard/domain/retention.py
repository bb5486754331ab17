"""Retention: which of the images dockyard built it keeps, and which garbage collection may remove.

Kept, per app environment: the images of its live release, of its releases in progress, and of
its ``keep`` newest releases that served (live or superseded; releases that ran the same images
count once, so that a deploy that changed nothing does not push an image out); with a release,
every image built from its commit (a base no service runs, a tools image). Kept per source repo
(services/repos.py, while it exists): the newest build of each image and branch, and of each
version a Dockerfile header names, which the next release or a build FROM it resolves to. Kept everywhere: an
image a container of dockyard's uses (running or halted), and every image of an app with a job
queued or running (a build may be between its push and its release). Every other image dockyard
built may be collected: an image within retention never is, so a rollback to a kept release
always finds its images.

Pure: the store's records in, decisions out (services/gc.py applies them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from dockyard.domain.images import commit_version
from dockyard.domain.model import BuiltImage, ReleaseStatus, ServiceSpec
from dockyard.domain.records import ReleaseRecord
from dockyard.domain.references import parse_reference

SERVED = (ReleaseStatus.LIVE, ReleaseStatus.SUPERSEDED)


def image_keys(image: BuiltImage) -> frozenset[str]:
    """What names a built image: its content id, ``repository@digest`` and ``repository:tag``."""
    return frozenset({image.image_id, f"{image.repository}@{image.digest}", f"{image.repository}:{image.tag}"})


def reference_keys(reference: str) -> frozenset[str]:
    """What an image reference a release or a container names matches: a content id as it is, a
    registry reference as ``repository@digest`` or ``repository:tag`` (its registry host left out)."""
    if not reference:
        return frozenset()
    if reference.startswith("sha256:"):
        return frozenset({reference})
    try:
        parsed = parse_reference(reference)
    except ValueError:
        return frozenset({reference})
    keys = {reference}
    if parsed.digest:
        keys.add(f"{parsed.path}@{parsed.digest}")
    if parsed.tag:
        keys.add(f"{parsed.path}:{parsed.tag}")
    return frozenset(keys)


def service_keys(service: ServiceSpec) -> frozenset[str]:
    return reference_keys(service.image) | ({service.image_id} if service.image_id else frozenset())


def release_keys(release: ReleaseRecord) -> frozenset[str]:
    """Every image the release runs or recorded as its artifact."""
    out: frozenset[str] = frozenset()
    for service in (*release.services, *release.artifact):
        out |= service_keys(service)
    return out


@dataclass(frozen=True)
class Decision:
    image: BuiltImage
    keep: bool
    why: str


@dataclass(frozen=True)
class Plan:
    """What a collection removes: each built image's decision, the local images (by content id)
    and the registry manifests ((repository, digest)) that go. An image id or a manifest that a
    kept image shares stays."""

    decisions: tuple[Decision, ...]

    @property
    def kept(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.keep)

    @property
    def collected(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.keep)

    @property
    def local(self) -> tuple[str, ...]:
        """Content ids of the local images to remove, in the order first collected."""
        kept = {d.image.image_id for d in self.kept}
        return tuple(dict.fromkeys(d.image.image_id for d in self.collected if d.image.image_id not in kept))

    @property
    def manifests(self) -> tuple[tuple[str, str], ...]:
        """(repository, digest) of the registry manifests to delete."""
        kept = {(d.image.repository, d.image.digest) for d in self.kept}
        return tuple(dict.fromkeys((d.image.repository, d.image.digest) for d in self.collected
                                   if (d.image.repository, d.image.digest) not in kept))


def retained(releases: Iterable[ReleaseRecord], keep: int) -> dict[int, str]:
    """The releases whose images are kept (release id -> why): per (app, environment), those in
    progress, the live one, and the ``keep`` newest that served, counting releases that ran the
    same images as a newer one once."""
    by_environment: dict[tuple[str, str], list[ReleaseRecord]] = {}
    for release in releases:
        by_environment.setdefault((release.app, release.environment), []).append(release)
    out: dict[int, str] = {}
    for (_, environment), records in by_environment.items():
        counted: list[frozenset[str]] = []
        for release in sorted(records, key=lambda r: r.id, reverse=True):
            if release.status == ReleaseStatus.PENDING:
                out[release.id] = f"release {release.id} of {environment} is under way"
            elif release.status == ReleaseStatus.LIVE:
                out[release.id] = f"release {release.id} is {environment}'s live release"
            if release.status not in SERVED:
                continue
            images = release_keys(release)
            if images not in counted:
                if len(counted) >= keep:
                    continue
                counted.append(images)
            out.setdefault(release.id, f"release {release.id} is one of {environment}'s {keep} newest")
    return out


def newest_of_sources(images: Sequence[BuiltImage], repos: Collection[tuple[str, str]] | None = None) -> set[int]:
    """The ``id()`` of each source repo's newest build of each image and branch, and of each
    version its Dockerfile header names (``images`` newest first, as the store lists them): what
    the deploy repo's stack, or another repo's FROM, resolves to next (domain/builds.py). A version
    taken from the commit names one build only: the image's newest counts. ``repos``: the (app,
    repo) that exist (None: all); a removed repo's builds are not kept for it."""
    seen: set[tuple[str, str, str, str, str]] = set()
    out: set[int] = set()
    for image in images:
        if not image.repo or (repos is not None and (image.app, image.repo) not in repos):
            continue
        version = image.source_version or image.version
        declared = "" if version == commit_version(image.commit) else version
        for key in {(image.app, image.repo, image.repository, image.branch, declared),
                    (image.app, image.repo, image.repository, image.branch, "")}:
            if key not in seen:
                seen.add(key)
                out.add(id(image))
    return out


def plan(images: Sequence[BuiltImage], releases: Sequence[ReleaseRecord], keep: int,
         in_use: Iterable[str] = (), busy: Iterable[str] = (), repos: Collection[tuple[str, str]] | None = None,
         ) -> Plan:
    """Decide, for each image dockyard built, whether retention keeps it (and why) or it goes.

    ``releases``: every release of the images' apps; ``keep``: how many releases that served are
    kept per environment (at least 1: the live one); ``in_use``: the images (ids or references)
    containers use; ``busy``: apps with a job queued or running; ``repos``: the apps' source repos
    that exist, as (app, repo)."""
    keep = max(1, keep)
    wanted = retained(releases, keep)
    by_key: dict[str, str] = {}
    commits: dict[tuple[str, str], str] = {}
    for release in sorted(releases, key=lambda r: r.id, reverse=True):
        why = wanted.get(release.id)
        if why is None:
            continue
        for key in release_keys(release):
            by_key.setdefault(key, why)
        commits.setdefault((release.app, release.commit), f"built from the commit of release {release.id}, which is kept")
    for key in (k for reference in in_use for k in reference_keys(reference)):
        by_key.setdefault(key, "a container uses it")
    busy_apps = set(busy)
    served = {k for r in releases if r.status in SERVED for k in release_keys(r)}
    latest = newest_of_sources(images, repos)
    decisions = []
    for image in images:
        keys = image_keys(image)
        why = next((by_key[k] for k in sorted(keys) if k in by_key), None)
        if why is None:
            why = commits.get((image.app, image.commit))
        if why is None and id(image) in latest:
            why = (f"the newest build of {image.name or image.repository}:{image.source_version or image.version} "
                   f"by {image.repo} on {image.branch or 'its branch'}: the next release (or build FROM it) takes it")
        if why is None and image.app in busy_apps:
            why = f"a job of {image.app} is queued or running"
        if why is not None:
            decisions.append(Decision(image, True, why))
        elif keys & served:
            decisions.append(Decision(image, False, f"its releases are older than the {keep} kept"))
        else:
            decisions.append(Decision(image, False, "no release that served runs it"))
    return Plan(tuple(decisions))


@dataclass(frozen=True)
class Swept:
    """What the registry's own garbage collection removed: blobs no manifest references any more."""

    blobs: int | None  # how many blobs it deleted, when it said
    bytes_freed: int  # how much smaller its storage is
