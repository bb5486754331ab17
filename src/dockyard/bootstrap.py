"""The one place that wires adapters to ports and starts the server's parts."""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.adapters import resolver
from dockyard.adapters.caddy import CaddyProxy
from dockyard.adapters.dataplane import DataPlane
from dockyard.adapters.docker_builder import DockerBuilder
from dockyard.adapters.docker_client import connect
from dockyard.adapters.docker_orchestrator import DockerOrchestrator, Limits, Pool
from dockyard.adapters.docker_secret_files import DockerSecretVolumes
from dockyard.adapters.docker_volume_archives import DockerVolumeArchives
from dockyard.adapters.git import GitRepos
from dockyard.adapters.local_http import proxy_smoke_check
from dockyard.adapters.registry import DistributionRegistry
from dockyard.adapters.secret_box import KeyFile
from dockyard.adapters.sql_store import SqlStore
from dockyard.adapters.upstream_dns import UpstreamNames
from dockyard.adapters.webhook_http import HttpWebhookTransport
from dockyard.config import Settings
from dockyard.domain.names import repo_key
from dockyard.domain.webhooks import Backoff
from dockyard.ports import ImageBuilder, Orchestrator, OrchestratorEvents, Proxy, Registry, SourceRepos, Store
from dockyard.services import inspect, oneoff, promotion, rollback, scale, stages
from dockyard.services.access import Access
from dockyard.services.apps import Apps
from dockyard.services.audit import Audit
from dockyard.services.backups import Backups
from dockyard.services.configuration import Configuration
from dockyard.services.deploy import Deployer
from dockyard.services.environments import Environments
from dockyard.services.events import Events
from dockyard.services.gc import Collector
from dockyard.services.jobs import Handler, JobRunner, Jobs
from dockyard.services.oneoff import OneOffs
from dockyard.services.plan import Planner
from dockyard.services.promotion import Promotions
from dockyard.services.push_check import PushChecks
from dockyard.services.recovery import Recovery
from dockyard.services.repos import Repos
from dockyard.services.rollback import Rollbacks
from dockyard.services.scale import Scaling
from dockyard.services.system import System
from dockyard.services.webhooks import Webhooks

log = logging.getLogger("dockyard")


@dataclass
class Platform:
    """The adapters, by port (for start and stop only), and the services the entrypoints call."""

    settings: Settings
    store: Store
    repos: SourceRepos
    registry: Registry
    proxy: Proxy
    engine: Orchestrator
    engine_events: OrchestratorEvents  # the engine's, as routes follow them
    builder: ImageBuilder
    deployer: Deployer
    runner: JobRunner
    configuration: Configuration
    environments: Environments
    planner: Planner
    rollbacks: Rollbacks
    scaling: Scaling
    apps: Apps
    access: Access
    jobs: Jobs
    pushes: PushChecks
    system: System
    gc: Collector
    events: Events
    audit: Audit  # records every event (subscribed to ``events``)
    webhooks: Webhooks  # sends the events apps' webhooks subscribe to (subscribed to ``events``)
    promotions: Promotions
    app_repos: Repos  # an app's source repos and its deploy repo's name
    oneoffs: OneOffs  # dockyard run and exec
    backups: Backups  # volume backups, restores and copies
    stopping: threading.Event = field(default_factory=threading.Event)


def private_home(home: Path) -> None:
    """DOCKYARD_HOME holds the database, the registry's password and the repos: owner only."""
    os.umask(0o077)
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    for name in ("dockyard.db", "dockyard.db-wal", "dockyard.db-shm"):
        path = home / name
        if path.exists():
            path.chmod(0o600)


