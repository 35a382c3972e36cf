"""Proof the optimized path ran: a short diagnostic run with oneDNN's verbose log on, read back
as what oneDNN really did, plus the knobs that cannot have had an effect. Pure: the session
runs the spec this module derives."""

from __future__ import annotations

import math
import re
from dataclasses import replace

from kit.judging.onednn import OneDnnSummary
from kit.judging.zendnn import LOG_ENV, ZenDnnSummary
from kit.model.acts import FPMATH, Needs, needs
from kit.model.spec import RunSpec

# Every name the verbose switch has had, so old and new builds all speak.
VERBOSE_ENV = {"ONEDNN_VERBOSE": "1", "DNNL_VERBOSE": "1", "MKLDNN_VERBOSE": "1"}
REF_WARN_SHARE = 0.10
BF16_KERNEL = re.compile(r"_bf16\b|amx")  # avx512_core_bf16, avx512_core_amx: bf16 arithmetic


def diagnostic_spec(spec: RunSpec, index: int) -> RunSpec:
    """The same image, profile and placement, verbose on, a few small batches: verbose mode
    slows the run and its log grows fast, so it is never the measured run."""
    workload = replace(
        spec.workload,
        batch_size=min(spec.workload.batch_size, 8),
        num_batches=2,
        num_warmup_batches=1,
    )
    profile = replace(spec.profile, env={**spec.profile.env, **VERBOSE_ENV, **LOG_ENV})
    return replace(
        spec, index=index, workload=workload, profile=profile, repeat=0, instance=1, instances=1
    )


def warnings_for(
    spec: RunSpec, summary: OneDnnSummary, zen: ZenDnnSummary | None = None
) -> list[str]:
    env = spec.profile.env
    warnings = []
    if not ops_ran(summary):
        why = (
            "TF_ENABLE_ONEDNN_OPTS=0"
            if env.get("TF_ENABLE_ONEDNN_OPTS") == "0"
            else "this build's default on this CPU (stock TF enables it by default only with "
            "AVX-512 VNNI/BF16 or AMX; try the onednn profile)"
        )
        sgemm = f"; Eigen's matrix products called its sgemm ({_sgemm(summary)} times)"
        warnings.append(f"oneDNN did not run: {why}" + (sgemm if summary.enabled else ""))
    knobs = sorted(k for k in env if needs(k) is Needs.openmp)
    read_by_onednn = sorted(k for k in env if needs(k) is Needs.onednn and k not in VERBOSE_ENV)
    if read_by_onednn and not summary.enabled:
        warnings.append(
            f"{', '.join(read_by_onednn)} cannot have had an effect: oneDNN did not run"
        )
    if knobs and summary.runtime != "OpenMP":
        runtime = summary.runtime or "no oneDNN at all"
        warnings.append(
            f"{', '.join(knobs)} cannot have had an effect: oneDNN's threading runtime is "
            f"{runtime}, not OpenMP"
        )
    if summary.total_ms and summary.ref_share > REF_WARN_SHARE:
        warnings.append(
            f"{summary.ref_share:.0%} of oneDNN time ran in unoptimized ref: implementations"
        )
    if summary.malformed:
        warnings.append(f"{summary.malformed} verbose lines could not be read")
    if spec.workload.precision.value == "bf16" and summary.enabled and not summary.bf16_exec:
        warnings.append("bf16 was asked for, but no oneDNN primitive read or wrote bf16")
    return warnings + fpmath_notes(spec, summary) + zendnn_notes(spec, zen or ZenDnnSummary())


def zendnn_notes(spec: RunSpec, zen: ZenDnnSummary) -> list[str]:
    """Whether AMD's ZenDNN ran, from its own log: said where the run asked for it or the
    build has it."""
    asked = spec.profile.env.get("TF_ENABLE_ZENDNN_OPTS") == "1"
    if zen.ran:
        return [f"ZenDNN ran: {zen.describe()}"]
    if asked and spec.image.flavor not in (None, "zentf"):
        return []  # said before it ran: only zentf reads it (kit.model.acts)
    if asked:
        return ["ZenDNN did not run: no ZenDNN op executed although TF_ENABLE_ZENDNN_OPTS=1"]
    if spec.image.flavor == "zentf":
        return ["ZenDNN did not run: zentf runs its ops only with TF_ENABLE_ZENDNN_OPTS=1 "
                "(the zentf profile)"]  # fmt: skip
    return []


# Eigen's contraction kernel in stock TensorFlow calls oneDNN's sgemm (``gemm_api`` in the log)
# whether or not TF's oneDNN ops are on: measured on TF 2.14 with TF_ENABLE_ONEDNN_OPTS=0.
SGEMM = "gemm_api"


def ops_ran(summary: OneDnnSummary) -> bool:
    """Whether TensorFlow's oneDNN ops ran: primitives other than the sgemm Eigen calls."""
    return any(kind != SGEMM for kind, _ in summary.primitives)


