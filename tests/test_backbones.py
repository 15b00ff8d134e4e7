"""The backbone registry: every network builds, gives the expected features, unfreezes right."""

import re
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from classifier.model import backbones, graph, layers
from classifier.model.registry import BACKBONES, weights_file
from conftest import ROOT

FEATURES = {"vgg16": 512, "resnet50v2": 2048, "inceptionv3": 2048, "mobilenetv2": 1280, "efficientnetv2b0": 1280,
            "efficientnetv2s": 1280, "convnext_tiny": 768, "mobilenetv3large": 960}
PRETRAINED = sorted(name for name, spec in BACKBONES.items() if not spec.from_scratch)


def model_params(name, **changes):
    size = BACKBONES[name].min_size
    return SimpleNamespace(
        **{"backbone": name, "weights": "none", "image_size": size, "alpha": 1.0, "pooling": "avg", **changes}
    )


@pytest.mark.parametrize("name", sorted(n for n in BACKBONES if BACKBONES[n].preprocessing or n == "cnn"))
def test_each_backbone_builds_at_its_minimum_size(name):
    p = model_params(name)
    extractor = backbones.extractor(p)
    images = np.random.default_rng(0).uniform(0, 255, (2, p.image_size, p.image_size, 3)).astype("float32")
    features = extractor.predict_on_batch(images)
    if BACKBONES[name].from_scratch:
        assert features.shape == images.shape  # cnn caches the resized images
    else:
        assert features.shape == (2, FEATURES[name])
        assert np.isfinite(features).all()


KERAS_PREPROCESS = {
    "vgg16": keras.applications.vgg16, "resnet50v2": keras.applications.resnet_v2,
    "inceptionv3": keras.applications.inception_v3, "mobilenetv2": keras.applications.mobilenet_v2,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(KERAS_PREPROCESS))
def test_preprocess_layer_equals_keras_preprocess_input(name):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("float32")
    expected = KERAS_PREPROCESS[name].preprocess_input(pixels.copy())  # it works in place
    got = layers.Preprocess(BACKBONES[name].preprocessing)(pixels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gradcam_works_for_every_backbone(name):
    from classifier.model.heads import dense_head, small_cnn
    from classifier.report import gradcam
    from classifier.training.finetuning import assemble

    p = model_params(name, image_size=max(96, 2 * BACKBONES[name].min_size))  # a map of 3 x 3 or more
    extractor = backbones.extractor(p)
    if BACKBONES[name].from_scratch:
        model = small_cnn(extractor.output_shape[1:], 3, "categorical_crossentropy", units=0, dropout=0.0)
    else:
        model = assemble(extractor, dense_head(extractor.output_shape[1:], 3, "categorical_crossentropy", units=0, dropout=0.0))
    pixels = np.random.default_rng(0).integers(0, 256, (2, p.image_size, p.image_size, 3)).astype("uint8")
    maps, probabilities = gradcam.heatmaps(model, pixels)
    assert maps.shape[0] == 2 and maps.shape[1] >= 2 and np.isfinite(maps).all()
    assert 0 <= maps.min() and maps.max() <= 1 and probabilities.shape == (2, 3)


def test_flatten_pooling_keeps_the_whole_feature_map():
    extractor = backbones.extractor(model_params("vgg16", image_size=64, pooling="flatten"))
    assert extractor.output_shape == (None, 2 * 2 * 512)


def test_alpha_changes_mobilenet_width():
    narrow = backbones.build(model_params("mobilenetv2", alpha=0.35))
    wide = backbones.build(model_params("mobilenetv2", alpha=1.0))
    assert narrow.count_params() < wide.count_params() / 3


@pytest.mark.parametrize("name", sorted(n for n in PRETRAINED if BACKBONES[n].preprocessing is None))
def test_networks_that_preprocess_inside_are_not_preprocessed_twice(name):
    p = model_params(name)
    extractor = backbones.extractor(p)
    assert not any(isinstance(layer, layers.Preprocess) for layer in extractor.layers)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, p.image_size, p.image_size, 3)).astype("float32")
    direct = keras.ops.mean(graph.backbone_of(extractor)(pixels), axis=(1, 2))  # raw pixels in, as Keras documents
    features = extractor.predict_on_batch(pixels)
    assert features.shape == (2, FEATURES[name]) and np.isfinite(features).all()
    np.testing.assert_allclose(features, keras.ops.convert_to_numpy(direct), atol=1e-5)