def bootstrap(settings: Settings) -> Platform:
    """Build the platform: migrate the store, connect the engine. Starts nothing yet."""
    few_malloc_arenas()
    private_home(settings.home)
    store = SqlStore(settings.database_url)
    store.migrate(in_child=True)
    private_home(settings.home)  # the database may have just been created
    installation = store.installation_id()
    client = connect(settings.docker_host)
    plane = DataPlane(client, installation, settings.name_prefix)
    repos = GitRepos(settings.repos_dir, settings.max_push_bytes)
    registry = DistributionRegistry(settings.registry_dir, settings.registry_host, settings.registry_port, plane,
                                    settings.registry_image, settings.registry_bin)
    names = UpstreamNames(settings.proxy_dir / "upstreams", settings.resolver_port, plane, binary=settings.dnsmasq_bin)
    proxy = CaddyProxy(settings.proxy_dir, settings.proxy_host, settings.proxy_port,
                       f"{settings.name_prefix}-{installation}", plane, names, settings.proxy_image, settings.caddy_bin)
    engine = DockerOrchestrator(
        client, installation, settings.name_prefix, registry.auth,
        Limits(memory=settings.container_memory, pids=settings.container_pids),
        Pool(settings.network_pool, settings.network_prefix),
    )
    builder = DockerBuilder(client, registry.auth, settings.build_timeout)
    # The secrets key: a 0600 file outside the database, made at the first start.
    configuration = Configuration(store, KeyFile(settings.secrets_key_path),
                                  DockerSecretVolumes(client, installation, settings.name_prefix))
    configuration.recover()
    deployer = Deployer(
        store=store, repos=repos, builder=builder, registry=registry, orchestrator=engine, proxy=proxy,
        base_domain=settings.base_domain, proxy_port=settings.proxy_port,
        route_prefix=f"{settings.name_prefix}-{installation}", ready_timeout=settings.ready_timeout,
        resolve=resolver.addresses, configuration=configuration,
        reserved_ports={settings.api_port: "its API", settings.registry_port: "its registry",
                        settings.proxy_port: "its proxy"},
        drain_timeout=settings.drain_timeout, monitor_seconds=settings.monitor_seconds,
        progress_deadline=settings.progress_deadline,
    )
    handlers: dict[str, Handler] = {"deploy": deployer.deploy_job}
    events = Events()  # the audit log and webhooks listen (services/events.py)
    deployer.events = events
    audit = Audit(store)
    events.subscribe(audit.record)
    webhooks = Webhooks(store, configuration.keys, HttpWebhookTransport(),
                        backoff=Backoff(first=settings.webhook_backoff, attempts=settings.webhook_attempts),
                        api_url=settings.url, timeout=settings.webhook_timeout)
    events.subscribe(webhooks.on_event)  # stores deliveries only: the senders POST them
    configuration.also_reseal.append(webhooks.reseal)  # webhook secrets follow a rotation of the key
    runner = JobRunner(store, handlers, workers=settings.workers,
                       max_attempts=settings.max_job_attempts, when_idle=give_back_memory,
                       redactor=configuration.redactor, events=events)
    environments = Environments(store, repos, engine, deployer, runner.submit, settings.base_domain,
                                settings.proxy_port, settings.url, registry.address, configuration)
    planner = Planner(store, repos, deployer, registry.address, settings.url)
    rollbacks = Rollbacks(store, deployer.releaser, runner.submit, after=configuration.prune)
    handlers[rollback.KIND] = rollbacks.rollback_job
    scaling = Scaling(store, deployer.releaser, runner.submit, after=configuration.prune)
    handlers[scale.KIND] = scaling.scale_job
    promotions = Promotions(store, deployer, environments, runner.submit, events,
                            smoke_check=proxy_smoke_check(settings.proxy_port))
    handlers[promotion.KIND] = promotions.promote_job
    handlers[oneoff.RUN] = handlers[oneoff.EXEC] = oneoff.interrupted  # a run is its caller's: never resumed
    oneoffs = OneOffs(store, engine, engine, registry.address, configuration, events)
    backups = Backups(store, engine, DockerVolumeArchives(client, installation, settings.name_prefix, plane,
                                                          engine.volume_name),
                      settings.home / "backups", deployer.lock, events,
                      declared=functools.lru_cache(maxsize=256)(  # a commit's file never changes: read once
                          lambda app, commit: stages.declared(repos, app, commit)), configuration=configuration)
    events.subscribe(promotions.on_event)  # a release live upstream: a candidate downstream
    jobs = Jobs(store)
    app_repos = Repos(store, repos, settings.url)
    return Platform(
        settings=settings, store=store, repos=repos, registry=registry, proxy=proxy, engine=engine,
        engine_events=engine, builder=builder, deployer=deployer, runner=runner, configuration=configuration,
        environments=environments, planner=planner, rollbacks=rollbacks, scaling=scaling,
        apps=Apps(store, repos, deployer.destroy, settings.base_domain),
        access=Access(store), jobs=jobs, pushes=PushChecks(store, repos, deployer, environments, jobs, app_repos),
        system=System(plane, engine, registry, proxy, settings.proxy_port, names.address),
        gc=Collector(store, builder, registry, engine, deployer.builds.gate, settings.keep_releases,
                     settings.gc_interval),
        events=events, audit=audit, webhooks=webhooks, promotions=promotions,
        app_repos=app_repos, oneoffs=oneoffs, backups=backups,
    )


def first_admin_token(platform: Platform) -> None:
    """At first start: create the admin token and show it once (or write it where asked)."""
    token = platform.access.first_admin()
    if token is None:
        return
    path = platform.settings.admin_token_file
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(token + "\n")
        print(f"dockyard: admin token written to {path} (shown nowhere else)", file=sys.stderr, flush=True)
    else:
        print(
            "\n  dockyard: your admin token (shown once, stored hashed):\n\n"
            f"    {token}\n\n  export DOCKYARD_TOKEN={token}\n",
            file=sys.stderr, flush=True,
        )


