#!/usr/bin/env bash
# The second command: the whole test suite (lint, types, unit, integration, end-to-end) against a
# real Docker engine, registry, git and Caddy. Installs and starts what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "==> ruff"
.venv/bin/ruff check src tests bench scripts
echo "==> mypy (strict on src)"
.venv/bin/mypy
echo "==> pytest"
set +e
.venv/bin/pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$code"