def trainable(network):
    return [layer.name for layer in network.layers if layer.trainable and layer.weights]


def test_unfreeze_counts_blocks_from_the_top_and_keeps_batchnorm_frozen():
    vgg = backbones.build(model_params("vgg16"))
    assert graph.unfreeze(vgg, "vgg16", 1) == "block5_conv1"
    assert trainable(vgg) == ["block5_conv1", "block5_conv2", "block5_conv3"]
    graph.unfreeze(vgg, "vgg16", 5)
    assert len(trainable(vgg)) == 13  # every conv layer
    mobilenet = backbones.build(model_params("mobilenetv2"))
    assert graph.unfreeze(mobilenet, "mobilenetv2", 4) == "block_13_expand"
    names = [layer.name for layer in mobilenet.layers]
    top = names[names.index("block_13_expand"):]
    assert trainable(mobilenet) == [n for n in top if not n.endswith(("_BN", "_bn")) and mobilenet.get_layer(n).weights]
    graph.unfreeze(mobilenet, "mobilenetv2", 0)
    assert not mobilenet.trainable_weights
    with pytest.raises(backbones.UserError, match="finetune.unfreeze = 17 blocks, but mobilenetv2 has 16"):
        graph.unfreeze(mobilenet, "mobilenetv2", 17)


# docs/backbones.md's recipe table: backbone, size, blocks (first trained layer), ..., weights file.
TABLE = {row[0]: row[1:] for row in re.findall(
    r"^\| `(\w+)`(?: \(default\))? \| (\d+) \| ([^|]+) \| [^|]+ \| [^|]+ \| ([^|]+) \|$",
    (ROOT / "docs/backbones.md").read_text(), re.M)}


def test_recipe_table_has_every_backbone():
    assert set(TABLE) == set(BACKBONES)


@pytest.mark.parametrize("name", PRETRAINED)
def test_each_recipe_unfreezes_the_documented_blocks_a_top_that_is_one_cut(name):
    """The recipe's blocks train, from the layer the docs name, and the layers
    below them reach the top only through one tensor: what is frozen can be computed once."""
    network = backbones.build(model_params(name))
    blocks = int(re.match(r"\d+", TABLE[name][1]).group())
    first = graph.unfreeze(network, name, blocks)
    assert network.trainable_weights and not network.get_layer(index=1).trainable
    names = [op.name for op in network.operations]
    position = names.index(first)
    assert position - 1 in graph.cut_points(network)
    layer = re.search(r"\((after )?`(\w+)`\)", TABLE[name][1])
    assert (names[position - 1] if layer.group(1) else first) == layer.group(2)


@pytest.mark.parametrize("name, size", [(name, BACKBONES[name].native_size) for name in PRETRAINED]
                         + [("mobilenetv2", 150), ("mobilenetv2", 160)])  # Keras has MobileNetV2 files per size
def test_weights_file_is_the_one_keras_asks_for(name, size, monkeypatch):
    """registry.weights_file (what the error message tells a user to download) and
    the docs' table name the file that keras.applications itself requests."""
    from keras.src.utils import file_utils

    asked = []

    def get_file(fname=None, origin=None, **kwargs):
        asked.append(fname or origin.rsplit("/", 1)[-1])
        raise OSError("offline")

    monkeypatch.setattr(file_utils, "get_file", get_file)
    p = model_params(name, weights="imagenet", image_size=size, alpha=0.5)
    with pytest.raises(backbones.UserError):
        backbones.build(p)
    expected = weights_file(name, p.image_size, p.alpha)
    assert asked == [expected]
    assert re.fullmatch(TABLE[name][2].strip().strip("`").replace("<alpha>", r"\d\.\d+").replace("_224_", r"_\d+_"), expected)



def test_saved_models_name_the_layer_as_older_files_do(tmp_path):
    """Files saved before the library moved out of stages/ say "stages>Preprocess":
    the layer keeps that registered name, so they and new files load alike."""
    import json
    import zipfile

    model = keras.Sequential([keras.Input((8, 8, 3)), layers.Preprocess("tf", name="preprocess")])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as saved:
        config = json.loads(saved.read("config.json"))
    layer = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Preprocess")
    assert layer["registered_name"] == "stages>Preprocess"
    pixels = np.full((1, 8, 8, 3), 255, "uint8")
    np.testing.assert_allclose(backbones.load_model(tmp_path / "m.keras")(pixels), model(pixels))
