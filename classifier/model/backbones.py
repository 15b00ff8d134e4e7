"""The networks of the backbone registry (classifier/model/registry.py), built with Keras.

Every network built here takes RGB pixels in [0, 255] and applies its own
preprocessing inside (the `Preprocess` layer), so that the saved and exported
models need nothing but a resized photo.
"""

import hashlib
import os
import tempfile
from contextlib import nullcontext
from pathlib import Path

import keras

from classifier.errors import UserError
from classifier.model.layers import Preprocess
from classifier.model.registry import BACKBONES, weights_file

# Random initialisation (`weights: none`) must give the same network in
# features, finetune and evaluate, which each build it in their own process.
RANDOM_INIT_SEED = 1234


def load_model(path):
    """A model saved by train or finetune (importing this module registers its Preprocess layer)."""
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


