"""Images as the source declares them: which Dockerfiles, their names, versions and build order.

Name and version are read from the source, deterministically (see the seed's Dockerfile headers):

    # registry.example.com/crigen/api
    #
    # VERSION   0.2

else from the OCI label ``org.opencontainers.image.version``, else from the commit.

Everything here reads pushed text, so everything here runs in time linear in its input: no regex
that can backtrack over a line (``_label_pairs`` is a scanner), no loop over pairs of lines or of
Dockerfiles (``build_order`` sorts by rounds of a topological order). The limits on what is read
are the constants below, in one place for the Dockerfile, the compose file and its env files.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from dockyard.domain.errors import InvalidSource

OCI_VERSION_LABEL = "org.opencontainers.image.version"

# What dockyard reads of a push. Sizes are of the file in git; a text is measured in characters,
# which are never more than its bytes.
MAX_DOCKERFILE_BYTES = 256 * 1024
MAX_COMPOSE_BYTES = 256 * 1024
MAX_ENV_FILE_BYTES = 256 * 1024
MAX_DOCKERFILES = 100  # images built from one commit

# Always used with ``fullmatch``: ``match`` with ``$`` would accept a trailing newline.
# Each is linear: no two ways of matching the same characters.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,100}")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DOCKERFILE = re.compile(r"(?:.*/)?Dockerfile(?:-[a-z0-9][a-z0-9_.-]*)?")
# Runs of characters a LABEL scanner copies as they are (used with ``match`` at a position).
_PLAIN = re.compile(r"[^\s\"'\\=]+")
_IN_DOUBLE_QUOTES = re.compile(r'[^"\\]+')
_SPACES = re.compile(r"\s+")
_INET_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")


def shown(value: str, limit: int = 200) -> str:
    """A user-supplied value as a message quotes it: repr, cut short."""
    return repr(value) if len(value) <= limit else repr(value[: limit - 3] + "...")


def _amount(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} bytes"


def too_large(path: str, size: int, limit: int) -> InvalidSource:
    """The error for a pushed file over its limit (Dockerfile, compose file, env file)."""
    return InvalidSource(
        f"{path} is {size} bytes, more than the {_amount(limit)} dockyard reads of such a file",
        "keep Dockerfiles, compose files and env files small: move long scripts and data into files "
        "the build COPYs",
    )


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

    @property
    def host(self) -> str:
        """The registry host (with its port), or "" when the name has none."""
        first, _, rest = self.name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return first
        return ""

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
        raise ValueError(f"bad digest in {shown(text)}")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = rest.rpartition(":")
        if not _TAG.fullmatch(tag) or "+" in tag:
            raise ValueError(f"bad tag in {shown(text)}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _HOST.fullmatch(parts[0]):
            raise ValueError(f"bad registry host in {shown(text)}")
        parts = parts[1:]
    if not parts or not all(_PATH_COMPONENT.fullmatch(p) for p in parts):
        raise ValueError(f"bad repository path in {shown(text)}")
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
    add_urls: tuple[str, ...] = field(default_factory=tuple)  # what its ADDs fetch (hosts checked again at build)

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


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) of every instruction."""
    out = []
    for number, line in _logical_lines(text):
        # Docker separates the keyword from its arguments by any whitespace, tabs included.
        words = line.split(None, 1)
        out.append((number, words[0].upper() if words else "", words[1] if len(words) > 1 else ""))
    return out


def _double_quoted(args: str, i: int, out: list[str]) -> int:
    """Copy the text of a double-quoted string whose opening quote is at ``i - 1``; return the
    index after its closing quote. A backslash escapes the next character."""
    n = len(args)
    while i < n and args[i] != '"':
        if args[i] == "\\":
            out.append(args[i + 1 : i + 2])
            i += 2
        else:
            run = _IN_DOUBLE_QUOTES.match(args, i)
            assert run is not None  # args[i] is neither '"' nor '\\'
            out.append(run.group())
            i = run.end()
    return i + 1


def _label_pairs(args: str) -> dict[str, str]:
    """``key=value`` pairs of a LABEL instruction, quotes and escapes resolved as Docker does.

    A scanner that looks at each character once: words are split at whitespace outside quotes,
    and a word's first ``=`` outside quotes splits key from value."""
    pairs: dict[str, str] = {}
    i, n = 0, len(args)
    while i < n:
        space = _SPACES.match(args, i)
        if space:
            i = space.end()
            continue
        key: str | None = None
        parts: list[str] = []
        while i < n and not args[i].isspace():
            c = args[i]
            if c == "'":
                end = args.find("'", i + 1)
                end = n if end < 0 else end
                parts.append(args[i + 1 : end])
                i = end + 1
            elif c == '"':
                i = _double_quoted(args, i + 1, parts)
            elif c == "\\":
                parts.append(args[i + 1 : i + 2])
                i += 2
            elif c == "=":
                if key is None:
                    key, parts = "".join(parts), []
                else:
                    parts.append(c)
                i += 1
            else:
                run = _PLAIN.match(args, i)
                assert run is not None  # c is none of the characters handled above
                parts.append(run.group())
                i = run.end()
        if key:
            pairs[key] = "".join(parts)
    return pairs


