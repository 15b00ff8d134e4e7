"""More classes than a confusion matrix, eval.json or the model card lists (30, 10
photos each), names with spaces and non-ASCII letters, through every stage at
32 px: figures that stay legible, per-class scores worst first, top-5, labels.txt.

Thirty is enough: every switch from "all classes" to "the worst ones" happens at
20 classes (MATRIX_CLASSES, LISTED_CLASSES, SHOWN_CLASSES), and a 30 x 30 matrix
picture would still be over 2,000 px. (It was 200 classes: 2.5 min of a CI worker
for the same assertions.)"""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classifier.report.card import SHOWN_CLASSES
from classifier.report.figures import MATRIX_CLASSES
from classifier.report.scores import LISTED_CLASSES
from conftest import PREDICT, in_process, stages_run

CLASSES = [f"{('fleur é', '花', 'class')[i % 3]} {i:03d}" for i in range(30)]
assert len(CLASSES) > max(MATRIX_CLASSES, LISTED_CLASSES, SHOWN_CLASSES)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    photos = tmp_path_factory.mktemp("thirty")
    rng = np.random.default_rng(0)
    for name in CLASSES:
        color = rng.integers(0, 256, 3)
        (photos / name).mkdir()
        for i in range(10):
            pixels = rng.normal(color, 20, (32, 32, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(photos / name / f"{i}.jpg", quality=95)
    # head.type dense, no fine-tuning: the figures and tables are the subject, not the training.
    overrides = {"head": {"type": "dense"}, "train": {"epochs": 3}, "finetune": {"epochs": 0},
                 "audit": {"folds": 2}, "evaluate": {"tta": False}, "export": {"formats": ["onnx"]}}  # the quickest
    return stages_run(tmp_path_factory.mktemp("many") / "project", photos, overrides)


def test_scores_go_to_a_csv_worst_first_and_eval_json_stays_short(project):
    report = json.loads((project / "metrics/eval.json").read_text())
    table = pd.read_csv(project / "plots/per_class_finetune.csv")
    assert sorted(table["class"]) == sorted(CLASSES)
    assert table.recall.is_monotonic_increasing
    predictions = pd.read_csv(project / "plots/test_predictions.csv")
    recall = (predictions.finetune == predictions.actual).groupby(predictions.actual).mean()
    assert table.set_index("class").recall.to_dict() == pytest.approx(recall.to_dict())
    assert table.support.sum() == len(predictions)
    finetune = report["finetune"]
    assert "per_class" not in finetune  # 30 rows (or 200) would drown `dvc metrics show`
    assert finetune["worst_class"] == {"name": table["class"][0], "recall": table.recall[0], "support": int(table.support[0])}
    assert finetune["top5_accuracy"] >= finetune["accuracy"]
    assert finetune["top5_accuracy_ci95"]["low"] <= finetune["top5_accuracy"] <= finetune["top5_accuracy_ci95"]["high"]


def test_figures_stay_legible(project):
    for name in ("confusion_finetune.png", "confusion_head.png", "mistakes.png", "explained.png"):
        with Image.open(project / "plots" / name) as figure:
            assert max(figure.size) <= 2000, name  # a matrix picture grows with the classes (200: 11,000 px wide)
    with Image.open(project / "plots/confusion_finetune.png") as figure:
        assert figure.height > figure.width  # the most confused pairs, as bars, not a matrix


def test_class_names_with_spaces_and_other_letters_go_end_to_end(project):
    labels = (project / "models/export/labels.txt").read_text(encoding="utf-8").splitlines()
    assert labels == sorted(CLASSES)
    photo = pd.read_csv(project / "data/split/manifest.csv").query("split == 'test'").path.iloc[0]
    line = json.loads(in_process(project, PREDICT, photo).stdout)
    assert line["label"] in CLASSES
