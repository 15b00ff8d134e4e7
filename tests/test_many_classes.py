"""Six classes through MobileNetV2 (32 px): what the README and docs claim
beyond two classes and VGG16. Per-class reports, top-5, calibration that
changes confidences and never labels, fine-tuning from the documented layer, and
exports of a network that scales pixels to [-1, 1], read by the example programs."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from test_pipeline import EXAMPLES, NO_STAGES

from conftest import COLORS, PREDICT, SHARED, in_process, make_images, sh, stages_run

CLASSES = sorted(COLORS)  # six
# Random MobileNetV2 weights give features of ~1e-12 (every image alike): with
# ../shared, the official alpha 0.35 file (loaded by path) makes the classes learnable.
OFFICIAL = SHARED / "keras/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    images = make_images(tmp_path_factory.mktemp("six"), per_class=10, classes=CLASSES)
    # Two photos of each class filed under the next one: the model cannot get every val photo
    # right, so calibration has something to fit (a val split without a mistake keeps T = 1).
    for i, name in enumerate(CLASSES):
        wrong = make_images(tmp_path_factory.mktemp("wrong"), per_class=2, classes=(name,), seed=10 + i) / name
        for photo in wrong.iterdir():
            photo.rename(images / CLASSES[(i + 1) % len(CLASSES)] / f"wrong.{photo.name}")
    weights = str(OFFICIAL) if OFFICIAL.exists() else "none"
    overrides = {"model": {"backbone": "mobilenetv2", "alpha": 0.35, "weights": weights}, "finetune": {"views": 2},
                 "export": {"formats": ["saved_model", "tflite", "tflite_int8", "onnx"]}}
    return stages_run(tmp_path_factory.mktemp("mobilenet") / "project", images, overrides)


def test_every_class_is_reported_and_the_scores_are_the_predictions(project):
    report = json.loads((project / "metrics/eval.json").read_text())
    table = pd.read_csv(project / "plots/test_predictions.csv")
    manifest = pd.read_csv(project / "data/split/manifest.csv")
    expected = manifest[manifest.split == "test"].label.value_counts().to_dict()
    for name in ("head", "finetune"):
        scores = report[name]
        assert {label: row["support"] for label, row in scores["per_class"].items()} == expected
        assert scores["accuracy"] == pytest.approx((table[name] == table.actual).mean())
        recall = {label: (group[name] == label).mean() for label, group in table.groupby("actual")}
        assert {label: row["recall"] for label, row in scores["per_class"].items()} == pytest.approx(recall)
        assert "top5_accuracy" in scores and "roc_auc" not in scores  # top-5 from 6 classes; AUC is two-class
    if OFFICIAL.exists():
        assert report["head"]["accuracy"] >= 0.6  # six colours, chance is 1/6


def test_calibration_changes_confidences_not_labels(project):
    info = json.loads((project / "models/model.json").read_text())
    assert abs(info["temperature"] - 1) > 0.05, "the test needs a temperature away from 1"
    table = pd.read_csv(project / "plots/test_predictions.csv")
    unsure = table[table.finetune_confidence < 0.9999].head(4)
    assert len(unsure), "the test needs an image the model is not sure of"
    # T < 1 sharpens (the model was under-confident on val), T > 1 softens.
    assert ((unsure.finetune_calibrated > unsure.finetune_confidence) == (info["temperature"] < 1)).all()
    lines = [json.loads(line) for line in in_process(project, PREDICT, *unsure.path).stdout.splitlines()]
    assert [line["label"] for line in lines] == unsure.finetune.tolist()
    assert [line["confidence"] for line in lines] == pytest.approx(unsure.finetune_calibrated.tolist(), abs=1e-4)


def test_finetuning_starts_at_the_readmes_layer(project):
    report = json.loads((project / "metrics/finetune.json").read_text())
    assert report["finetune"]["first_trained_layer"] == "block_13_expand"  # docs/backbones.md: mobilenetv2, 4 blocks


def test_exports_of_a_network_scaling_to_minus_one_one_agree(project):
    from ai_edge_litert.interpreter import Interpreter

    report = json.loads((project / "metrics/export.json").read_text())
    for name in ("saved_model", "tflite", "onnx"):
        assert report[name]["max_abs_diff"] <= 1e-4, name
    interpreter = Interpreter(model_path=str(project / "models/export/model_int8.tflite"))
    assert interpreter.get_input_details()[0]["quantization"] == (1.0, 0)  # the uint8 input is the pixels


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_programs_read_the_six_class_model(project, name):
    table = pd.read_csv(project / "plots/test_predictions.csv").head(3)
    lines = sh(project, sys.executable, "-c", EXAMPLES[name] + NO_STAGES, *table.path).stdout.splitlines()
    assert len(lines) == len(table)
    for row, line in zip(table.itertuples(), lines):
        label, confidence, _ = line.split()
        if name != "classify_litert":  # that one reads the int8 model
            assert label == row.finetune
        assert np.isfinite(float(confidence))
