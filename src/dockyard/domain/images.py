"""Images as the source declares them: which Dockerfiles, their names, versions and build order.

Name and version are read from the source, deterministically (see the seed's Dockerfile headers):

    # registry.example.com/crigen/api
    #
    # VERSION   0.2

else from the OCI label ``org.opencontainers.image.version``, else from the commit.

An image is one distinct build: a Dockerfile, its context, build args and target. A Dockerfile is
built as its own (its folder as context, no args, its last stage) unless a compose file's
``build:`` asks otherwise (``compose_build``); then each distinct build it asks for is an image,
named beside the Dockerfile's plain one from the build alone (``name_builds``, ``variant_for``),
so that the name stays from push to push.

Everything here reads pushed text, so everything here runs in time linear in its input: the
Dockerfile's syntax is read by ``dockerfile_syntax`` (scanners, no regex that can backtrack over a
line), and no loop runs over pairs of lines or of Dockerfiles (``build_order`` sorts by rounds of a
topological order). The limits on what is read are in ``limits``; the hosts of ``ADD <url>`` are
checked by ``add_urls``; image references are parsed by ``references``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from dockyard.domain.add_urls import add_urls, check_add_urls
from dockyard.domain.dockerfile_syntax import instructions, label_pairs
from dockyard.domain.errors import InvalidSource, shown
from dockyard.domain.limits import MAX_DOCKERFILE_BYTES, MAX_DOCKERFILES, too_large
from dockyard.domain.references import Reference, is_tag, parse_reference, same_registry

OCI_VERSION_LABEL = "org.opencontainers.image.version"

# Always used with ``fullmatch``: ``match`` with ``$`` would accept a trailing newline.
_DOCKERFILE = re.compile(r"(?:.*/)?Dockerfile(?:-[a-z0-9][a-z0-9_.-]*)?")


class Build(NamedTuple):
    """What makes an image: its Dockerfile, the context folder ("" for the repository's root),
    the build args (sorted by name) and the target stage ("" for the last)."""

    dockerfile: str
    context: str
    args: tuple[tuple[str, str], ...]
    target: str


@dataclass(frozen=True)
class ImageSpec:
    """One image to build: a Dockerfile, and how it is built (``Build``).

    A Dockerfile no compose ``build:`` names is built as its own: in its folder, without build
    args, to its last stage. Each distinct build a compose file asks for is an ImageSpec of its
    own (``with_build``, ``name_builds``)."""

    dockerfile: str
    basename: str
    declared_name: str | None
    version: str | None
    version_source: str  # "header", "label" or "commit"
    bases: tuple[str, ...] = field(default_factory=tuple)
    exposed_ports: tuple[int, ...] = field(default_factory=tuple)
    add_urls: tuple[str, ...] = field(default_factory=tuple)  # what its ADDs fetch (hosts checked again at build)
    stages: tuple[str, ...] = field(default_factory=tuple)  # its named stages (FROM ... AS NAME), lowercased
    # How it is built (compose ``build:``); the defaults are the Dockerfile's own build.
    build_context: str | None = None  # a folder of the repository ("": its root); None: the Dockerfile's folder
    args: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # build args, sorted by name
    target: str = ""  # the stage built, lowercased ("": the last one)
    variant: str = ""  # "": the Dockerfile's plain image; else the last part of its repository (``name_builds``)

    def repository(self, app: str) -> str:
        """Where the image lives in dockyard's registry: one namespace per app; another build
        of the same Dockerfile one level below its plain image (``APP/NAME/VARIANT``)."""
        return f"{app}/{self.basename}/{self.variant}" if self.variant else f"{app}/{self.basename}"

    @property
    def key(self) -> str:
        """This build among a push's images, as its services' placeholders name it: the
        Dockerfile's path for its plain image, ``PATH#VARIANT`` for another build of it."""
        return f"{self.dockerfile}#{self.variant}" if self.variant else self.dockerfile

    @property
    def build(self) -> Build:
        """What makes two builds one image: Dockerfile, context, build args and target."""
        return Build(self.dockerfile, self.context, self.args, self.target)

    @property
    def context(self) -> str:
        """The build context: a folder of the repository ("" for its root), by default the
        Dockerfile's own."""
        return self.dockerfile.rpartition("/")[0] if self.build_context is None else self.build_context

    @property
    def dockerfile_in_context(self) -> str | None:
        """The Dockerfile's path inside the context; None when it is outside it (its text is
        then sent with the build, as the docker CLI does)."""
        context = self.context
        if not context:
            return self.dockerfile
        inside = self.dockerfile.startswith(f"{context}/")
        return self.dockerfile[len(context) + 1 :] if inside else None

    def depends_on(self, other: ImageSpec) -> bool:
        """True when one of this image's FROM lines names ``other``'s declared image."""
        if other.declared_name is None or other is self:
            return False
        return any(_names(ref, other) for ref in _base_references(self))


def _base_references(spec: ImageSpec) -> list[Reference]:
    refs = []
    for base in spec.bases:
        try:
            refs.append(parse_reference(base))
        except ValueError:
            continue
    return refs


def _names(ref: Reference, other: ImageSpec) -> bool:
    return ref.name == other.declared_name and ref.tag in (None, "latest", other.version)


def is_dockerfile(path: str) -> bool:
    return bool(_DOCKERFILE.fullmatch(path))


def find_dockerfiles(paths: Iterable[str]) -> list[str]:
    """Every ``Dockerfile`` and ``Dockerfile-*`` in the tree, sorted; at most MAX_DOCKERFILES."""
    found = sorted(p for p in paths if is_dockerfile(p))
    if len(found) > MAX_DOCKERFILES:
        raise _too_many_dockerfiles(len(found))
    return found


def _too_many_dockerfiles(count: int) -> InvalidSource:
    return InvalidSource(
        f"the pushed commit has {count} Dockerfiles; dockyard builds at most {MAX_DOCKERFILES} images per app",
        "remove the Dockerfiles you do not deploy, or rename them (only 'Dockerfile' and "
        "'Dockerfile-NAME' are built)",
    )


def port_number(word: str) -> int | None:
    """A port number 1-65535 written in ASCII digits, else None."""
    if not (word.isascii() and word.isdigit()) or len(word) > 5:
        return None
    port = int(word)
    return port if 0 < port < 65536 else None


def parse_dockerfile(path: str, text: str, app: str, registry: str = "") -> ImageSpec:
    """Read name, version, bases and exposed ports from a Dockerfile's text.

    ``registry`` is dockyard's own registry (host:port): a header name in it must be in the app's
    own namespace (``registry/APP/...``)."""
    if len(text) > MAX_DOCKERFILE_BYTES:
        raise too_large(path, len(text.encode(errors="replace")), MAX_DOCKERFILE_BYTES)
    declared: str | None = None
    version: str | None = None
    source = "commit"
    # The header: the comment block at the very top of the file.
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            break
        words = line[1:].split()
        if not words:
            continue
        if words[0] == "VERSION":
            if len(words) != 2 or not is_tag(words[1]):
                raise InvalidSource(
                    f"{path} line {number}: malformed VERSION header {shown(line)}",
                    "write it as '# VERSION 1.2.3' (letters, digits, '.', '_' and '-' only)",
                )
            version, source = words[1], "header"
        elif declared is None and len(words) == 1 and "/" in words[0] and "=" not in words[0]:
            declared = _header_name(path, number, words[0], app, registry)
    bases: list[str] = []
    stages: set[str] = set()
    exposed: list[int] = []
    for number, keyword, args in instructions(text):
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            if not words:
                raise InvalidSource(f"{path} line {number}: FROM without an image", "name a base image")
            if words[0].lower() not in stages:
                bases.append(words[0])
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
        elif keyword == "LABEL" and version is None:
            value = label_pairs(args).get(OCI_VERSION_LABEL)
            if value and "$" not in value:
                if not is_tag(value):
                    raise InvalidSource(
                        f"{path} line {number}: label {OCI_VERSION_LABEL}={shown(value)} is not a usable "
                        "version",
                        "use letters, digits, '.', '_' and '-' only",
                    )
                version, source = value, "label"
        elif keyword == "EXPOSE":
            for word in args.split():
                port = port_number(word.split("/")[0])
                if port is not None:
                    exposed.append(port)
    if not bases:
        raise InvalidSource(f"{path}: no FROM instruction", "a Dockerfile starts from a base image: FROM ...")
    check_add_urls(path, text)
    basename = basename_for(path, declared, app)
    try:
        parse_reference(f"{app}/{basename}")
    except ValueError:
        raise InvalidSource(
            f"{path}: gives the image name {shown(basename)}, which is not a valid image name",
            "name the image in a header ('# registry.example.com/team/name'), or rename the file or its folder "
            "to lowercase letters, digits and single '-', '_' or '.'",
        ) from None
    return ImageSpec(
        dockerfile=path,
        basename=basename,
        declared_name=declared,
        version=version,
        version_source=source,
        bases=tuple(bases),
        exposed_ports=tuple(exposed),
        add_urls=tuple(url for _, url in add_urls(text)),
        stages=tuple(sorted(stages)),
    )


def _header_name(path: str, number: int, word: str, app: str, registry: str) -> str:
    try:
        ref = parse_reference(word)
    except ValueError as exc:
        raise InvalidSource(
            f"{path} line {number}: image name {shown(word)} in the header is not a valid "
            f"image reference ({exc})",
            "write it as '# registry.example.com/team/name' in lowercase, without a tag",
        ) from None
    if ref.tag or ref.digest:
        raise InvalidSource(
            f"{path} line {number}: image name {shown(word)} carries a tag",
            "put the version on its own line: '# VERSION 1.2.3'",
        )
    if registry and ref.host and same_registry(ref.host, registry) and ref.path.split("/")[0] != app:
        raise InvalidSource(
            f"{path} line {number}: image name {shown(word)} is in dockyard's registry ({registry}) "
            f"under {shown(ref.path.split('/')[0])}, which is not this app ({app})",
            f"name the image '{registry}/{app}/NAME', or under another registry host",
        )
    return ref.name


def basename_for(dockerfile: str, declared: str | None, app: str) -> str:
    """The image's short name: the header's last path part, else derived from the file name."""
    if declared:
        return declared.rsplit("/", 1)[-1]
    directory, _, filename = dockerfile.rpartition("/")
    stem = app if not directory else directory.replace("/", "-").lower()
    suffix = filename[len("Dockerfile") :].lstrip("-").lower()
    name = f"{stem}-{suffix}" if suffix else stem
    return re.sub(r"[^a-z0-9_.-]", "-", name)


def in_rounds(deps: Sequence[Collection[int]]) -> tuple[list[int], list[int]]:
    """Order items by their dependencies, in linear time.

    ``deps[i]`` are the indices item ``i`` depends on (a negative index: a dependency that is
    never met). Returns the items in rounds (first those that depend on nothing, then those that
    depend only on the first round, ...; each round in index order), and the items that never
    become ready, in index order (those in a cycle, or after one)."""
    waiting = [len(set(d)) for d in deps]
    users: list[list[int]] = [[] for _ in deps]
    for i, d in enumerate(deps):
        for j in set(d):
            if j >= 0:
                users[j].append(i)
    level = [0] * len(deps)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    done: list[int] = []
    while ready:
        i = ready.pop()
        done.append(i)
        for user in users[i]:
            level[user] = max(level[user], level[i] + 1)
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    done.sort(key=lambda i: (level[i], i))
    return done, [i for i, w in enumerate(waiting) if w > 0]


def build_order(specs: Iterable[ImageSpec]) -> list[ImageSpec]:
    """Dependencies first; ties keep file order. A cycle is an error naming the files.

    A FROM that names another Dockerfile's header name means the build ``named_images`` gives
    for it; one built several ways, none plain, cannot be named so: the FROM is refused."""
    pending = list(specs)
    _check_names(pending)
    named = {s.key: i for i, s in enumerate(pending)}
    chosen = {path: named[s.key] for path, s in named_images(pending).items()}
    # Basenames are unique per Dockerfile, so are declared names: each FROM names at most one Dockerfile.
    declared = {s.declared_name: s.dockerfile for s in pending if s.declared_name}
    deps: list[set[int]] = []
    for i, s in enumerate(pending):
        mine = set()
        for ref in _base_references(s):
            path = declared.get(ref.name)
            if path is None:
                continue
            j = chosen.get(path)
            if j is None:
                builds = [b for b in pending if b.dockerfile == path]
                if path != s.dockerfile and _names(ref, builds[0]):
                    raise InvalidSource(
                        f"{s.dockerfile}: FROM {shown(ref.name, 80)} names the image of {path}, which the compose "
                        f"file builds {len(builds)} ways ({', '.join(b.variant for b in builds)}), none of them plain",
                        f"build {path} once more without args and target (its plain image), or FROM a stage of "
                        f"{s.dockerfile} itself",
                    )
            elif j != i and _names(ref, pending[j]):
                mine.add(j)
        deps.append(mine)
    ordered, stuck = in_rounds(deps)
    if stuck:
        raise InvalidSource(
            "Dockerfiles depend on each other in a cycle: " + ", ".join(pending[i].dockerfile for i in stuck),
            "break the cycle of FROM lines",
        )
    return [pending[i] for i in ordered]


def _check_names(specs: Sequence[ImageSpec]) -> None:
    """Each Dockerfile's name is its own, and each build's repository is one build's."""
    files: dict[str, dict[str, None]] = {}
    for s in specs:
        files.setdefault(s.basename, {})[s.dockerfile] = None
    duplicates = sorted(n for n, f in files.items() if len(f) > 1)
    if duplicates:
        raise InvalidSource(
            f"several Dockerfiles produce the image {duplicates[0]!r}: {', '.join(files[duplicates[0]])}",
            "give each Dockerfile its own name header ('# registry/team/name')",
        )
    seen: dict[str, ImageSpec] = {}
    for s in specs:
        other = seen.setdefault(s.repository(""), s)
        if other is not s:
            raise InvalidSource(
                f"{s.dockerfile} is built two ways that get the same image name, {s.repository('')[1:]!r}",
                "change a build arg or the target of one of them (each build of a Dockerfile is an image of its own)",
            )


# -- builds: one image per distinct (Dockerfile, context, build args, target) ----------------


def with_build(spec: ImageSpec, context: str, args: Mapping[str, str], target: str) -> ImageSpec:
    """``spec``'s Dockerfile built in ``context`` (a normalized folder of the repository, "" for
    its root), with ``args``, to the stage ``target`` ("" the last); ``name_builds`` names it."""
    own = spec.dockerfile.rpartition("/")[0]
    return replace(spec, build_context=None if context == own else context, args=tuple(sorted(args.items())),
                   target=target.lower(), variant="")


def name_builds(dockerfiles: Iterable[ImageSpec], requested: Iterable[ImageSpec]) -> list[ImageSpec]:
    """The images of a push, in build order: every distinct build in ``requested`` (what a
    compose file's ``build:`` keys ask for, ``with_build``), each named by ``variant_for``; and
    each Dockerfile of ``dockerfiles`` that no build names, built as its own. Builds that are
    the same (Dockerfile, context, args, target) are one image, built once."""
    wanted: dict[str, dict[Build, ImageSpec]] = {}
    for r in requested:
        wanted.setdefault(r.dockerfile, {}).setdefault(r.build, r)
    out: list[ImageSpec] = []
    for spec in dockerfiles:
        builds = wanted.get(spec.dockerfile)
        if not builds:
            out.append(spec)
            continue
        contexts = {b.context for b in builds.values()}
        home = next(iter(contexts)) if len(contexts) == 1 else spec.dockerfile.rpartition("/")[0]
        out += sorted((replace(b, variant=variant_for(b, home)) for b in builds.values()), key=lambda b: b.variant)
    if len(out) > MAX_DOCKERFILES:
        raise InvalidSource(
            f"the pushed commit asks for {len(out)} images (each distinct build of a Dockerfile is one); dockyard "
            f"builds at most {MAX_DOCKERFILES} images per app",
            "build the services that may share an image with the same context, args and target",
        )
    return build_order(out)


_COMPONENT = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")  # a part of a repository name, as registries take it


def variant_for(spec: ImageSpec, home: str) -> str:
    """How a build of a Dockerfile is named beside the Dockerfile's plain image (the last part
    of its repository, ``APP/NAME/VARIANT``), from that build alone, so that it stays the same
    from push to push while the build does:

    - "" (the plain image ``APP/NAME``): no build args and no target, built in ``home`` (the
      context every build of the Dockerfile shares, else the Dockerfile's own folder);
    - the target (``APP/NAME/prod``): only a target, in ``home``;
    - else ``TARGET-HASH`` (``build-HASH`` without a target), HASH the first 8 hex digits of the
      SHA-256 of its context, build args and target: other values are another image.
    """
    if spec.context == home and not spec.args:
        if not spec.target:
            return ""
        if _COMPONENT.fullmatch(spec.target):
            return spec.target
    canonical = json.dumps([spec.context, [list(pair) for pair in spec.args], spec.target], ensure_ascii=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^a-z0-9]+", "-", spec.target).strip("-")[:40].strip("-") or "build"
    return f"{prefix}-{digest}"


def named_images(specs: Iterable[ImageSpec]) -> dict[str, ImageSpec]:
    """The build each Dockerfile's header name means (in a compose ``image:``, in another
    Dockerfile's FROM), by Dockerfile: its plain image, else its only build. A Dockerfile built
    several ways, none of them plain, is left out: its name would not say which build."""
    builds: dict[str, list[ImageSpec]] = {}
    for s in specs:
        builds.setdefault(s.dockerfile, []).append(s)
    out: dict[str, ImageSpec] = {}
    for path, found in builds.items():
        plain = [s for s in found if not s.variant]
        if plain or len(found) == 1:
            out[path] = (plain or found)[0]
    return out


def discover(files: Mapping[str, str], app: str, registry: str = "") -> list[ImageSpec]:
    """All images of a source tree (path -> Dockerfile text), in build order."""
    if not files:
        raise InvalidSource(
            "no Dockerfile found in the pushed commit",
            "add a Dockerfile (or Dockerfile-NAME) to the repository, commit, and push again",
        )
    if len(files) > MAX_DOCKERFILES:
        raise _too_many_dockerfiles(len(files))
    return build_order(parse_dockerfile(path, text, app, registry) for path, text in sorted(files.items()))


def version_for(spec: ImageSpec, commit: str) -> str:
    """The version the source declares, else the commit (``g`` + 8 hex digits)."""
    return spec.version or commit_version(commit)


def commit_version(commit: str) -> str:
    return f"g{commit[:8]}"


def distinct_version(version: str, commit: str) -> str:
    """A changed build under an unchanged version: ``0.2`` becomes ``0.2+g1a2b3c4d``."""
    if version == commit_version(commit):
        return version
    return f"{version}+{commit_version(commit)}"


def tag_for(version: str) -> str:
    """OCI tags have no '+': build metadata uses '_' instead (as Helm does)."""
    return version.replace("+", "_")
