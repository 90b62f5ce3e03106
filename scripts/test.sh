#!/usr/bin/env bash
# Fresh machine to green: make the virtual environment, install feedfix with its test and
# development tools, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use: real feed readers (newsboat, sfeed, rsstail), a real
# browser (chromium, for the XSS corpus) and nginx. Installed when this can be done (root with apt, as
# in CI); otherwise the tests that need them skip and say why.
need=()
command -v newsboat >/dev/null || need+=(newsboat)
command -v sfeed >/dev/null || need+=(sfeed)
command -v rsstail >/dev/null || need+=(rsstail)
command -v chromium >/dev/null || need+=(chromium)
# nginx runs README's reverse-proxy block in front of the service (test_behind_nginx.py)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Node.js and npm for feedsmith, the independent JSON Feed parser the format tests read
# feedfix's JSON Feed with (tests/js: its version pinned by package-lock.json).
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== apt-get install nodejs npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if command -v npm >/dev/null; then
  echo "== npm ci (tests/js: feedsmith)"
  npm ci --prefix tests/js --no-audit --no-fund --silent
fi

# Redis for the Redis store and the multi-replica tests (tests/redis_helpers.py starts its
# own redis-server on a free loopback port, persistence off; nothing is left running).
if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== apt-get install redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# Docker for tests/service/test_docker.py: Debian's engine and compose, and mmdebstrap for the
# stand-in base image (no image registry is reachable from CI). dockerd is started when none
# answers (no bridge, no iptables: containers use host networking) and stopped on exit.
docker_need=()
command -v dockerd >/dev/null || docker_need+=(docker.io)
command -v docker-compose >/dev/null || docker_need+=(docker-compose)
command -v mmdebstrap >/dev/null || docker_need+=(mmdebstrap)
if [ ${#docker_need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== apt-get install ${docker_need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${docker_need[@]}" >/dev/null
fi
# shellcheck source=scripts/docker-base.sh
source scripts/docker-base.sh
trap docker_engine_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if command -v docker >/dev/null; then
  echo "== docker engine and the stand-in base image"
  docker_engine_up && docker_standin_base >/dev/null || echo "(the Docker tests will say why)"
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== import-linter (the layers and the pure core)"
.venv/bin/lint-imports
echo "== mypy --strict (the package and the tests)"
.venv/bin/mypy
# Worker processes, a test file each (--dist loadfile: a module's service, browser or image
# build is made once); the tests mostly wait on their subprocesses, so even 2 cores gain.
# FEEDFIX_TEST_WORKERS=0 runs them in this one process.
workers=${FEEDFIX_TEST_WORKERS:-2}
echo "== pytest ($workers workers)"
if [ "$workers" = 0 ]; then
  .venv/bin/python -m pytest "$@"
else
  .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
fi
