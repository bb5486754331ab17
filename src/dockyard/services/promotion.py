"""Promotion through the stage graph: a release that went live in an environment becomes a
candidate in each environment its commit's dockyard.yml promotes from it; once its gates pass
(domain/promotion.py: soak, approvals) a ``promote`` job releases there exactly the images that
ran upstream, by digest, with the target environment's own configuration. Nothing is rebuilt.

A newer candidate supersedes an older one still waiting. Approvals and rejections are recorded
(who, when, comment) and published as events (audit log, webhooks)."""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from dockyard.domain import promotion as gates
from dockyard.domain import value_stream
from dockyard.domain.access import Principal
from dockyard.domain.dockyard_file import EnvironmentDecl
from dockyard.domain.errors import Conflict, DeployFailed, DockyardError, Forbidden, NotFound
from dockyard.domain.model import App, Job, ReleaseStatus
from dockyard.domain.promotion import Approval, Gate, Promotion
from dockyard.domain.records import ReleaseRecord
from dockyard.ports import PromotionStore
from dockyard.services import stages
from dockyard.services.deploy import Deployer
from dockyard.services.environments import Environments, Submit
from dockyard.services.events import SERVER, Event, Events
from dockyard.services.release_commands import AFTER, BEFORE

log = logging.getLogger(__name__)
KIND = "promote"
Say = Callable[[str], None]


def _now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


