"""Slurm command lines and their output, pure: the probe step, ``sbatch`` lines and job scripts
from the plan, and the parsers of ``squeue``, ``scontrol`` and the probe's lines."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kit.engines.container import docker_run_line
from kit.engines.slurm.options import JOB_PREFIX, NodeEngine, SlurmOptions
from kit.errors import EngineUnavailable, KitError, UsageError
from kit.host.facts import HostFacts, facts_from_probe
from kit.model.spec import RunSpec

PROBE_CHECK = """
import json, os, sys
folder, token = sys.argv[1], sys.argv[2]
seen = None
try:
    with open(os.path.join(folder, ".kit-shared"), encoding="utf-8") as f:
        seen = f.read().strip() == token
    probe = os.path.join(folder, ".kit-write-" + os.uname().nodename + "-" + str(os.getpid()))
    with open(probe, "w") as f:
        f.write("x")
    os.unlink(probe)
    writable = None
except OSError as exc:
    writable = f"{exc.strerror} ({exc.filename})"
facts = collect()
facts["node"] = os.environ.get("SLURMD_NODENAME") or os.uname().nodename.split(".")[0]
facts["shared"] = seen
facts["unwritable"] = writable
facts["images"] = images(sys.argv[3])
facts["kit"] = kit_version()
text = json.dumps(facts)
parts = [text[i:i + 700] for i in range(0, len(text), 700)]
for i, part in enumerate(parts):
    print(f"kit-probe-part: {facts['node']} {i + 1}/{len(parts)} {part}", flush=True)
"""

PROBE_IMAGES = """
import subprocess
def images(tool):
    if tool == "local":
        return None
    try:
        out = subprocess.run([tool, "images", "--no-trunc", "--format",
                              "{{.Repository}}:{{.Tag}} {{.ID}}"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["no answer"])[-1]}
    found = {}
    for line in out.stdout.splitlines():
        ref, _, image_id = line.partition(" ")
        if image_id and not image_id.startswith("sha256:"):
            image_id = "sha256:" + image_id
        found[ref.removeprefix("localhost/")] = image_id
    return found
"""


# Whether the Python the jobs will run has kit: imported as the worker imports it, not from
# the step's working directory (`python -c` puts it first; it may hold kit's source).
PROBE_KIT = """
def kit_version():
    sys.path[:] = [p for p in sys.path if p != ""]
    try:
        import kit
    except Exception:
        return None
    if getattr(kit, "__file__", None) is None:
        return None  # a folder named kit, not kit
    return getattr(kit, "__version__", "unknown")
"""


def probe_code() -> str:
    script = resources.files("kit.host").joinpath("probe_script.py").read_text(encoding="utf-8")
    script = script.split('if __name__ == "__main__":')[0]
    return script + PROBE_IMAGES + PROBE_KIT + PROBE_CHECK


def probe_argv(options: SlurmOptions, folder: Path, token: str, python: str) -> list[str]:
    """One task on each node (exclusive), printing the node's facts, run by the Python the
    node's jobs will run kit with."""
    where = [f"--nodelist={','.join(options.nodelist)}"] if options.nodelist else []
    return [
        "srun", f"--nodes={options.count}", *where, "--ntasks-per-node=1", "--exclusive",
        f"--job-name={JOB_PREFIX}probe", *options.common(), python, "-c", probe_code(),
        str(folder), token, options.node_engine.value,
    ]  # fmt: skip


_STEP_NODE = re.compile(r"srun: error: ([^:\s]+): task")
_EXECVE = re.compile(r"execve\(\): .*: ([^:\n]+)$", re.MULTILINE)


def probe_failure(stderr: str, code: int, python: str) -> KitError:
    """Why the probe step failed: a node that has not that Python, or may not run it, named
    with what to do; else Slurm's own last line."""
    nodes = sorted(set(_STEP_NODE.findall(stderr)))
    cannot = _EXECVE.search(stderr)
    if cannot:
        where = f"node {', '.join(nodes)}" if nodes else "a node"
        reason = cannot.group(1).strip()
        said = f"has no {python}" if reason == "No such file or directory" else (
            f"cannot run {python}: {reason} (for the job's user)"
        )  # fmt: skip
        return UsageError(
            f"{where} {said}: the nodes run kit with that Python",
            "give --node-python PATH of a Python with kit that the job's user can run there",
        )
    said = (stderr.strip().splitlines() or ["no output"])[-1]
    return EngineUnavailable(
        f"the Slurm probe step failed (exit {code}): {said}",
        "check the partition, nodes and constraint with `sinfo`",
    )


