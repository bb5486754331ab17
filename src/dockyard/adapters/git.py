"""Bare git repositories on disk, read with the real ``git`` (argument lists only)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from dockyard.domain import names
from dockyard.domain.errors import DockyardError, NotFound, Unavailable

HOOKS = ("pre-receive", "post-receive")


class GitError(DockyardError):
    def __init__(self, args: list[str], code: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({code}): {stderr.strip()[:500]}")
        self.code = code


def run_git(args: list[str], cwd: Path | None = None, stdout: IO[bytes] | None = None) -> bytes:
    if cwd is not None and not cwd.is_dir():
        raise NotFound(f"no repository at {cwd}", "create the app first: dockyard apps create NAME")
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, stdout=stdout if stdout else subprocess.PIPE,
            stderr=subprocess.PIPE, check=False, timeout=300,
        )
    except FileNotFoundError:
        raise Unavailable("git is not installed", "install it: apt-get install git") from None
    if proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout or b""


def check_ref_format(branch: str) -> bool:
    """git's own rules, on top of dockyard's stricter names.branch_name."""
    return subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, check=False
    ).returncode == 0


class GitRepos:
    """One bare repository per app under ``root``; hooks call back into dockyard."""

    def __init__(self, root: Path, max_push_bytes: int) -> None:
        self.root = root
        self.max_push_bytes = max_push_bytes
        self._files: dict[tuple[str, str], list[str]] = {}

    def path(self, app: str) -> Path:
        return self.root / f"{names.app_name(app)}.git"

    def exists(self, app: str) -> bool:
        return (self.path(app) / "HEAD").is_file()

    def create(self, app: str) -> None:
        path = self.path(app)
        if not self.exists(app):
            self.root.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", "--initial-branch=main", str(path)])
        self.configure(app)

    def configure(self, app: str) -> None:
        """(Re)write hooks and limits; run at creation and at every server start."""
        path = self.path(app)
        for key, value in (
            ("receive.maxInputSize", str(self.max_push_bytes)),
            ("receive.unpackLimit", "1"),  # always index-pack: it names the size limit when hit
            ("receive.denyDeletes", "false"),
            ("receive.denyNonFastForwards", "false"),
            ("http.receivepack", "true"),
            ("core.logAllRefUpdates", "true"),
        ):
            run_git(["config", key, value], cwd=path)
        for hook in HOOKS:
            script = path / "hooks" / hook
            script.write_text(
                f"#!{sys.executable}\n"
                "import sys\n"
                "from dockyard.entrypoints.hooks import main\n"
                f"sys.exit(main({hook!r}))\n"
            )
            script.chmod(0o755)

    def delete(self, app: str) -> None:
        shutil.rmtree(self.path(app), ignore_errors=True)

    def head(self, app: str, branch: str) -> str | None:
        # A push leaves a loose ref: read it directly (polled while a push lands), else ask git.
        loose = self.path(app) / "refs" / "heads" / names.branch_name(branch)
        try:
            text = loose.read_text().strip()
        except OSError:
            text = ""
        if len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text):
            return text
        try:
            out = run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
                          cwd=self.path(app))
        except GitError:
            return None
        return out.decode().strip() or None

    def files(self, app: str, commit: str) -> list[str]:
        key = (app, commit)  # a commit's tree never changes: remember the last few
        if key not in self._files:
            if len(self._files) > 64:
                self._files.pop(next(iter(self._files)))
            self._files[key] = list_files(self.path(app), commit)
        return list(self._files[key])

    def read(self, app: str, commit: str, path: str) -> str | None:
        return read_file(self.path(app), commit, path)

    def archive(self, app: str, commit: str, out: IO[bytes], path: str = "") -> None:
        if path and (path.startswith(("/", "-")) or ".." in path.split("/")):
            raise DockyardError(f"not a folder of the repository: {path!r}")
        args = ["archive", "--format=tar", f"{_commit(commit)}:{path}" if path else _commit(commit)]
        try:
            out.fileno()
        except (OSError, AttributeError, ValueError):  # an in-memory file: copy the bytes over
            out.write(run_git(args, cwd=self.path(app)))
            return
        run_git(args, cwd=self.path(app), stdout=out)


def _commit(commit: str) -> str:
    if not commit or any(c not in "0123456789abcdef" for c in commit) or len(commit) not in (40, 64):
        raise DockyardError(f"not a commit id: {commit!r}")
    return commit


def list_files(repo: Path, commit: str) -> list[str]:
    out = run_git(["ls-tree", "-r", "-z", "--name-only", _commit(commit)], cwd=repo)
    return [p for p in out.decode(errors="replace").split("\0") if p]


def read_file(repo: Path, commit: str, path: str, limit: int = 1024 * 1024) -> str | None:
    try:
        data = run_git(["cat-file", "blob", f"{_commit(commit)}:{path}"], cwd=repo)
    except GitError:
        return None
    return data[:limit].decode(errors="replace")
