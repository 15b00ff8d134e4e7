"""Transfer learning on real photos with real ImageNet weights (needs ../shared).

This is the test that tells us a change broke transfer learning: random
features cannot reach these accuracies on 120 real test photos.
"""

import json

import pytest

from conftest import SHARED, dvc, environment, new_project

PHOTOS = SHARED / "data/dogs-vs-cats"
KERAS_HOME = SHARED / "keras"
WEIGHTS = KERAS_HOME / "models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"

pytestmark = pytest.mark.skipif(
    not (PHOTOS.is_dir() and WEIGHTS.exists()),
    reason="needs ../shared/data/dogs-vs-cats and the MobileNetV2 0.5 ImageNet weights",
)


def test_imagenet_mobilenet_classifies_real_photos(tmp_path):
    project = new_project(tmp_path / "project", PHOTOS, {
        "data": {"max_per_class": 300},
        "split": {"val": 0.2, "test": 0.2},
        "model": {"backbone": "mobilenetv2", "alpha": 0.5, "image_size": 224, "weights": "imagenet"},
        "train": {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 20, "patience": 3},
        "finetune": {"epochs": 1, "unfreeze": 20},
    })  # fmt: skip
    # A KERAS_HOME of our own (Keras writes keras.json into it); the weights are linked.
    home = tmp_path / "keras"
    (home / "models").mkdir(parents=True)
    (home / "models" / WEIGHTS.name).symlink_to(WEIGHTS)
    env = dict(environment(), KERAS_HOME=str(home))
    env.update(https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")  # prove it is offline
    dvc(project, "repro", "evaluate", env=env)
    report = json.loads((project / "metrics/eval.json").read_text())
    assert report["head"]["per_class"]["cat"]["support"] + report["head"]["per_class"]["dog"]["support"] == 120
    assert report["head"]["accuracy"] >= 0.93
    assert report["finetune"]["accuracy"] >= 0.93
    assert report["head"]["roc_auc"] >= 0.97