@dataclass(frozen=True)
class NodeProbe:
    node: str
    facts: HostFacts
    images: Mapping[str, str] | None  # reference -> id on the node's engine (None: local)
    images_error: str | None


# srun line-buffers each task's output only up to a length: a longer line from one node can
# be cut by another's. So each node's facts come in short numbered parts.
PROBE_PART = "kit-probe-part: "
_PART = re.compile(rf"^{PROBE_PART}(\S+) (\d+)/(\d+) (.*)$", re.MULTILINE)


def probe_records(text: str) -> list[dict]:
    """Each node's facts, put together from its parts (in the order the nodes' first parts came)."""
    parts: dict[str, dict[int, str]] = {}
    counts: dict[str, int] = {}
    for match in _PART.finditer(text):
        node, number, count, part = match.groups()
        parts.setdefault(node, {})[int(number)] = part
        counts[node] = int(count)
    records = []
    for node, got in parts.items():
        if sorted(got) != list(range(1, counts[node] + 1)):
            raise EngineUnavailable(f"the probe step's output from node {node} is incomplete",
                                    "run the probe again; check the node with `sinfo`")  # fmt: skip
        records.append(json.loads("".join(got[i] for i in sorted(got))))
    return records


def parse_probe(text: str, folder: Path, python: str, version: str) -> list[NodeProbe]:
    """Each node's facts from the probe step's output; UsageError when a node cannot write
    the session's folder or does not share it, or its ``python`` lacks kit ``version``."""
    found = []
    for raw in probe_records(text):
        node = str(raw["node"])
        if raw.get("unwritable"):
            raise UsageError(
                f"node {node} cannot write the results folder {folder}: {raw['unwritable']}",
                "put --results on a filesystem every node shares and can write",
            )
        if not raw.get("shared"):
            raise UsageError(
                f"node {node} does not see this host's results folder {folder}: it is not on "
                "a filesystem the nodes share",
                "put --results on a shared filesystem (e.g. NFS, Lustre, your home)",
            )
        _check_kit(node, raw.get("kit", "unknown"), python, version)
        images = raw.get("images")
        error = images.get("error") if isinstance(images, dict) else None
        facts = facts_from_probe(raw, node)
        found.append(NodeProbe(node, facts, None if error else images, error))
    return found


def _check_kit(node: str, found: str | None, python: str, version: str) -> None:
    if found is None:
        raise UsageError(
            f"node {node} has no kit for {python}: its jobs could not run their share",
            f"install kit {version} there (pip install it into that Python's environment), "
            "or give --node-python PATH of a Python that has it",
        )
    if found not in (version, "unknown"):
        raise UsageError(
            f"node {node} has kit {found} for {python}, this host kit {version}: the two must "
            "read the same session files",
            f"install kit {version} on the node, or give --node-python PATH of one that has it",
        )


def sbatch_argv(options: SlurmOptions, node: str, cpus: int, folder: Path, script: Path,
                session_id: str) -> list[str]:  # fmt: skip
    """The job of one node's share: that node, whole and alone, all its CPUs."""
    return [
        "sbatch", "--parsable", f"--job-name={JOB_PREFIX}{session_id}-{node}",
        f"--nodelist={node}", "--nodes=1", "--ntasks=1", f"--cpus-per-task={cpus}",
        # Never re-run by Slurm behind kit's back (node failure, preemption): the job ends, its
        # unfinished runs fail with Slurm's reason, and --resume runs them again.
        "--exclusive", "--no-requeue", f"--output={folder / 'job-%j.out'}", f"--chdir={folder}",
        *options.common(), str(script),
    ]  # fmt: skip


