"""Bare git repositories on disk, read with the real ``git`` (argument lists only).

What a push stored is read as streams, within bounds: a tree is listed entry by entry up to
MAX_TREE_ENTRIES (``tree_entries``), a blob is read only once its size is known to be under the
caller's limit (``Tree.read``, ``read_file``), and a build context is a tar written here from
``git ls-tree`` and ``git cat-file --batch`` (``write_archive``), blob by blob into the output
file, up to MAX_ARCHIVE_BYTES. ``git archive`` is not used: it applies the pushed
``.gitattributes`` (``export-ignore``, ``export-subst``), and pushed files must not change what
is built.

Every git process gets ``safe_git_env``: no system or global configuration, no attributes from
the server's home, bounded pack windows (so git also works in a process with a memory limit).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from dockyard.domain import names
from dockyard.domain.errors import DockyardError, InvalidSource, NotFound, Unavailable
from dockyard.domain.limits import too_large

if TYPE_CHECKING:
    import tarfile

HOOKS = ("pre-receive", "post-receive")

MAX_TREE_ENTRIES = 100_000  # files (and submodules) of one commit
MAX_READ_BYTES = 1024 * 1024  # a file read whole, unless the caller gives a smaller limit
MAX_ARCHIVE_BYTES = 2 * 1024**3  # all files of a build context together
MAX_PATH_BYTES = 4096
_CHUNK = 1024 * 1024

# Given to every git process as GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n: no attributes from the
# server's home directory, and pack windows small enough for a process under RLIMIT_AS (by
# default git maps a whole pack of up to 1 GiB at once).
_SAFE_CONFIG = (
    ("core.attributesFile", "/dev/null"),
    ("core.packedGitWindowSize", "32m"),
    ("core.packedGitLimit", "256m"),
)
# Variables through which the caller's environment could add configuration.
_CONFIG_VARIABLES = ("GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG_SYSTEM",
                     "GIT_ATTR_SOURCE")


def safe_git_env(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (e.g. ``os.environ``) made safe for git on the server: the whole environment to
    give a git process (it drops variables, so use the result as is rather than merging it).

    System and global configuration are ignored (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL``),
    so are the server's git attributes and replace refs; configuration passed through the
    environment by the caller is dropped and replaced by ``_SAFE_CONFIG``. With no filter driver
    configured anywhere, no clean/smudge filter (LFS included) can run."""
    env = {
        k: v for k, v in base.items()
        if k not in _CONFIG_VARIABLES and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_ATTR_NOSYSTEM="1",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_LFS_SKIP_SMUDGE="1",
        GIT_CONFIG_COUNT=str(len(_SAFE_CONFIG)),
    )
    for i, (key, value) in enumerate(_SAFE_CONFIG):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


class GitError(DockyardError):
    def __init__(self, args: list[str], code: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({code}): {stderr.strip()[:500]}")
        self.code = code


def run_git(
    args: list[str], cwd: Path | None = None, stdout: IO[bytes] | None = None, input: bytes | None = None
) -> bytes:
    if cwd is not None and not cwd.is_dir():
        raise NotFound(f"no repository at {cwd}", "create the app first: dockyard apps create NAME")
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, stdout=stdout if stdout else subprocess.PIPE, input=input,
            stderr=subprocess.PIPE, check=False, timeout=300, env=safe_git_env(os.environ),
        )
    except FileNotFoundError:
        raise Unavailable("git is not installed", "install it: apt-get install git") from None
    if proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout or b""


def _popen(args: list[str], cwd: Path, stdin: bool = False, incoming: Path | None = None) -> subprocess.Popen[bytes]:
    """git in ``cwd``; with ``incoming`` (a push's quarantine: ``GitRepos.incoming``), the objects
    of the push being received are read too."""
    if not cwd.is_dir():
        raise NotFound(f"no repository at {cwd}", "create the app first: dockyard apps create NAME")
    env = safe_git_env(os.environ)
    if incoming is not None:
        env.update(GIT_OBJECT_DIRECTORY=str(incoming), GIT_ALTERNATE_OBJECT_DIRECTORIES=str(cwd / "objects"))
    try:
        return subprocess.Popen(
            ["git", *args], cwd=cwd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
    except FileNotFoundError:
        raise Unavailable("git is not installed", "install it: apt-get install git") from None


def _finish(proc: subprocess.Popen[bytes], args: list[str], kill: bool = False) -> None:
    """Wait for a streamed git; raise its error when it failed (unless we stopped it)."""
    if kill and proc.poll() is None:
        proc.kill()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:  # a broken pipe to a git that already exited
                pass
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.stderr.close()
    code = proc.wait()
    if code != 0 and not kill:
        raise GitError(args, code, stderr.decode(errors="replace"))


def check_ref_format(branch: str) -> bool:
    """git's own rules, on top of dockyard's stricter names.branch_name."""
    return subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, check=False,
        env=safe_git_env(os.environ),
    ).returncode == 0


