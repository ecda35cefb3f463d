#!/usr/bin/env bash
# The whole test suite: installs what is missing, then lint (ruff), types (mypy) and pytest.
# Tests start their own Mosquitto, PostgreSQL and headless Chromium; extra pytest arguments pass through.
set -euo pipefail
cd "$(dirname "$0")"
./install.sh --no-demo
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy protocol device server runtime kuaichu provisioning tests bench
exec .venv/bin/pytest "$@"
