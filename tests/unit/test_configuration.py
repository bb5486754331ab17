"""Variables and secrets: the AES-256-GCM box and its key file, rotation (all or nothing, the key
file replaced only after the commit), precedence, references and spec hashes, redaction of job
logs, and the deploy pipeline handing them to services (fakes, a real SQLite store)."""

from __future__ import annotations

import json
import stat
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from dockyard.adapters.secret_box import KEY_BYTES, AesGcmCipher, KeyFile, key_id
from dockyard.adapters.sql_store import SqlStore
from dockyard.domain import configuration as cfg
from dockyard.domain.configuration import SecretUnreadable
from dockyard.domain.errors import DockyardError, InvalidName, Unavailable
from dockyard.domain.model import App, JobStatus, RunningService, ServiceSpec
from dockyard.domain.records import service_from_dict
from dockyard.fakes import FakeBuilder, FakeOrchestrator, FakeProxy, FakeRegistry, FakeRepos, FakeSecretFiles
from dockyard.services.configuration import Configuration
from dockyard.services.deploy import Deployer
from dockyard.services.inspect import parse_source
from dockyard.services.jobs import JobRunner
from tests.support import static_site

APP, ENV = "shop", "production"
AD = cfg.associated_data(APP, ENV, "token", 1)


# -- the box --------------------------------------------------------------------------------------
def test_a_sealed_secret_opens_with_its_key_and_associated_data() -> None:
    box = AesGcmCipher(b"k" * KEY_BYTES)
    sealed = box.seal(b"hunter2-value", AD)
    assert b"hunter2" not in sealed and len(sealed) == 12 + len(b"hunter2-value") + 16
    assert box.open(sealed, AD) == b"hunter2-value"
    assert box.seal(b"hunter2-value", AD) != sealed  # a fresh nonce each time
    assert box.open(box.seal(b"", AD), AD) == b""


def test_a_changed_ciphertext_does_not_open() -> None:
    box = AesGcmCipher(b"k" * KEY_BYTES)
    sealed = bytearray(box.seal(b"hunter2-value", AD))
    for i in (0, 12, len(sealed) - 1):  # the nonce, the ciphertext, the tag
        tampered = bytearray(sealed)
        tampered[i] ^= 1
        with pytest.raises(SecretUnreadable, match="does not decrypt"):
            box.open(bytes(tampered), AD)
    with pytest.raises(SecretUnreadable):
        box.open(bytes(sealed[:20]), AD)


@pytest.mark.parametrize("other", [
    cfg.associated_data("shop2", ENV, "token", 1), cfg.associated_data(APP, "staging", "token", 1),
    cfg.associated_data(APP, ENV, "token2", 1), cfg.associated_data(APP, ENV, "token", 2),
])
def test_a_ciphertext_moved_to_another_row_does_not_open(other: bytes) -> None:
    box = AesGcmCipher(b"k" * KEY_BYTES)
    with pytest.raises(SecretUnreadable):
        box.open(box.seal(b"hunter2-value", AD), other)


def test_another_key_does_not_open_it_and_has_another_id() -> None:
    one, two = AesGcmCipher(b"1" * KEY_BYTES), AesGcmCipher(b"2" * KEY_BYTES)
    with pytest.raises(SecretUnreadable):
        two.open(one.seal(b"value", AD), AD)
    assert one.key_id == key_id(b"1" * KEY_BYTES) != two.key_id and len(one.key_id) == 16
    assert "1111" not in repr(one)
    with pytest.raises(ValueError):
        AesGcmCipher(b"short")


def test_the_key_file_is_made_0600_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secrets.key"
    first = KeyFile(path).current()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyFile(path).current().key_id == first.key_id  # the next start reads it
    path.chmod(0o644)
    assert KeyFile(path).current().key_id == first.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # put right
    path.write_text("not base64!\n")
    with pytest.raises(Unavailable, match="cannot be read"):
        KeyFile(path)
    path.write_text("c2hvcnQ=\n")
    with pytest.raises(Unavailable, match="holds 5 bytes"):
        KeyFile(path)


