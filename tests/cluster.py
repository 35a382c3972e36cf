"""A real multi-node Slurm cluster on this machine: slurmctld on the host, each compute node its
own container (docker/node: kit's stock image plus Debian's slurmd and munge) with its own
hostname, CPU, memory limit and address, the host's munge key, and the cluster folder and this
repository mounted at the same paths as here. The nodes run kit's jobs with the local engine on
the image's own TensorFlow, confined to their CPU.

Used by the tests' fixture, and by hand::

    make cluster-up      # python -m tests.cluster up   (prints the SLURM_CONF to export)
    make cluster-down    # python -m tests.cluster down
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import ipaddress
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import psutil

from kit.model.flavors import Flavor, image_tag
from tests.engines import _wait_for, slurm_logs, start_munged, stop_process

REPO = Path(__file__).resolve().parents[1]
NODE_DIR = REPO / "docker" / "node"
NODE_IMAGE = "kit/slurm-node:stock"
NETWORK = "kit-cluster"
LABEL = "kit.cluster"
PREFIX = "kit-cluster-"
CTLD_PORT, SLURMD_PORT = 26817, 26818
DEFAULT_ROOT = REPO / ".cluster"
NODE_MEMORY = "6g"
SUBNETS = ("172.31.231.0/24", "172.31.232.0/24", "10.231.77.0/24")


@dataclass
class Node:
    name: str
    cpu: int
    address: str

    @property
    def container(self) -> str:
        return f"{PREFIX}{self.name}"


@dataclass
class Cluster:
    root: Path
    conf: Path
    nodes: list[Node]
    controller: subprocess.Popen | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def sinfo(self) -> dict[str, str]:
        """Each node's state as sinfo says it (idle, alloc, down*, ...)."""
        argv = ["sinfo", "-h", "-N", "-o", "%N %T"]
        out = subprocess.run(argv, env={**os.environ, **self.env()}, check=False,
                             capture_output=True, text=True)  # fmt: skip
        return dict(line.split() for line in out.stdout.splitlines() if len(line.split()) == 2)

    def wait_idle(self, names: list[str] | None = None, wait_s: float = 120) -> None:
        wanted = names or self.names
        try:
            _wait_for(lambda: all(self.sinfo().get(n) == "idle" for n in wanted), wait_s,
                      f"nodes {', '.join(wanted)} to be idle")  # fmt: skip
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} (sinfo: {self.sinfo()}); {self.logs()}") from None

    def logs(self) -> str:
        """The tails of the controller's and the nodes' logs, for a failure that says why."""
        names = ("slurmctld.log", *(f"slurmd-{n.name}.log" for n in self.nodes))
        said = [slurm_logs(self.root, names)]
        for node in self.nodes:
            with contextlib.suppress(docker.errors.DockerException):
                raw = _client().containers.get(node.container).logs(tail=4)
                tail = raw.decode("utf-8", "replace")
                said.append(f"{node.name} says: " + " | ".join(tail.splitlines()))
        return "; ".join(said)

    def kill_node(self, name: str) -> None:
        """The node's container killed: the machine gone, as a power cut takes it."""
        _client().containers.get(self.node(name).container).kill()

    def start_node(self, name: str) -> None:
        """Bring a node back (a fresh container) and let Slurm take it again."""
        _start_node(_client(), self, self.node(name))
        self.wait_idle([name])

    def stop_controller(self) -> None:
        """slurmctld stopped (it saves its state); the nodes and their jobs go on."""
        if self.controller is not None:
            stop_process(self.controller)
            self.controller = None

    def start_controller(self) -> None:
        """slurmctld started again on its saved state."""
        self.controller = _start_controller(self.root, self.conf)

    def stop(self) -> None:
        stop_cluster(self.root)
        for process in [self.controller, *reversed(self.processes)]:
            if process is not None:
                stop_process(process)


def node_image(client: docker.DockerClient, say=print) -> str:
    """The node image, built when missing or when the stock image or docker/node changed."""
    base = client.images.get(image_tag(Flavor.stock))
    digest = hashlib.sha256(base.id.encode())
    for name in ("Dockerfile", "entrypoint.sh"):
        digest.update((NODE_DIR / name).read_bytes())
    wanted = digest.hexdigest()[:16]
    try:
        if client.images.get(NODE_IMAGE).labels.get("kit.node-digest") == wanted:
            return NODE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    say(f"building {NODE_IMAGE} on {image_tag(Flavor.stock)}")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name in ("Dockerfile", "entrypoint.sh"):
            tar.add(NODE_DIR / name, arcname=f"docker/node/{name}")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, dockerfile="docker/node/Dockerfile",
                        tag=NODE_IMAGE, labels={"kit.node-digest": wanted, LABEL: "1"},
                        rm=True, forcerm=True, pull=False)  # fmt: skip
    return NODE_IMAGE