def start(platform: Platform) -> None:
    first_admin_token(platform)
    warn_without_live_restore(platform)
    warn_about_unreadable_secrets(platform)
    platform.registry.ensure_running()
    platform.proxy.ensure_running()
    for app in platform.store.list_apps():
        platform.repos.create(app.name)  # rewrites hooks: the interpreter path may have moved
        for repo in platform.app_repos.sources(app.name):  # and the app's source repos'
            platform.repos.create(repo_key(app.name, repo.name))
    # a release dockyard stopped in the middle of: records, halted containers, routes, then strays
    Recovery(platform.store, platform.engine).recover(platform.deployer.restore_routes)
    platform.engine.clear_oneoffs()  # runs the last server was attached to: their jobs fail (interrupted)
    inspect.warm()  # a parser child waits, ready: the first push does not pay a Python start
    platform.runner.start()
    threading.Thread(target=platform.engine_events.watch,
                     args=(lambda app: _on_change(platform, app), platform.stopping),
                     name="engine-events", daemon=True).start()
    threading.Thread(target=_keep_routes, args=(platform,), name="routes", daemon=True).start()
    platform.gc.schedule(platform.stopping)  # every DOCKYARD_GC_INTERVAL seconds
    platform.webhooks.start()  # deliveries left pending by the last run first
    # candidates waiting for their soak time (or smoke check) are promoted once it passed
    threading.Thread(target=_every, args=(platform, 5.0, "promotions", platform.promotions.tick),
                     name="promotions", daemon=True).start()
    # the volume backups dockyard.yml schedules, taken when due
    threading.Thread(target=_every, args=(platform, 60.0, "scheduled backups", platform.backups.tick),
                     name="backups", daemon=True).start()
    log.info("dockyard is up: API %s, proxy :%s, registry %s", platform.settings.url,
             platform.settings.proxy_port, platform.registry.address)
    give_back_memory()


def _every(platform: Platform, seconds: float, what: str, tick: Callable[[], object]) -> None:
    """``tick()`` every ``seconds`` until the server stops; a failed tick is logged, and the next
    one tries again (the store was busy)."""
    while not platform.stopping.wait(seconds):
        try:
            tick()
        except Exception:
            log.exception(what)


def few_malloc_arenas() -> None:
    """glibc gives each thread an arena of its own, up to 8 per core, and each keeps what it
    once held: two arenas serve a server of a few threads as fast, in less memory."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def give_back_memory() -> None:
    """Return the start's garbage to the system: the server idles for most of its life."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def warn_without_live_restore(platform: Platform) -> None:
    try:
        enabled = platform.system.live_restore()
    except Exception:
        return
    if not enabled:
        log.warning(
            "the Docker engine runs without live-restore: restarting or upgrading it stops every app "
            "until it is back. Add {\"live-restore\": true} to /etc/docker/daemon.json and reload it "
            "(systemctl reload docker, or SIGHUP to dockerd)."
        )


def warn_about_unreadable_secrets(platform: Platform) -> None:
    unreadable = platform.configuration.check()
    if unreadable:
        log.error(
            "secrets sealed with key(s) %s cannot be decrypted with the key in %s (key %s): deploys of the apps "
            "that have them fail. Restore that key file (DOCKYARD_SECRETS_KEY_FILE), or set those secrets again.",
            ", ".join(unreadable), platform.settings.secrets_key_path, platform.configuration.key_id())


def _on_change(platform: Platform, app: str | None) -> None:
    """An app's container started or died, or the proxy restarted: routes follow at once. An app
    in the middle of a release is not waited for (the release checks its routes as it ends)."""
    try:
        if app is None:
            platform.deployer.restore_routes(wait=False)
        else:
            platform.deployer.restore_app_routes(app, wait=False)
    except Exception as exc:
        log.warning("updating routes after an engine event: %s", exc)


def _keep_routes(platform: Platform, every: float = 60.0) -> None:
    """A safety net under the engine's events: every minute, routes follow the live containers."""
    while not platform.stopping.wait(every):
        try:
            platform.deployer.restore_routes()
        except Exception as exc:
            log.warning("checking routes: %s", exc)


def stop(platform: Platform) -> None:
    """Stop the control plane. The proxy, the registry and the apps go on serving."""
    platform.stopping.set()
    platform.runner.stop()
    platform.webhooks.stop()  # pending deliveries are sent after the next start
    inspect.shutdown()
