"""Work per image, so a throughput becomes achieved GFLOP/s (and a fraction of measured peak).

Counts are 2 FLOPs per multiply-add of the convolutions and dense layers, which dominate;
training is taken as three forward passes (forward, and the two gradient products of the
backward pass), the usual estimate.
"""

from __future__ import annotations

RESNET50_FORWARD_FLOP_224 = 2 * 4.09e9  # 4.09 G multiply-adds at 224x224 (He et al.)
TRAINING_FACTOR = 3.0


def _tiny_forward_flop(size: int) -> float:
    """kit's tiny CNN: conv 3->16 (same), conv 16->32 (stride 2), conv 32->64 (stride 2),
    global pooling, dense 64->1000; 3x3 kernels."""
    half, quarter = (size + 1) // 2, (size + 3) // 4
    macs = size * size * 3 * 16 * 9 + half * half * 16 * 32 * 9 + quarter * quarter * 32 * 64 * 9
    return 2.0 * (macs + 64 * 1000)


def flop_per_image(model: str, image_size: int | None, forward_only: bool) -> float | None:
    if model == "resnet50":
        size = image_size or 224
        forward = RESNET50_FORWARD_FLOP_224 * (size / 224) ** 2
    elif model == "tiny":
        forward = _tiny_forward_flop(image_size or 64)
    else:
        return None
    return forward if forward_only else forward * TRAINING_FACTOR


def gflops(images_per_sec: float | None, flop: float | None) -> float | None:
    if images_per_sec is None or flop is None:
        return None
    return images_per_sec * flop / 1e9
