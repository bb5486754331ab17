"""The `dockyard` command. Everything but `server` talks to the API (DOCKYARD_URL, DOCKYARD_TOKEN)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dockyard import __version__
from dockyard.domain.errors import DockyardError
from dockyard.domain.replicas import counts_from_words
from dockyard.entrypoints.cli_approvals import approvals, approve, reject
from dockyard.entrypoints.cli_audit import audit
from dockyard.entrypoints.cli_envs import envs_cli
from dockyard.entrypoints.cli_gc import gc
from dockyard.entrypoints.cli_http import CONFIG, EnvOpt, JsonOpt, call, fail, q, stream, table
from dockyard.entrypoints.cli_oneoff import exec_cmd, run
from dockyard.entrypoints.cli_repos import repos_cli
from dockyard.entrypoints.cli_users import tokens_cli, users_cli
from dockyard.entrypoints.cli_volumes import volumes_cli
from dockyard.entrypoints.cli_webhooks import webhooks_cli

cli = typer.Typer(help="dockyard: git push to production on Docker.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
apps_cli = typer.Typer(help="Create, list and delete apps.", invoke_without_command=True)
domains_cli = typer.Typer(help="Domains an app answers at.", no_args_is_help=True)
jobs_cli = typer.Typer(help="Builds and deploys, as persisted jobs.", invoke_without_command=True)
cli.add_typer(apps_cli, name="apps")
cli.add_typer(tokens_cli, name="tokens")
cli.add_typer(users_cli, name="users")
cli.add_typer(domains_cli, name="domains")
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(envs_cli, name="envs")
cli.add_typer(webhooks_cli, name="webhooks")
cli.add_typer(repos_cli, name="repos")
cli.add_typer(volumes_cli, name="volumes")
cli.command("run")(run)
cli.command("exec")(exec_cmd)
cli.command("gc")(gc)
cli.command("audit")(audit)
cli.command("approvals")(approvals)
cli.command("approve")(approve)
cli.command("reject")(reject)



server_cli = typer.Typer(help="Run dockyard's server on this host, or stop it with its data plane.",
                         no_args_is_help=False, invoke_without_command=True)
cli.add_typer(server_cli, name="server")


@server_cli.callback(invoke_without_command=True)
def server(ctx: typer.Context) -> None:
    """Run the dockyard server: API, git endpoint and job workers. It starts the proxy and the
    registry as Docker containers, or adopts them when they run already: they go on serving apps
    when the server stops (`dockyard server down` stops them too)."""
    if ctx.invoked_subcommand is not None:
        return
    from dockyard.entrypoints.server import run

    run()


def _server_pid(pid_file: Path) -> int:
    """The pid of the running server of this DOCKYARD_HOME, or 0 (a stale file names nobody, or
    another program that got the number since)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return 0
    return pid if b"dockyard" in cmdline and b"server" in cmdline and _alive(pid) else 0


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent has stopped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@server_cli.command("down")
def server_down() -> None:
    """Stop everything on this host: the server (if it runs), then the proxy (and its resolver)
    and the registry.
    Apps stop answering until `dockyard server` runs again; their containers and data are kept."""
    import signal
    import time

    from dockyard.adapters.dataplane import DataPlane
    from dockyard.adapters.docker_client import connect
    from dockyard.adapters.sql_store import SqlStore
    from dockyard.config import Settings
    from dockyard.domain.errors import DockyardError

    settings = Settings()
    pid = _server_pid(settings.home / "server.pid")
    if pid:
        os.kill(pid, signal.SIGTERM)
        typer.echo(f"stopping dockyard server (pid {pid})")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            fail(f"dockyard server (pid {pid}) did not stop within 30s", f"kill it: kill -9 {pid}")
    if not (settings.home / "dockyard.db").exists():
        fail(f"no dockyard installation in {settings.home}", "set DOCKYARD_HOME to the server's")
    try:
        installation = SqlStore(settings.database_url).installation_id()
        plane = DataPlane(connect(settings.docker_host), installation, settings.name_prefix)
        for role in ("proxy", "resolver", "registry"):
            typer.echo(f"{role}: {'stopped and removed' if plane.remove(role) else 'not running'}")
    except DockyardError as exc:
        fail(exc.message, exc.hint)
    typer.echo("dockyard is down; `dockyard server` brings it back with every app's routes")


