"""A tf_cnn_benchmarks stand-in that fails the way a broken install does."""

import sys

print("Model:       resnet50")
print("Traceback (most recent call last):", file=sys.stderr)
print("ImportError: cannot import name 'convnet_builder'", file=sys.stderr)
sys.exit(3)
