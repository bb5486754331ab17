"""Building a pushed commit's images: in dependency order, each pushed in the background.

Each image is one build (``ImageSpec``: Dockerfile, context, build args, target): its context is a
tar dockyard writes from git (one per context folder, shared by the builds in it: ``Contexts``,
which may write one ahead, while the commit is inspected); a Dockerfile outside its context is
sent with it, as the docker CLI does.

Images that build FROM one another are built with the FROM line pinned to the base's image id
(domain/pinning.py): nothing is tagged under a name the source declares, so builds of different
apps never see each other and run in parallel.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO

from dockyard.domain import builds, names
from dockyard.domain import images as img
from dockyard.domain.add_urls import local_host, url_host
from dockyard.domain.errors import InvalidSource
from dockyard.domain.model import App, BuiltImage
from dockyard.domain.pinning import base_pins, pin_bases
from dockyard.ports import ImageBuilder, ImageStore, Registry, SourceRepos

Say = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    """Where a commit being built comes from: one of the app's repos ("": its own) and the branch
    pushed ("": not known)."""

    repo: str = ""
    branch: str = ""


OWN = Source()


@dataclass(frozen=True)
class Built:
    """An image built for a release; its push runs in the background."""

    spec: img.ImageSpec
    image_id: str
    reference: str  # registry/app/name:tag
    push: Future[str]  # the reference pinned by digest, once pushed


def check_add_hosts(spec: img.ImageSpec, resolve: Callable[[str], list[str]]) -> None:
    """The hosts of the Dockerfile's ``ADD <url>`` resolved now, just before the build: the engine
    fetches them from the host's network, where dockyard's own services listen on loopback."""
    for url in spec.add_urls:
        host = url_host(url)
        if host is None:
            continue
        for address in resolve(host):
            reason = local_host(address)
            if reason:
                raise InvalidSource(
                    f"{spec.dockerfile}: ADD {url}: {host} resolves to {address}, {reason}",
                    "the engine fetches ADD URLs from this host's own network: download from a public "
                    "address, or COPY the file from the repository",
                )


class Contexts:
    """A commit's build contexts: a tar per folder of the repository, written once, closed
    together when the ``with`` block ends. One can be written ahead in the background."""

    def __init__(self, repos: SourceRepos, app: str, commit: str) -> None:
        self.repos, self.app, self.commit = repos, app, commit
        self._tars: dict[str, Future[IO[bytes]]] = {}

    def ahead(self, folder: str, pool: Executor) -> None:
        """Write ``folder``'s tar in ``pool`` (its errors are raised by ``get``, if it is asked for)."""
        if folder not in self._tars:
            self._tars[folder] = pool.submit(self._write, folder)

    def get(self, folder: str) -> IO[bytes]:
        """``folder``'s tar, read from its start."""
        if folder not in self._tars:
            written: Future[IO[bytes]] = Future()
            written.set_result(self._write(folder))
            self._tars[folder] = written
        tar = self._tars[folder].result()
        tar.seek(0)
        return tar

    def _write(self, folder: str) -> IO[bytes]:
        tar = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
        try:
            self.repos.archive(self.app, self.commit, tar, folder)
        except BaseException:
            tar.close()
            raise
        return tar

    def __enter__(self) -> Contexts:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for written in self._tars.values():
            with contextlib.suppress(Exception):  # one that failed has no file
                written.result().close()


def described(spec: img.ImageSpec) -> str:
    """A build as the push output names it: ``api/Dockerfile (context ., target prod, args A, B)``;
    build args by name only (their values are in the compose file)."""
    parts = [f"context {spec.context or '.'}"] if spec.build_context is not None else []
    parts += [f"target {spec.target}"] if spec.target else []
    parts += ["args " + ", ".join(name for name, _ in spec.args)] if spec.args else []
    return f"{spec.dockerfile} ({', '.join(parts)})" if parts else spec.dockerfile


