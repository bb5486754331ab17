"""Acting on a release while it runs: ``dockyard releases abort|pause|resume APP [--env ENV]``,
and the progress deadline every release has (``DOCKYARD_PROGRESS_DEADLINE``).

The release checks its control between steps (``checkpoint``): aborted, it fails there and rolls
back as any failed release does; paused, it waits there (the time paused does not count against
its deadline) until resumed or aborted; past its deadline, it fails. An abort before the switch
also stops the new containers at once, so a wait for one of them ends without waiting for its
timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dockyard.domain.errors import Conflict, DeployFailed
from dockyard.domain.model import RunningService

Say = Callable[[str], None]


@dataclass
class ReleaseControl:
    release: int
    deadline_seconds: float
    started: dict[str, RunningService] = field(default_factory=dict)  # the new containers, by id
    switched: bool = False  # traffic has moved to the new containers
    aborted_by: str | None = None
    paused_by: str | None = None
    _deadline: float = 0.0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.deadline_seconds

    @property
    def state(self) -> str:
        return "aborting" if self.aborted_by else "paused" if self.paused_by else "running"

    def remaining(self, at_most: float) -> float:
        """What a wait may take: at most ``at_most``, never past the deadline (at least a second)."""
        return max(1.0, min(at_most, self._deadline - time.monotonic()))

    def checkpoint(self, say: Say) -> None:
        """Between two steps: fail when aborted or past the deadline; wait while paused."""
        with self._changed:
            if self.paused_by and not self.aborted_by:
                say(f" !     paused by {self.paused_by}: waiting (dockyard releases resume, or abort)")
                begun = time.monotonic()
                while self.paused_by and not self.aborted_by:
                    self._changed.wait(0.5)
                self._deadline += time.monotonic() - begun  # paused time is not the release's own
                if not self.aborted_by:
                    say("-----> resumed")
            if self.aborted_by:
                raise DeployFailed(f"release {self.release} was aborted by {self.aborted_by}")
        if time.monotonic() > self._deadline:
            raise DeployFailed(f"release {self.release} passed its progress deadline of {self.deadline_seconds:.0f}s",
                               "find the slow step in the log above, or raise DOCKYARD_PROGRESS_DEADLINE")

    def set(self, abort: str | None = None, pause: str | None = None, resume: bool = False) -> None:
        with self._changed:
            if abort:
                self.aborted_by = abort
            if pause:
                self.paused_by = pause
            if resume:
                self.paused_by = None
            self._changed.notify_all()


@dataclass
class Controls:
    """The releases running now, by (app, environment)."""

    _running: dict[tuple[str, str], ReleaseControl] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def register(self, app: str, environment: str, control: ReleaseControl) -> None:
        with self._guard:
            self._running[(app, environment)] = control

    def unregister(self, app: str, environment: str, control: ReleaseControl) -> None:
        with self._guard:
            if self._running.get((app, environment)) is control:
                del self._running[(app, environment)]

    def get(self, app: str, environment: str) -> ReleaseControl:
        with self._guard:
            found = self._running.get((app, environment))
        if found is None:
            raise Conflict(f"no release of {app}'s environment {environment} is running",
                           f"see its releases: dockyard releases {app} --env {environment}")
        return found
