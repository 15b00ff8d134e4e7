"""The backbone registry: one entry per network, shared by every stage.

Every network built here takes RGB pixels in [0, 255] and applies its own
preprocessing inside (the `Preprocess` layer), so that the saved and exported
models need nothing but a resized photo.
"""

import os
import re
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


# What `auto` in params.yaml resolves to. VGG16 keeps the card's recipe (150 px,
# SGD); Adam 3e-4 for the head and 3e-5 to fine-tune for 10 epochs were the
# best measured on the shared photos with MobileNetV2 at 224 (bench/RESULTS.md)
# and serve the others. MobileNetV2's own recipe was then measured further:
# 256 px (head-only 98.3% -> 99.0%), fine-tuning at 1e-5 for 6 epochs.
# ONNX Runtime is the engine only where it was measured faster on a CPU
# (MobileNetV2); TensorFlow stays the reference elsewhere, and on GPUs.
ADAM = {"train.optimizer": "adam", "train.lr": 3e-4, "finetune.lr": 3e-5, "finetune.epochs": 10}
AUTO = ("model.image_size", "features.engine", "train.optimizer", "train.lr", "finetune.unfreeze", "finetune.lr",
        "finetune.epochs")


@dataclass(frozen=True)
class Backbone:
    application: str | None  # constructor in keras.applications; None: no backbone
    preprocessing: str | None  # Preprocess mode: "caffe" or "tf"; None: the network does its own
    native_size: int  # the input size its ImageNet weights were trained at
    min_size: int  # the smallest input Keras accepts without the top
    weights_file: str | None  # no-top ImageNet file Keras looks for in $KERAS_HOME/models/
    block_end: str | None  # a block ends at the first cut point at or after a layer so named
    recipe: dict  # "section.key" -> what `auto` means for this backbone
    has_alpha: bool = False  # takes model.alpha (width multiplier)
    cache_dtype: str = "float32"  # what `features` stores

    @property
    def from_scratch(self):
        return self.application is None


def modern(application, native_size, weights_file, block_end, blocks):
    """A keras.applications network that rescales its input itself."""
    recipe = {"model.image_size": native_size, "features.engine": "tensorflow", "finetune.unfreeze": blocks, **ADAM}
    return Backbone(application, None, native_size, 32, weights_file, block_end, recipe)


BACKBONES = {
    "vgg16": Backbone(
        "VGG16", "caffe", 224, 32, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", r"block\d_pool",
        {"model.image_size": 150, "features.engine": "tensorflow", "train.optimizer": "sgd", "train.lr": 0.01,
         "finetune.unfreeze": 1, "finetune.lr": 1e-4, "finetune.epochs": 10},
    ),
    "resnet50v2": Backbone(
        "ResNet50V2", "tf", 224, 32, "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        r"conv\d_block\d_out", {"model.image_size": 224, "features.engine": "tensorflow", "finetune.unfreeze": 3, **ADAM},
    ),
    "inceptionv3": Backbone(
        "InceptionV3", "tf", 299, 75, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        r"mixed\d+", {"model.image_size": 299, "features.engine": "tensorflow", "finetune.unfreeze": 2, **ADAM},
    ),
    "mobilenetv2": Backbone(
        "MobileNetV2", "tf", 224, 32,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
        r"block_\d+_project_BN",
        {**ADAM, "model.image_size": 256, "features.engine": "onnxruntime", "finetune.unfreeze": 4,
         "finetune.lr": 1e-5, "finetune.epochs": 6},
        has_alpha=True,
    ),
    "efficientnetv2b0": modern("EfficientNetV2B0", 224, "efficientnetv2-b0_notop.h5", r"block\d[a-z]_project_bn", 2),
    "efficientnetv2s": modern("EfficientNetV2S", 384, "efficientnetv2-s_notop.h5", r"block\d[a-z]_project_bn", 2),
    "convnext_tiny": modern("ConvNeXtTiny", 224, "convnext_tiny_notop.h5", r"convnext_tiny_stage_\d_block_\d+_identity", 3),
    "mobilenetv3large": modern("MobileNetV3Large", 224, "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
                               r"expanded_conv(_\d+)?_project_bn", 3),
    # The baseline: no pre-trained network. `features` caches the resized
    # images (as uint8) and `train` trains stages.heads.small_cnn on them.
    "cnn": Backbone(None, None, 150, 32, None, None,
                    {"model.image_size": 150, "features.engine": "tensorflow", "finetune.unfreeze": 0, **ADAM}, cache_dtype="uint8"),
}


