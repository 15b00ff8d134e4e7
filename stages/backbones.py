"""The backbone registry: one entry per network, shared by every stage.

Keras is imported only when a network is built, so that the params check
(which needs the names and sizes) stays fast.
"""

import os
from dataclasses import dataclass
from pathlib import Path

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
    module: str | None  # keras.applications submodule holding its preprocess_input
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
        "VGG16", "vgg16", 224, 32, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "resnet50v2": Backbone(
        "ResNet50V2", "resnet_v2", 224, 32, "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "inceptionv3": Backbone(
        "InceptionV3", "inception_v3", 299, 75, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    "mobilenetv2": Backbone(
        "MobileNetV2",
        "mobilenet_v2",
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


def preprocess(name):
    """The backbone's own preprocess_input (it differs per network)."""
    import keras

    if BACKBONES[name].from_scratch:
        return lambda images: images  # the CNN rescales its input itself
    return getattr(keras.applications, BACKBONES[name].module).preprocess_input


def build(model_params):
    """The frozen backbone without its top, as in features, finetune and evaluate."""
    import keras

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
    """Backbone plus pooling: image in, one feature vector out (the image itself for cnn)."""
    import keras

    if BACKBONES[model_params.backbone].from_scratch:
        size = model_params.image_size
        return keras.Sequential([keras.Input((size, size, 3)), keras.layers.Identity()])
    network = build(model_params)
    pool = {"avg": keras.layers.GlobalAveragePooling2D, "flatten": keras.layers.Flatten}
    return keras.Sequential(
        [network, pool[model_params.pooling](name="pool")], name="extractor"
    )


def unfreeze(network, count):
    """Make the top `count` layers trainable; BatchNormalization stays frozen."""
    import keras

    network.trainable = True
    top = {id(layer) for layer in network.layers[-count:]} if count else set()
    for layer in network.layers:
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in top and not is_norm