def slurm_conf(root: Path, controller: str, gateway: str, nodes: list[Node]) -> str:
    lines = [
        "ClusterName=kitnodes",
        f"SlurmctldHost={controller}({gateway})",
        "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge",
        # The container's cpuset confines each node; Slurm's own binding would name host CPUs.
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "ReturnToService=2", "MpiDefault=none", "SchedulerType=sched/backfill",
        f"SlurmctldPort={CTLD_PORT}", f"SlurmdPort={SLURMD_PORT}",
        f"StateSaveLocation={root / 'state'}", "SlurmdSpoolDir=/var/spool/slurmd",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", "SlurmdPidFile=/run/slurmd.pid",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd-%n.log'}",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        # A node that stops answering is down within seconds, not Slurm's default 5 minutes.
        "SlurmdTimeout=10", "MessageTimeout=5", "KillWait=10", "InactiveLimit=0",
        "MinJobAge=600",
    ]  # fmt: skip
    for n in nodes:
        lines.append(f"NodeName={n.name} NodeAddr={n.address} CPUs=1 Sockets=1 CoresPerSocket=1 "
                     "ThreadsPerCore=1 State=UNKNOWN")  # fmt: skip
    names = ",".join(n.name for n in nodes)
    lines.append(f"PartitionName=kit Nodes={names} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def start_cluster(root: Path = DEFAULT_ROOT, count: int = 2, say=print) -> Cluster:
    """slurmctld here and ``count`` node containers (one CPU each), all idle and ready."""
    for tool in ("slurmctld", "munged", "sinfo", "sbatch"):
        if not any(Path(d, tool).exists() for d in ("/usr/sbin", "/usr/bin")):
            raise RuntimeError(f"{tool} is missing (apt-get install slurmctld slurm-client munge)")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < count:
        raise RuntimeError(f"{count} nodes need {count} CPUs; this host has {len(cpus)}")
    stop_cluster(root)
    client = _client()
    image = node_image(client, say)
    network = _network(client)
    subnet = ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
    gateway = str(subnet.network_address + 1)
    nodes = [Node(f"n{i + 1}", cpus[i], str(subnet.network_address + 11 + i)) for i in range(count)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "state").mkdir(exist_ok=True)
    conf = root / "slurm.conf"
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True)
    conf.write_text(slurm_conf(root, host.stdout.strip(), gateway, nodes), encoding="utf-8")
    cluster = Cluster(root, conf, nodes, processes=start_munged(root))
    (root / "cluster.json").write_text(json.dumps({"nodes": [n.__dict__ for n in nodes]}))
    try:
        cluster.controller = _start_controller(root, conf)
        for node in nodes:
            _start_node(client, cluster, node, image)
        cluster.wait_idle()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def stop_cluster(root: Path = DEFAULT_ROOT) -> None:
    """Remove the node containers, the network and a slurmctld left by an earlier start."""
    client = _client()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
    for daemon in ("slurmctld", "munged"):
        _stop_by_pid_file(root / f"{daemon}.pid", daemon)
    for network in client.networks.list(names=[NETWORK]):
        network.remove()


def _stop_by_pid_file(pid_file: Path, name: str) -> None:
    """Stop the process a pid file names (and its children: runuser's munged), if it is ``name``."""
    if not pid_file.is_file():
        return
    try:
        process = psutil.Process(int(pid_file.read_text().strip()))
        if name in " ".join(process.cmdline()):
            for one in [*process.children(recursive=True), process]:
                one.terminate()
            psutil.wait_procs([process], timeout=30)
    except (ValueError, OSError, psutil.Error):
        pass
    pid_file.unlink(missing_ok=True)


def _start_node(client: docker.DockerClient, cluster: Cluster, node: Node,
                image: str = NODE_IMAGE) -> None:  # fmt: skip
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(node.container).remove(force=True)
    shared = sorted({str(REPO), str(cluster.root), *_python_prefix()})
    container = client.containers.create(
        image, name=node.container, hostname=node.name, detach=True,
        cpuset_cpus=str(node.cpu), mem_limit=NODE_MEMORY, cap_add=["SYS_NICE"],
        labels={LABEL: "1", f"{LABEL}.node": node.name},
        environment={"SLURM_CONF": str(cluster.conf), "KIT_NODE_PYTHON": sys.executable},
        volumes={"/etc/munge/munge.key": {"bind": "/run/kit/munge.key", "mode": "ro"},
                 **{p: {"bind": p, "mode": "rw"} for p in shared}},
        network=NETWORK,
    )  # fmt: skip
    client.networks.get(NETWORK).disconnect(container)
    client.networks.get(NETWORK).connect(container, ipv4_address=node.address)
    container.start()


def _python_prefix() -> list[str]:
    """The prefix of the Python kit's venv was made from, when the node has not its own at that
    path (Debian's /usr it has): mounted like a cluster's shared software."""
    prefix = Path(sys.base_prefix).resolve()
    return [] if prefix == Path("/usr") else [str(prefix)]


def _network(client: docker.DockerClient):
    for network in client.networks.list(names=[NETWORK]):
        network.remove()
    taken = {c["Subnet"] for n in client.networks.list()
             for c in (n.attrs.get("IPAM") or {}).get("Config") or [] if "Subnet" in c}  # fmt: skip
    for subnet in SUBNETS:
        if subnet in taken:
            continue
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        try:
            return client.networks.create(NETWORK, driver="bridge", ipam=ipam,
                                          labels={LABEL: "1"})  # fmt: skip
        except docker.errors.APIError:
            continue
    raise RuntimeError(f"no free subnet for the cluster's network among {', '.join(SUBNETS)}")


def _start_controller(root: Path, conf: Path) -> subprocess.Popen:
    log = (root / "slurmctld.out").open("ab")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    return subprocess.Popen(["/usr/sbin/slurmctld", "-D", "-f", str(conf)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip


def _client() -> docker.DockerClient:
    return docker.from_env(timeout=600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the cluster's folder")
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    if args.action == "down":
        stop_cluster(args.root)
        print(f"cluster in {args.root} stopped")
        return 0
    cluster = start_cluster(args.root.resolve(), args.nodes)
    # The controller, and munged if it started one, outlive this command (make cluster-down
    # stops them by their pid files).
    cluster.controller = None
    for process in cluster.processes:
        (cluster.root / "munged.pid").write_text(str(process.pid))
    print(
        f"nodes {', '.join(cluster.names)} idle; use it with:\n"
        f"  export SLURM_CONF={cluster.conf}\n"
        f"  kit compare stock --engine slurm --node-engine local --slurm-nodes {len(cluster.nodes)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