@cli.command()
def login(url: Annotated[str, typer.Option(help="dockyard's API URL")],
          token: Annotated[str, typer.Option(help="an API token")]) -> None:
    """Remember the API URL and token for later commands."""
    CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CONFIG.touch(mode=0o600)
    CONFIG.write_text(json.dumps({"url": url, "token": token}))
    typer.echo(f"saved to {CONFIG}")


@cli.command()
def version() -> None:
    """Print dockyard's version."""
    typer.echo(__version__)


@cli.command()
def system(as_json: JsonOpt = False) -> None:
    """What runs dockyard on this host: the proxy's and registry's containers, the engine's
    live-restore, and how many app networks the pool holds."""
    info = call("GET", "/api/v1/system")
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"installation {info['installation']}")
    table([{"part": role, **part, "running": "running" if part["running"] else "STOPPED"}
           for role, part in info["data_plane"].items()],
          ["part", "container", "listens", "running", "restarts", "started_at"])
    live = info["engine"]["live_restore"]
    typer.echo(f"engine live-restore: {'on' if live else 'OFF: apps stop while the engine restarts'}")
    pool = info["network_pool"]
    typer.echo(f"network pool {pool['pool']} (/{pool['prefix']}): {pool['used']} of {pool['capacity']} networks used")


@apps_cli.callback()
def apps(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List apps (with no subcommand)."""
    if ctx.invoked_subcommand:
        return
    rows = call("GET", "/api/v1/apps")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table(rows, ["name", "deploy_branch", "git_remote"])


@apps_cli.command("create")
def apps_create(
    name: str,
    branch: Annotated[str, typer.Option(help="the branch whose pushes deploy")] = "main",
    domain: Annotated[list[str] | None, typer.Option(help="a domain the app answers at (repeatable)")] = None,
) -> None:
    """Create an app and print the git remote to push to."""
    app = call("POST", "/api/v1/apps", json={"name": name, "deploy_branch": branch, "domains": domain or []})
    typer.echo(f"created {app['name']}; push to deploy:\n")
    typer.echo(f"  git remote add dockyard {app['git_remote']}")
    typer.echo(f"  git push dockyard {app['deploy_branch']}\n")
    typer.echo("git asks for a password: give a dockyard token (any user name).")
    typer.echo(app["git_remote"])


@apps_cli.command("delete")
def apps_delete(name: str, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Delete an app: its containers, routes, network, repository and records."""
    if not yes and not typer.confirm(f"delete {name} and everything it runs?"):
        raise typer.Exit(1)
    call("DELETE", f"/api/v1/apps/{q(name)}")
    typer.echo(f"deleted {name}")


# What each host-access compose key hands a container (dockyard refuses them unless allowed).
HOST_ACCESS_HELP = {
    "privileged": "every device and capability of the host: root on the host",
    "cap_add": "extra kernel capabilities (e.g. NET_ADMIN, SYS_ADMIN)",
    "devices": "host devices (/dev/...)",
    "network_mode": "another network, e.g. the host's own ('host'), instead of the app's",
    "pid": "the host's (or another container's) process table",
    "ipc": "the host's (or another container's) shared memory",
    "userns_mode": "the host's user namespace ('host': no user remapping)",
    "security_opt": "seccomp, AppArmor and SELinux settings (e.g. turning them off)",
    "bind_mounts": "host directories mounted into the container",
    "docker_socket": "the Docker socket: control of every container on the host",
}
_KEYS_HELP = "\n\n".join(f"{k}: {v}" for k, v in HOST_ACCESS_HELP.items())
KeysArg = Annotated[list[str], typer.Argument(help="compose keys: " + ", ".join(HOST_ACCESS_HELP), show_default=False)]


def _host_access(app: str, keys: list[str], allow: bool) -> None:
    unknown = [k for k in keys if k not in HOST_ACCESS_HELP]
    if unknown:
        fail(f"unknown host access key {unknown[0]!r}", "use one of: " + ", ".join(HOST_ACCESS_HELP))
    current = call("GET", f"/api/v1/apps/{q(app)}")["app"]["host_access"]
    wanted = [*current, *keys] if allow else [k for k in current if k not in keys]
    out = call("PUT", f"/api/v1/apps/{q(app)}/host-access", json={"keys": list(dict.fromkeys(wanted))})
    typer.echo(f"{app} may use: {', '.join(out['host_access']) or '(no host access)'}")


@apps_cli.command("allow", help=(
    "Allow APP's compose file to use these keys, which hand its containers the host (admin only; "
    "from the next push). Only for apps you trust as much as root on this machine.\n\n" + _KEYS_HELP))
def apps_allow(app: str, keys: KeysArg) -> None:
    _host_access(app, keys, allow=True)


@apps_cli.command("deny", help="Refuse these host-access compose keys for APP again (from the next push).\n\n"
                  + _KEYS_HELP)
def apps_deny(app: str, keys: KeysArg) -> None:
    _host_access(app, keys, allow=False)


def _env_path(app: str, env: str) -> str:
    return f"/api/v1/apps/{q(app)}/environments/{q(env)}"


@cli.command()
def status(app: str, env: EnvOpt = "production", as_json: JsonOpt = False) -> None:
    """Show an app environment's live release, its containers and its URLs."""
    data = call("GET", _env_path(app, env))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    live = data["live_release"]
    remote = call("GET", f"/api/v1/apps/{q(app)}")["app"]["git_remote"]
    typer.echo(f"app      {app}")
    typer.echo(f"env      {data['environment']} on {data['target']}, "
               + (f"deployed by pushes to {data['branch']}" if data["branch"] else "deployed on demand"))
    typer.echo(f"remote   {remote}")
    if live:
        typer.echo(f"release  {live['id']} (commit {live['commit'][:10]}, {live['status']} since {live['finished_at']})")
    else:
        typer.echo("release  none yet: push to deploy")
    for url in data["urls"]:
        typer.echo(f"url      {url}")
    for w in data.get("waiting", []):
        typer.echo(f"waiting  release {w['release']} from {w['from']} (commit {w['commit'][:10]}): "
                   f"{w['waiting_for'] or 'promoting'}")
    if data["last_job"]:
        job = data["last_job"]
        typer.echo(f"last job {job['id']} {job['kind']} {job['status']}" + (f": {job['error']}" if job["error"] else ""))
    typer.echo("")
    table([dict(c, id=c["id"][:12]) for c in data["containers"]],
          ["service", "replica", "release", "state", "upstream", "id"])


@cli.command()
def logs(app: str, follow: Annotated[bool, typer.Option("-f", "--follow", help="keep streaming")] = False,
         tail: Annotated[int, typer.Option(help="lines of history per container")] = 100,
         env: EnvOpt = "production") -> None:
    """Show the output of an app environment's containers."""
    stream(f"{_env_path(app, env)}/logs", {"follow": follow, "tail": tail})


AnyEnvOpt = Annotated[str | None, typer.Option("--env", "-e", help="only this environment's (default: all)")]


@cli.command()
def images(app: str, env: AnyEnvOpt = None, as_json: JsonOpt = False) -> None:
    """List the images built for an app (with --env, those the environment runs): name,
    version, digest, commit, size, date, and the environments running each."""
    rows = call("GET", f"{_env_path(app, env)}/images" if env else f"/api/v1/apps/{q(app)}/images")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([dict(r, commit=r["commit"][:10], digest=r["digest"][:19], size=f"{r['size'] / 1e6:.1f}MB",
                created_at=str(r["created_at"])[:19], running=",".join(r["environments"]) or "-") for r in rows],
          ["repository", "version", "digest", "commit", "size", "running", "created_at"])


RELEASE_ACTIONS = ("abort", "pause", "resume")


@cli.command()
def releases(app: Annotated[str, typer.Argument(help="the app; or abort, pause, resume, then the app")],
             running: Annotated[str | None, typer.Argument(help="with abort/pause/resume: the app")] = None,
             env: AnyEnvOpt = None, as_json: JsonOpt = False,
             timeline: Annotated[bool, typer.Option("--timeline", help="when each release's commits were made, "
                                                                        "pushed, built and live, and its lead time")]
             = False) -> None:
    """List an app's releases (with --env, one environment's), newest first. `dockyard releases
    abort|pause|resume APP [--env ENV]` acts on the release running there: an abort rolls it back,
    a pause holds it between two steps until resumed."""
    if app in RELEASE_ACTIONS:
        if running is None:
            fail(f"dockyard releases {app} needs the app", f"dockyard releases {app} APP [--env ENV]")
        done = call("POST", f"{_env_path(running, env or 'production')}/release/{app}")
        typer.echo(f"release {done['release']} of {running} ({env or 'production'}): {done['state']}")
        return
    if running is not None:
        fail(f"unexpected argument {running!r}", "dockyard releases APP, or dockyard releases abort|pause|resume APP")
    rows = call("GET", f"{_env_path(app, env)}/releases" if env else f"/api/v1/apps/{q(app)}/releases")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if timeline:
        moments = ("first_committed_at", "pushed_at", "built_at", "approved_at", "live_at")
        table([{"id": r["id"], "environment": r["environment"], "status": r["status"],
                "commits": r["timeline"]["commits"], **{m: _clock(r["timeline"][m]) for m in moments},
                "lead_time": _duration(r["timeline"]["lead_time_seconds"])} for r in rows],
              ["id", "environment", "status", "commits", *moments, "lead_time"])
        return
    table([dict(r, commit=r["commit"][:10], created_at=str(r["created_at"])[:19],
                services=",".join(s["name"] for s in r["services"])) for r in rows],
          ["id", "environment", "status", "commit", "services", "created_at", "error"])


def _clock(moment: str | None) -> str:
    return moment.replace("T", " ").removesuffix("Z") if moment else "-"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _follow(job: dict[str, Any]) -> None:
    """Stream a job's log until it ends; exit 1 unless it succeeded."""
    stream(f"/api/v1/jobs/{job['id']}/logs", {"follow": True})
    if call("GET", f"/api/v1/jobs/{job['id']}")["status"] != "succeeded":
        raise typer.Exit(1)


@cli.command()
def deploy(app: str, commit: Annotated[str | None, typer.Option(help="full commit id")] = None,
           follow: Annotated[bool, typer.Option(help="stream the job's log")] = True,
           env: EnvOpt = "production",
           branch: Annotated[str | None, typer.Option(help="default: the environment's branch")] = None,
           force: Annotated[bool, typer.Option(help="release even what failed last time with nothing changed")] = False,
           repo: Annotated[str, typer.Option(help="a source repo of the app: build its branch's head (or --commit), "
                                                  "then release the deploy repo's stack")] = "",
           ) -> None:
    """Build and release to an environment the head of its branch again (or a given commit)."""
    job = call("POST", f"{_env_path(app, env)}/deploys",
               json={"commit": commit, "branch": branch, "force": force, "repo": repo})
    typer.echo(f"queued job {job['id']} ({env})")
    if follow:
        _follow(job)


@cli.command()
def rollback(app: str, release: Annotated[int | None, typer.Argument(help="default: the release before the live one")] = None,
             env: EnvOpt = "production",
             follow: Annotated[bool, typer.Option(help="stream the job's log")] = True) -> None:
    """Return an environment to an earlier release: its images by digest, stack and configuration,
    through the same health gates and draining as a deploy; nothing is built."""
    job = call("POST", f"{_env_path(app, env)}/rollbacks", json={"release": release})
    typer.echo(f"queued job {job['id']} ({env}): rollback")
    if follow:
        _follow(job)


@cli.command()
def scale(app: str, counts: Annotated[list[str], typer.Argument(help="SERVICE=COUNT, e.g. web=3 worker=0")],
          env: EnvOpt = "production",
          follow: Annotated[bool, typer.Option(help="stream the job's log")] = True) -> None:
    """Set how many containers run services of an environment, and apply it to the live release:
    the replicas that stay keep running. Kept over the compose file's and dockyard.yml's counts."""
    try:
        wanted = counts_from_words(counts)
    except DockyardError as exc:
        fail(exc.message, exc.hint)
    job = call("POST", f"{_env_path(app, env)}/scale", json={"replicas": wanted})
    typer.echo(f"queued job {job['id']} ({env}): scale")
    if follow:
        _follow(job)


@cli.command()
def plan(app: str, env: EnvOpt = "production", commit: Annotated[str | None, typer.Option(help="full commit id")] = None,
         branch: Annotated[str | None, typer.Option(help="default: the environment's branch")] = None,
         as_json: JsonOpt = False) -> None:
    """Show what a deploy to an environment would change, per service and why; changes nothing."""
    params = {k: v for k, v in (("commit", commit), ("branch", branch)) if v}
    data = call("GET", f"{_env_path(app, env)}/plan", params=params)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    live = f"release {data['live_release']} ({data['live_commit'][:10]})" if data["live_release"] else "nothing yet"
    typer.echo(f"{app} {data['environment']}: {live} -> {data['commit'][:10]} ({data['branch']})")
    for warning in data["warnings"]:
        typer.echo(f" !  warning: {warning}")
    signs = {"create": "+", "replace": "~", "reroute": ">", "scale": "*", "keep": "=", "remove": "-"}
    for change in data["changes"]:
        typer.echo(f"  {signs.get(change['action'], '?')} {change['service']}: {change['action']}")
        for reason in change["reasons"]:
            typer.echo(f"        {reason}")
    counts = {a: sum(1 for c in data["changes"] if c["action"] == a) for a in signs}
    typer.echo(", ".join(f"{n} to {a}" for a, n in counts.items() if n) or "nothing to change")


@jobs_cli.callback()
def jobs(ctx: typer.Context, app: Annotated[str | None, typer.Option(help="only this app's")] = None,
         as_json: JsonOpt = False) -> None:
    """List recent jobs (with no subcommand)."""
    if ctx.invoked_subcommand:
        return
    rows = call("GET", "/api/v1/jobs", params={"app": app} if app else {})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([dict(r, created_at=str(r["created_at"])[:19], error=(r["error"] or "")[:60]) for r in rows],
          ["id", "kind", "app", "environment", "status", "created_at", "error"])


@jobs_cli.command("show")
def jobs_show(job_id: int, follow: Annotated[bool, typer.Option("-f", "--follow")] = False) -> None:
    """Print a job's log (and follow it until it ends)."""
    stream(f"/api/v1/jobs/{job_id}/logs", {"follow": follow})


@domains_cli.command("add")
def domains_add(app: str, domain: str) -> None:
    """Make an app answer at DOMAIN too (from its next deploy)."""
    current = call("GET", f"/api/v1/apps/{q(app)}")["app"]["domains"]
    out = call("PUT", f"/api/v1/apps/{q(app)}/domains", json={"domains": sorted({*current, domain})})
    typer.echo(" ".join(out["domains"]))


@domains_cli.command("remove")
def domains_remove(app: str, domain: str) -> None:
    """Stop answering at DOMAIN (from the app's next deploy)."""
    current = call("GET", f"/api/v1/apps/{q(app)}")["app"]["domains"]
    out = call("PUT", f"/api/v1/apps/{q(app)}/domains", json={"domains": [d for d in current if d != domain]})
    typer.echo(" ".join(out["domains"]) or "(none)")


# -- variables and secrets -------------------------------------------------------------------------
env_cli = typer.Typer(help="An app's environment variables (not secret: values are shown). Applied at the next "
                           "deploy, to every service.", no_args_is_help=True)
secrets_cli = typer.Typer(help="An app's secrets: sealed with AES-256-GCM, never shown again, given to every "
                               "service as an environment variable and the file /run/secrets/NAME.",
                          no_args_is_help=True)
cli.add_typer(env_cli, name="env")
cli.add_typer(secrets_cli, name="secrets")
MAX_SECRET_INPUT = 64 * 1024  # as domain/configuration.MAX_SECRET_BYTES; the server checks again


def _environment_path(app: str, env: str, what: str) -> str:
    return f"/api/v1/apps/{q(app)}/environments/{q(env)}/{what}"


@env_cli.command("set")
def env_set(app: str, pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", show_default=False)],
            env: EnvOpt = "production") -> None:
    """Set variables of APP's environment (from the next deploy; values are not secret: use
    `dockyard secrets set` for what must be)."""
    changes: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"not KEY=VALUE: {pair[:80]!r}", "e.g. dockyard env set shop LOG_LEVEL=info")
        changes[key] = value
    call("PATCH", _environment_path(app, env, "variables"), json=changes)
    typer.echo(f"set {', '.join(changes)} on {app} ({env}); deploy to apply: dockyard deploy {app}")


