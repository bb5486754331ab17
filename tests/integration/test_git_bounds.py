"""What a push stored is read within bounds, with the real ``git``: blobs by size first, trees as
streams, build contexts written by dockyard (no ``git archive``, no pushed .gitattributes), git
without system or global configuration, and the parsing of a commit in a bounded child."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.adapters import git
from dockyard.adapters.git import GitError, GitRepos, Tree, list_files, read_file, run_git, write_archive
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.services import inspect
from tests.support import head, make_repo

pytestmark = pytest.mark.integration

APP = "bounds"


# dockyard's hooks call its API, which these tests do not run: git receives without them
NO_HOOKS = "--receive-pack=git -c core.hooksPath=/dev/null receive-pack"


def push(repos: GitRepos, work: Path, files: dict[str, str]) -> str:
    """Commit ``files`` in ``work`` and push them to the app's bare repository (without hooks)."""
    make_repo(work, files)
    env = {"PATH": os.environ["PATH"], "HOME": str(work.parent)}
    done = subprocess.run(["git", "push", "-q", NO_HOOKS, str(repos.path(APP)), "HEAD:main"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return head(work)


@pytest.fixture
def repos(tmp_path: Path) -> GitRepos:
    repos = GitRepos(tmp_path / "repos", max_push_bytes=50 * 1024 * 1024)
    repos.create(APP)
    return repos


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


def tar_of(repos: GitRepos, commit: str, path: str = "") -> dict[str, tarfile.TarInfo]:
    out = io.BytesIO()
    repos.archive(APP, commit, out, path)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name: m for m in tar.getmembers()}


def content(repos: GitRepos, commit: str, name: str, path: str = "") -> bytes:
    out = io.BytesIO()
    repos.archive(APP, commit, out, path)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None
        return extracted.read()


# -- blobs ------------------------------------------------------------------------------------


def test_a_blob_over_the_limit_is_refused_not_truncated(repos: GitRepos, work: Path) -> None:
    commit = push(repos, work, {"big.txt": "x" * 5000, "small.txt": "ok\n"})
    repo = repos.path(APP)
    with pytest.raises(InvalidSource) as info:
        read_file(repo, commit, "big.txt", limit=4096)
    assert info.value.message == "big.txt is 5000 bytes, more than the 4 KiB dockyard reads of such a file"
    assert read_file(repo, commit, "big.txt", limit=5000) == "x" * 5000
    assert read_file(repo, commit, "small.txt", limit=3) == "ok\n"
    with Tree(repo, commit) as tree:
        with pytest.raises(InvalidSource, match=r"big\.txt is 5000 bytes"):
            tree.read("big.txt", 4999)
        assert tree.read("small.txt") == "ok\n"
        assert tree.read("missing") is None


def test_a_blob_is_not_read_whole_before_its_size_is_known(repos: GitRepos, work: Path) -> None:
    # 256 MiB of zeros is a few hundred KiB in the pack. Read in a process limited to 128 MiB of
    # address space, the refusal comes from its size: the blob itself is never read.
    work.mkdir(parents=True)
    with (work / "zeros.bin").open("wb") as f:
        f.truncate(256 * 1024 * 1024)
    commit = push(repos, work, {"Dockerfile": "FROM alpine\n"})
    code = (
        "import resource, sys; from pathlib import Path\n"
        "from dockyard.adapters.git import Tree, read_file\n"
        "from dockyard.domain.errors import InvalidSource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (128 << 20, 128 << 20))\n"
        "repo, commit = Path(sys.argv[1]), sys.argv[2]\n"
        "for read in (lambda: read_file(repo, commit, 'zeros.bin'), lambda: Tree(repo, commit).read('zeros.bin')):\n"
        "    try:\n"
        "        read()\n"
        "    except InvalidSource as exc:\n"
        "        print(exc.message)\n"
    )
    done = subprocess.run([os.sys.executable, "-c", code, str(repos.path(APP)), commit], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.splitlines() == ["zeros.bin is 268435456 bytes, more than the 1024 KiB dockyard reads of "
                                        "such a file"] * 2, done.stderr


def test_a_listing_over_its_limit_is_refused(repos: GitRepos, work: Path) -> None:
    commit = push(repos, work, {f"f{i}.txt": str(i) for i in range(30)})
    assert len(list_files(repos.path(APP), commit)) == 30
    assert len(list_files(repos.path(APP), commit, max_entries=30)) == 30
    with pytest.raises(InvalidSource, match="the pushed commit has more than 29 files"):
        list_files(repos.path(APP), commit, max_entries=29)
    with pytest.raises(InvalidSource, match="more than 10 files"):
        Tree(repos.path(APP), commit, max_entries=10)


def test_reading_what_is_not_a_file(repos: GitRepos, work: Path) -> None:
    commit = push(repos, work, {"dir/a.txt": "a\n"})
    repo = repos.path(APP)
    assert read_file(repo, commit, "dir") is None
    assert read_file(repo, commit, "nope\nx") is None
    with pytest.raises(DockyardError, match="not a commit id"):
        read_file(repo, "HEAD", "dir/a.txt")
    with pytest.raises(GitError):
        list_files(repo, "0" * 40)


# -- build contexts -----------------------------------------------------------------------------


def test_archive_ignores_pushed_gitattributes(repos: GitRepos, work: Path) -> None:
    files = {
        ".gitattributes": "secret.txt export-ignore\nversion.txt export-subst\nDockerfile filter=lfs\n",
        "secret.txt": "still built\n",
        "version.txt": "$Format:%H$\n",
        "Dockerfile": "FROM alpine\n",
    }
    commit = push(repos, work, files)
    members = tar_of(repos, commit)
    assert sorted(members) == sorted(files)
    for name, text in files.items():
        assert content(repos, commit, name) == text.encode()
    # git archive would have applied them:
    by_git = subprocess.run(["git", "archive", "--format=tar", commit], cwd=repos.path(APP), capture_output=True,
                            check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(by_git)) as tar:
        assert "secret.txt" not in tar.getnames()


def test_archive_keeps_exec_bits_and_symlinks_and_skips_submodules(repos: GitRepos, work: Path) -> None:
    make_repo(work, {"run.sh": "#!/bin/sh\necho hi\n", "data/a.txt": "a\n"})
    (work / "run.sh").chmod(0o755)
    os.symlink("data/a.txt", work / "link")
    os.symlink("../outside", work / "data" / "up")
    subprocess.run(["git", "update-index", "--add", "--cacheinfo", "160000," + "1" * 40 + ",vendor/lib"], cwd=work,
                   check=True)
    commit = push(repos, work, {})
    members = tar_of(repos, commit)
    assert members["run.sh"].mode == 0o755 and members["run.sh"].isfile()
    assert members["data/a.txt"].mode == 0o644
    assert members["link"].issym() and members["link"].linkname == "data/a.txt"
    assert members["data/up"].issym() and members["data/up"].linkname == "../outside"
    assert members["data"].isdir()
    assert "vendor/lib" not in members and "vendor" not in members
    when = int(subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=work, capture_output=True, text=True,
                              check=True).stdout)
    assert {m.mtime for m in members.values()} == {when}


def test_archive_of_a_folder_has_the_folder_as_root(repos: GitRepos, work: Path) -> None:
    commit = push(repos, work, {"api/Dockerfile": "FROM alpine\n", "api/src/main.py": "print()\n", "web/x": "x\n"})
    assert sorted(n for n, m in tar_of(repos, commit, "api").items() if m.isfile()) == ["Dockerfile", "src/main.py"]
    assert content(repos, commit, "src/main.py", "api") == b"print()\n"
    for bad in ("../web", "/etc", "-x"):
        with pytest.raises(DockyardError, match="not a folder of the repository"):
            tar_of(repos, commit, bad)
    with pytest.raises(GitError):
        tar_of(repos, commit, "missing")


def test_archive_into_a_real_file_streams_each_blob(repos: GitRepos, work: Path, tmp_path: Path) -> None:
    blob = os.urandom(3 * 1024 * 1024)
    make_repo(work, {"Dockerfile": "FROM alpine\n"})
    (work / "blob.bin").write_bytes(blob)
    commit = push(repos, work, {})
    with (tmp_path / "context.tar").open("w+b") as out:
        repos.archive(APP, commit, out)
        out.seek(0)
        with tarfile.open(fileobj=out) as tar:
            extracted = tar.extractfile("blob.bin")
            assert extracted is not None and extracted.read() == blob


def test_archive_over_its_total_is_refused_before_writing(repos: GitRepos, work: Path) -> None:
    commit = push(repos, work, {"a.txt": "a" * 600, "b.txt": "b" * 600})
    out = io.BytesIO()
    with pytest.raises(InvalidSource, match="add up to 1200 bytes, more than"):
        write_archive(repos.path(APP), commit, out, max_bytes=1000)
    assert out.getvalue() == b""
    write_archive(repos.path(APP), commit, out, max_bytes=1200)
    assert out.getvalue()


# -- git's configuration ----------------------------------------------------------------------


def test_git_ignores_system_global_and_passed_configuration(
    repos: GitRepos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for scope in ("system", "global"):
        (tmp_path / scope).write_text(f"[probe]\n\tscope = {scope}\n[alias]\n\tls-tree = !touch /tmp/pwned\n")
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(tmp_path / "system"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global"))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "probe.scope")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "environment")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'probe.scope'='parameters'")
    # the same probe is visible to a plain git:
    plain = subprocess.run(["git", "config", "--get-all", "probe.scope"], cwd=repos.path(APP), capture_output=True,
                           text=True)
    assert "global" in plain.stdout
    with pytest.raises(GitError):
        run_git(["config", "--get-all", "probe.scope"], cwd=repos.path(APP))
    assert run_git(["config", "--get", "core.attributesFile"], cwd=repos.path(APP)) == b"/dev/null\n"
    assert git.check_ref_format("main")


def test_safe_git_env_keeps_what_git_needs_and_drops_injected_configuration() -> None:
    base = {"PATH": "/usr/bin", "GIT_DIR": ".", "GIT_QUARANTINE_PATH": "/q", "GIT_OBJECT_DIRECTORY": "/q/o",
            "GIT_CONFIG_PARAMETERS": "'core.fsmonitor'='x'", "GIT_CONFIG_KEY_7": "core.pager", "GIT_CONFIG": "/x"}
    env = git.safe_git_env(base)
    assert {k: env[k] for k in ("PATH", "GIT_DIR", "GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY")} == {
        k: base[k] for k in ("PATH", "GIT_DIR", "GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY")}
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert "GIT_CONFIG_PARAMETERS" not in env and "GIT_CONFIG_KEY_7" not in env and "GIT_CONFIG" not in env
    assert base["GIT_CONFIG_KEY_7"] == "core.pager"  # the caller's mapping is left alone


def test_repositories_check_every_pushed_object(repos: GitRepos, work: Path) -> None:
    repo = repos.path(APP)
    assert run_git(["config", "--get", "receive.fsckObjects"], cwd=repo) == b"true\n"
    assert run_git(["config", "--get", "transfer.fsckObjects"], cwd=repo) == b"true\n"
    make_repo(work, {"a.txt": "a\n"})
    tree = subprocess.run(["git", "write-tree"], cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    bad = f"tree {tree}\nauthor nobody <no-email 1 +0000\ncommitter x <x@y> 1 +0000\n\nbad\n"
    commit = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"], cwd=work,
                            input=bad, capture_output=True, text=True, check=True).stdout.strip()
    env = {"PATH": os.environ["PATH"], "HOME": str(work.parent)}
    done = subprocess.run(["git", "push", NO_HOOKS, str(repo), f"{commit}:refs/heads/main"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "badEmail" in done.stderr and "fsck error" in done.stderr
    assert repos.head(APP, "main") is None
    # the check is what refused it: without it, git takes the same push
    for key in ("receive.fsckObjects", "transfer.fsckObjects"):
        run_git(["config", key, "false"], cwd=repo)
    again = subprocess.run(["git", "push", NO_HOOKS, str(repo), f"{commit}:refs/heads/main"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr


# -- a push read before git stores it (what pre-receive asks the server) --------------------------


QUARANTINE_HOOK = """#!{python}
import json, os, sys
sys.path[:0] = {path!r}
from pathlib import Path
from dockyard.adapters.git import GitRepos
repos = GitRepos(Path({root!r}), 1 << 20)
old, new, ref = sys.stdin.read().split()
incoming = os.environ["GIT_QUARANTINE_PATH"]
for name in ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH", "GIT_DIR"):
    os.environ.pop(name, None)  # as in the server's process, which the hook asks
seen = {{"files": repos.files({app!r}, new, incoming), "text": repos.read({app!r}, new, "a.txt", 100, incoming),
         "without": repos.read({app!r}, new, "a.txt", 100)}}  # not stored yet: not there
Path({out!r}).write_text(json.dumps(seen))
sys.exit(1)  # refused: git drops the quarantine folder
"""


def test_a_push_is_read_in_git_s_quarantine_before_it_is_stored(repos: GitRepos, work: Path, tmp_path: Path) -> None:
    import json
    import sys

    out = tmp_path / "seen.json"
    hook = repos.path(APP) / "hooks" / "pre-receive"
    hook.write_text(QUARANTINE_HOOK.format(python=sys.executable, path=[p for p in sys.path if p],
                                           root=str(repos.root), app=APP, out=str(out)))
    make_repo(work, {"a.txt": "pushed\n", "dir/b.txt": "b\n"})
    done = subprocess.run(["git", "push", "-q", str(repos.path(APP)), "HEAD:main"], cwd=work,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "pre-receive hook declined" in done.stderr
    seen = json.loads(out.read_text())
    assert sorted(seen["files"]) == ["a.txt", "dir/b.txt"] and seen["text"] == "pushed\n"
    assert seen["without"] is None
    assert repos.head(APP, "main") is None
    assert not list((repos.path(APP) / "objects").glob("tmp_objdir-incoming-*"))


@pytest.mark.parametrize("where", ["/tmp", "{repo}/objects", "{repo}/objects/tmp_objdir-incoming-../..",
                                   "{other}/objects/tmp_objdir-incoming-x", "{repo}/objects/pack"])
def test_only_a_quarantine_folder_of_the_app_s_own_repository_is_read(repos: GitRepos, where: str) -> None:
    repos.create("other")
    folder = where.format(repo=repos.path(APP), other=repos.path("other"))
    Path(repos.path("other") / "objects" / "tmp_objdir-incoming-x").mkdir()
    with pytest.raises(DockyardError, match="not in its repository's quarantine folder"):
        repos.files(APP, "a" * 40, folder)


# -- a commit parsed in a bounded child -------------------------------------------------------


COMPOSE = {
    "Dockerfile": "FROM alpine\nEXPOSE 8000\n",
    "worker/Dockerfile": "# 127.0.0.1:5100/bounds/worker\nFROM alpine\n",
    "app.env": "GREETING=hi\n",
    "docker-compose.yml": "services:\n  web: {build: ., ports: ['8000'], env_file: app.env}\n"
                          "  worker: {build: worker, privileged: true}\n",
}


def test_a_commit_is_inspected_in_a_child(repos: GitRepos, work: Path) -> None:
    commit = push(repos, work, COMPOSE)
    try:
        with pytest.raises(InvalidSource, match="services/worker/privileged"):
            inspect.inspect_commit(repos.path(APP), commit, APP, base_domain="localhost", registry="127.0.0.1:5100")
        found = inspect.inspect_commit(repos.path(APP), commit, APP, base_domain="localhost",
                                       domains=("bounds.example.com",), registry="127.0.0.1:5100",
                                       allowed=frozenset({"privileged"}))
    finally:
        inspect.shutdown()
    assert [s.dockerfile for s in found.images] == ["Dockerfile", "worker/Dockerfile"]
    by_name = {s.name: s for s in found.services}
    assert by_name["web"].image == "dockyard-build://Dockerfile"
    assert by_name["web"].environment == (("GREETING", "hi"),)
    assert by_name["web"].hosts[:2] == ("bounds.localhost", "bounds.example.com")
    assert by_name["worker"].privileged
    built = inspect.with_references(found.services, {"Dockerfile": "r/bounds/bounds:1", "worker/Dockerfile": "r/w:1"})
    assert {s.name: s.image for s in built} == {"web": "r/bounds/bounds:1", "worker": "r/w:1"}


def test_an_oversized_env_file_in_git_is_refused_naming_it(repos: GitRepos, work: Path) -> None:
    commit = push(repos, work, {**COMPOSE, "app.env": "A=1\n" * 70_000})
    try:
        with pytest.raises(InvalidSource, match=r"app\.env is 280000 bytes, more than the 256 KiB"):
            inspect.inspect_commit(repos.path(APP), commit, APP, base_domain="localhost",
                                   allowed=frozenset({"privileged"}))
    finally:
        inspect.shutdown()
