"""A tf_cnn_benchmarks stand-in that exits 0 but prints nothing kit can parse."""

print("Model:       resnet50")
print("warming up the flux capacitor")
print("images per second: lots")
