"""Garbage collection: the images dockyard built that retention (domain/retention.py) does not
keep are removed from this host's engine and from dockyard's registry, whose own garbage
collection then frees their blobs, while pushes wait at the gate (services/build.py's PushGate).

`dockyard gc` (POST /api/v1/gc) runs it; ``schedule`` runs it every DOCKYARD_GC_INTERVAL seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.domain import retention
from dockyard.domain.model import BuiltImage
from dockyard.domain.retention import Decision, Plan
from dockyard.ports import ImageBuilder, Orchestrator, Registry, Store
from dockyard.services.build import PushGate

log = logging.getLogger(__name__)
ALL_RELEASES = 1_000_000  # list_releases' limit: every release counts for retention
RECENT_JOBS = 100  # an app's queued or running jobs are among its newest


@dataclass
class Report:
    """What a collection removed (or, dry, would remove) and what it kept, and why."""

    dry_run: bool
    keep_releases: int
    removed: list[dict[str, Any]] = field(default_factory=list)  # built images, each with why
    kept: list[dict[str, Any]] = field(default_factory=list)
    local_images: int = 0  # local images removed (by content id)
    local_bytes: int = 0  # their sizes (a layer two of them shared counts in each)
    manifests: int = 0  # registry manifests deleted
    registry_blobs: int | None = None  # blobs the registry's collection deleted, when it says
    registry_bytes: int = 0  # how much smaller the registry's storage is
    notes: list[str] = field(default_factory=list)  # what stayed against the plan, and why
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text = (f"{verb} {len(self.removed)} image(s), kept {len(self.kept)} (the {self.keep_releases} newest "
                f"releases of each environment, the live ones, what containers use)")
        if not self.dry_run:
            text += (f"; {self.local_images} local image(s) ({self.local_bytes / 1e6:.1f} MB), {self.manifests} "
                     f"registry manifest(s), registry storage {self.registry_bytes / 1e6:.1f} MB smaller")
        return text + f"; {self.seconds:.1f}s"


def shown(decision: Decision) -> dict[str, Any]:
    image = decision.image
    return {"app": image.app, "repository": image.repository, "tag": image.tag, "digest": image.digest,
            "image_id": image.image_id, "commit": image.commit, "size": image.size, "why": decision.why}


@dataclass
class Collector:
    store: Store
    builder: ImageBuilder
    registry: Registry
    orchestrator: Orchestrator
    gate: PushGate
    keep_releases: int = 10
    interval: float = 86400.0  # seconds between scheduled runs; 0: none

    def plan(self) -> Plan:
        """Retention's decisions over every image dockyard built. The images are read first, then
        the jobs, then the releases: an image pushed before the jobs were read belongs to a job
        still running (its app is busy, so kept) or to one that ended, whose release is read."""
        apps = self.store.list_apps()
        images = [i for a in apps for i in self.store.list_images(a.name)]
        busy = {a.name for a in apps
                if any(not j.status.finished for j in self.store.list_jobs(a.name, limit=RECENT_JOBS))}
        releases = [r for a in apps for r in self.store.list_releases(a.name, limit=ALL_RELEASES)]
        in_use = [c.image for c in self.orchestrator.observe()]
        repos = {(a.name, r.name) for a in apps for r in self.store.repos(a.name)}
        return retention.plan(images, releases, self.keep_releases, in_use, busy, repos)

    def run(self, dry_run: bool = False) -> Report:
        """Collect (or, ``dry_run``, only say what would go). Pushes wait meanwhile."""
        started = time.monotonic()
        with self.gate.closed():
            plan = self.plan()
            report = Report(dry_run=dry_run, keep_releases=max(1, self.keep_releases),
                            removed=[shown(d) for d in plan.collected], kept=[shown(d) for d in plan.kept])
            if not dry_run:
                self._apply(plan, report)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _apply(self, plan: Plan, report: Report) -> None:
        stays = self._remove_local(plan, report)
        for repository, digest in plan.manifests:
            if self.registry.delete_manifest(repository, digest):
                report.manifests += 1
        if plan.manifests:
            swept = self.registry.collect_garbage()
            report.registry_blobs, report.registry_bytes = swept.blobs, swept.bytes_freed
        for repository, digest, app in dict.fromkeys(_manifests_of(plan.collected)):
            if not any(i.image_id in stays for i in _images_of(plan.collected, repository, digest)):
                self.store.collect_images(app, repository, digest)

    def _remove_local(self, plan: Plan, report: Report) -> set[str]:
        """Remove the plan's local images; returns the ids that stay (with a note each). An image
        others are built on goes once they are gone: the engine's refusals are tried again while
        a pass removes something."""
        sizes: dict[str, int] = {}
        for d in plan.collected:
            sizes[d.image.image_id] = max(sizes.get(d.image.image_id, 0), d.image.size)
        ours = self.registry.address + "/"
        left, why = list(plan.local), {}
        while left:
            why = {image_id: reason for image_id in left
                   if (reason := self.builder.remove_image(image_id, ours)) is not None}
            gone = [i for i in left if i not in why]
            for image_id in gone:
                report.local_images += 1
                report.local_bytes += sizes.get(image_id, 0)
            if not gone:
                break
            left = list(why)
        report.notes += [f"{image_id[7:19]} stays on this host: {reason}" for image_id, reason in why.items()]
        return set(why)

    def schedule(self, stopping: threading.Event) -> threading.Thread | None:
        """Run a collection every ``interval`` seconds (the first after one interval) until
        ``stopping`` is set, logging each report; None when the interval is 0."""
        if self.interval <= 0:
            return None

        def loop() -> None:
            while not stopping.wait(self.interval):
                try:
                    log.info("gc: %s", self.run().summary())
                except Exception as exc:
                    log.warning("gc: the scheduled collection failed: %s", exc)

        thread = threading.Thread(target=loop, name="gc", daemon=True)
        thread.start()
        return thread


def _manifests_of(decisions: tuple[Decision, ...]) -> Iterator[tuple[str, str, str]]:
    for d in decisions:
        yield d.image.repository, d.image.digest, d.image.app


def _images_of(decisions: tuple[Decision, ...], repository: str, digest: str) -> list[BuiltImage]:
    return [d.image for d in decisions if (d.image.repository, d.image.digest) == (repository, digest)]
