"""The one place that wires adapters to ports and starts the server's parts."""

from __future__ import annotations

import logging
import secrets
import sys
import threading
from dataclasses import dataclass, field

from dockyard.adapters.caddy import CaddyProxy
from dockyard.adapters.docker_engine import DockerEngine, connect
from dockyard.adapters.git import GitRepos
from dockyard.adapters.registry import DistributionRegistry
from dockyard.adapters.sql_store import SqlStore
from dockyard.config import Settings
from dockyard.services.deploy import Deployer
from dockyard.services.jobs import JobRunner

log = logging.getLogger("dockyard")


@dataclass
class Platform:
    settings: Settings
    store: SqlStore
    repos: GitRepos
    registry: DistributionRegistry
    proxy: CaddyProxy
    engine: DockerEngine
    deployer: Deployer
    runner: JobRunner
    hook_token: str = field(default_factory=lambda: "dyhook_" + secrets.token_urlsafe(24))
    stopping: threading.Event = field(default_factory=threading.Event)


def bootstrap(settings: Settings) -> Platform:
    """Build the platform: migrate the store, connect the engine. Starts nothing yet."""
    settings.home.mkdir(parents=True, exist_ok=True)
    store = SqlStore(settings.database_url)
    store.migrate()
    installation = store.installation_id()
    repos = GitRepos(settings.repos_dir, settings.max_push_bytes)
    registry = DistributionRegistry(settings.registry_dir, settings.registry_host, settings.registry_port,
                                    settings.registry_bin)
    proxy = CaddyProxy(settings.proxy_dir, settings.proxy_host, settings.proxy_port,
                       f"{settings.name_prefix}-{installation}", settings.caddy_bin)
    engine = DockerEngine(connect(settings.docker_host), installation, settings.name_prefix, registry.auth)
    deployer = Deployer(
        store=store, repos=repos, builder=engine, registry=registry, orchestrator=engine, proxy=proxy,
        base_domain=settings.base_domain, proxy_port=settings.proxy_port,
        route_prefix=f"{settings.name_prefix}-{installation}", ready_timeout=settings.ready_timeout,
    )
    proxy.on_restart.append(deployer.restore_routes)
    runner = JobRunner(store, {"deploy": deployer.deploy_job}, workers=settings.workers)
    return Platform(settings, store, repos, registry, proxy, engine, deployer, runner)


def first_admin_token(platform: Platform) -> None:
    """At first start: create the admin token and show it once (or write it where asked)."""
    if platform.store.token_count():
        return
    token = platform.store.create_token("admin", "admin")
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
    platform.registry.ensure_running()
    platform.proxy.ensure_running()
    for app in platform.store.list_apps():
        platform.repos.create(app.name)  # rewrites hooks: the interpreter path may have moved
    platform.deployer.restore_routes()
    platform.runner.start()
    threading.Thread(target=_keep_routes, args=(platform,), name="routes", daemon=True).start()
    log.info("dockyard is up: API %s, proxy :%s, registry %s", platform.settings.url,
             platform.settings.proxy_port, platform.registry.address)


def _keep_routes(platform: Platform, every: float = 15.0) -> None:
    """Docker may restart a container under a new address (its restart policy, a dockerd
    restart): routes follow the live releases' containers."""
    while not platform.stopping.wait(every):
        try:
            platform.deployer.restore_routes()
        except Exception as exc:
            log.warning("checking routes: %s", exc)


def stop(platform: Platform) -> None:
    platform.stopping.set()
    platform.runner.stop()
    platform.proxy.stop()
    platform.registry.stop()