# -- trees and blobs, streamed ------------------------------------------------------------------


@dataclass(frozen=True)
class TreeEntry:
    """One entry of ``git ls-tree -r -l``: a file, a symlink or a submodule."""

    path: bytes
    mode: str  # "100644", "100755" (executable), "120000" (symlink), "160000" (submodule)
    kind: str  # "blob" or "commit"
    oid: str
    size: int  # -1 for a submodule

    @property
    def name(self) -> str:
        return self.path.decode(errors="replace")


def _commit(commit: str) -> str:
    if not commit or any(c not in "0123456789abcdef" for c in commit) or len(commit) not in (40, 64):
        raise DockyardError(f"not a commit id: {commit!r}")
    return commit


def _too_many(limit: int) -> InvalidSource:
    return InvalidSource(
        f"the pushed commit has more than {limit} files; dockyard reads at most {limit}",
        "keep generated files, dependencies and data out of the repository (build them in the Dockerfile)",
    )


def tree_entries(repo: Path, treeish: str, max_entries: int = MAX_TREE_ENTRIES,
                 incoming: Path | None = None) -> Iterator[TreeEntry]:
    """Every file of a tree, streamed from ``git ls-tree -r -z -l``; at most ``max_entries``."""
    args = ["ls-tree", "-r", "-z", "-l", treeish]
    proc = _popen(args, repo, incoming=incoming)
    assert proc.stdout is not None
    pending, count, stopped = b"", 0, True
    try:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            *records, pending = (pending + chunk).split(b"\0")
            for record in records:
                meta, _, path = record.partition(b"\t")
                mode, kind, oid, size = meta.decode().split()
                count += 1
                if count > max_entries:
                    raise _too_many(max_entries)
                yield TreeEntry(path, mode, kind, oid, int(size) if size.isdigit() else -1)
            if len(pending) > MAX_PATH_BYTES + 128:
                raise InvalidSource(
                    f"the pushed commit has a path longer than {MAX_PATH_BYTES} bytes", "use shorter file names"
                )
        stopped = False
    finally:
        _finish(proc, args, kill=stopped)


class _Batch:
    """One ``git cat-file --batch``: objects by id, their contents streamed."""

    def __init__(self, repo: Path, incoming: Path | None = None) -> None:
        self.args = ["cat-file", "--batch"]
        self.proc = _popen(self.args, repo, stdin=True, incoming=incoming)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout

    def open(self, oid: str) -> tuple[str, int]:
        """Ask for an object: its type and size. Its contents are next on ``stdout``, followed
        by a newline: read them with ``read`` or ``skip``."""
        self.stdin.write(oid.encode() + b"\n")
        self.stdin.flush()
        header = self.stdout.readline(1024).split()
        if len(header) != 3 or not header[2].isdigit():
            raise DockyardError(f"git cat-file could not read object {oid}: {b' '.join(header).decode(errors='replace')}")
        return header[1].decode(), int(header[2])

    def read(self, size: int) -> bytes:
        data = self.stdout.read(size)
        self.stdout.read(1)
        if len(data) != size:
            raise DockyardError("git cat-file stopped in the middle of an object")
        return data

    def skip(self, size: int) -> None:
        while size > 0:
            data = self.stdout.read(min(size, _CHUNK))
            if not data:
                raise DockyardError("git cat-file stopped in the middle of an object")
            size -= len(data)
        self.stdout.read(1)

    def close(self) -> None:
        _finish(self.proc, self.args, kill=True)


class _Contents:
    """A blob's contents as a file object tarfile copies from, ``size`` bytes and no more."""

    def __init__(self, batch: _Batch, size: int) -> None:
        self.batch, self.left = batch, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.batch.stdout.read(n) if n else b""
        self.left -= len(data)
        return data


