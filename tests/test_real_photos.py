"""Transfer learning on real photos with real ImageNet weights (needs ../shared),
through bench/bench.py section 5: the documented recipe on 200 photos per class.

This is the test that tells us a change broke transfer learning: random
features cannot reach these accuracies on 60 real test photos.
"""

import re
import sys

import pytest

from conftest import ROOT, SHARED, environment, sh

PHOTOS = SHARED / "data/dogs-vs-cats"
WEIGHTS = SHARED / "keras/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"

pytestmark = pytest.mark.skipif(
    not (PHOTOS.is_dir() and WEIGHTS.exists()),
    reason="needs ../shared/data/dogs-vs-cats and the MobileNetV2 0.5 ImageNet weights",
)


def test_imagenet_mobilenet_classifies_real_photos(tmp_path):
    # A KERAS_HOME of our own (Keras writes keras.json into it); the weights are linked.
    home = tmp_path / "keras"
    (home / "models").mkdir(parents=True)
    (home / "models" / WEIGHTS.name).symlink_to(WEIGHTS)
    env = dict(environment(), KERAS_HOME=str(home))
    env.update(https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")  # prove it is offline
    results = tmp_path / "RESULTS.md"
    sh(ROOT, sys.executable, "bench/bench.py", "--sections", "5", "--results", str(results), "--data", str(PHOTOS),
       "--max-per-class", "200", "--runs", "mobilenetv2 a=0.5", env=env)
    text = results.read_text()
    assert "### 5. Accuracy on real photos" in text

    row = re.search(r"\| mobilenetv2 a=0.5 \| test accuracy head ([\d.]+), fine-tuned ([\d.]+); F1 ([\d.]+);"
                    r".* (\d+) test images \|", text)
    assert row, text
    assert int(row[4]) == 60  # 15% of 400, stratified
    assert min(float(row[1]), float(row[2]), float(row[3])) >= 0.93, row[0]

    tta = re.search(r"\| mobilenetv2 a=0.5: flip TTA \| fine-tuned accuracy [\d.]+ -> ([\d.]+)", text)
    assert float(tta[1]) >= 0.93, tta[0]
    calibration = re.findall(r"(head|finetune) ECE ([\d.]+) -> ([\d.]+) \(T ([\d.]+)\)", text)
    assert [model for model, *_ in calibration] == ["head", "finetune"], text
    for _, before, after, temperature in calibration:
        assert 0 <= float(before) < 0.2 and 0 <= float(after) < 0.2 and 0.2 < float(temperature) < 5
    audit = re.search(r"\| mobilenetv2 a=0.5: audit \| \d+s after features; (\d+) label issues", text)
    assert int(audit[1]) < 30, audit[0]  # a few hard photos, not a broken label model