def test_a_staged_key_replaces_the_file_only_when_promoted(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "secrets.key")
    old = keys.current()
    staged = keys.stage()
    assert keys.staged() is not None and keys.staged().key_id == staged.key_id  # type: ignore[union-attr]
    assert stat.S_IMODE(keys.staged_path.stat().st_mode) == 0o600
    assert KeyFile(tmp_path / "secrets.key").current().key_id == old.key_id
    keys.discard()
    assert keys.staged() is None and keys.current().key_id == old.key_id
    staged = keys.stage()
    keys.promote()
    assert keys.current().key_id == staged.key_id == KeyFile(tmp_path / "secrets.key").current().key_id
    assert not keys.staged_path.exists()


# -- names and values -----------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["", "1A", "A-B", "A B", "A=B", "a.b", "x" * 129, "A\n", "É"])
def test_bad_variable_and_secret_names_are_refused(key: str) -> None:
    with pytest.raises(InvalidName):
        cfg.variable_key(key)
    with pytest.raises(InvalidName):
        cfg.secret_name(key)


@pytest.mark.parametrize("name", ["Production", "prod_1", "-x", "x" * 41, "../x", ""])
def test_environments_are_named_like_apps(name: str) -> None:
    with pytest.raises(InvalidName, match="invalid environment name"):
        cfg.environment_name(name)
    assert cfg.environment_name("staging-2") == "staging-2"


def test_values_are_bounded_and_never_quoted() -> None:
    with pytest.raises(DockyardError, match="over the limit"):
        cfg.variable_value("K", "x" * (cfg.MAX_VARIABLE_BYTES + 1))
    for bad in ("", "a\0b", "s" * (cfg.MAX_SECRET_BYTES + 1)):
        with pytest.raises(DockyardError) as caught:
            cfg.secret_value("token", bad)
        assert (bad not in str(caught.value)) or not bad


# -- precedence, references, hashes ---------------------------------------------------------------
WEB = ServiceSpec("web", "registry/shop/site@sha256:" + "1" * 64, port=8000,
                  environment=(("MODE", "compose"), ("FROM_FILE", "env_file"), ("token", "compose")))


def test_variables_override_the_compose_file_and_secrets_override_both() -> None:
    configured = cfg.configure(WEB, {"MODE": "variable", "EXTRA": "x", "token": "variable"}, [("token", 3)],
                               "vol:/run/secrets:ro")
    assert dict(configured.environment) == {"MODE": "variable", "FROM_FILE": "env_file", "token": "<secret:token@v3>",
                                            "EXTRA": "x"}
    assert configured.secrets == (("token", 3),) and configured.binds == ("vol:/run/secrets:ro",)
    resolved = cfg.resolve(configured, {"token": "the-value"})
    assert dict(resolved.environment)["token"] == "the-value"
    assert resolved.spec_hash == configured.spec_hash  # the value is not part of it
    with pytest.raises(DockyardError, match="no value for secret token"):
        cfg.resolve(configured, {})


def test_a_spec_hash_follows_variables_and_secret_versions_not_values() -> None:
    plain = cfg.configure(WEB, {}, [])
    assert plain == WEB and plain.spec_hash == WEB.spec_hash  # nothing configured: the same container
    v1 = cfg.configure(WEB, {"A": "1"}, [("token", 1)], "m1")
    assert cfg.configure(WEB, {"A": "1"}, [("token", 1)], "m1").spec_hash == v1.spec_hash
    assert cfg.configure(WEB, {"A": "2"}, [("token", 1)], "m1").spec_hash != v1.spec_hash
    assert cfg.configure(WEB, {"A": "1"}, [("token", 2)], "m2").spec_hash != v1.spec_hash
    assert cfg.configure(WEB, {"A": "1"}, [("token", 1), ("other", 1)], "m3").spec_hash != v1.spec_hash
    assert cfg.resolve(v1, {"token": "a"}).spec_hash == cfg.resolve(v1, {"token": "b"}).spec_hash == v1.spec_hash
    stored = service_from_dict(json.loads(json.dumps(asdict(v1))))  # as a release keeps it
    assert stored == v1 and stored.spec_hash == v1.spec_hash


