"""Backbone weights: from a file, from Keras' cache, and a clear error offline."""

import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from classifier.model import backbones
from conftest import ROOT, SHARED, sh

MOBILENET = dict(backbone="mobilenetv2", weights="none", image_size=32, alpha=0.35, pooling="avg")
OFFICIAL = SHARED / "keras/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"


def model_params(**changes):
    return SimpleNamespace(**{**MOBILENET, **changes})


@pytest.mark.parametrize("backbone", ["mobilenetv2", "mobilenetv3large"])
def test_weights_file_path_is_loaded(tmp_path, backbone):
    network = backbones.build(model_params(backbone=backbone))
    rng = np.random.default_rng(0)
    changed = [w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in network.get_weights()]
    network.set_weights(changed)
    path = tmp_path / "mine.weights.h5"
    network.save_weights(path)

    loaded = backbones.build(model_params(backbone=backbone, weights=str(path)))
    assert all(np.array_equal(a, b) for a, b in zip(changed, loaded.get_weights()))
    assert not loaded.trainable


def test_random_init_is_the_same_in_every_stage():
    first, second = backbones.build(model_params()), backbones.build(model_params())
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))


def test_wrong_weights_file_is_a_user_error(tmp_path):
    other = backbones.build(model_params(alpha=0.5))
    path = tmp_path / "alpha05.weights.h5"
    other.save_weights(path)
    with pytest.raises(backbones.UserError, match="could not be loaded into mobilenetv2"):
        backbones.build(model_params(weights=str(path)))


def test_imagenet_offline_says_which_file_to_place_where(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="local", local_dir=str(tmp_path))
    params["model"].update(weights="imagenet", image_size=32)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_HOME=str(tmp_path / "keras"))
    # A proxy that refuses every connection stands in for "no network".
    env.update(https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy="")
    result = sh(tmp_path, sys.executable, "-m", "stages.features", check=False, env=env)
    assert result.returncode == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: could not get the ImageNet weights for vgg16")
    assert f"place vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 in {tmp_path}/keras/models/" in message
    assert "model.weights to none" in message
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not OFFICIAL.exists(), reason="../shared has no MobileNetV2 ImageNet weights")
def test_official_weights_load_by_path():
    network = backbones.build(model_params(weights=str(OFFICIAL), alpha=0.5, image_size=224))
    assert network.count_params() == 706224  # Keras' MobileNetV2 alpha 0.5, no top
    kernel = network.get_layer("Conv1").get_weights()[0]
    assert kernel.std() > 0.05  # trained filters, not a fresh initialisation