class Tree:
    """A commit's files, listed once; blobs read on demand, each within a size limit.

    Use as a context manager: it keeps one ``git cat-file --batch`` open for its reads."""

    def __init__(self, repo: Path, commit: str, max_entries: int = MAX_TREE_ENTRIES) -> None:
        self.repo = repo
        self.entries = {e.name: e for e in tree_entries(repo, _commit(commit), max_entries)}
        self._batch: _Batch | None = None

    def paths(self) -> list[str]:
        return list(self.entries)

    def size(self, path: str) -> int | None:
        entry = self.entries.get(path)
        return entry.size if entry is not None and entry.kind == "blob" else None

    def read(self, path: str, limit: int = MAX_READ_BYTES) -> str | None:
        """A file's text; None when the commit has no such file; InvalidSource over ``limit``."""
        entry = self.entries.get(path)
        if entry is None or entry.kind != "blob":
            return None
        if entry.size > limit:
            raise too_large(path, entry.size, limit)
        if self._batch is None:
            self._batch = _Batch(self.repo)
        kind, size = self._batch.open(entry.oid)
        if kind != "blob" or size != entry.size:
            self._batch.skip(size)
            raise DockyardError(f"{path}: git has a {kind} of {size} bytes where ls-tree listed a blob")
        return self._batch.read(size).decode(errors="replace")

    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()
            self._batch = None

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def list_files(repo: Path, commit: str, max_entries: int = MAX_TREE_ENTRIES) -> list[str]:
    """The paths of a commit's files (submodules included), at most ``max_entries``."""
    return [e.name for e in tree_entries(repo, _commit(commit), max_entries)]


def read_file(repo: Path, commit: str, path: str, limit: int = MAX_READ_BYTES,
              incoming: Path | None = None) -> str | None:
    """A file's text; None when the commit has no such file. One ``git cat-file --batch`` gives
    its size before its contents: a file over ``limit`` is refused (InvalidSource naming it),
    never read (git is stopped)."""
    if "\n" in path or "\0" in path:
        return None
    name = f"{_commit(commit)}:{path}".encode(errors="surrogateescape")
    batch = _Batch(repo, incoming)
    try:
        batch.stdin.write(name + b"\n")
        batch.stdin.flush()
        header = batch.stdout.readline(len(name) + 64).split()  # "<oid> <type> <size>", or "<name> missing"
        if len(header) != 3 or not _is_oid(header[0].decode(errors="replace")) or header[1] != b"blob" \
                or not header[2].isdigit():
            return None
        size = int(header[2])
        if size > limit:
            raise too_large(path, size, limit)
        return batch.read(size).decode(errors="replace")
    finally:
        batch.close()


def _commit_time(batch: _Batch, commit: str) -> int:
    kind, size = batch.open(commit)
    if kind != "commit" or size > MAX_READ_BYTES:
        batch.skip(size)
        return 0
    for line in batch.read(size).split(b"\n"):
        if line.startswith(b"committer "):
            words = line.split()
            return int(words[-2]) if len(words) >= 2 and words[-2].isdigit() else 0
        if not line:
            break
    return 0


