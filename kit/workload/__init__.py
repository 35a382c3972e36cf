"""kit's workload: synthetic-ImageNet training, run inside the images.

This package depends on TensorFlow and the standard library only: it is copied into every
image as ``kit_workload`` and must never import the rest of kit.
"""

WORKLOAD_VERSION = "3"
PROVENANCE_PREFIX = "kit-provenance: "
