"""kit's workload: synthetic-ImageNet training, run inside the images.

This package depends on TensorFlow and the standard library only: it is copied into every
image as ``kit_workload`` and must never import the rest of kit.
"""

WORKLOAD_VERSION = "4"
PROVENANCE_PREFIX = "kit-provenance: "
# After the run: the process's own CPU seconds (every thread), to tell its load from others'.
CPU_PREFIX = "kit-cpu-seconds: "
