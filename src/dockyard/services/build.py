"""Building a pushed commit's images: in dependency order, each pushed in the background.

Each image is one build (``ImageSpec``: Dockerfile, context, build args, target): its context is a
tar dockyard writes from git (one per context folder, shared by the builds in it); a Dockerfile
outside its context is sent with it, as the docker CLI does.

Images that build FROM one another are built with the FROM line pinned to the base's image id
(domain/pinning.py): nothing is tagged under a name the source declares, so builds of different
apps never see each other and run in parallel.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

from dockyard.domain import images as img
from dockyard.domain.add_urls import local_host, url_host
from dockyard.domain.errors import InvalidSource
from dockyard.domain.model import App, BuiltImage
from dockyard.domain.pinning import base_pins, pin_bases
from dockyard.ports import ImageBuilder, ImageStore, Registry, SourceRepos

Say = Callable[[str], None]


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


def described(spec: img.ImageSpec) -> str:
    """A build as the push output names it: ``api/Dockerfile (context ., target prod, args A, B)``;
    build args by name only (their values are in the compose file)."""
    parts = [f"context {spec.context or '.'}"] if spec.build_context is not None else []
    parts += [f"target {spec.target}"] if spec.target else []
    parts += ["args " + ", ".join(name for name, _ in spec.args)] if spec.args else []
    return f"{spec.dockerfile} ({', '.join(parts)})" if parts else spec.dockerfile


@dataclass
class Builds:
    store: ImageStore
    repos: SourceRepos
    builder: ImageBuilder
    registry: Registry
    resolve: Callable[[str], list[str]] = field(default=lambda host: [])  # host -> its addresses

    def build_all(self, app: App, commit: str, specs: list[img.ImageSpec], say: Say,
                  pushes: ThreadPoolExecutor) -> list[Built]:
        """Build every image in dependency order; each is pushed in the background once built."""
        say(f"-----> {len(specs)} image(s) to build: " + ", ".join(described(s) for s in specs))
        built: list[Built] = []
        named = img.named_images(specs)  # what another Dockerfile's FROM means by a header name
        done: dict[str, tuple[img.ImageSpec, str]] = {}  # dockerfile -> (its named build, image id)
        with contextlib.ExitStack() as stack:
            contexts: dict[str, IO[bytes]] = {}
            for spec in specs:
                check_add_hosts(spec, self.resolve)
                if spec.context not in contexts:
                    contexts[spec.context] = stack.enter_context(tempfile.TemporaryFile())
                    self.repos.archive(app.name, commit, contexts[spec.context], spec.context)
                context = contexts[spec.context]
                context.seek(0)
                pins = base_pins(spec, done)
                text = None
                if pins or spec.dockerfile_in_context is None:  # pinned, or sent beside its context
                    text = pin_bases(self.repos.read(app.name, commit, spec.dockerfile) or "", pins)
                    for word, image_id in pins.items():
                        say(f"       FROM {word}: the image built above ({image_id[7:19]})")
                image_id, version = self.build_one(app, commit, spec, context, say, text)
                if named.get(spec.dockerfile) == spec:
                    done[spec.dockerfile] = (spec, image_id)
                reference = f"{self.registry.address}/{spec.repository(app.name)}:{img.tag_for(version)}"
                self.builder.tag(image_id, reference)
                push = pushes.submit(self.push, app, commit, spec, image_id, version, reference, say)
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
            lookups = [pool.submit(self.registry.config_digest, repository, img.tag_for(v)) for v in candidates]
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
                bound = [self.registry.config_digest(repository, img.tag_for(candidates[0]))]
        if candidates[0] != version:
            say(f" !     WARNING: {repository}:{img.tag_for(version)} is already bound to another build; this build "
                f"is {repository}:{img.tag_for(candidates[0])}. Raise VERSION in {spec.dockerfile} to release a new "
                "version.")
        return image_id, candidates[0]

    def push(
        self, app: App, commit: str, spec: img.ImageSpec, image_id: str, version: str, reference: str, say: Say
    ) -> str:
        """Push one image; record it; return its reference pinned by digest."""
        repository, tag = spec.repository(app.name), img.tag_for(version)
        say(f"-----> Pushing {reference}")
        digest = self.builder.push(reference, lambda line: say(f"       {line}"))
        size = self.builder.size(image_id)
        self.store.add_image(BuiltImage(
            app=app.name, repository=repository, version=version, tag=tag, digest=digest, image_id=image_id,
            commit=commit, size=size, dockerfile=spec.dockerfile,
        ))
        say(f"       {repository}:{tag} is {digest} ({size / 1e6:.1f} MB, version from {spec.version_source})")
        return f"{self.registry.address}/{repository}@{digest}"