def test_a_release_records_names_and_versions_never_values() -> None:
    assert cfg.release_config({"B": "secret-ish", "A": "x"}, [("token", 2)]) == {
        "variables": ["A", "B"], "secrets": {"token": 2}}


# -- redaction ------------------------------------------------------------------------------------
def test_known_values_are_redacted_longest_first() -> None:
    pairs = cfg.redaction({"short": ["abc"], "token": ["s3cr3t-value"], "inner": ["s3cr3t"],
                           "pem": ["-----BEGIN-----\nAAAAbbbbCCCC\n-----END-----"]})
    clean = cfg.redactor(pairs)
    assert clean("token=s3cr3t-value; abc") == "token=<redacted:token>; abc"  # under 4 characters: left
    assert clean("just s3cr3t here") == "just <redacted:inner> here"
    assert clean("line AAAAbbbbCCCC") == "line <redacted:pem>"
    assert clean("nothing to see") == "nothing to see"


# -- the service: secrets, rotation, recovery -----------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    s = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
    s.migrate()
    s.create_app(App(APP))
    return s


@pytest.fixture
def keys(tmp_path: Path) -> KeyFile:
    return KeyFile(tmp_path / "secrets.key")


def test_rotation_seals_every_version_again_and_replaces_the_key_after_the_commit(
    store: SqlStore, keys: KeyFile, tmp_path: Path
) -> None:
    conf = Configuration(store, keys)
    conf.set_secret(APP, ENV, "token", "first-value")
    conf.set_secret(APP, ENV, "token", "second-value")
    conf.set_secret(APP, "staging", "db", "db-password")
    old = keys.current().key_id
    before = {(s.name, s.version): s.ciphertext for s in store.sealed_secrets()}

    out = conf.rotate_key()
    assert out == {"key_id": keys.current().key_id, "previous_key_id": old, "secrets": 3}
    assert out["key_id"] != old
    assert KeyFile(tmp_path / "secrets.key").current().key_id == out["key_id"]  # the file holds the new key
    assert not keys.staged_path.exists()
    after = store.sealed_secrets()
    assert {s.key_id for s in after} == {out["key_id"]}
    assert all(before[(s.name, s.version)] != s.ciphertext for s in after)
    assert [conf._open(s) for s in after] == ["first-value", "second-value", "db-password"]
    assert {s.name: s.key_id for s in conf.secrets(APP, ENV)} == {"token": out["key_id"]}


def test_a_rotation_that_fails_changes_nothing(store: SqlStore, keys: KeyFile, tmp_path: Path) -> None:
    conf = Configuration(store, keys)
    conf.set_secret(APP, ENV, "token", "first-value")
    foreign = AesGcmCipher(b"f" * KEY_BYTES)  # a row sealed with a key this server does not have
    store.add_secret(APP, ENV, "other", lambda v: (foreign.key_id, foreign.seal(b"x", b"")))
    before = [(s.key_id, s.ciphertext) for s in store.sealed_secrets()]
    key_text = (tmp_path / "secrets.key").read_bytes()

    with pytest.raises(SecretUnreadable, match=f"sealed with key {foreign.key_id}"):
        conf.rotate_key()
    assert [(s.key_id, s.ciphertext) for s in store.sealed_secrets()] == before  # rolled back
    assert (tmp_path / "secrets.key").read_bytes() == key_text and not keys.staged_path.exists()
    assert conf.check() == [foreign.key_id]


