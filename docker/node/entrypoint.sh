#!/bin/sh
# A kit test-cluster node: munged with the cluster's key, kit's local engine on the image's
# /opt/venv (checked against the flavor's pins), then slurmd in the foreground as this node.
#   KIT_NODE_PYTHON  kit's Python (the mounted repository's .venv)
#   SLURM_CONF       the cluster's slurm.conf (mounted at the same path as on the host)
set -eu
install -o munge -g munge -m 0400 /run/kit/munge.key /etc/munge/munge.key
mkdir -p /run/munge /var/spool/slurmd /var/log/slurm
chown munge:munge /run/munge
runuser -u munge -- /usr/sbin/munged
"$KIT_NODE_PYTHON" -m kit envs adopt "$KIT_FLAVOR" /opt/venv
exec /usr/sbin/slurmd -D -N "$(hostname -s)" -f "$SLURM_CONF"
