"""The backbone registry: one entry per network, shared by every stage.

Every network built here takes RGB pixels in [0, 255] and applies its own
preprocessing inside (the `Preprocess` layer), so that the saved and exported
models need nothing but a resized photo.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import keras

from stages.errors import UserError
from stages.params import PARAMS_FILE, choice, require

# MobileNetV2 width multipliers that Keras publishes ImageNet weights for.
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)

# Random initialisation (`weights: none`) must give the same network in
# features, finetune and evaluate, which each build it in their own process.
RANDOM_INIT_SEED = 1234


@dataclass(frozen=True)
class Backbone:
    application: str | None  # constructor in keras.applications; None: no backbone
    preprocessing: str | None  # Preprocess mode: "caffe" or "tf"; None: the network does its own
    native_size: int  # the input size its ImageNet weights were trained at
    min_size: int  # the smallest input Keras accepts without the top
    weights_file: str | None  # no-top ImageNet file Keras looks for in $KERAS_HOME/models/
    has_alpha: bool = False  # takes model.alpha (width multiplier)
    cache_dtype: str = "float32"  # what `features` stores

    @property
    def from_scratch(self):
        return self.application is None


BACKBONES = {
    "vgg16": Backbone(
        "VGG16", "caffe", 224, 32, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "resnet50v2": Backbone(
        "ResNet50V2", "tf", 224, 32, "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "inceptionv3": Backbone(
        "InceptionV3", "tf", 299, 75, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "mobilenetv2": Backbone(
        "MobileNetV2",
        "tf",
        224,
        32,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
        has_alpha=True,
    ),
    # The baseline: no pre-trained network. `features` caches the resized
    # images (as uint8) and `train` trains stages.heads.small_cnn on them.
    "cnn": Backbone(None, None, 150, 32, None, cache_dtype="uint8"),
}


def check(model_params):
    """The model section's values that depend on this registry; raises UserError."""
    p = model_params
    require("model", "backbone", p.backbone, choice(*BACKBONES))
    require("model", "alpha", p.alpha, choice(*ALPHAS))
    minimum = BACKBONES[p.backbone].min_size
    if p.image_size < minimum:
        raise UserError(
            f"{PARAMS_FILE}: model.image_size = {p.image_size} is too small for "
            f"{p.backbone} (minimum {minimum})"
        )


def weights_file(name, image_size, alpha):
    """The file name Keras downloads for `weights: imagenet`."""
    # MobileNetV2 has weight files for these sizes; any other size uses 224's.
    rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
    return BACKBONES[name].weights_file.format(alpha=float(alpha), rows=rows)


# ImageNet's mean pixel, in RGB order ("caffe" mode of keras.applications).
IMAGENET_MEAN = (123.68, 116.779, 103.939)


@keras.saving.register_keras_serializable(package="stages")
class Preprocess(keras.layers.Layer):
    """keras.applications' preprocess_input as a layer, giving the same numbers
    (tests/test_backbones.py checks it): "caffe" (VGG16) RGB to BGR minus the
    ImageNet mean, "tf" (MobileNetV2, ResNet50V2, InceptionV3) scale to [-1, 1]."""

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, images):
        if self.mode == "tf":
            return images / 127.5 - 1.0
        # The mean comes off before the channels are reversed (Keras does it the
        # other way round): the input then feeds one subtraction, which keeps a
        # full-integer LiteRT model's uint8 input the pixels themselves.
        return keras.ops.flip(images - keras.ops.convert_to_tensor(IMAGENET_MEAN), axis=-1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def load_model(path):
    """A model saved by train or finetune (this module defines its Preprocess layer)."""
    return keras.models.load_model(path, compile=False)


def build(model_params):
    """The frozen backbone without its top (it expects preprocessed input)."""
    p = model_params
    spec = BACKBONES[p.backbone]
    constructor = getattr(keras.applications, spec.application)
    options = {"alpha": p.alpha} if spec.has_alpha else {}
    weights = {"imagenet": "imagenet", "none": None}.get(p.weights, p.weights)
    if weights is None:
        keras.utils.set_random_seed(RANDOM_INIT_SEED)
    try:
        network = constructor(
            include_top=False,
            weights=weights,
            input_shape=(p.image_size, p.image_size, 3),
            **options,
        )
    except Exception as error:
        raise weights_error(p, error) from error
    network.trainable = False
    return network


def weights_error(p, error):
    """Say which file to put where when the ImageNet weights cannot be had."""
    if p.weights == "imagenet":
        # Where keras.utils.get_file looks before downloading.
        folder = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "models"
        name = weights_file(p.backbone, p.image_size, p.alpha)
        return UserError(
            f"could not get the ImageNet weights for {p.backbone} ({error}). "
            f"With no network, place {name} in {folder}/ (or point KERAS_HOME at a folder "
            "whose models/ holds it), or set model.weights to none or to a weights file path"
        )
    return UserError(f"model.weights = {p.weights!r} could not be loaded into {p.backbone}: {error}")


def extractor(model_params):
    """Pixels in [0, 255] in, one feature vector out: preprocessing, backbone, pooling.
    For cnn the "features" are the pixels themselves."""
    p = model_params
    spec = BACKBONES[p.backbone]
    image = keras.Input((p.image_size, p.image_size, 3), name="image")
    if spec.from_scratch:
        return keras.Sequential([image, keras.layers.Identity()], name="extractor")
    pool = {"avg": keras.layers.GlobalAveragePooling2D, "flatten": keras.layers.Flatten}
    return keras.Sequential(
        [image, Preprocess(spec.preprocessing, name="preprocess"), build(p), pool[p.pooling](name="pool")],
        name="extractor",
    )


def network(extractor):
    """The backbone inside an extractor."""
    return next(layer for layer in extractor.layers if isinstance(layer, keras.Model))


def unfreeze(network, count):
    """Make the top `count` layers trainable; BatchNormalization stays frozen."""
    network.trainable = True
    top = {id(layer) for layer in network.layers[-count:]} if count else set()
    for layer in network.layers:
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in top and not is_norm
