"""Settings, read once from the environment (DOCKYARD_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", extra="ignore")

    home: Path = Path.home() / ".dockyard"
    api_host: str = "127.0.0.1"
    api_port: int = 7700
    public_url: str = ""  # how git clients reach the API; default http://api_host:api_port
    registry_host: str = "127.0.0.1"
    registry_port: int = 5100
    proxy_host: str = ""  # "" listens on every address
    proxy_port: int = 8080
    resolver_port: int = 7753  # UDP, on 127.0.0.1: where the proxy asks which containers serve a route
    base_domain: str = "localhost"
    name_prefix: str = "dockyard"  # prefix of every container and network dockyard creates
    max_push_bytes: int = 200 * 1024 * 1024
    ready_timeout: float = 60.0
    progress_deadline: float = 900.0  # seconds a release may take (pauses aside), else it fails and rolls back
    monitor_seconds: float = 5.0  # new containers must keep running this long after the switch, or it rolls back
    drain_timeout: float = 30.0  # seconds old containers get to finish their requests after the switch
    workers: int = 2
    docker_host: str = ""  # empty: the DOCKER_HOST environment or the local socket
    registry_image: str = "registry:2"  # the data plane's images; where they cannot be pulled,
    proxy_image: str = "caddy:2"  # an image is built from the host's binary below
    registry_bin: str = "docker-registry"
    caddy_bin: str = "caddy"
    dnsmasq_bin: str = "dnsmasq"  # the resolver: an image built from the host's binary (none is published)
    network_pool: str = "10.213.0.0/16"  # app networks take their subnets from here
    network_prefix: int = 26  # each gets a /26: 61 containers, 1,024 networks in the default pool
    container_memory: str = "1g"  # default limits of every app container
    container_pids: int = 1024
    build_timeout: float = 1800.0  # seconds; a build still running then is cancelled
    max_job_attempts: int = 3  # a job interrupted this many times by a stop of the server fails
    admin_token_file: Path | None = None  # where the first admin token is written, else printed
    secrets_key_file: Path | None = None  # the key secrets are sealed with; default HOME/secrets.key
    keep_releases: int = 10  # images of each environment's newest releases kept by garbage collection (at least 1)
    gc_interval: float = 86400.0  # seconds between scheduled garbage collections; 0: none
    webhook_attempts: int = 8  # attempts of a webhook delivery before it is marked failed
    webhook_backoff: float = 10.0  # seconds before a delivery's second attempt, doubled for each next (1 h at most)
    webhook_timeout: float = 5.0  # seconds a receiver has to answer

    @property
    def url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.api_host}:{self.api_port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'dockyard.db'}"

    @property
    def secrets_key_path(self) -> Path:
        return self.secrets_key_file or self.home / "secrets.key"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def proxy_dir(self) -> Path:
        return self.home / "proxy"