class PushGate:
    """Pushes to the registry go side by side through the gate; the registry's garbage collection
    (services/gc.py) closes it: pushes that come wait until it opens again, and the collection
    waits for the pushes under way. A push therefore never meets a collection that could delete
    the blobs it uploads. One collection at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pushing = 0
        self._closed = False

    @contextlib.contextmanager
    def push(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._pushing += 1
        try:
            yield
        finally:
            with self._cond:
                self._pushing -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._closed = True  # pushes that come now wait
            self._cond.wait_for(lambda: self._pushing == 0)
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


@dataclass
class Builds:
    store: ImageStore
    repos: SourceRepos
    builder: ImageBuilder
    registry: Registry
    resolve: Callable[[str], list[str]] = field(default=lambda host: [])  # host -> its addresses
    gate: PushGate = field(default_factory=PushGate)  # closed while the registry collects garbage

    def build_all(self, app: App, commit: str, specs: list[img.ImageSpec], say: Say,
                  pushes: ThreadPoolExecutor, contexts: Contexts | None = None, source: Source = OWN) -> list[Built]:
        """Build every image in dependency order; each is pushed in the background once built.
        ``contexts``: the commit's, some written ahead (else the tars are written here);
        ``source``: the repo and branch the commit is of (the app's own repository by default)."""
        if not specs:
            say("-----> no image to build: the stack's images are built by the app's other repos, or pulled")
            return []
        say(f"-----> {len(specs)} image(s) to build: " + ", ".join(described(s) for s in specs))
        built: list[Built] = []
        named = img.named_images(specs)  # what another Dockerfile's FROM means by a header name
        done: dict[str, tuple[img.ImageSpec, str]] = {}  # dockerfile -> (its named build, image id)
        key = names.repo_key(app.name, source.repo)
        records = self.store.list_images(app.name)  # bases another repo (or an earlier push) built
        with contextlib.ExitStack() as stack:
            if contexts is None:
                contexts = stack.enter_context(Contexts(self.repos, key, commit))
            for spec in specs:
                check_add_hosts(spec, self.resolve)
                context = contexts.get(spec.context)
                pins = base_pins(spec, done)
                said = [f"       FROM {word}: the image built above ({image_id[7:19]})" for word, image_id in pins.items()]
                for word, base in builds.bases_from_builds(spec, records, source.branch, self.registry.address).items():
                    if word in pins or base.name == spec.declared_name:
                        continue
                    local = self.builder.image_id(base.image_id)
                    pins[word] = local or builds.pinned(base, self.registry.address)
                    said.append(f"       FROM {word}: {base.name or base.repository}:{base.version} built from "
                                f"{base.repo or app.name} at {base.commit[:10]} ({base.digest[7:19]})")
                text = None
                if pins or spec.dockerfile_in_context is None:  # pinned, or sent beside its context
                    text = pin_bases(self.repos.read(key, commit, spec.dockerfile) or "", pins)
                    for line in said:
                        say(line)
                image_id, version = self.build_one(app, commit, spec, context, say, text)
                if named.get(spec.dockerfile) == spec:
                    done[spec.dockerfile] = (spec, image_id)
                reference = f"{self.registry.address}/{spec.repository(app.name)}:{img.tag_for(version)}"
                push = pushes.submit(self.push, app, commit, spec, image_id, version, reference, say, source)
                built.append(Built(spec, image_id, reference, push))
        return built

    def build_one(self, app: App, commit: str, spec: img.ImageSpec, context: IO[bytes], say: Say,
                  dockerfile_text: str | None = None) -> tuple[str, str]:
        """Build one image; return its id and the version it is released under."""
        repository = spec.repository(app.name)
        say(f"-----> Building {described(spec)} -> {repository}")
        version = img.version_for(spec, commit)
        candidates = list(dict.fromkeys([version, img.distinct_version(version, commit)]))
        # Which tags are taken is asked of the registry while the image builds.
        with ThreadPoolExecutor(max_workers=len(candidates)) as pool:
            lookups = [pool.submit(self.bound, repository, img.tag_for(v)) for v in candidates]
            image_id = self.builder.build(context, spec.dockerfile_in_context or spec.dockerfile, "",
                                          lambda line: say(f"       {line}"), dockerfile_text,
                                          buildargs=dict(spec.args), target=spec.target)
            bound = [f.result() for f in lookups]
        n = 1
        while bound[0] not in (None, image_id):
            candidates.pop(0)
            bound.pop(0)
            if not candidates:
                n += 1
                candidates = [f"{img.distinct_version(version, commit)}.{n}"]
                bound = [self.bound(repository, img.tag_for(candidates[0]))]
        if candidates[0] != version:
            say(f" !     WARNING: {repository}:{img.tag_for(version)} is already bound to another build; this build "
                f"is {repository}:{img.tag_for(candidates[0])}. Raise VERSION in {spec.dockerfile} to release a new "
                "version.")
        return image_id, candidates[0]

    def bound(self, repository: str, tag: str) -> str | None:
        """The image id a tag is bound to: in the registry, or before garbage collection removed
        it (a version stays bound to its first build)."""
        return self.registry.config_digest(repository, tag) or self.store.collected_image(repository, tag)

    def push(
        self, app: App, commit: str, spec: img.ImageSpec, image_id: str, version: str, reference: str, say: Say,
        source: Source = OWN,
    ) -> str:
        """Tag and push one image (in the background: the release runs the image by its id);
        record it; return its reference pinned by digest."""
        repository, tag = spec.repository(app.name), img.tag_for(version)
        self.builder.tag(image_id, reference)
        say(f"-----> Pushing {reference}")
        with self.gate.push():  # recorded before a garbage collection may look
            digest = self.builder.push(reference, lambda line: say(f"       {line}"))
            size = self.builder.size(image_id)
            self.store.add_image(BuiltImage(
                app=app.name, repository=repository, version=version, tag=tag, digest=digest, image_id=image_id,
                commit=commit, size=size, dockerfile=spec.dockerfile, name=spec.declared_name or "",
                source_version=img.version_for(spec, commit), repo=source.repo, branch=source.branch,
            ))
        say(f"       {repository}:{tag} is {digest} ({size / 1e6:.1f} MB, version from {spec.version_source})")
        return f"{self.registry.address}/{repository}@{digest}"