def write_archive(
    repo: Path, commit: str, out: IO[bytes], path: str = "", max_bytes: int = MAX_ARCHIVE_BYTES,
    max_entries: int = MAX_TREE_ENTRIES, entries: list[TreeEntry] | None = None,
) -> None:
    """A tar of the commit's tree (or of its folder ``path``, as the tar's root) into ``out``.

    Files keep their executable bit, symlinks stay symlinks, submodules are left out; every
    entry is dated with the commit. The blobs are copied one by one from git into ``out``; the
    total size is checked from the listing (``entries``, when the caller listed the tree
    already) before anything is copied."""
    if path and (path.startswith(("/", "-")) or ".." in path.split("/") or "\n" in path):
        raise DockyardError(f"not a folder of the repository: {path!r}")
    commit = _commit(commit)
    if entries is None:
        entries = list(tree_entries(repo, f"{commit}:{path}" if path else commit, max_entries))
    total = sum(e.size for e in entries if e.kind == "blob")
    if total > max_bytes:
        raise InvalidSource(
            f"the files of the build context {path or '(the repository)'} add up to {total} bytes, more than "
            f"the {max_bytes // 1024**2} MiB dockyard sends to a build",
            "keep large data out of the repository, or out of the Dockerfile's folder",
        )
    import tarfile  # here: the pre-receive hook imports this module for Tree, and starts quicker without it

    batch = _Batch(repo)
    try:
        mtime = _commit_time(batch, commit)
        folders: set[bytes] = set()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                          errors="surrogateescape") as tar:
            for entry in entries:
                if entry.kind != "blob":
                    continue  # a submodule: its commit is not in this repository
                parts = entry.path.split(b"/")
                for depth in range(1, len(parts)):
                    folder = b"/".join(parts[:depth])
                    if folder not in folders:
                        folders.add(folder)
                        tar.addfile(_info(folder, tarfile.DIRTYPE, 0o755, mtime))
                kind, size = batch.open(entry.oid)
                if kind != "blob" or size != entry.size:
                    batch.skip(size)
                    raise DockyardError(f"{entry.name}: git has a {kind} of {size} bytes where ls-tree listed a blob")
                if entry.mode == "120000":
                    if size > MAX_PATH_BYTES:
                        batch.skip(size)
                        raise InvalidSource(f"{entry.name}: a symlink to a path longer than {MAX_PATH_BYTES} bytes")
                    info = _info(entry.path, tarfile.SYMTYPE, 0o777, mtime)
                    info.linkname = batch.read(size).decode(errors="surrogateescape")
                    tar.addfile(info)
                    continue
                info = _info(entry.path, tarfile.REGTYPE, 0o755 if entry.mode == "100755" else 0o644, mtime)
                info.size = size
                tar.addfile(info, _Contents(batch, size))
                batch.stdout.read(1)  # the newline after the contents
    finally:
        batch.close()


