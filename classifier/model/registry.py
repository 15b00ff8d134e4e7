"""The backbone registry: one entry per network, shared by every stage, and
what `auto` in params.yaml resolves to for each.

Plain data, no TensorFlow: checking params (every stage, `python -m
classifier.cli.check`) must not pay for, or print, TensorFlow's start-up.
classifier/model/backbones.py builds the networks.
"""

from dataclasses import dataclass, replace

from classifier import params
from classifier.errors import UserError
from classifier.params import PARAMS_FILE, choice, require

# MobileNetV2 width multipliers that Keras publishes ImageNet weights for.
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)

# What `auto` in params.yaml resolves to. VGG16 keeps the card's recipe (150 px,
# SGD); Adam 3e-4 for the head and 3e-5 to fine-tune for 10 epochs were the
# best measured on the shared photos with MobileNetV2 at 224 (bench/RESULTS.md)
# and serve the others. MobileNetV2's own recipe was then measured further:
# 256 px (head-only 98.3% -> 99.0%), fine-tuning at 1e-5 for 6 epochs.
# ONNX Runtime is the engine only where it was measured faster on a CPU
# (MobileNetV2); TensorFlow stays the reference elsewhere, and on GPUs.
ADAM = {"train.optimizer": "adam", "train.lr": 3e-4, "finetune.lr": 3e-5, "finetune.epochs": 10}
AUTO = ("model.image_size", "runtime.engine", "train.optimizer", "train.lr", "finetune.unfreeze", "finetune.lr",
        "finetune.epochs", "train.distribute")


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
    recipe = {"model.image_size": native_size, "runtime.engine": "tensorflow", "finetune.unfreeze": blocks, **ADAM}
    return Backbone(application, None, native_size, 32, weights_file, block_end, recipe)


BACKBONES = {
    "vgg16": Backbone(
        "VGG16", "caffe", 224, 32, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", r"block\d_pool",
        {"model.image_size": 150, "runtime.engine": "tensorflow", "train.optimizer": "sgd", "train.lr": 0.01,
         "finetune.unfreeze": 1, "finetune.lr": 1e-4, "finetune.epochs": 10},
    ),
    "resnet50v2": Backbone(
        "ResNet50V2", "tf", 224, 32, "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        r"conv\d_block\d_out", {"model.image_size": 224, "runtime.engine": "tensorflow", "finetune.unfreeze": 3, **ADAM},
    ),
    "inceptionv3": Backbone(
        "InceptionV3", "tf", 299, 75, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        r"mixed\d+", {"model.image_size": 299, "runtime.engine": "tensorflow", "finetune.unfreeze": 2, **ADAM},
    ),
    "mobilenetv2": Backbone(
        "MobileNetV2", "tf", 224, 32,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
        r"block_\d+_project_BN",
        {**ADAM, "model.image_size": 256, "runtime.engine": "onnxruntime", "finetune.unfreeze": 4,
         "finetune.lr": 1e-5, "finetune.epochs": 6},
        has_alpha=True,
    ),
    "efficientnetv2b0": modern("EfficientNetV2B0", 224, "efficientnetv2-b0_notop.h5", r"block\d[a-z]_project_bn", 2),
    "efficientnetv2s": modern("EfficientNetV2S", 384, "efficientnetv2-s_notop.h5", r"block\d[a-z]_project_bn", 2),
    "convnext_tiny": modern("ConvNeXtTiny", 224, "convnext_tiny_notop.h5", r"convnext_tiny_stage_\d_block_\d+_identity", 3),
    "mobilenetv3large": modern("MobileNetV3Large", 224, "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
                               r"expanded_conv(_\d+)?_project_bn", 3),
    # The baseline: no pre-trained network. `features` caches the resized
    # images (as uint8) and `train` trains classifier.model.heads.small_cnn on them.
    "cnn": Backbone(None, None, 150, 32, None, None,
                    {"model.image_size": 150, "runtime.engine": "tensorflow", "finetune.unfreeze": 0, **ADAM}, cache_dtype="uint8"),
}


def load():
    """params.yaml, checked, with every `auto` resolved: (params, {key: the value that runs})."""
    return resolve(params.load())


def resolve(p):
    """Check the params that depend on this registry and replace each `auto`
    (keys in AUTO) by the backbone's recipe. Returns (params, {key: value run})."""
    require("model", "backbone", p.model.backbone, choice(*BACKBONES))
    require("model", "alpha", p.model.alpha, choice(*ALPHAS))
    spec = BACKBONES[p.model.backbone]
    if p.model.image_size != "auto" and p.model.image_size < spec.min_size:
        raise UserError(
            f"{PARAMS_FILE}: model.image_size = {p.model.image_size} is too small for "
            f"{p.model.backbone} (minimum {spec.min_size})"
        )
    run, changed = {}, {}
    for key in AUTO:
        section, name = key.split(".")
        value = getattr(getattr(p, section), name)
        run[key] = auto(key, spec) if value == "auto" else value
        changed.setdefault(section, {})[name] = run[key]
    resolved = replace(p, **{section: replace(getattr(p, section), **values) for section, values in changed.items()})
    run["model.task"] = p.model.task  # its `auto` resolved by params.task(), from data.labels
    return resolved, run


def auto(key, spec):
    """What `auto` means for `key`: the backbone's recipe, except that frozen passes
    stay on TensorFlow wherever it has a GPU (ONNX Runtime here runs on the CPU).
    train.distribute: mirrored over the GPUs where there are several, else none.
    Every check is done by then: only this asks TensorFlow, and only where it matters."""
    if key == "train.distribute":
        return "mirrored" if len(gpus()) > 1 else "none"
    if key == "runtime.engine" and spec.recipe[key] != "tensorflow" and gpus():
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
