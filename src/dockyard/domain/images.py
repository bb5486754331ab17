"""Images as the source declares them: which Dockerfiles, their names, versions and build order.

Name and version are read from the source, deterministically (see the seed's Dockerfile headers):

    # registry.example.com/crigen/api
    #
    # VERSION   0.2

else from the OCI label ``org.opencontainers.image.version``, else from the commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dockyard.domain.errors import InvalidSource

OCI_VERSION_LABEL = "org.opencontainers.image.version"
# Always used with ``fullmatch``: ``match`` with ``$`` would accept a trailing newline.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,100}")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DOCKERFILE = re.compile(r"(?:.*/)?Dockerfile(?:-[a-z0-9][a-z0-9_.-]*)?")


@dataclass(frozen=True)
class Reference:
    """An image reference split in its parts: ``[host/]path[:tag][@digest]``."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def path(self) -> str:
        """The name without a registry host."""
        first, _, rest = self.name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return rest
        return self.name

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse an image reference; raise ValueError when it is not one."""
    rest, at, digest = text.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise ValueError(f"bad digest in {text!r}")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = rest.rpartition(":")
        if not _TAG.fullmatch(tag) or "+" in tag:
            raise ValueError(f"bad tag in {text!r}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _HOST.fullmatch(parts[0]):
            raise ValueError(f"bad registry host in {text!r}")
        parts = parts[1:]
    if not parts or not all(_PATH_COMPONENT.fullmatch(p) for p in parts):
        raise ValueError(f"bad repository path in {text!r}")
    return Reference(name=name, tag=tag, digest=digest or None)


@dataclass(frozen=True)
class ImageSpec:
    """One image to build, as declared by one Dockerfile."""

    dockerfile: str
    basename: str
    declared_name: str | None
    version: str | None
    version_source: str  # "header", "label" or "commit"
    bases: tuple[str, ...] = field(default_factory=tuple)
    exposed_ports: tuple[int, ...] = field(default_factory=tuple)

    def repository(self, app: str) -> str:
        """Where the image lives in dockyard's registry: one namespace per app."""
        return f"{app}/{self.basename}"

    @property
    def context(self) -> str:
        """The build context: the Dockerfile's own folder ("" for the repository's root)."""
        return self.dockerfile.rpartition("/")[0]

    @property
    def dockerfile_in_context(self) -> str:
        return self.dockerfile.rpartition("/")[2]

    def depends_on(self, other: ImageSpec) -> bool:
        """True when one of this image's FROM lines names ``other``'s declared image."""
        if other.declared_name is None or other is self:
            return False
        for base in self.bases:
            try:
                ref = parse_reference(base)
            except ValueError:
                continue
            if ref.name == other.declared_name and ref.tag in (None, "latest", other.version):
                return True
        return False


def is_dockerfile(path: str) -> bool:
    return bool(_DOCKERFILE.fullmatch(path))


def find_dockerfiles(paths: Iterable[str]) -> list[str]:
    """Every ``Dockerfile`` and ``Dockerfile-*`` in the tree, sorted."""
    return sorted(p for p in paths if is_dockerfile(p))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Dockerfile instructions with continuations joined, numbered by their first line."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not buf:
            if not line or line.startswith("#"):
                continue
            start = number
        elif line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(buf)))
        buf = []
    if buf:
        out.append((start, " ".join(buf)))
    return out