def job_script(python: str, share: Path, session_id: str, node: str, indices: Sequence[int]) -> str:
    """The script a node's job runs: kit's worker on its share of the plan."""
    runs = ", ".join(str(i) for i in indices)
    return (
        "#!/bin/sh\n"
        f"# kit session {session_id}: node {node}, runs {runs}\n"
        f"exec {shlex.quote(python)} -m kit _worker {shlex.quote(str(share))}\n"
    )


# sinfo's node states in which a node takes jobs (allocated and mixed ones do, in their turn).
UP_STATES = {"idle", "mixed", "allocated", "completing", "planned", "reserved"}


def parse_sinfo(text: str) -> dict[str, str]:
    """``sinfo -h -N -o '%N %T'`` -> node -> its state (``down*``, ``idle``, ``drained`` ...)."""
    return dict(line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)


def node_is_up(state: str) -> bool:
    """A node that answers and takes jobs: ``idle``, ``mixed`` ...; not ``idle*`` (not
    responding), ``down``, ``drained``, ``draining``, ``fail`` ..."""
    return not state.endswith("*") and state.rstrip("~#!%$@^-+") in UP_STATES


def check_nodes_up(states: Mapping[str, str], options: SlurmOptions) -> None:
    """UsageError, before anything is submitted, when the nodes asked for are not up: a
    session would wait in the queue for a node that is down."""
    where = f"partition {options.partition}" if options.partition else "the cluster"
    if options.nodelist:
        unknown = [n for n in options.nodelist if n not in states]
        if unknown:
            raise UsageError(f"--nodelist {', '.join(unknown)}: no such node in {where}",
                             f"its nodes: {', '.join(sorted(states)) or 'none'}")  # fmt: skip
        down = {n: states[n] for n in options.nodelist if not node_is_up(states[n])}
        if down:
            said = ", ".join(f"{n} is {s}" for n, s in down.items())
            hint = "bring it back, or name the nodes that are up with --nodelist"
            raise UsageError(f"node {said} (sinfo)", hint)
        return
    up = sorted(n for n, s in states.items() if node_is_up(s))
    if len(up) < options.count:
        said = ", ".join(up) or "none"
        raise UsageError(
            f"--slurm-nodes {options.count}, but {len(up)} of {where}'s nodes are up ({said})",
            "bring the others back, or ask for fewer with --slurm-nodes or --nodelist",
        )


def parse_squeue(text: str) -> dict[str, tuple[str, str]]:
    """``squeue -h -o '%i|%T|%r'`` -> job id -> (state, reason)."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0]:
            out[parts[0]] = (parts[1], parts[2])
    return out


def parse_scontrol(text: str) -> dict[str, str]:
    """``scontrol show job -o ID`` -> its fields (a value runs to the next ``Key=``)."""
    fields: dict[str, str] = {}
    for match in re.finditer(r"(\w[\w/:]*)=(.*?)(?=\s+\w[\w/:]*=|\s*$)", text.strip()):
        fields.setdefault(match.group(1), match.group(2))
    return fields


def ended_reason(fields: Mapping[str, str]) -> str:
    """Why a job is over, in Slurm's words (its state, reason and exit code)."""
    state = fields.get("JobState", "gone")
    reason = fields.get("Reason", "")
    code = fields.get("ExitCode", "")
    said = [state]
    if reason and reason != "None":
        said.append(f"reason {reason}")
    if code and code != "0:0":
        said.append(f"exit code {code}")
    return ", ".join(said)


def srun_line(options: SlurmOptions, spec: RunSpec, session_id: str) -> str:
    """The run as one step on one whole node of the cluster: srun around the node engine's own
    line (its container, or the local engine's taskset, numactl and python)."""
    if options.node_engine is NodeEngine.local:
        env = [f"{k}={v}" for k, v in spec.environment().items()]
        inner = shlex.join(["env", *env, *spec.host_command("python3")])
    else:
        inner = docker_run_line(spec, session_id, options.node_engine.value)
    nodes = [f"--nodelist={','.join(options.nodelist)}"] if options.nodelist else []
    step = ["srun", "--nodes=1", "--ntasks=1", "--exclusive", *nodes, *options.common()]
    return f"{shlex.join(step)} {inner}"
