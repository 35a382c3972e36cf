#!/usr/bin/env bash
# What `make test` needs on the host besides the Docker engine (docker/engine.sh): numactl for
# the local engine, a registry for push/pull, docker-compose for compose.yaml, iproute2 and an
# sshd/ssh for the many-hosts tests, Slurm and munge for a one-node cluster, podman with runc
# for the podman engine (uidmap for its rootless case), Debian's chromium for the results site's
# browser tests (Playwright drives it; its own browser download is not needed), QEMU and a static
# busybox for the NUMA guest (tests/numa_guest.py), and apt-get's own `download` and dpkg-deb
# for its kernel. As root on Debian/Ubuntu the missing
# ones are installed (without starting their services: the tests start their own on loopback);
# anywhere else this says exactly what to install.
set -euo pipefail

declare -A needs=(
    [numactl]=numactl
    [docker-registry]=docker-registry
    [docker-compose]=docker-compose
    [ip]=iproute2
    [sshd]=openssh-server
    [ssh]=openssh-client
    [ssh-keygen]=openssh-client
    [slurmctld]=slurmctld
    [slurmd]=slurmd
    [sbatch]=slurm-client
    [munged]=munge
    [podman]=podman
    [runc]=runc
    [newuidmap]=uidmap
    [chromium]=chromium
    [qemu-system-x86_64]=qemu-system-x86
    [busybox]=busybox-static
)
missing=()
for cmd in "${!needs[@]}"; do
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] || missing+=("${needs[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "test hosts: missing ${missing[*]}; install them (Debian/Ubuntu: apt-get install ${missing[*]})," >&2
    echo "test hosts: or run make test as root on Debian/Ubuntu, which installs them" >&2
    exit 1
fi

echo "test hosts: installing ${missing[*]} (Debian packages)"
no_start=""
if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep the packages' services from starting
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    no_start=/usr/sbin/policy-rc.d
fi
trap '[ -z "$no_start" ] || rm -f "$no_start"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