# -- ADD from a URL -----------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    lower = source.lower()
    if "://" in lower:
        return lower.split("://", 1)[0] in ("http", "https", "git", "ssh", "ftp")
    # scp-like git addresses: git@github.com:team/repo.git
    user, at, rest = lower.partition("@")
    return bool(at and user and ":" in rest and "/" not in user and (user == "git" or lower.endswith(".git")))


def add_urls(text: str) -> list[tuple[int, str]]:
    """(line, source) of every ``ADD`` whose source is a URL: http(s), git, ssh, ``git@host:...``.

    The build adapter resolves these names again at build time; ``parse_dockerfile`` refuses the
    ones whose host is this machine or its private network (see ``local_host``)."""
    found: list[tuple[int, str]] = []
    for number, keyword, args in _instructions(text):
        if keyword != "ADD":
            continue
        words: list[str] = []
        if args.startswith("["):
            try:
                parsed = json.loads(args)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                words = [w for w in parsed if isinstance(w, str)]
        if not words:
            words = args.split()
        words = [w for w in words if not w.startswith("--")]
        sources = words[:-1] if len(words) > 1 else words
        found.extend((number, s) for s in sources if _is_url(s))
    return found


def url_host(url: str) -> str | None:
    """The host an ADD source names, lowercased; None when it cannot be told."""
    if "://" in url:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return None
        return host or None
    rest = url.partition("@")[2]
    host = rest[1:].partition("]")[0] if rest.startswith("[") else rest.split(":", 1)[0]
    return host.lower() or None


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """What C's inet_aton reads a numeric host as: 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(len(p) <= 12 and _INET_NUMBER.fullmatch(p) for p in parts):
        return None
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not all(c in "01234567" for c in part):
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part, 10))
    *first, last = numbers
    if any(n > 255 for n in first) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in first:
        value = value * 256 + n
    return ipaddress.IPv4Address(value * 256 ** (5 - len(numbers)) + last)


def local_host(host: str) -> str | None:
    """Why a host names this machine or a private network (a reason to refuse it), else None."""
    name = unquote(host).strip().rstrip(".").lower()  # Go's URL parser decodes %xx in hosts
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return "it is not a host name dockyard can check"
    if name == "localhost" or name.endswith(".localhost"):
        return "a name of the machine itself"
    if "$" in name:
        return "it is a build variable, so dockyard cannot tell where it points"
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = _inet_aton(name)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address of the machine itself"
    if address.is_unspecified:
        return "the unspecified address, which reaches the machine itself"
    if address.is_link_local:
        return "a link-local address (such as a cloud metadata service)"
    if address.is_private:
        return "an address of a private network"
    return None


def _check_add_urls(path: str, text: str) -> None:
    for number, url in add_urls(text):
        host = url_host(url)
        reason = "it names no host dockyard can read" if host is None else local_host(host)
        if reason:
            raise InvalidSource(
                f"{path} line {number}: ADD {shown(url)} is refused: its host {shown(host or '')} is {reason}",
                "the build runs on dockyard's own server: ADD from a public address written literally, "
                "or commit the file and COPY it",
            )


# -- the Dockerfile -----------------------------------------------------------------------------


def port_number(word: str) -> int | None:
    """A port number 1-65535 written in ASCII digits, else None."""
    if not (word.isascii() and word.isdigit()) or len(word) > 5:
        return None
    port = int(word)
    return port if 0 < port < 65536 else None


def _loopback_name(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def same_registry(host: str, registry: str) -> bool:
    """True when ``host`` (``name[:port]``) is dockyard's registry ``registry``, loopback
    spellings of it (``localhost:5000`` for ``127.0.0.1:5000``) included."""
    if host.lower() == registry.lower():
        return True
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    reg_name, _, reg_port = registry.rpartition(":") if not registry.endswith("]") else (registry, "", "")
    return bool(name) and port == reg_port and _loopback_name(name) and _loopback_name(reg_name)


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
            if len(words) != 2 or not _TAG.fullmatch(words[1]) or "+" in words[1]:
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
    for number, keyword, args in _instructions(text):
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
    _check_add_urls(path, text)
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
    """Dependencies first; ties keep file order. A cycle is an error naming the files."""
    pending = list(specs)
    count: dict[str, int] = {}
    for s in pending:
        count[s.basename] = count.get(s.basename, 0) + 1
    duplicates = sorted(n for n, c in count.items() if c > 1)
    if duplicates:
        files = [s.dockerfile for s in pending if s.basename == duplicates[0]]
        raise InvalidSource(
            f"several Dockerfiles produce the image {duplicates[0]!r}: {', '.join(files)}",
            "give each Dockerfile its own name header ('# registry/team/name')",
        )
    # Basenames are unique, so are declared names: each FROM names at most one other image.
    declared = {s.declared_name: i for i, s in enumerate(pending) if s.declared_name}
    deps: list[set[int]] = []
    for i, s in enumerate(pending):
        mine = set()
        for ref in _base_references(s):
            j = declared.get(ref.name)
            if j is not None and j != i and _names(ref, pending[j]):
                mine.add(j)
        deps.append(mine)
    ordered, stuck = in_rounds(deps)
    if stuck:
        raise InvalidSource(
            "Dockerfiles depend on each other in a cycle: " + ", ".join(pending[i].dockerfile for i in stuck),
            "break the cycle of FROM lines",
        )
    return [pending[i] for i in ordered]


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
