#!/usr/bin/env bash
# Make sure a Docker engine answers. As root on Debian/Ubuntu, install Debian's docker.io (and
# mmdebstrap, which builds a local base image on hosts that reach no registry) and start dockerd;
# anywhere else, say what to do. Waits until the engine answers.
set -euo pipefail

log=${KIT_DOCKERD_LOG:-/var/log/kit-dockerd.log}
wait_s=${KIT_ENGINE_WAIT:-90}

ping_engine() {
    python3 - <<'PY'
import os, socket, sys
host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
if not host.startswith("unix://"):
    import subprocess
    sys.exit(subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
try:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(3)
    s.connect(host[len("unix://"):])
    s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    sys.exit(0 if b" 200 " in s.recv(1024) else 1)
except OSError:
    sys.exit(1)
PY
}

as_root_on_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

install_tools() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v mmdebstrap >/dev/null || command -v debootstrap >/dev/null || missing+=(mmdebstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "engine: installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if ping_engine; then
    echo "engine: Docker answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
    as_root_on_apt && install_tools
    exit 0
fi

if ! as_root_on_apt; then
    echo "engine: no Docker engine answers and this is not root on Debian/Ubuntu." >&2
    echo "engine: install and start Docker (https://docs.docker.com/engine/install/), or set DOCKER_HOST." >&2
    exit 1
fi

install_tools
if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
    echo "engine: started docker.service"
else
    echo "engine: starting dockerd in the background (log: $log)"
    nohup dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq "$wait_s"); do
    if ping_engine; then
        echo "engine: Docker answers"
        exit 0
    fi
    sleep 1
done
echo "engine: dockerd did not answer within ${wait_s}s; its log ends:" >&2
tail -n 20 "$log" >&2 || true
exit 1
