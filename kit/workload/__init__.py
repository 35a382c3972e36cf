"""kit's workload: synthetic-ImageNet training, run inside the images.

This package depends on TensorFlow and the standard library only: it is copied into every
image as ``kit_workload`` and must never import the rest of kit.
"""

WORKLOAD_VERSION = "13"  # 13: the host-speed probe stops at 80 ms on a slow CPU
PROVENANCE_PREFIX = "kit-provenance: "
# Instead of a run: what the workload could not do with what it was given (a user's model).
REFUSED_PREFIX = "kit-refused: "
# After the run: the process's own CPU seconds (every thread), to tell its load from others'.
CPU_PREFIX = "kit-cpu-seconds: "
# After the warmup: how many batches it took, how long, and whether the step time settled.
WARMUP_PREFIX = "kit-warmup: "
# After the run: the host's speed (kit_workload.speed) just before and just after the work.
HOST_SPEED_PREFIX = "kit-host-speed: "
# After the total: every timed batch's seconds, for the trend across them.
STEP_SECONDS_PREFIX = "kit-step-seconds: "
# And the pages each of them faulted in: a timed batch that grew the process's memory.
STEP_FAULTS_PREFIX = "kit-step-faults: "
# After the timed batches: where the memory and the threads went (kit_workload.footprint).
FOOTPRINT_PREFIX = "kit-footprint: "
