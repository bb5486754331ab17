"""After a crash of dockyard (or a stop in the middle of a release): make the records and what
runs agree again, before any job runs. The live release is what serves:

- a release left ``pending`` was interrupted: it is marked failed (the previous release kept
  serving; its job, resumed by the job runner, makes a new release);
- containers started by an attempt that never went live (a release newer than the live one, or
  any when nothing is live) are removed, once the proxy is back on the live containers and they
  have drained: never routed without a readiness check;
- an old container the live release's clean-up did not reach (dockyard stopped after the switch,
  while draining) is removed, once every live service has the containers it runs;
- a live container left halted (a stateful service stopped first, its new container never live)
  is started again.

Pure decisions in ``planning/recovery.py``; this applies them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.domain.errors import DockyardError
from dockyard.domain.model import ReleaseStatus
from dockyard.planning.recovery import Repair, repairs
from dockyard.ports import Orchestrator, Store
from dockyard.services.release import INTERRUPTED_PREFIX

log = logging.getLogger(__name__)
INTERRUPTED = f"{INTERRUPTED_PREFIX} dockyard stopped during this release; the previous release kept serving"


@dataclass
class Recovery:
    store: Store
    orchestrator: Orchestrator

    def recover(self, restore_routes: Callable[[], None], drain_timeout: float = 5.0) -> list[str]:
        """Run once at start, before the job runner: records first, halted containers started
        again, then ``restore_routes`` (the proxy back on the live containers), and only then the
        stray containers go, drained first. Returns what it did."""
        done: list[str] = []
        observed = self.orchestrator.observe()
        stray: list[tuple[str, Repair]] = []
        for app in self.store.list_apps():
            for env in self.store.environments(app.name):
                where = f"{app.name}/{env.name}"
                for r in self.store.list_releases(app.name, 500, env.name):
                    if r.status == ReleaseStatus.PENDING:
                        self.store.set_release(r.id, ReleaseStatus.FAILED, error=INTERRUPTED)
                        done.append(f"{where}: release {r.id} interrupted, marked failed")
                live = self.store.live_release(app.name, env.name)
                mine = [c for c in observed if c.app == app.name and c.environment == env.name]
                for repair in repairs(live.id if live else None, live.services if live else (), mine):
                    if repair.resume:
                        done.append(f"{where}: {self._apply(repair)}")
                    else:
                        stray.append((where, repair))
        restore_routes()
        if stray:
            self.orchestrator.drain([r.container for _, r in stray], drain_timeout)
        done += [f"{where}: {self._apply(repair)}" for where, repair in stray]
        for line in done:
            log.warning("recovery: %s", line)
        return done

    def _apply(self, repair: Repair) -> str:
        c = repair.container
        try:
            if repair.resume:
                self.orchestrator.resume([c])
                return f"{c.service} of release {c.release} started again ({repair.why})"
            self.orchestrator.stop([c])
            return f"{c.service} of release {c.release} removed ({repair.why})"
        except DockyardError as exc:
            return f"{c.service} of release {c.release}: {exc.message} (left as it is)"
