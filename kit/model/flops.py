"""Work per image, so a throughput becomes achieved GFLOP/s (and a fraction of measured peak).

Counts are 2 FLOPs per multiply-add of the convolutions and dense layers, which dominate;
training is taken as three forward passes (forward, and the two gradient products of the
backward pass), the usual estimate.

Where each model's figure comes from: TensorFlow's own profiler, counting the frozen inference
graph of kit's model (the Keras application with ``weights=None``, at its native image size,
batch 1) with ``ProfileOptionBuilder.float_operation()`` in the stock image (TF 2.14.1):
``benchmarks/model_flops.py`` prints them again. The published multiply-add counts they agree
with are in the comments (He et al. 2016; Szegedy et al. 2016; Sandler et al. 2018; Simonyan &
Zisserman 2015; Tan & Le 2019; Huang et al. 2017). Convolutional work scales with the image's
area, so another ``--image_size`` scales the figure by (size / native)^2.
"""

from __future__ import annotations

from kit.workload.models import DEFAULT_IMAGE_SIZE

TRAINING_FACTOR = 3.0

# model -> forward FLOP per image at its native size (kit_workload.models.DEFAULT_IMAGE_SIZE)
FORWARD_FLOP: dict[str, float] = {
    "resnet50": 7.723e9,  # published 3.9-4.1 G multiply-adds
    "resnet101": 15.151e9,  # published 7.6-7.8 G
    "resnet152": 22.580e9,  # published 11.3-11.5 G
    "inception_v3": 11.451e9,  # published 5.7 G
    "mobilenet_v2": 0.602e9,  # published 0.30 G
    "vgg16": 30.960e9,  # published 15.5 G
    "efficientnet_b0": 0.789e9,  # published 0.39 G
    "densenet121": 5.671e9,  # published 2.87 G
}


def _tiny_forward_flop(size: int) -> float:
    """kit's tiny CNN: conv 3->16 (same), conv 16->32 (stride 2), conv 32->64 (stride 2),
    global pooling, dense 64->1000; 3x3 kernels."""
    half, quarter = (size + 1) // 2, (size + 3) // 4
    macs = size * size * 3 * 16 * 9 + half * half * 16 * 32 * 9 + quarter * quarter * 32 * 64 * 9
    return 2.0 * (macs + 64 * 1000)


def flop_per_image(model: str, image_size: int | None, forward_only: bool) -> float | None:
    if model in FORWARD_FLOP:
        native = DEFAULT_IMAGE_SIZE[model]
        forward = FORWARD_FLOP[model] * ((image_size or native) / native) ** 2
    elif model == "tiny":
        forward = _tiny_forward_flop(image_size or 64)
    else:
        return None
    return forward if forward_only else forward * TRAINING_FACTOR


def gflops(images_per_sec: float | None, flop: float | None) -> float | None:
    if images_per_sec is None or flop is None:
        return None
    return images_per_sec * flop / 1e9