def _sgemm(summary: OneDnnSummary) -> int:
    return sum(t.count for (kind, _), t in summary.primitives.items() if kind == SGEMM)


def bf16_kernel_share(summary: OneDnnSummary) -> float:
    """The share of oneDNN's time in kernels that compute in bf16, fp32 tensors too where an
    fpmath mode lets them."""
    ms = math.fsum(t.total_ms for (_, i), t in summary.primitives.items() if BF16_KERNEL.search(i))
    return ms / summary.total_ms if summary.total_ms > 0 else 0.0


def fpmath_notes(spec: RunSpec, summary: OneDnnSummary) -> list[str]:
    """What ONEDNN_DEFAULT_FPMATH_MODE did, from the log: the mode on each primitive
    (``attr-fpmath:bf16``) and whether any kernel computed in bf16."""
    asked = spec.profile.env.get(FPMATH, "STRICT")
    if asked.upper() == "STRICT" or not summary.enabled:  # strict: fp32, no attribute shown
        return []
    if summary.fpmath is None:
        return [f"{FPMATH}={asked} set, but no primitive ran with an fpmath mode: this oneDNN "
                "does not read it"]  # fmt: skip
    share = bf16_kernel_share(summary)
    if summary.fpmath in ("bf16", "any") and share == 0:
        return [
            f"fpmath {summary.fpmath} applied, but no bf16 kernel ran: oneDNN chose fp32 "
            "kernels on this CPU (bf16 ones need AMX, or AVX512_BF16 in some primitives)"
        ]
    return [
        f"fpmath {summary.fpmath}: {share:.0%} of oneDNN time in bf16 kernels, fp32 math "
        "rounded to bf16 (check the model's accuracy)"
    ]


def verify_record(
    spec: RunSpec, summary: OneDnnSummary, log_path: str, zen: ZenDnnSummary | None = None
) -> dict:
    """What `--verify` reports for one image and profile (JSON-able)."""
    zen = zen or ZenDnnSummary()
    top = sorted(summary.primitives.items(), key=lambda kv: -kv[1].total_ms)
    return {
        "image": spec.image.label,
        "image_ref": spec.image.reference,
        "profile": spec.profile.name,
        "engine": spec.engine,
        "enabled": summary.enabled,
        "ops": ops_ran(summary),  # TF's oneDNN ops, not only Eigen's calls to its sgemm
        "version": summary.version,
        "runtime": summary.runtime,
        "threads": summary.threads,
        "isa": summary.isa,
        "executions": summary.total_exec,
        "total_ms": round(summary.total_ms, 3),
        "ref_share": round(summary.ref_share, 4),
        "precision": spec.workload.precision.value,
        "bf16_executions": summary.bf16_exec,
        "bf16_share": round(summary.bf16_share, 4),
        "fpmath": summary.fpmath,
        "bf16_kernel_share": round(bf16_kernel_share(summary), 4),
        "primitives": [
            {"kind": kind, "implementation": impl, "count": t.count, "ms": round(t.total_ms, 3)}
            for (kind, impl), t in top
        ],
        "zendnn_ops": dict(zen.ops),
        "warnings": warnings_for(spec, summary, zen),
        "log_path": log_path,
    }


def _bf16(record: dict) -> str:
    """The share of oneDNN time on bf16 data: the proof a bf16 run computed in bf16."""
    if not record["enabled"] or not record.get("bf16_executions"):
        return "-"
    return f"{record['bf16_share']:.1%} ({record['bf16_executions']} executions)"


def _onednn(record: dict) -> str:
    """yes: TF's oneDNN ops ran; sgemm only: Eigen's kernels ran, calling oneDNN's sgemm."""
    if not record["enabled"]:
        return "no"
    return "yes" if record.get("ops", True) else "sgemm only"


def verify_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    several = len({r.get("engine") for r in records}) > 1  # then say where each one ran
    for r in records:
        kinds: dict[str, int] = {}
        for p in r["primitives"]:
            kinds[p["kind"]] = kinds.get(p["kind"], 0) + p["count"]
        top = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:4])
        rows.append(
            [
                f"{r['image']}@{r.get('engine')}" if several else r["image"],
                r["profile"],
                _onednn(r),
                r["version"] or "-",
                r["runtime"] or "-",
                str(r["threads"] or "-"),
                r["isa"] or "-",
                top or "-",
                f"{r['ref_share']:.1%}" if r["enabled"] else "-",
                _bf16(r),
                "; ".join(r["warnings"]) or "-",
            ]
        )
    return rows


VERIFY_HEADERS = [
    "image",
    "profile",
    "oneDNN",
    "version",
    "runtime",
    "threads",
    "ISA",
    "primitives executed",
    "ref: time",
    "bf16 time",
    "notes",
]
