"""The backbone registry: every network builds, gives the expected features, unfreezes right."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from stages import backbones
from stages.backbones import BACKBONES

FEATURES = {"vgg16": 512, "resnet50v2": 2048, "inceptionv3": 2048, "mobilenetv2": 1280}


def model_params(name, **changes):
    size = BACKBONES[name].min_size
    return SimpleNamespace(
        **{"backbone": name, "weights": "none", "image_size": size, "alpha": 1.0, "pooling": "avg", **changes}
    )


@pytest.mark.parametrize("name", sorted(BACKBONES))
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
    got = backbones.Preprocess(BACKBONES[name].preprocessing)(pixels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gradcam_works_for_every_backbone(name):
    from stages import gradcam
    from stages.finetune import assemble
    from stages.heads import dense_head, small_cnn

    p = model_params(name, image_size=max(96, 2 * BACKBONES[name].min_size))  # a map of 3 x 3 or more
    head = SimpleNamespace(units=0, dropout=0.0)
    extractor = backbones.extractor(p)
    if BACKBONES[name].from_scratch:
        model = small_cnn(extractor.output_shape[1:], 3, head, "categorical_crossentropy")
    else:
        model = assemble(extractor, dense_head(extractor.output_shape[1:], 3, head, "categorical_crossentropy"))
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


@pytest.mark.parametrize("name", ["vgg16", "mobilenetv2"])
def test_unfreeze_trains_exactly_the_top_layers_but_not_batchnorm(name):
    network = backbones.build(model_params(name))
    assert not network.trainable_weights
    backbones.unfreeze(network, 10)
    for i, layer in enumerate(network.layers):
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        expected = i >= len(network.layers) - 10 and not is_norm
        assert layer.trainable == expected, layer.name
    assert network.trainable_weights
    backbones.unfreeze(network, 0)
    assert not network.trainable_weights
