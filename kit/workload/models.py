"""The models kit's workload runs: Keras applications with ``weights=None``, and a tiny CNN
for tests. Each is built under the precision's Keras policy and returns float32 logits."""

from __future__ import annotations

NUM_CLASSES = 1000

# kit's name -> (the keras.applications constructor, its native image size)
APPLICATIONS = {
    "resnet50": ("ResNet50", 224),
    "resnet101": ("ResNet101", 224),
    "resnet152": ("ResNet152", 224),
    "inception_v3": ("InceptionV3", 299),
    "mobilenet_v2": ("MobileNetV2", 224),
    "vgg16": ("VGG16", 224),
    "efficientnet_b0": ("EfficientNetB0", 224),
    "densenet121": ("DenseNet121", 224),
}
MODELS = (*APPLICATIONS, "tiny")
DEFAULT_IMAGE_SIZE = {**{name: size for name, (_, size) in APPLICATIONS.items()}, "tiny": 64}
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}


def set_precision(tf, precision: str) -> str:
    """Set Keras' global dtype policy (tf.keras on 2.14, Keras 3 on 2.21); returns its name."""
    policy = PRECISION_POLICIES[precision]
    tf.keras.mixed_precision.set_global_policy(policy)
    return tf.keras.mixed_precision.global_policy().name


def input_shape(image_size: int, data_format: str) -> tuple[int, int, int]:
    if data_format == "NCHW":
        return (3, image_size, image_size)
    return (image_size, image_size, 3)


def build_model(tf, name: str, image_size: int, data_format: str):
    channels_first = data_format == "NCHW"
    tf.keras.backend.set_image_data_format("channels_first" if channels_first else "channels_last")
    shape = input_shape(image_size, data_format)
    if name in APPLICATIONS:
        constructor = getattr(tf.keras.applications, APPLICATIONS[name][0])
        model = constructor(
            weights=None, input_shape=shape, classes=NUM_CLASSES, classifier_activation=None
        )
        return without_cancelled_biases(tf, model)
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            tf.keras.Input(shape=shape),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(NUM_CLASSES),
        ]
    )


def _producers(layer) -> list[str]:
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [t._keras_history[0].name for t in inputs]


def cancelled_biases(tf, model) -> list[str]:
    """The convolutions whose bias the batch normalization right after them cancels: their
    only consumer subtracts the batch mean, so the bias changes neither the output nor any
    other gradient. Keras' ResNets have one per convolution; the original ResNet and
    tf_cnn_benchmarks have none."""
    layers = {layer.name: layer for layer in model.layers}
    consumers: dict[str, int] = {}
    for layer in model.layers[1:]:
        for name in _producers(layer):
            consumers[name] = consumers.get(name, 0) + 1
    out = []
    for layer in model.layers:
        if not isinstance(layer, tf.keras.layers.BatchNormalization):
            continue
        (name,) = _producers(layer)
        conv = layers[name]
        if isinstance(conv, tf.keras.layers.Conv2D) and conv.use_bias and consumers[name] == 1:
            out.append(name)
    return out


def without_cancelled_biases(tf, model):
    """The same architecture rebuilt from its config, its cancelled biases left out."""
    names = set(cancelled_biases(tf, model))
    if not names:
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer.get("name", layer["config"].get("name")) in names:
            layer["config"]["use_bias"] = False
    return tf.keras.Model.from_config(config)
