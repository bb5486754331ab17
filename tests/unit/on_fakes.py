"""A Deployer on the fakes (repos, builder, registry, orchestrator, proxy) with an app created:
the pipeline's unit tests share it."""

from __future__ import annotations

from pathlib import Path

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain.model import App
from dockyard.fakes import FakeBuilder, FakeOrchestrator, FakeProxy, FakeRegistry, FakeRepos, FakeStore
from dockyard.services.deploy import Deployer
from dockyard.services.inspect import parse_source


def sql_store(tmp_path: Path) -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
    store.migrate()
    return store


def deployer_on_fakes(app: str, store: SqlStore | FakeStore) -> Deployer:
    """The deploy pipeline with every adapter faked but ``store``, and ``app`` created."""
    repos, registry = FakeRepos(), FakeRegistry()
    deployer = Deployer(store=store, repos=repos, builder=FakeBuilder(registry), registry=registry,
                        orchestrator=FakeOrchestrator([]), proxy=FakeProxy([]), base_domain="dockyard.test",
                        proxy_port=8080, route_prefix="dy-unit", ready_timeout=5, inspector=parse_source)
    store.create_app(App(app))
    repos.create(app)
    return deployer