@env_cli.command("unset")
def env_unset(app: str, keys: Annotated[list[str], typer.Argument(metavar="KEY...", show_default=False)],
              env: EnvOpt = "production") -> None:
    """Unset variables of APP's environment (from the next deploy)."""
    call("PATCH", _environment_path(app, env, "variables"), json=dict.fromkeys(keys))
    typer.echo(f"unset {', '.join(keys)} on {app} ({env}); deploy to apply: dockyard deploy {app}")


@env_cli.command("list")
def env_list(app: str, env: EnvOpt = "production", as_json: JsonOpt = False) -> None:
    """List the variables of APP's environment, with their values."""
    variables = call("GET", _environment_path(app, env, "variables"))
    if as_json:
        typer.echo(json.dumps(variables, indent=2))
        return
    table([{"key": k, "value": v} for k, v in variables.items()], ["key", "value"])


def _secret_value(from_file: Path | None) -> str:
    """The value from a file or stdin (a prompt that does not echo on a terminal), never argv.
    One trailing newline is dropped."""
    if from_file is not None:
        try:
            with from_file.open("rb") as f:
                raw = f.read(MAX_SECRET_INPUT + 2)
        except OSError as exc:
            fail(f"cannot read {from_file}: {exc.strerror}")
    elif sys.stdin.isatty():
        raw = typer.prompt("value", hide_input=True, confirmation_prompt=True).encode()
    else:
        raw = sys.stdin.buffer.read(MAX_SECRET_INPUT + 2)
    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
    if len(raw) > MAX_SECRET_INPUT:
        fail(f"the value is over {MAX_SECRET_INPUT} bytes", "keep a secret small: a key, a password, a token")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        fail("the value is not UTF-8 text", "a secret becomes an environment variable: encode binary data "
                                            "(e.g. base64) first")


