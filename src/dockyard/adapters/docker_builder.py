"""Image builds and pushes on a Docker engine (the ImageBuilder port), through the Engine API.

A build has a deadline: when it passes, dockyard closes the build's connection and the engine
cancels the build (the classic builder stops when its client goes away).
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

import docker
import docker.errors
from docker.utils.build import PatternMatcher

from dockyard.adapters.docker_client import explain
from dockyard.domain.errors import BuildFailed, DockyardError
from dockyard.ports import Progress


class DockerBuilder:
    """ImageBuilder for one Docker engine; pushes go to dockyard's registry with its credentials."""

    def __init__(self, client: Any, registry_auth: dict[str, str], build_timeout: float = 1800.0) -> None:
        self.api = client.api
        self.registry_auth = registry_auth
        self.build_timeout = build_timeout

    def build(self, context: IO[bytes], dockerfile: str, tag: str, progress: Progress,
              dockerfile_text: str | None = None, *, buildargs: Mapping[str, str] | None = None,
              target: str = "") -> str:
        """Build ``dockerfile`` of ``context``; ``dockerfile_text`` replaces its content (the
        builder pins bases built in the same push by image id this way, and sends a Dockerfile
        that is outside its context so), ``buildargs`` and ``target`` go to the engine as they
        are (never through a shell). Returns the image id."""
        context = without_ignored(context, dockerfile)
        shown_name = dockerfile
        if dockerfile_text is not None:
            context, dockerfile = with_dockerfile(context, dockerfile_text)
        image_id = ""
        started = time.monotonic()
        try:
            response = self._start_build(context, dockerfile, tag, buildargs or {}, target)
        except docker.errors.APIError as exc:
            raise BuildFailed(f"{shown_name}: build failed: {explain(exc)}", "check the Dockerfile and push again") from None
        timed_out = threading.Event()

        def cancel() -> None:
            timed_out.set()
            _cut(response)

        watchdog = threading.Timer(self.build_timeout, cancel)
        watchdog.daemon = True
        watchdog.start()
        try:
            for chunk in self.api._stream_helper(response, decode=True):
                if "error" in chunk:
                    detail = chunk.get("error", "").strip()
                    raise BuildFailed(
                        f"{shown_name}: build failed: {detail}",
                        "fix the Dockerfile (the build log above shows the failing step) and push again",
                    )
                text = chunk.get("stream")
                if text:
                    for line in text.rstrip("\n").splitlines():
                        if line.strip():
                            progress(line.rstrip())
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = aux["ID"]
        except BuildFailed:
            raise
        except Exception as exc:  # the stream broke: the deadline cut it, or the engine went away
            if not timed_out.is_set():
                raise BuildFailed(f"{shown_name}: the build stopped: {explain(exc)}", "push again") from None
        finally:
            watchdog.cancel()
            with contextlib.suppress(Exception):
                response.close()
        if timed_out.is_set():
            raise BuildFailed(
                f"{shown_name}: the build did not finish within {self.build_timeout:.0f}s "
                f"(stopped after {time.monotonic() - started:.0f}s)",
                "make the build quicker (a step that waits for ever, such as 'RUN sleep infinity', never "
                "ends), or raise DOCKYARD_BUILD_TIMEOUT",
            )
        if not image_id and tag:
            image_id = self.api.inspect_image(tag)["Id"]
        if not image_id:
            raise BuildFailed(f"{shown_name}: the build reported no image", "push again; if it persists, see the engine's log")
        return str(image_id)

    def _start_build(self, context: IO[bytes], dockerfile: str, tag: str, buildargs: Mapping[str, str],
                     target: str) -> Any:
        """POST /build, keeping the response so that the deadline can cut it."""
        params = {"t": tag or None, "rm": True, "forcerm": True, "dockerfile": dockerfile, "q": False,
                  "nocache": False, "pull": False, "buildargs": json.dumps(dict(buildargs)) if buildargs else None,
                  "target": target or None}
        headers = {"Content-Type": "application/tar"}
        self.api._set_auth_headers(headers)
        response = self.api._post(self.api._url("/build"), data=context, params=params, headers=headers,
                                  stream=True, timeout=None)
        self.api._raise_for_status(response)
        return response

    def tag(self, image_id: str, reference: str) -> None:
        repo, _, tag = reference.rpartition(":")
        self.api.tag(image_id, repo, tag, force=True)

    def untag(self, reference: str) -> None:
        try:
            self.api.remove_image(reference, noprune=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise DockyardError(f"cannot untag {reference}: {explain(exc)}") from None

    def image_id(self, reference: str) -> str | None:
        try:
            return str(self.api.inspect_image(reference)["Id"])
        except docker.errors.ImageNotFound:
            return None

    def push(self, reference: str, progress: Progress) -> str:
        repo, _, tag = reference.rpartition(":")
        digest = ""
        seen: dict[str, str] = {}
        try:
            for chunk in self.api.push(repo, tag=tag, stream=True, decode=True, auth_config=self.registry_auth):
                if "error" in chunk:
                    raise DockyardError(
                        f"push of {reference} failed: {chunk['error']}",
                        "check that dockyard's registry runs: dockyard status",
                    )
                status, layer = chunk.get("status", ""), chunk.get("id", "")
                if layer and status in ("Pushed", "Layer already exists", "Mounted from") and seen.get(layer) != status:
                    seen[layer] = status
                    progress(f"{layer}: {status}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = aux["Digest"]
        except docker.errors.APIError as exc:
            raise DockyardError(f"push of {reference} failed: {explain(exc)}") from None
        if not digest:
            raise DockyardError(f"push of {reference} reported no digest")
        return str(digest)

    def size(self, image_id: str) -> int:
        return int(self.api.inspect_image(image_id).get("Size", 0))

    def remove_image(self, image_id: str, ours: str) -> str | None:
        """Untag dockyard's tags, then remove the image by id once no tag names it. Never forced:
        the engine refuses while a container (running or not) uses the image, or images are built
        on it; that refusal is the answer."""
        try:
            tags = list(self.api.inspect_image(image_id).get("RepoTags") or [])
        except docker.errors.NotFound:
            return None
        others = sorted(t for t in tags if not t.startswith(ours))
        try:
            for tag in (t for t in tags if t.startswith(ours)):
                with contextlib.suppress(docker.errors.NotFound):
                    self.api.remove_image(tag, noprune=True) if others else self.api.remove_image(tag)
            if others:
                return f"also tagged {', '.join(others)}"
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_image(image_id)
        except docker.errors.APIError as exc:
            return explain(exc).strip().splitlines()[0][:300]
        return None


def _cut(response: Any) -> None:
    """Shut the socket under a streaming response down, so that a read blocked on it returns."""
    for path in (("raw", "_fp", "fp", "raw", "_sock"), ("raw", "_connection", "sock")):
        obj = response
        for attr in path:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, socket.socket):
            with contextlib.suppress(OSError):
                obj.shutdown(socket.SHUT_RDWR)
            return
    with contextlib.suppress(Exception):
        response.close()


DOCKERFILE_OVERRIDE = ".dockyard.Dockerfile"


def with_dockerfile(context: IO[bytes], text: str) -> tuple[IO[bytes], str]:
    """The context with ``text`` added as its Dockerfile under a name of dockyard's own."""
    context.seek(0)
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, closed with the build
    data = text.encode()
    with tarfile.open(fileobj=context) as tar, tarfile.open(fileobj=out, mode="w") as copy:
        for member in tar:
            if member.name.removeprefix("./") != DOCKERFILE_OVERRIDE:
                copy.addfile(member, tar.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo(DOCKERFILE_OVERRIDE)
        info.size = len(data)
        copy.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out, DOCKERFILE_OVERRIDE


def without_ignored(context: IO[bytes], dockerfile: str) -> IO[bytes]:
    """The build context less what ``.dockerignore`` excludes, as the docker CLI would send it
    (the engine does not read .dockerignore itself)."""
    context.seek(0)
    with tarfile.open(fileobj=context) as tar:
        try:
            ignore = tar.extractfile(".dockerignore")
        except KeyError:
            ignore = None
        if ignore is None:
            context.seek(0)
            return context
        patterns = [line.strip() for line in ignore.read().decode(errors="replace").splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
        matcher = PatternMatcher(patterns)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, closed with the build
        with tarfile.open(fileobj=out, mode="w") as kept:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in (dockerfile, ".dockerignore") or not matcher.matches(name):
                    kept.addfile(member, tar.extractfile(member) if member.isfile() else None)
    out.seek(0)
    return out