def _label_pairs(args: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for match in re.finditer(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\'[^\']*\'|\S+)', args):
        value = match.group(2)
        if value[:1] in "\"'":
            value = value[1:-1]
        pairs[match.group(1).strip("\"'")] = value
    return pairs


def parse_dockerfile(path: str, text: str, app: str) -> ImageSpec:
    """Read name, version, bases and exposed ports from a Dockerfile's text."""
    declared: str | None = None
    version: str | None = None
    source = "commit"
    lines = text.splitlines()
    # The header: the comment block at the very top of the file.
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            break
        words = line[1:].split()
        if not words:
            continue
        if words[0] == "VERSION":
            if len(words) != 2 or not _TAG.fullmatch(words[1]) or "+" in words[1]:
                raise InvalidSource(
                    f"{path} line {number}: malformed VERSION header {line!r}",
                    "write it as '# VERSION 1.2.3' (letters, digits, '.', '_' and '-' only)",
                )
            version, source = words[1], "header"
        elif declared is None and len(words) == 1 and "/" in words[0] and "=" not in words[0]:
            try:
                ref = parse_reference(words[0])
            except ValueError as exc:
                raise InvalidSource(
                    f"{path} line {number}: image name {words[0]!r} in the header is not a valid "
                    f"image reference ({exc})",
                    "write it as '# registry.example.com/team/name' in lowercase, without a tag",
                ) from None
            if ref.tag or ref.digest:
                raise InvalidSource(
                    f"{path} line {number}: image name {words[0]!r} carries a tag",
                    "put the version on its own line: '# VERSION 1.2.3'",
                )
            declared = ref.name
    bases: list[str] = []
    stages: set[str] = set()
    exposed: list[int] = []
    for number, line in _logical_lines(text):
        # Docker separates the keyword from its arguments by any whitespace, tabs included.
        words = line.split(None, 1)
        keyword = words[0].upper() if words else ""
        args = words[1] if len(words) > 1 else ""
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            if not words:
                raise InvalidSource(f"{path} line {number}: FROM without an image", "name a base image")
            if words[0].lower() not in stages:
                bases.append(words[0])
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
        elif keyword == "LABEL" and version is None:
            value = _label_pairs(args).get(OCI_VERSION_LABEL)
            if value and "$" not in value:
                if not _TAG.fullmatch(value) or "+" in value:
                    raise InvalidSource(
                        f"{path} line {number}: label {OCI_VERSION_LABEL}={value!r} is not a usable "
                        "version",
                        "use letters, digits, '.', '_' and '-' only",
                    )
                version, source = value, "label"
        elif keyword == "EXPOSE":
            for word in args.split():
                port = word.split("/")[0]
                if port.isdigit() and 0 < int(port) < 65536:
                    exposed.append(int(port))
    if not bases:
        raise InvalidSource(f"{path}: no FROM instruction", "a Dockerfile starts from a base image: FROM ...")
    basename = basename_for(path, declared, app)
    try:
        parse_reference(f"{app}/{basename}")
    except ValueError:
        raise InvalidSource(
            f"{path}: gives the image name {basename!r}, which is not a valid image name",
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
    )


def basename_for(dockerfile: str, declared: str | None, app: str) -> str:
    """The image's short name: the header's last path part, else derived from the file name."""
    if declared:
        return declared.rsplit("/", 1)[-1]
    directory, _, filename = dockerfile.rpartition("/")
    stem = app if not directory else directory.replace("/", "-").lower()
    suffix = filename[len("Dockerfile") :].lstrip("-").lower()
    name = f"{stem}-{suffix}" if suffix else stem
    return re.sub(r"[^a-z0-9_.-]", "-", name)


def build_order(specs: Iterable[ImageSpec]) -> list[ImageSpec]:
    """Dependencies first; ties keep file order. A cycle is an error naming the files."""
    pending = list(specs)
    names = [s.basename for s in pending]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        files = [s.dockerfile for s in pending if s.basename in duplicates]
        raise InvalidSource(
            f"several Dockerfiles produce the image {sorted(duplicates)[0]!r}: {', '.join(files)}",
            "give each Dockerfile its own name header ('# registry/team/name')",
        )
    ordered: list[ImageSpec] = []
    while pending:
        ready = [s for s in pending if not any(s.depends_on(o) for o in pending)]
        if not ready:
            raise InvalidSource(
                "Dockerfiles depend on each other in a cycle: "
                + ", ".join(s.dockerfile for s in pending),
                "break the cycle of FROM lines",
            )
        ordered.extend(ready)
        pending = [s for s in pending if s not in ready]
    return ordered


def discover(files: Mapping[str, str], app: str) -> list[ImageSpec]:
    """All images of a source tree (path -> Dockerfile text), in build order."""
    if not files:
        raise InvalidSource(
            "no Dockerfile found in the pushed commit",
            "add a Dockerfile (or Dockerfile-NAME) to the repository, commit, and push again",
        )
    return build_order(parse_dockerfile(path, text, app) for path, text in sorted(files.items()))


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