def _info(path: bytes, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    import tarfile  # loaded by write_archive already

    info = tarfile.TarInfo(path.decode(errors="surrogateescape"))
    info.type, info.mode, info.mtime = kind, mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


# -- the repositories ---------------------------------------------------------------------------


def _is_oid(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _plain_ref(repo: Path, ref: str) -> str | None:
    """The object id ``ref`` holds, read from its loose file or else from ``packed-refs`` (git
    renames a new file over either, so a read sees the old id or the new one); "" when neither
    has the ref; None when git must be asked (a symbolic ref, a file that does not read as one)."""
    try:
        text = (repo / ref).read_text().strip()
    except FileNotFoundError:
        text = None
    except OSError:
        return None
    if text is not None:
        return text if _is_oid(text) else None
    try:
        packed = (repo / "packed-refs").read_text()
    except FileNotFoundError:
        return ""
    except OSError:
        return None
    for line in packed.splitlines():
        oid, _, name = line.partition(" ")
        if name == ref:
            return oid if _is_oid(oid) else None
    return ""


class GitRepos:
    """One bare repository per app under ``root``; hooks call back into dockyard."""

    def __init__(self, root: Path, max_push_bytes: int, max_archive_bytes: int = MAX_ARCHIVE_BYTES) -> None:
        self.root = root
        self.max_push_bytes = max_push_bytes
        self.max_archive_bytes = max_archive_bytes
        self._files: dict[tuple[str, str], list[str]] = {}
        # the commit listed last, whole: the tar of its root (a build context) is written from it
        self._listed: tuple[tuple[str, str], list[TreeEntry]] | None = None

    def path(self, app: str) -> Path:
        """``app``: the app's own repository; ``APP/NAME``: another repo of the app (names.repo_key)."""
        owner, _, repo = app.partition("/")
        if repo:
            return self.root / names.app_name(owner) / f"{names.repo_name(repo)}.git"
        return self.root / f"{names.app_name(app)}.git"

    def exists(self, app: str) -> bool:
        return (self.path(app) / "HEAD").is_file()

    def create(self, app: str) -> None:
        path = self.path(app)
        if not self.exists(app):
            path.parent.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", "--initial-branch=main", str(path)])
        self.configure(app)

    def configure(self, app: str) -> None:
        """(Re)write hooks and limits; run at creation and at every server start."""
        path = self.path(app)
        for key, value in (
            ("receive.maxInputSize", str(self.max_push_bytes)),
            ("receive.unpackLimit", "1"),  # always index-pack: it names the size limit when hit
            ("receive.fsckObjects", "true"),  # malformed objects are refused as they arrive
            ("transfer.fsckObjects", "true"),
            ("receive.denyDeletes", "false"),
            ("receive.denyNonFastForwards", "false"),
            ("http.receivepack", "true"),
            ("core.logAllRefUpdates", "true"),
        ):
            run_git(["config", key, value], cwd=path)
        for hook in HOOKS:
            script = path / "hooks" / hook
            # post-receive starts as the deploy does, and only follows it: it yields the CPU to it
            nice = "import os\nos.nice(10)\n" if hook == "post-receive" else ""
            script.write_text(
                f"#!{sys.executable}\n"
                f"{nice}"
                "from dockyard.entrypoints.hooks import run\n"
                f"run({hook!r})\n"
            )
            script.chmod(0o755)

    def delete(self, app: str) -> None:
        import shutil  # here, as tarfile: not for the pre-receive hook

        shutil.rmtree(self.path(app), ignore_errors=True)
        if "/" not in app:  # the app's other repos go with it
            shutil.rmtree(self.root / names.app_name(app), ignore_errors=True)

    def accepts_branch(self, name: str) -> bool:
        return check_ref_format(name)

    def head(self, app: str, branch: str) -> str | None:
        # Read directly (a deploy queued by pre-receive polls it while the push lands): the loose
        # ref a push leaves, else packed-refs; git is asked only when neither reads plainly.
        found = _plain_ref(self.path(app), f"refs/heads/{names.branch_name(branch)}")
        if found is not None:
            return found or None
        try:
            out = run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
                          cwd=self.path(app))
        except GitError:
            return None
        return out.decode().strip() or None

    def tag(self, app: str, name: str, oid: str = "", incoming: str = "") -> str | None:
        rev = oid if oid and _is_oid(oid) else f"refs/tags/{names.branch_name(name)}"
        proc = _popen(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], self.path(app),
                      incoming=self.incoming(app, incoming) if incoming else None)
        assert proc.stdout is not None
        out = proc.stdout.read().decode().strip()
        try:
            _finish(proc, ["rev-parse", rev])
        except GitError:
            return None
        return out if _is_oid(out) else None

    def incoming(self, app: str, quarantine: str) -> Path:
        """The folder where git receive-pack keeps the objects of a push until its pre-receive
        hook accepts it (the hook's GIT_QUARANTINE_PATH): a folder of the app's repository only."""
        objects = self.path(app).resolve() / "objects"
        found = Path(quarantine).resolve() if quarantine else None
        if found is None or found.parent != objects or not found.name.startswith("tmp_objdir-incoming-") \
                or not found.is_dir():
            raise DockyardError("the push's objects are not in its repository's quarantine folder",
                                "push again (with git 2.13 or later on the server)")
        return found

    def files(self, app: str, commit: str, incoming: str = "") -> list[str]:
        key = (app, commit)  # a commit's tree never changes: remember the last few
        if key not in self._files:
            if len(self._files) > 64:
                self._files.pop(next(iter(self._files)))
            entries = list(tree_entries(self.path(app), _commit(commit),
                                        incoming=self.incoming(app, incoming) if incoming else None))
            self._listed = (key, entries)
            self._files[key] = [e.name for e in entries]
        return list(self._files[key])

    def read(self, app: str, commit: str, path: str, limit: int = MAX_READ_BYTES, incoming: str = "") -> str | None:
        return read_file(self.path(app), commit, path, limit, self.incoming(app, incoming) if incoming else None)

    def commits(self, app: str, commit: str, since: str | None = None, limit: int = 100) -> list[tuple[str, int]]:
        """The commits ``commit`` brings that ``since`` has not (all its history without it), newest
        first, at most ``limit``: (id, commit time in Unix seconds). Only ``commit`` when ``since``
        is unknown here."""
        args = ["log", f"--max-count={max(1, min(limit, 1000))}", "--format=%H %ct", _commit(commit)]
        try:
            out = run_git([*args, "--not", _commit(since)] if since else args, cwd=self.path(app))
        except GitError:
            out = run_git([*args[:1], "--max-count=1", *args[2:]], cwd=self.path(app))
        found = [line.split() for line in out.decode().splitlines()]
        return [(sha, int(when)) for sha, when in found]

    def archive(self, app: str, commit: str, out: IO[bytes], path: str = "") -> None:
        listed = self._listed
        entries = listed[1] if listed is not None and listed[0] == (app, commit) and not path else None
        write_archive(self.path(app), commit, out, path, self.max_archive_bytes, entries=entries)