def test_a_rotation_cut_off_is_finished_or_dropped_at_the_next_start(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    conf = Configuration(store, KeyFile(path))
    conf.set_secret(APP, ENV, "token", "the-value")

    # cut off before the commit: the staged key was never used
    KeyFile(path).stage()
    restarted = Configuration(store, KeyFile(path))
    restarted.recover()
    assert not restarted.keys.staged() and restarted.key_id() == conf.key_id()

    # cut off after the commit, before the key file was replaced
    keys = KeyFile(path)
    new = keys.stage()
    store.reseal_secrets(lambda s: (new.key_id, new.seal(keys.current().open(
        s.ciphertext, cfg.associated_data(s.app, s.environment, s.name, s.version)),
        cfg.associated_data(s.app, s.environment, s.name, s.version))))
    restarted = Configuration(store, KeyFile(path))
    assert restarted.check() == [new.key_id]
    restarted.recover()
    assert restarted.key_id() == new.key_id and restarted.check() == []
    assert restarted._open(store.sealed_secrets()[0]) == "the-value"


def test_a_secret_moved_to_another_row_in_the_database_does_not_open(store: SqlStore, keys: KeyFile) -> None:
    conf = Configuration(store, keys)
    conf.set_secret(APP, ENV, "token", "the-value")
    sealed = store.sealed_secret(APP, ENV, "token", 1)
    store.add_secret(APP, ENV, "stolen", lambda v: (sealed.key_id, sealed.ciphertext))
    with pytest.raises(SecretUnreadable):
        conf._open(store.sealed_secret(APP, ENV, "stolen", 1))


def test_job_logs_and_errors_are_redacted(store: SqlStore, keys: KeyFile) -> None:
    conf = Configuration(store, keys)
    conf.set_secret(APP, ENV, "token", "tok-first")
    conf.set_secret(APP, ENV, "token", "tok-second")
    conf.set_secret(APP, "staging", "db", "pw-staging")
    conf.set_secret(APP, ENV, "pin", "123")

    def handler(job: object, say: object) -> None:
        assert callable(say)
        say("printing tok-first and tok-second, pw-staging and 123")
        conf.set_secret(APP, ENV, "late", "set-while-running")  # known from the next line on
        say("then set-while-running")
        raise DockyardError("failed with tok-second in the message", "hint")

    job = store.enqueue("x", APP, {})
    JobRunner(store, {"x": handler}, redactor=conf.redactor).run(job)
    lines = [line for _, line in store.job_logs(job.id)]
    assert lines == [
        "printing <redacted:token> and <redacted:token>, <redacted:db> and 123",
        "then <redacted:late>",
        " !     failed with <redacted:token> in the message",
        " !       hint: hint",
    ]
    done = store.get_job(job.id)
    assert done.status == JobStatus.FAILED and done.error == "failed with <redacted:token> in the message"


# -- the deploy pipeline --------------------------------------------------------------------------
class RecordingOrchestrator(FakeOrchestrator):
    """Keeps the spec each container was started with (what the engine would get)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[ServiceSpec] = []

    def start(self, app: str, release: int, environment: str, service: ServiceSpec,
              replicas: Sequence[int] = (0,)) -> list[RunningService]:
        self.started.append(service)
        return super().start(app, release, environment, service, replicas)


def test_deploys_hand_every_service_its_variables_and_secrets(store: SqlStore, keys: KeyFile) -> None:
    orchestrator, files = RecordingOrchestrator(), FakeSecretFiles()
    conf = Configuration(store, keys, files)
    repos, registry = FakeRepos(), FakeRegistry()
    deployer = Deployer(store=store, repos=repos, builder=FakeBuilder(registry), registry=registry,
                        orchestrator=orchestrator, proxy=FakeProxy(), base_domain="dockyard.test", proxy_port=8080,
                        route_prefix="dy-unit", ready_timeout=5, inspector=parse_source, configuration=conf)
    files.in_use = lambda: {b for c in orchestrator.observe(APP) for s in orchestrator.started
                            if s.spec_hash == c.spec_hash for b in s.binds}
    repos.create(APP)
    said: list[str] = []

    def deploy() -> str:
        commit = repos.commit(APP, static_site("v1"))
        deployer.deploy_job(store.enqueue("deploy", APP, {"commit": commit}), said.append)
        [container] = orchestrator.observe(APP)
        return container.id

    conf.change_variables(APP, ENV, {"GREETING": "hello"})
    conf.set_secret(APP, ENV, "token", "first-secret")
    first = deploy()
    started = orchestrator.started[-1]
    assert ("GREETING", "hello") in started.environment and ("token", "first-secret") in started.environment
    mount = files.mount(APP, ENV, [("token", 1)])
    assert started.binds == (mount,) and files.files == {mount: {"token": b"first-secret"}}
    live = store.live_release(APP, ENV)
    assert live is not None and live.config == {"variables": ["GREETING"], "secrets": {"token": 1}}
    assert ("token", "<secret:token@v1>") in live.services[0].environment
    assert "first-secret" not in repr(store.list_releases(APP))

    assert deploy() == first  # nothing changed: kept
    conf.set_secret(APP, ENV, "token", "second-secret")
    second = deploy()
    assert second != first and ("token", "second-secret") in orchestrator.started[-1].environment
    assert list(files.files) == [files.mount(APP, ENV, [("token", 2)])]  # the old version's files are gone
    conf.change_variables(APP, ENV, {"GREETING": "hi"})
    third = deploy()
    assert third != second and ("GREETING", "hi") in orchestrator.started[-1].environment
    conf.change_variables(APP, ENV, {"GREETING": None})
    conf.remove_secret(APP, ENV, "token")
    fourth = deploy()
    assert fourth != third and orchestrator.started[-1].environment == ()
    assert files.files == {}
    assert deploy() == fourth


def test_variables_change_all_at_once_within_bounds(store: SqlStore, keys: KeyFile) -> None:
    conf = Configuration(store, keys)
    assert conf.change_variables(APP, ENV, {"A": "1", "B": "2"}) == {"A": "1", "B": "2"}
    assert conf.change_variables(APP, ENV, {"A": None, "C": "3", "NOT_SET": None}) == {"B": "2", "C": "3"}
    with pytest.raises(InvalidName):
        conf.change_variables(APP, ENV, {"D": "4", "bad key": "x"})
    assert conf.variables(APP, ENV) == {"B": "2", "C": "3"}  # nothing of a refused change
    with pytest.raises(DockyardError, match="no variables given"):
        conf.change_variables(APP, ENV, {})
    assert conf.variables(APP, "staging") == {}
    too_many = {f"K{i}": "v" for i in range(cfg.MAX_VARIABLES)}
    with pytest.raises(DockyardError, match="over the limit"):
        conf.change_variables(APP, ENV, too_many)


def test_resolving_needs_the_versions_the_spec_names(store: SqlStore, keys: KeyFile) -> None:
    conf = Configuration(store, keys)
    conf.set_secret(APP, ENV, "token", "v1-value")
    spec = replace(WEB, secrets=(("token", 1),))
    assert dict(conf.resolve(APP, ENV, spec).environment)["token"] == "v1-value"
    with pytest.raises(DockyardError, match="no version 2 of secret 'token'"):
        conf.resolve(APP, ENV, replace(WEB, secrets=(("token", 2),)))


def test_the_server_loads_the_cryptography_library_only_once_secrets_are_used(tmp_path: Path) -> None:
    """~10 MB of resident memory: an idle server that never seals nor opens a secret goes without."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from dockyard.entrypoints import api\n"
        "from dockyard.adapters.secret_box import KeyFile\n"
        f"keys = KeyFile(__import__('pathlib').Path({str(tmp_path / 'k')!r}))\n"
        "print('cryptography' in sys.modules, end=' ')\n"
        "keys.current().seal(b'x', b'')\n"
        "print('cryptography' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout == "False True\n"