def resolve(p):
    """Check the params that depend on this registry and replace each `auto`
    (keys in AUTO) by the backbone's recipe, in place. Returns {key: value run}."""
    require("model", "backbone", p.model.backbone, choice(*BACKBONES))
    require("model", "alpha", p.model.alpha, choice(*ALPHAS))
    spec = BACKBONES[p.model.backbone]
    run = {}
    for key in AUTO:
        section, name = key.split(".")
        if getattr(getattr(p, section), name) == "auto":
            setattr(getattr(p, section), name, auto(key, spec))
        run[key] = getattr(getattr(p, section), name)
    if p.model.image_size < spec.min_size:
        raise UserError(
            f"{PARAMS_FILE}: model.image_size = {p.model.image_size} is too small for "
            f"{p.model.backbone} (minimum {spec.min_size})"
        )
    return run


def auto(key, spec):
    """What `auto` means for `key`: the backbone's recipe, except that frozen passes
    stay on TensorFlow wherever it has a GPU (ONNX Runtime here runs on the CPU)."""
    if key == "features.engine" and gpus():
        return "tensorflow"
    return spec.recipe[key]


def gpus():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


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
    preprocess = [Preprocess(spec.preprocessing, name="preprocess")] if spec.preprocessing else []
    return keras.Sequential([image, *preprocess, build(p), pool[p.pooling](name="pool")], name="extractor")


def network(extractor):
    """The backbone inside an extractor."""
    return next(layer for layer in extractor.layers if isinstance(layer, keras.Model))


def cut_points(network):
    """Indices in network.operations after which the rest of the network sees
    the earlier operations only through that one's output."""
    index = {id(op): i for i, op in enumerate(network.operations)}
    reach = list(range(len(index)))  # the last operation that reads each one's output
    for j, op in enumerate(network.operations):
        for node in op._inbound_nodes:
            for tensor in node.input_tensors:
                i = index[id(tensor._keras_history.operation)]
                reach[i] = max(reach[i], j)
    cuts, furthest = [], -1
    for k in range(len(reach)):
        if furthest <= k:
            cuts.append(k)
        furthest = max(furthest, reach[k])
    return cuts


def block_starts(network, block_end):
    """Index of the first operation of each block, bottom to top. A block ends at
    the first cut point at or after a layer named by the `block_end` pattern; the
    layers after the last block end belong to the top block."""
    cuts = cut_points(network)
    ends = {next(c for c in cuts if c >= i) for i, op in enumerate(network.operations)
            if re.fullmatch(block_end, op.name)}
    return [1] + sorted(end + 1 for end in ends)[:-1]


def unfreeze(network, backbone, blocks):
    """Make the top `blocks` blocks of the named backbone's network trainable
    (BatchNormalization stays frozen). Returns the first trainable layer's name."""
    starts = block_starts(network, BACKBONES[backbone].block_end)
    if blocks > len(starts):
        raise UserError(
            f"{PARAMS_FILE}: finetune.unfreeze = {blocks} blocks, but {backbone} has {len(starts)}"
        )
    first = starts[-blocks] if blocks else len(network.operations)
    top = {id(op) for op in network.operations[first:]}
    network.trainable = True
    for layer in network.layers:
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in top and not is_norm
    return network.operations[first].name if blocks else None


def split(extractor, first):
    """(bottom, top) of an extractor whose backbone trains from the layer named
    `first` up. bottom: pixels -> the activation just below `first`, all frozen,
    so it can be computed once per image; top: that activation -> the features.
    Both share the extractor's layers."""
    backbone = network(extractor)
    position = [op.name for op in backbone.operations].index(first)
    cut = backbone.operations[position - 1].output
    where = extractor.layers.index(backbone)
    bottom = keras.Sequential(
        [keras.Input(extractor.input_shape[1:], name="image"), *extractor.layers[:where], keras.Model(backbone.input, cut)],
        name="bottom",
    )
    top = keras.Sequential(
        [keras.Input(cut.shape[1:], name="cut"), keras.Model(cut, backbone.output), *extractor.layers[where + 1 :]],
        name="top",
    )
    return bottom, top
