"""`dockyard server`: the control plane in this process (uvicorn serving the API and git)."""

from __future__ import annotations

import logging
import os


def run() -> None:
    import uvicorn

    from dockyard.config import Settings
    from dockyard.entrypoints.api import create_app

    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings.home.mkdir(parents=True, exist_ok=True)
    pid_file = settings.home / "server.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        # h11: the git hooks speak plain HTTP/1.0 and read the body as it comes, unchunked.
        uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="warning",
                    timeout_graceful_shutdown=10, http="h11")
    finally:
        if pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
