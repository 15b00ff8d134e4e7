"""The networks of the backbone registry (classifier/model/registry.py), built with Keras.

Every network built here takes RGB pixels in [0, 255] and applies its own
preprocessing inside (the `Preprocess` layer), so that the saved and exported
models need nothing but a resized photo.
"""

import hashlib
import os
import re
import tempfile
from contextlib import nullcontext
from pathlib import Path

import keras

from classifier.errors import UserError
from classifier.model.registry import BACKBONES, weights_file
from classifier.params import PARAMS_FILE

# Random initialisation (`weights: none`) must give the same network in
# features, finetune and evaluate, which each build it in their own process.
RANDOM_INIT_SEED = 1234


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
        # Keras downloads the ImageNet file in place: one process at a time, so that
        # queued experiments never read another's half-written file.
        with weights_lock() if weights == "imagenet" else nullcontext():
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


def keras_models():
    """Where keras.utils.get_file looks for, and downloads, the ImageNet files."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "models"


def weights_lock():
    """A lock on keras_models(), kept in the temporary folder (the models folder may be read-only)."""
    from filelock import FileLock

    name = hashlib.sha256(str(keras_models().resolve()).encode()).hexdigest()[:16]
    return FileLock(Path(tempfile.gettempdir()) / f"keras-weights-{name}.lock")


def weights_error(p, error):
    """Say which file to put where when the ImageNet weights cannot be had."""
    if p.weights == "imagenet":
        folder = keras_models()
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


def backbone_of(extractor):
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


def cut(extractor, first):
    """(bottom, top) of an extractor whose backbone trains from the layer named
    `first` up. bottom: pixels -> the activation just below `first`, all frozen,
    so it can be computed once per image; top: that activation -> the features.
    Both share the extractor's layers."""
    backbone = backbone_of(extractor)
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