@dataclass
class Promotions:
    store: PromotionStore
    deployer: Deployer
    environments: Environments
    submit: Submit
    events: Events
    clock: Callable[[], datetime.datetime] = _now
    # GET a URL path through the proxy at a host: "" when it answered 2xx/3xx, else why not
    smoke_check: Callable[[str, str], str] | None = None
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _smoked: dict[int, str] = field(default_factory=dict, repr=False)  # candidate -> its last smoke check

    # -- candidates -----------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """A release went live: it is a candidate where its commit's dockyard.yml promotes from there."""
        if event.kind not in ("deploy.succeeded", f"{KIND}.succeeded") or event.app is None:
            return
        release_id = event.detail.get("release")
        if not isinstance(release_id, int):
            return
        record = self.store.get_release(release_id)
        if record.status != ReleaseStatus.LIVE or not record.artifact:
            return
        app = self.store.get_app(record.app)
        declared = stages.declared(self.deployer.repos, app.name, record.commit)
        for env in declared.environments if declared is not None else ():
            if env.promotion is not None and env.promotion.source == record.environment:
                self._candidate(app, env, record.id, record.environment, record.commit,
                                str(event.detail.get("pusher") or event.actor))

    def _candidate(self, app: App, env: EnvironmentDecl, release: int, source: str, commit: str, pusher: str) -> None:
        assert env.promotion is not None
        p = env.promotion
        if env.name not in {e.name for e in self.store.environments(app.name)}:
            self.environments.create(app.name, env.name, env.target)
        gate = Gate(p.source, p.soak, p.approvals, p.approvers, p.self_approval, p.smoke)
        with self._guard:
            for older in self.store.promotions(app.name, env.name, gates.AWAITING):
                if older.source_release < release and self.store.set_promotion(
                        older.id, gates.SUPERSEDED, f"superseded by release {release}", expected=gates.AWAITING):
                    self._tell("promotion.superseded", SERVER, older, by=release)
            candidate = self.store.create_promotion(app.name, env.name, release, source, commit, gate, pusher)
        protected = self.environments.is_protected(app.name, env.name)
        verdict = self.evaluate(candidate)
        if not verdict.ready and candidate.gate.needed(protected):
            self._tell("approval.needed", SERVER, candidate, waiting_for=verdict.waiting_for)

    def evaluate(self, candidate: Promotion) -> gates.Verdict:
        """Queue its promotion once its gates pass; what it waits for otherwise."""
        try:
            upstream = self.store.get_release(candidate.source_release)
        except NotFound:  # its environment or app went
            self.store.set_promotion(candidate.id, gates.SUPERSEDED, "its release is gone", expected=gates.AWAITING)
            return gates.Verdict(False, "its release is gone")
        still = upstream.status == ReleaseStatus.LIVE
        if still and candidate.status == gates.AWAITING:
            self._smoke(candidate, upstream)
        verdict = gates.verdict(candidate.gate, self.environments.is_protected(candidate.app, candidate.environment),
                                upstream.finished_at, still, self.store.approvals_of(candidate.id), self.clock(),
                                self._smoked.get(candidate.id))
        if candidate.status != gates.AWAITING:
            return verdict
        if not still:
            if self.store.set_promotion(candidate.id, gates.SUPERSEDED, verdict.waiting_for, expected=gates.AWAITING):
                self._tell("promotion.superseded", SERVER, candidate)
        elif verdict.ready and self.store.set_promotion(candidate.id, gates.PROMOTING, expected=gates.AWAITING):
            self.submit(KIND, candidate.app, {"promotion": str(candidate.id), "commit": candidate.commit,
                                              "actor": self._deciders(candidate) or candidate.pusher,
                                              "pusher": candidate.pusher},  # who pushed, for the next stage
                        candidate.environment)
        return verdict

    def _smoke(self, candidate: Promotion, upstream: ReleaseRecord) -> None:
        """Run the candidate's smoke check upstream until it passes once (each evaluation, the
        tick's included, tries again): GET the path at the upstream release's first site."""
        if not candidate.gate.smoke or self._smoked.get(candidate.id) == "" or self.smoke_check is None:
            return
        host = next((h for s in upstream.services for h in s.hosts), None)
        if host is None:
            with self._guard:
                self._smoked[candidate.id] = f"{upstream.environment} serves no site to check"
            return
        found = self.smoke_check(host, candidate.gate.smoke)
        with self._guard:
            if found != self._smoked.get(candidate.id):
                log.info("promotion %s: smoke check of %s%s: %s", candidate.id, host, candidate.gate.smoke,
                         found or "passed")
            self._smoked[candidate.id] = found

    def tick(self) -> None:
        """Candidates waiting for their soak time or a passing smoke check: promoted once their gates
        pass (a schedule calls this)."""
        awaiting = self.store.promotions(status=gates.AWAITING, limit=500)
        for candidate in awaiting:
            try:
                self.evaluate(candidate)
            except DockyardError as exc:
                log.warning("promotion %s: %s", candidate.id, exc.message)
        with self._guard:
            for decided in set(self._smoked) - {c.id for c in awaiting}:
                self._smoked.pop(decided, None)

    # -- approvals ------------------------------------------------------------------------
    def waiting(self, app: str | None = None) -> list[dict[str, Any]]:
        """Candidates awaiting their gates, with what each waits for."""
        out = []
        for c in self.store.promotions(app, status=gates.AWAITING):
            protected = self.environments.is_protected(c.app, c.environment)
            try:
                upstream = self.store.get_release(c.source_release)
            except NotFound:  # its environment or app went
                self.store.set_promotion(c.id, gates.SUPERSEDED, "its release is gone", expected=gates.AWAITING)
                continue
            approvals = self.store.approvals_of(c.id)
            verdict = gates.verdict(c.gate, protected, upstream.finished_at, upstream.status == ReleaseStatus.LIVE,
                                    approvals, self.clock(), self._smoked.get(c.id))
            out.append(self.shown(c) | {"waiting_for": verdict.waiting_for,
                                        "approved_by": [a.user for a in approvals if a.approve]})
        return out

    def decide(self, app: str, env: str, release: int, who: Principal, approve: bool, comment: str,
               source: str) -> dict[str, Any]:
        """Approve or reject the candidate ``release`` (the upstream release's id) for ``env``."""
        try:
            candidate = self.store.promotion_of(env, release)
        except NotFound:
            candidate = None
        if candidate is None or candidate.app != app:
            raise NotFound(f"release {release} is no candidate for {app}'s environment {env}",
                           f"list what waits for approval: dockyard approvals {app}")
        if candidate.status == gates.SUPERSEDED:
            raise Conflict(f"release {release} no longer waits for {env}: {candidate.reason}",
                           f"list what waits for approval: dockyard approvals {app}")
        if candidate.status != gates.AWAITING:
            raise Conflict(f"release {release} is {candidate.status} for {env} already")
        why = gates.may_approve(candidate.gate, who.role, who.name, candidate.pusher,
                                self.store.approvals_of(candidate.id),
                                self.environments.is_protected(candidate.app, candidate.environment))
        if why:
            raise Forbidden(why, "an approver listed in dockyard.yml (promotion.approvers) decides")
        if not approve and not self.store.set_promotion(
                candidate.id, gates.REJECTED, f"rejected by {who.name}" + (f": {comment[:500]}" if comment else ""),
                expected=gates.AWAITING):
            raise Conflict(f"release {release} is {self.store.get_promotion(candidate.id).status} for {env} already")
        self.store.add_approval(candidate.id, Approval(who.name, approve, comment[:1000], self.clock()))
        self._tell("release.approved" if approve else "release.rejected", who.name, candidate, source, comment=comment)
        if approve:
            self.evaluate(candidate)
        return self.shown(self.store.get_promotion(candidate.id))

    # -- the promote job ------------------------------------------------------------------
    def promote_job(self, job: Job, say: Say) -> None:
        candidate = self.store.get_promotion(int(job.payload["promotion"]))
        upstream = self.store.get_release(candidate.source_release)
        app = self.store.get_app(candidate.app)
        if candidate.status != gates.PROMOTING or upstream.status != ReleaseStatus.LIVE:
            if self.store.set_promotion(candidate.id, gates.SUPERSEDED, f"its release no longer runs in "
                                        f"{upstream.environment}", expected=gates.PROMOTING):
                self._tell("promotion.superseded", SERVER, candidate)
            say(f" !     release {upstream.id} no longer runs in {upstream.environment} ({upstream.status}): "
                f"not promoted to {candidate.environment}")
            return
        deciders = self._deciders(candidate)
        say(f"-----> Promoting release {upstream.id} of {upstream.environment} (commit {upstream.commit[:10]}) to "
            f"{candidate.environment}: the same images, by digest; nothing is built"
            + (f" (approved by {deciders})" if deciders else ""))
        try:
            found = self.deployer.inspect(app, candidate.commit, candidate.environment)
            ran = {s.name: s for s in upstream.artifact}
            missing = sorted({s.name for s in found.services} ^ set(ran))
            if missing:
                raise DeployFailed(f"the services of release {upstream.id} differ in {candidate.environment}: "
                                   f"{', '.join(missing)}", "its stack must be the same in both environments")
            commit_services = self.deployer.resolve_images(
                tuple(replace(s, image=ran[s.name].image, image_id="") for s in found.services), say)
            services, config = self.deployer.configure(app, candidate.environment, commit_services, found)
            self.deployer.release_commands(app.name, candidate.environment, services, found.declared, BEFORE, job.id, say)
            release = self.deployer.releaser.release(app, candidate.environment, candidate.commit, services, job.id,
                                                     say, config=config, artifact=lambda: upstream.artifact,
                                                     timeline=self._timeline(candidate, upstream))
            self.deployer.release_commands(app.name, candidate.environment, services, found.declared, AFTER, job.id, say)
        except Exception as exc:
            reason = exc.message if isinstance(exc, DockyardError) else repr(exc)
            self.store.set_promotion(candidate.id, gates.FAILED, reason[:2000])
            raise
        self.store.set_promotion(candidate.id, gates.PROMOTED, release=release)

    def _timeline(self, candidate: Promotion, upstream: ReleaseRecord) -> dict[str, object]:
        """The promoted release's value stream: the commits it brings over the target's live
        release, pushed and built when the upstream release was (domain/value_stream.py)."""
        live = self.store.live_release(candidate.app, candidate.environment)
        try:
            commits = self.deployer.repos.commits(candidate.app, candidate.commit, live.commit if live else None)
        except DockyardError:
            commits = []
        kept = value_stream.recorded(commits, None, None, None)
        approved = [a.at for a in self.store.approvals_of(candidate.id) if a.approve and a.at is not None]
        return kept | {k: upstream.timeline.get(k) for k in ("pushed_at", "build_started_at", "built_at")} \
            | value_stream.approval(candidate.created_at, approved)

    # -- telling --------------------------------------------------------------------------
    def _deciders(self, candidate: Promotion) -> str:
        return ", ".join(a.user for a in self.store.approvals_of(candidate.id) if a.approve)

    def _tell(self, kind: str, actor: str, candidate: Promotion, source: str = SERVER, **detail: object) -> None:
        self.events.publish(Event(kind, actor, source, candidate.app, candidate.environment,
                                  {"release": candidate.source_release, "from": candidate.source_environment,
                                   "commit": candidate.commit, **detail}))

    @staticmethod
    def shown(c: Promotion) -> dict[str, Any]:
        return {"release": c.source_release, "from": c.source_environment, "environment": c.environment,
                "app": c.app, "commit": c.commit, "status": c.status, "reason": c.reason, "pusher": c.pusher,
                "approvals_needed": c.gate.approvals, "approvers": list(c.gate.approvers),
                "soak_seconds": int(c.gate.soak.total_seconds()), "promoted_as": c.release,
                "created_at": c.created_at, "decided_at": c.decided_at}
