#!/usr/bin/env bash
# A Docker engine and a stand-in for the image's base (python:3.11-slim) on a machine that can
# reach Debian's mirror and the package index but no image registry:
#
#   bash scripts/docker-base.sh engine    # start dockerd if none answers (prints its pid)
#   bash scripts/docker-base.sh base      # make the stand-in base image, unless it is cached
#   source scripts/docker-base.sh         # docker_engine_up / docker_engine_down / docker_standin_base
#
# engine: dockerd --bridge=none --iptables=false: no bridge, no NAT rules; containers use host
#   networking only (--network host), so every connection stays on 127.0.0.1.
# base: mmdebstrap makes a minimal Debian bookworm with python3, python3-venv, ca-certificates
#   and passwd (useradd), `docker import` turns it into an image, and a two-line derived image
#   adds the CA bundle that pip on this host trusts, a pip.conf naming it (and the host's
#   http(s) package indexes, if it sets any) and /usr/local/bin/python, as in python:3.11-slim.
#   It is tagged $STANDIN_PYTHON_IMAGE (below) and the Dockerfile builds from it with
#   --build-arg PYTHON_IMAGE=...; the Dockerfile itself is what real users build on the real
#   base. Both images carry a hash of their recipe (and of the CA bundle and pip settings), so
#   they are made once per machine and again only when one of these changes.
set -euo pipefail

STANDIN_ROOTFS_REPO=feedfix-standin/debian-bookworm-python
STANDIN_PYTHON_IMAGE=feedfix-standin/python:3.11-slim
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STANDIN_PACKAGES=python3,python3-venv,ca-certificates,passwd
docker_started_pid=""

docker_say() { echo "docker-base: $*" >&2; }

# Start dockerd unless an engine already answers; docker_engine_down stops only that one.
docker_engine_up() {
    if docker info >/dev/null 2>&1; then return 0; fi
    if ! command -v dockerd >/dev/null || [ "$(id -u)" != 0 ]; then
        docker_say "no Docker engine answers and none can be started here (needs root and dockerd)"
        return 0
    fi
    local log=${TMPDIR:-/tmp}/feedfix-dockerd.log
    dockerd --bridge=none --iptables=false >"$log" 2>&1 &
    docker_started_pid=$!
    local tenths
    for ((tenths = 0; tenths < 600; tenths++)); do
        if docker info >/dev/null 2>&1; then
            docker_say "started dockerd (pid $docker_started_pid, log $log)"
            return 0
        fi
        kill -0 "$docker_started_pid" 2>/dev/null || break
        sleep 0.1
    done
    docker_say "dockerd did not come up; last lines of $log:"
    tail -n 15 "$log" >&2
    docker_engine_down
    return 1
}

docker_engine_down() {
    [ -n "$docker_started_pid" ] || return 0
    kill -TERM "$docker_started_pid" 2>/dev/null || true
    wait "$docker_started_pid" 2>/dev/null || true
    docker_say "stopped dockerd (pid $docker_started_pid)"
    docker_started_pid=""
}

# The CA bundle pip on this host trusts: PIP_CERT, pip's own `cert` setting, then the usual
# variables, then Debian's bundle.
docker_host_ca_bundle() {
    local cert=${PIP_CERT:-}
    [ -n "$cert" ] || cert=$(python3 -m pip config get global.cert 2>/dev/null || true)
    [ -n "$cert" ] || cert=${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
    echo "$cert"
}

# The pip.conf of the stand-in: the CA bundle, and the host's index settings that a container
# can reach (http/https; file:// indexes are this host's folders and stay out). It is made at
# build time and lives only in this machine's local image, never in the repository; an index
# URL with credentials in it would be in that image too.
docker_pip_conf() {
    python3 - <<'EOF'
import os, subprocess
def setting(key):
    env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    if env is not None:
        return env
    got = subprocess.run(["python3", "-m", "pip", "config", "get", "global." + key],
                         capture_output=True, text=True)
    return got.stdout.strip() if got.returncode == 0 else ""
print("[global]\ncert = /etc/ssl/certs/ca-certificates.crt")
for key in ("index-url", "extra-index-url", "trusted-host"):
    values = [v for v in setting(key).split() if key == "trusted-host" or v.startswith(("http://", "https://"))]
    if values:
        print(f"{key} = {' '.join(values)}")
EOF
}

docker_standin_base() {
    local recipe rootfs ca context want have
    recipe=$(printf '%s\n' "mmdebstrap --variant=essential --include=$STANDIN_PACKAGES" \
        "--dpkgopt=path-exclude=/usr/share/{doc,man,locale}/* bookworm" | sha256sum | cut -c1-12)
    rootfs=$STANDIN_ROOTFS_REPO:$recipe
    if ! docker image inspect "$rootfs" >/dev/null 2>&1; then
        command -v mmdebstrap >/dev/null || { docker_say "mmdebstrap is not installed"; return 1; }
        docker_say "mmdebstrap bookworm ($STANDIN_PACKAGES) from $DEBIAN_MIRROR, then docker import"
        mmdebstrap --quiet --variant=essential --include="$STANDIN_PACKAGES" \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            bookworm - "$DEBIAN_MIRROR" |
            docker import \
                --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$rootfs" >/dev/null
    fi

    ca=$(docker_host_ca_bundle)
    [ -r "$ca" ] || { docker_say "cannot read the CA bundle $ca"; return 1; }
    context=$(mktemp -d "${TMPDIR:-/tmp}/feedfix-standin.XXXXXX")
    cp "$ca" "$context/ca-certificates.crt"
    docker_pip_conf >"$context/pip.conf"
    want=$(cat "$context/ca-certificates.crt" "$context/pip.conf" <(echo "$rootfs") | sha256sum | cut -c1-16)
    have=$(docker image inspect --format '{{ index .Config.Labels "org.feedfix.standin" }}' \
        "$STANDIN_PYTHON_IMAGE" 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        docker_say "deriving $STANDIN_PYTHON_IMAGE (CA bundle from $ca)"
        cat >"$context/Dockerfile" <<EOF
FROM $rootfs
COPY ca-certificates.crt pip.conf /etc/
RUN mv /etc/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt && ln -s /usr/bin/python3 /usr/local/bin/python
EOF
        DOCKER_BUILDKIT=0 docker build --quiet --network host --label "org.feedfix.standin=$want" \
            -t "$STANDIN_PYTHON_IMAGE" "$context" >/dev/null
    fi
    rm -rf "$context"
    echo "$STANDIN_PYTHON_IMAGE"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case ${1:-} in
        engine) docker_engine_up && echo "${docker_started_pid:-running}" ;;
        base) docker_standin_base ;;
        *) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 2 ;;
    esac
fi
