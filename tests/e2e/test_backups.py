"""Volume backups end to end: real volumes, the busybox helper, archives on disk, a restore that
stops and starts the service on the volume, a copy between environments, and what is refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.e2e.test_oneoff import dy
from tests.support import BASE_IMAGE, Server, make_repo

STACK = {
    "web/Dockerfile": f"FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\nEXPOSE 8000\n"
                      'CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n',
    "web/index.html": "web\n",
    "docker-compose.yml": "services:\n  web:\n    build: web\n    ports: ['8000']\n    volumes: [data:/data]\n"
                          "volumes:\n  data:\n",
}


def test_backup_restore_and_copy_of_a_volume(server: Server, app_name: str, tmp_path: Path) -> None:
    app = app_name
    server.cli("apps", "create", app)
    server.cli("envs", "create", app, "recette", "--branch", "develop")
    repo = make_repo(tmp_path / "src", STACK)
    assert server.push(repo, app, "main").returncode == 0
    assert server.push(repo, app, "main:develop").returncode == 0
    assert dy(server, "run", app, "--service", "web", "--", "sh", "-c",
              "echo items > /data/items.txt; mkdir -p /data/sub; echo deep > /data/sub/.hidden").returncode == 0

    # a backup: an archive with its checksum, listed, taken while web ran
    taken = json.loads(server.cli("volumes", "backup", app, "data", "--json").stdout)
    assert taken["running"] == ["web"] and len(taken["sha256"]) == 64
    archive = Path(taken["path"])
    assert archive.is_file() and archive.parent == server.home / "backups" / app / "production" / "data"
    listed = json.loads(server.cli("volumes", "backups", app, "--json").stdout)
    assert [a["id"] for a in listed] == [taken["id"]]
    files = subprocess.run(["tar", "-tzf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert "items.txt" in files and ".hidden" in files

    # the data destroyed; the restore brings it back, the service stopped and started again meanwhile
    before = dy(server, "exec", app, "web", "--", "sh", "-c", "rm -rf /data/*; echo stray > /data/stray; ls /data")
    assert before.stdout == "stray\n"
    restored = server.cli("volumes", "restore", app, "data", taken["id"], "--yes")
    assert f"from backup {taken['id']}" in restored.stdout
    after = dy(server, "exec", app, "web", "--", "sh", "-c", "cat /data/items.txt /data/sub/.hidden; ls /data")
    assert after.stdout == "items\ndeep\nitems.txt\nsub\n", after.stderr
    assert server.body(f"{app}.localhost") == "web\n"
    restore_job = next(j for j in json.loads(server.cli("jobs", "--app", app, "--json").stdout) if j["kind"] == "restore")
    log = server.cli("jobs", "show", str(restore_job["id"])).stdout
    assert "Stopping web" in log and "Starting web again" in log

    # a copy takes production's data into recette
    copied = server.cli("volumes", "copy", app, "data", "--from", "production", "--to", "recette", "--yes")
    assert "copied into recette" in copied.stdout
    assert dy(server, "exec", app, "web", "--env", "recette", "--", "cat", "/data/items.txt").stdout == "items\n"

    # refused, and nothing changes: an archive that does not match its checksum, a developer into a protected one
    archive.write_bytes(archive.read_bytes()[:-8] + b"tampered")
    bad = server.cli("volumes", "restore", app, "data", taken["id"], "--yes", check=False)
    assert bad.returncode == 1 and "does not match its checksum" in bad.stderr
    server.cli("envs", "protect", app, "recette")
    dev = server.cli("users", "add", f"dev-{app}", "--role", "developer").stdout.strip()
    r = httpx.post(f"{server.url}/api/v1/apps/{app}/environments/recette/volumes/data/copy", json={"from": "production"},
                   headers={"Authorization": f"Bearer {dev}"})
    assert r.status_code == 403, r.text
    server.cli("envs", "unprotect", app, "recette")
    server.cli("envs", "protect", app, "production")  # out of a protected environment: an admin's too
    r = httpx.post(f"{server.url}/api/v1/apps/{app}/environments/recette/volumes/data/copy", json={"from": "production"},
                   headers={"Authorization": f"Bearer {dev}"})
    assert r.status_code == 403 and "protected" in r.json()["error"], r.text
    assert dy(server, "exec", app, "web", "--", "cat", "/data/items.txt").stdout == "items\n"
    audit = {e["action"] for e in json.loads(server.cli("audit", "--app", app, "--json").stdout)}
    assert {"volume.backup", "volume.restore", "volume.copy", "access.denied"} <= audit
