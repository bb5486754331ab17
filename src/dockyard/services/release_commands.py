"""Release commands (dockyard.yml ``release: {before: [...], after: [...]}``): each runs in a
one-off container of a service of the new release (its new image, the environment's variables,
secrets, networks and volumes), with a deadline, its output in the job's log (and so in the push).

``before`` runs once the images are built and before any new container starts: a command that
fails (or outlives its deadline) aborts the release, and the old release keeps serving, as for
migrations that must run before the new code. ``after`` runs once the release is live: a failure
is reported in the log, and the release stays live (it cannot be taken back by a command).
Deploys and promotions run them; rollbacks and scaling do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from dockyard.domain.dockyard_file import CommandDecl
from dockyard.domain.errors import DeployFailed, DockyardError
from dockyard.domain.model import ServiceSpec
from dockyard.ports import Orchestrator
from dockyard.services.configuration import Configuration

BEFORE, AFTER = "before", "after"
Say = Callable[[str], None]


def run_commands(orchestrator: Orchestrator, configuration: Configuration | None, app: str, env: str,
                 services: Sequence[ServiceSpec], commands: Sequence[CommandDecl], phase: str, job: int,
                 say: Say) -> None:
    """Run ``commands`` in order; a failing ``before`` command raises DeployFailed (nothing is
    released), a failing ``after`` one is said."""
    by_name = {s.name: s for s in services}
    orchestrator.ensure_network(app, env)
    for command in commands:
        words = " ".join(command.command)
        say(f"-----> Release command ({phase} the switch) in {command.service}: {words}")
        try:
            ended = run_command(orchestrator, configuration, app, env, by_name, command, job, say)
        except DockyardError as exc:
            ended = exc.message
        if not ended:
            continue
        if phase == BEFORE:
            raise DeployFailed(f"the release command {words!r} in {command.service} failed ({ended}): the release "
                               "is aborted, and the previous release keeps serving",
                               "fix it and push again; its output is above (dockyard jobs show JOB)")
        say(f" !     the release command {words!r} in {command.service} failed ({ended}); the release stays live")


def run_command(orchestrator: Orchestrator, configuration: Configuration | None, app: str, env: str,
                services: dict[str, ServiceSpec], command: CommandDecl, job: int, say: Say) -> str:
    """Run one in a one-off container of its service (``services``: by name), its output said line
    by line; "" when it exited 0, else how it ended."""
    service = services.get(command.service)
    if service is None:
        raise DeployFailed(f"the release command's service {command.service!r} is not in the stack",
                           f"name one of: {', '.join(services)}")
    spec = replace(service, replicas=1, command=command.command)
    if configuration is not None:
        spec = configuration.resolve(app, env, spec)
    pending = [b""]

    def output(stream: str, data: bytes) -> None:
        *lines, pending[0] = (pending[0] + data).split(b"\n")
        for line in lines:
            say(f"       {line.decode(errors='replace').rstrip()}")

    seconds = command.timeout.total_seconds()
    result = orchestrator.run_once(app, env, spec, command.command, job=job, stdin=None, tty=False, output=output,
                                   timeout=seconds)
    if pending[0]:
        say(f"       {pending[0].decode(errors='replace').rstrip()}")
    if result.timed_out:
        return f"stopped after its deadline of {seconds:g} s"
    return "" if result.exit_code == 0 else f"exit code {result.exit_code}"
