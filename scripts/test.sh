#!/usr/bin/env bash
# Fresh machine to green: make the virtual environment, install feedfix with its test and
# development tools, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use: a real feed reader (newsboat) and a real browser (chromium,
# for the XSS corpus). Installed when this can be done (root with apt, as in CI); otherwise
# the tests that need them skip and say why.
need=()
command -v newsboat >/dev/null || need+=(newsboat)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== import-linter (the layers and the pure core)"
.venv/bin/lint-imports
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
