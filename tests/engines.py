"""Another Docker engine on this machine for the many-hosts tests: its own dockerd with its
own socket, data-root, exec-root, bridge and a loopback TCP port, started and stopped by the
test (by the pid it started)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import docker
import pytest

from tests.conftest import _require_docker

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Dockerd:
    root: Path
    bridge: str
    process: subprocess.Popen
    tcp_port: int
    argv: tuple[str, ...] = ()

    @property
    def socket_url(self) -> str:
        return f"unix://{self.root}/docker.sock"

    @property
    def tcp_url(self) -> str:
        return f"tcp://127.0.0.1:{self.tcp_port}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.socket_url, timeout=600)

    def log_tail(self) -> str:
        lines = (self.root / "dockerd.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-15:])

    def stop(self) -> None:
        """SIGTERM, as a host shutting its engine down would; the daemon stops its containers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def restart(self, wait_s: float = 90) -> None:
        """Stop the daemon (its containers stop with it) and start it again on the same data."""
        self.stop()
        with (self.root / "dockerd.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if not _answers(self, wait_s):
            raise RuntimeError(f"the dockerd did not answer again:\n{self.log_tail()}")

    def remove(self) -> None:
        self.stop()
        subprocess.run(["ip", "link", "delete", self.bridge], check=False, capture_output=True)
        # The data-root's overlay mounts are gone with the daemon; whatever is busy stays.
        shutil.rmtree(self.root, ignore_errors=True)


def another_engine(name: str, octet: int) -> Dockerd:
    """A dockerd of the test's own (``start_dockerd``); fails when KIT_REQUIRE_DOCKER is set
    and it cannot start, else skips."""
    try:
        return start_dockerd(name, octet)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        if _require_docker():
            pytest.fail(f"KIT_REQUIRE_DOCKER is set but another engine cannot start: {exc}")
        pytest.skip(f"cannot start another engine: {exc}")


def start_registry(root: Path) -> tuple[subprocess.Popen, str]:
    """Debian's docker-registry (distribution 2.8) on a loopback port, storing under ``root``;
    returns the process and its address (HOST:PORT)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    assert proc.stderr is not None
    raise RuntimeError(f"docker-registry did not listen: {proc.stderr.read().decode()[-500:]}")


def start_dockerd(name: str, subnet_octet: int, wait_s: float = 90) -> Dockerd:
    """A dockerd under /tmp/<name> (short: a unix socket path has a length limit)."""
    if shutil.which("dockerd") is None or shutil.which("ip") is None:
        raise RuntimeError("a second engine needs dockerd and ip (docker.io, iproute2)")
    root = Path("/tmp") / f"{name}-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    bridge = f"{name[:8]}{subnet_octet}"[:15]
    subprocess.run(["ip", "link", "delete", bridge], check=False, capture_output=True)
    for step in (
        ["ip", "link", "add", bridge, "type", "bridge"],
        ["ip", "addr", "add", f"172.31.{subnet_octet}.1/24", "dev", bridge],
        ["ip", "link", "set", bridge, "up"],
    ):
        subprocess.run(step, check=True, capture_output=True)
    port = _free_port()
    argv = [
        "dockerd",
        "--host", f"unix://{root}/docker.sock",
        "--host", f"tcp://127.0.0.1:{port}",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "docker.pid"),
        "--bridge", bridge,
        "--iptables=false",
        "--ip-masq=false",
    ]  # fmt: skip
    with (root / "dockerd.log").open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    engine = Dockerd(root, bridge, process, port, tuple(argv))
    if _answers(engine, wait_s):
        return engine
    tail = engine.log_tail()
    engine.remove()
    raise RuntimeError(f"the second dockerd did not answer within {wait_s:g}s:\n{tail}")


def _answers(engine: Dockerd, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and engine.process.poll() is None:
        with contextlib.suppress(Exception):
            engine.client().ping()
            return True
        time.sleep(0.5)
    return False


@dataclass
class Sshd:
    """An sshd on a loopback port that lets this user in with a key made for the test, and an
    `ssh` first on PATH that uses them (docker-py's ssh:// runs `ssh ... docker system
    dial-stdio`, as the docker CLI does)."""

    process: subprocess.Popen
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"ssh://{os.environ.get('USER') or 'root'}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def start_sshd(root: Path, wait_s: float = 30) -> Sshd:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).is_file() or shutil.which("ssh") is None:
        raise RuntimeError("an ssh:// host needs sshd and ssh (openssh-server, openssh-client)")
    root.mkdir(parents=True, exist_ok=True)
    for key in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True
        )
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile {root / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\n"
        "UsePAM no\nAllowTcpForwarding no\nX11Forwarding no\n"
    )
    (root / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {root / 'client_key'}\n  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n"
        "  LogLevel ERROR\n"
    )
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {root / "ssh_config"} "$@"\n')
    wrapper.chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    process = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(root / "sshd.log").open("wb"),
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Sshd(process, port, bin_dir)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"sshd did not listen: {(root / 'sshd.log').read_text()[-500:]}")


@dataclass
class Slurm:
    """A one-node Slurm cluster on this machine (slurmctld and slurmd, and munged if it was
    not running), configured under ``root``; SLURM_CONF points the client commands at it."""

    root: Path
    conf: Path
    node: str
    processes: list[subprocess.Popen]

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    """A daemon the tests started: terminated, killed if it does not end within 30 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def using_slurm(start: Callable[[], T], what: str) -> Iterator[T]:
    """A Slurm cluster for a test module: started (where Docker is required a failure fails the
    tests, else skips them), SLURM_CONF naming it meanwhile, stopped after."""
    try:
        cluster = start()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        if _require_docker():
            pytest.fail(f"KIT_REQUIRE_DOCKER is set but {what} cannot start: {exc}")
        pytest.skip(f"cannot start {what}: {exc}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        if previous is None:
            del os.environ["SLURM_CONF"]
        else:
            os.environ["SLURM_CONF"] = previous
        cluster.stop()  # type: ignore[attr-defined]


def slurm_conf(root: Path, node: str, cpus: int, sockets: int, cores: int, threads: int) -> str:
    return (
        "ClusterName=kit\n"
        f"SlurmctldHost={node}\n"
        "SlurmUser=root\nSlurmdUser=root\n"
        "AuthType=auth/munge\nCredType=cred/munge\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/affinity\n"
        "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
        "ReturnToService=2\nMpiDefault=none\nSchedulerType=sched/backfill\n"
        "SlurmctldPort=16817\nSlurmdPort=16818\n"
        f"StateSaveLocation={root / 'state'}\nSlurmdSpoolDir={root / 'spool'}\n"
        f"SlurmctldPidFile={root / 'slurmctld.pid'}\nSlurmdPidFile={root / 'slurmd.pid'}\n"
        f"SlurmctldLogFile={root / 'slurmctld.log'}\nSlurmdLogFile={root / 'slurmd.log'}\n"
        "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n"
        "KillWait=30\nInactiveLimit=0\nMinJobAge=300\n"
        f"NodeName={node} CPUs={cpus} Sockets={sockets} CoresPerSocket={cores} "
        f"ThreadsPerCore={threads} State=UNKNOWN\n"
        f"PartitionName=kit Nodes={node} Default=YES MaxTime=INFINITE State=UP\n"
    )


def _lscpu_counts() -> tuple[int, int, int, int]:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    value = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    sockets, cores = int(value["Socket(s)"]), int(value["Core(s) per socket"])
    threads = int(value["Thread(s) per core"])
    return sockets * cores * threads, sockets, cores, threads


def start_slurm(root: Path, wait_s: float = 60) -> Slurm:
    """Debian's slurm-wlm 22.05 as a one-node cluster of this host, idle and ready."""
    for tool in ("slurmctld", "slurmd", "munged", "sinfo"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise RuntimeError(f"{tool} is missing (apt-get install slurmctld slurmd munge)")
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True)
    name = node.stdout.strip()
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, name, *_lscpu_counts()))
    (root / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\n")
    processes = start_munged(root)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    for daemon in ("slurmctld", "slurmd"):
        log = (root / f"{daemon}.out").open("wb")
        argv = [f"/usr/sbin/{daemon}", "-D", "-f", str(conf)]
        processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))
    slurm = Slurm(root, conf, name, processes)

    def idle() -> bool:
        argv = ["sinfo", "-h", "-N", "-o", "%T"]
        out = subprocess.run(argv, check=False, env=env, capture_output=True, text=True)
        return out.stdout.strip() == "idle"

    try:
        _wait_for(idle, wait_s, "the Slurm node to be idle")
    except RuntimeError as exc:
        slurm.stop()
        raise RuntimeError(f"{exc}; {slurm_logs(root, ('slurmctld.log', 'slurmd.log'))}") from None
    return slurm


def munge_answers() -> bool:
    """munged is up and answering (a socket file alone can be left by a munged that is gone)."""
    try:
        done = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def start_munged(root: Path) -> list[subprocess.Popen]:
    """munged started (as the munge user) unless one already answers; its process, to stop."""
    if munge_answers():
        return []
    Path("/run/munge").mkdir(exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    log = (root / "munged.log").open("wb")
    # --force: a socket left by a munged that died is taken over, not a reason to refuse.
    argv = ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground", "--force"]
    process = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        _wait_for(munge_answers, 20, "munged to answer")
    except RuntimeError as exc:
        process.kill()
        raise RuntimeError(f"{exc}; {slurm_logs(root, ('munged.log',))}") from None
    return [process]


def slurm_logs(root: Path, names: tuple[str, ...], lines: int = 6) -> str:
    """The last lines of the daemons' logs, for a failure that says why."""
    said = []
    for name in names:
        path = root / name
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() else []
        said.append(f"{name}: " + (" | ".join(text) if text else "(empty)"))
    return "; ".join(said)


def _wait_for(ready, wait_s: float, what: str) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"waited {wait_s:g}s for {what}")
