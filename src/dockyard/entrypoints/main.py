"""The `dockyard` executable. `dockyard server` runs without loading the CLI's libraries (typer,
click, rich): the server idles for most of its life, and they would stay in its memory."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["server"]:
        from dockyard.entrypoints.server import run

        run()
        return
    from dockyard.entrypoints.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
