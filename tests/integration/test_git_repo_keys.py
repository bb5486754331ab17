"""An app's repos on disk, with the real ``git``: ``APP`` is the app's own bare repository,
``APP/NAME`` another repo of the app (names.repo_key), each a bare repository of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.adapters.git import GitRepos, run_git
from dockyard.domain.errors import InvalidName

pytestmark = pytest.mark.integration


@pytest.fixture
def repos(tmp_path: Path) -> GitRepos:
    return GitRepos(tmp_path / "repos", max_push_bytes=10 * 1024 * 1024)


def is_bare(path: Path) -> bool:
    return run_git(["rev-parse", "--is-bare-repository"], cwd=path).decode().strip() == "true"


def test_the_apps_own_repo_and_another_are_distinct_bare_repos(repos: GitRepos) -> None:
    root = repos.root
    assert repos.path("app") == root / "app.git"
    assert repos.path("app/api") == root / "app" / "api.git"
    assert not repos.exists("app") and not repos.exists("app/api")

    repos.create("app")
    assert repos.exists("app") and not repos.exists("app/api")
    repos.create("app/api")
    repos.create("app/base-container-images")
    assert repos.exists("app/api") and repos.exists("app/base-container-images")
    for key, path in (("app", root / "app.git"), ("app/api", root / "app" / "api.git"),
                      ("app/base-container-images", root / "app" / "base-container-images.git")):
        assert (path / "HEAD").is_file(), key
        assert is_bare(path), key
        assert (path / "hooks" / "pre-receive").is_file(), key  # configured as the app's own
    assert (root / "app.git").resolve() != (root / "app" / "api.git").resolve()
    assert not (root / "app.git" / "app").exists() and not (root / "app" / "HEAD").exists()

    repos.create("app/api")  # again: harmless
    assert repos.exists("app/api")


def test_deleting_another_repo_keeps_the_apps_own(repos: GitRepos) -> None:
    repos.create("app")
    repos.create("app/api")
    repos.create("app/vitrine")
    repos.delete("app/api")
    assert not repos.exists("app/api") and not (repos.root / "app" / "api.git").exists()
    assert repos.exists("app") and repos.exists("app/vitrine")


def test_deleting_the_app_takes_its_other_repos_and_no_other_apps(repos: GitRepos) -> None:
    for key in ("app", "app/api", "app/vitrine", "other", "other/api"):
        repos.create(key)
    repos.delete("app")
    assert not repos.exists("app") and not repos.exists("app/api") and not repos.exists("app/vitrine")
    assert not (repos.root / "app.git").exists() and not (repos.root / "app").exists()
    assert repos.exists("other") and repos.exists("other/api")
    repos.delete("app")  # again: nothing left, no error


@pytest.mark.parametrize("key", ["app/Bad", "app/x.git", "app/a..b", "app/-x", "app/a/b", "app/../other"])
def test_a_bad_repo_name_in_a_key_is_refused(repos: GitRepos, key: str) -> None:
    with pytest.raises(InvalidName, match="invalid repo name"):
        repos.path(key)
    with pytest.raises(InvalidName, match="invalid repo name"):
        repos.create(key)
    assert not repos.root.exists() or list(repos.root.iterdir()) == []


@pytest.mark.parametrize("key", ["Bad/api", "../x/api", "Bad"])
def test_a_bad_app_name_in_a_key_is_refused(repos: GitRepos, key: str) -> None:
    with pytest.raises(InvalidName, match="invalid app name"):
        repos.create(key)


def test_a_tag_is_peeled_to_its_commit_annotated_or_lightweight(repos: GitRepos, tmp_path: Path) -> None:
    repos.create("app/api")
    work = tmp_path / "work"
    work.mkdir()
    ident = ["-c", "user.name=t", "-c", "user.email=t@localhost"]
    run_git(["init", "-q", "-b", "main", str(work)])
    (work / "f").write_text("one\n")
    run_git(["add", "f"], cwd=work)
    run_git([*ident, "commit", "-q", "-m", "one"], cwd=work)
    commit = run_git(["rev-parse", "HEAD"], cwd=work).decode().strip()
    run_git([*ident, "tag", "-a", "v1", "-m", "annotated"], cwd=work)
    run_git(["tag", "v1-light"], cwd=work)
    tag_object = run_git(["rev-parse", "v1"], cwd=work).decode().strip()
    assert tag_object != commit
    run_git(["fetch", "-q", str(work), "refs/heads/main:refs/heads/main", "refs/tags/*:refs/tags/*"],
            cwd=repos.path("app/api"))  # (a fetch: no hook calls dockyard)

    assert repos.tag("app/api", "v1") == commit  # peeled
    assert repos.tag("app/api", "v1-light") == commit
    assert repos.tag("app/api", "v2") is None
    assert repos.tag("app/api", "", tag_object) == commit  # the object a push brings, peeled
    assert repos.tag("app/api", "", "0" * 40) is None