@secrets_cli.command("set")
def secrets_set(
    app: str, name: str, env: EnvOpt = "production",
    from_file: Annotated[Path | None, typer.Option("--from-file", metavar="PATH", dir_okay=False,
                                                   help="read the value from this file (default: stdin)")] = None,
) -> None:
    """Set secret NAME of APP's environment: a new version, from stdin or --from-file (never the
    command line). One trailing newline is dropped. Applied at the next deploy, as the variable
    NAME and the file /run/secrets/NAME of every service."""
    value = _secret_value(from_file)
    out = call("PUT", _environment_path(app, env, f"secrets/{q(name)}"), json={"value": value})
    typer.echo(f"secret {out['name']} of {app} ({env}) is at version {out['version']}; "
               f"deploy to apply: dockyard deploy {app}")


@secrets_cli.command("list")
def secrets_list(app: str, env: EnvOpt = "production", as_json: JsonOpt = False) -> None:
    """List the secrets of APP's environment: names, versions, dates and keys (never values)."""
    rows = call("GET", _environment_path(app, env, "secrets"))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([dict(r, created_at=str(r["created_at"])[:19], updated_at=str(r["updated_at"])[:19]) for r in rows],
          ["name", "version", "versions", "updated_at", "created_at", "key_id"])


@secrets_cli.command("remove")
def secrets_remove(app: str, name: str, env: EnvOpt = "production") -> None:
    """Remove secret NAME of APP's environment, every version of it (services lose it at the next deploy)."""
    call("DELETE", _environment_path(app, env, f"secrets/{q(name)}"))
    typer.echo(f"removed secret {name} of {app} ({env}); deploy to apply: dockyard deploy {app}")


@secrets_cli.command("rotate-key")
def secrets_rotate_key() -> None:
    """Seal every secret again under a new key (admin only). The database commits first; the key
    file is replaced after. Back up the new key file."""
    out = call("POST", "/api/v1/secrets-key/rotate")
    typer.echo(f"secrets key rotated: {out['previous_key_id']} -> {out['key_id']} "
               f"({out['secrets']} secret versions sealed again)")


def main() -> None:
    try:
        cli()
    except BrokenPipeError:
        sys.exit(0)
