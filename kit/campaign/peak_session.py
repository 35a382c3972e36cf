"""`kit peak`: this host's float32 GEMM peak measured inside an image, stored so that reports can
show each cell's GFLOP/s as a share of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.engines.factory import EngineMaker
from kit.engines.kinds import EngineKind
from kit.errors import RunFailed
from kit.host.facts import host_record
from kit.judging.parse import parse_peak_output
from kit.model.feedback import Feedback
from kit.model.profiles import load_profiles, pick
from kit.model.workload import Workload, WorkloadSpec
from kit.planning.placement import CpuSelection
from kit.planning.plan import build_plan
from kit.store.database import ResultsDB
from kit.store.folder import DB_NAME, check_writable, slug

PEAK_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Peak:
    image: str
    host: str
    gflops: float


def measure_peak(
    image: str,
    selection: CpuSelection,
    maker: EngineMaker,
    results: Path,
    db: Path | None,
    feedback: Feedback,
) -> Peak:

    (profile,) = pick(load_profiles(None), ["default"])
    workload = WorkloadSpec(workload=Workload.peak)
    (spec,) = build_plan([image], [profile], workload, maker.this_host(), selection, PEAK_TIMEOUT_S)
    check_writable(results)
    db_path = db or results / DB_NAME
    ResultsDB.check(db_path)
    engine = maker.engine(EngineKind.auto)
    engine.check()
    image_id = engine.image_id(spec.image.reference)
    results.mkdir(parents=True, exist_ok=True)
    log = results / f"peak-{slug(spec.image.label)}.log"
    feedback.say(f"measuring the GEMM peak of {spec.image.label} on CPUs {spec.cpu_list}")
    outcome = engine.run(spec, "peak", log, lambda line: None)
    with log.open(encoding="utf-8", errors="replace") as text:
        record = parse_peak_output(text)
    if outcome.exit_code != 0 or record is None:
        raise RunFailed(f"the peak run failed (exit status {outcome.exit_code})", f"see {log}")
    host = str(host_record()["hostname"])
    with ResultsDB(db_path) as results_db:
        results_db.add_peak(host, image_id, float(record["gflops"]), record)
    return Peak(spec.image.label, host, float(record["gflops"]))
