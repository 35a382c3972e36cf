"""Which settings can act on which build, known before anything runs: a variable a build never
reads is said (and cells that differ only by it are merged) instead of measured as noise.

- KMP_* and OMP_* are read by an OpenMP runtime: intel-tensorflow's oneDNN runs on one; stock
  TensorFlow (>= 2.9) runs oneDNN on its own thread pool, where they do nothing (Intel's guide:
  "OpenMP tuning only applies to Intel Optimization for TensorFlow").
- TF_ENABLE_ONEDNN_OPTS switches oneDNN on stock TensorFlow; intel-tensorflow ignores it.
- ONEDNN_*/DNNL_* are read by oneDNN, so not where TF_ENABLE_ONEDNN_OPTS=0 turned it off. (Where
  stock TensorFlow leaves oneDNN off by its CPU's ISA is known only on the host: `kit verify`.)
- ZENDNN*, TF_ENABLE_ZENDNN_OPTS and USE_ZENDNN_* are read only by AMD's ZenDNN (zentf), whose
  plugin brings its own OpenMP runtime (LLVM's libiomp5): KMP_* and OMP_* act there too.

Images other than kit's flavors are not judged: what they read is unknown until verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from kit.model.spec import ImageRef

ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"
FPMATH = "ONEDNN_DEFAULT_FPMATH_MODE"  # oneDNN's implicit lower precision for fp32 math


class Needs(StrEnum):
    """What a variable needs in the build to act."""

    openmp = "openmp"  # oneDNN on an OpenMP runtime
    threadpool = "threadpool"  # oneDNN on TF's thread pool (where the switch is read)
    onednn = "onednn"  # oneDNN running at all
    zendnn = "zendnn"  # AMD's ZenDNN plugin


# Variable prefixes and what each needs, longest first where they overlap.
PREFIXES: tuple[tuple[str, Needs], ...] = (
    ("KMP_", Needs.openmp), ("OMP_", Needs.openmp), (ONEDNN_SWITCH, Needs.threadpool),
    ("ONEDNN_", Needs.onednn), ("DNNL_", Needs.onednn), ("MKLDNN_", Needs.onednn),
    ("TF_ENABLE_ZENDNN_OPTS", Needs.zendnn), ("ZENDNN", Needs.zendnn), ("USE_ZENDNN", Needs.zendnn),
)  # fmt: skip

# What each flavor's build has (`kit verify` shows it per run, from the libraries' own logs).
OPENMP = frozenset({"intel", "zentf"})  # an OpenMP runtime that KMP_*/OMP_* reach
SWITCH = frozenset({"stock", "latest", "zentf"})  # stock TF's oneDNN switch, read
ZENDNN = frozenset({"zentf"})


def needs(variable: str, declared: Mapping[str, Needs] | None = None) -> Needs | None:
    """What ``variable`` needs to act (a user knob's declaration first); None: acts anywhere."""
    if declared and variable in declared:
        return declared[variable]
    return next((n for prefix, n in PREFIXES if variable.startswith(prefix)), None)


def why_inert(flavor: str, need: Needs, env: Mapping[str, str]) -> str | None:
    """Why a variable that needs ``need`` cannot act on ``flavor`` with ``env``; None if it can."""
    if need is Needs.openmp and flavor not in OPENMP:
        return "oneDNN runs on TF's threadpool"
    if need is Needs.threadpool and flavor not in SWITCH:
        return "its oneDNN is always on"
    if need is Needs.onednn and flavor in SWITCH and env.get(ONEDNN_SWITCH) == "0":
        return f"{ONEDNN_SWITCH}=0 turns oneDNN off"
    if need is Needs.zendnn and flavor not in ZENDNN:
        return "only AMD's ZenDNN (zentf) reads them"
    return None


def inert(
    image: ImageRef, env: Mapping[str, str], declared: Mapping[str, Needs] | None = None
) -> dict[str, str]:
    """Each variable of ``env`` that cannot act on ``image``'s build, with why; {} for an image
    that is none of kit's flavors."""
    if not image.flavor:
        return {}
    out = {}
    for variable in sorted(env):
        need = needs(variable, declared)
        why = why_inert(image.flavor, need, env) if need else None
        if why:
            out[variable] = why
    return out


def describe_inert(found: Mapping[str, str], flavor: str) -> str:
    """``KMP_BLOCKTIME, OMP_NUM_THREADS do nothing on stock (oneDNN runs on TF's threadpool)``,
    one clause per reason."""
    by_why: dict[str, list[str]] = {}
    for variable, why in found.items():
        by_why.setdefault(why, []).append(variable)
    return "; ".join(f"{', '.join(v)} {'does' if len(v) == 1 else 'do'} nothing on {flavor} ({w})"
                     for w, v in by_why.items())  # fmt: skip


def caveats(env: Mapping[str, str]) -> list[str]:
    """What a setting does besides speed, said before it runs: an fpmath mode below fp32."""
    mode = env.get(FPMATH, "STRICT").upper()
    if mode == "STRICT":
        return []
    return [
        f"{FPMATH}={mode} computes fp32 convolutions and matmuls in {mode.lower()} where the CPU "
        "has kernels for it: faster, not fp32's accuracy (bf16: ~3 digits); check the results"
    ]
