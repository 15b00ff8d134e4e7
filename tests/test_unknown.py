"""The unknown check (classifier/model/unknown.py): its score, its threshold, its stage."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classifier.cli import predict
from classifier.model import unknown


def test_the_score_is_the_cosine_distance_to_the_kth_nearest_training_photo():
    rng = np.random.default_rng(0)
    train, queries = rng.normal(size=(50, 8)), rng.normal(size=(7, 8))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    expected = 1 - np.sort(unit(queries) @ unit(train).T, axis=1)[:, -3]
    got = unknown.check(train, k=3).predict(queries, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Unit length first: a training photo's features, brighter or darker, are still at distance 0.
    np.testing.assert_allclose(unknown.check(train, k=1).predict(train[:5] * 7.0, verbose=0), 0, atol=1e-5)


def test_the_threshold_lets_the_stated_share_of_val_photos_pass():
    scores = np.random.default_rng(1).permutation(np.arange(1, 201) / 100)
    threshold = unknown.threshold(scores, 0.95)
    assert (scores <= threshold).sum() == 190 and threshold in scores


def test_at_most_bank_training_photos_are_kept():
    rows = unknown.drawn(unknown.BANK * 3, seed=0)
    assert len(rows) == unknown.BANK == len(set(rows)) and (np.diff(rows) > 0).all()
    assert (unknown.drawn(10, seed=0) == np.arange(10)).all()


def unlike_the_photos(folder):
    """Images unlike the tests' noisy one-colour photos: a checkerboard, a flat grey."""
    folder.mkdir(exist_ok=True)
    board = (np.indices((64, 64)).sum(axis=0) // 8 % 2 * 255).astype("uint8")
    Image.fromarray(np.stack([board] * 3, axis=-1)).save(folder / "checkerboard.png")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(folder / "grey.png")
    return sorted(folder.iterdir())


def predicted(project, model, paths, monkeypatch, capsys, *options):
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "argv", ["predict", "--model", str(model), *options, *map(str, paths)])
    predict.main()
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_threshold_lets_pass_share_of_the_val_photos_through(baseline, monkeypatch, capsys):
    check = json.loads((baseline / "models/unknown.json").read_text())
    manifest = pd.read_csv(baseline / "data/split/manifest.csv")
    val = manifest[manifest.split == "val"].path
    lines = predicted(baseline, "models/model.keras", val, monkeypatch, capsys)
    scores = np.array([line["unknown_score"] for line in lines])
    assert check["val_photos"] == len(val)
    assert (scores <= check["threshold"] + 1e-6).mean() >= check["pass_share"]
    assert np.abs(scores - check["threshold"]).min() < 1e-5  # the threshold is a val photo's score


def test_photos_unlike_the_training_photos_are_flagged_and_keep_their_label(baseline, tmp_path, monkeypatch, capsys):
    strange = unlike_the_photos(tmp_path / "strange")
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    lines = predicted(baseline, "models/model.keras", [*strange, *table.path], monkeypatch, capsys)
    assert [line["unknown"] for line in lines[:2]] == [True, True]
    assert all(line["label"] in ("cat", "dog") for line in lines[:2])  # nothing lost: the label stays
    assert [line["unknown"] for line in lines[2:]] == table.unknown.tolist()
    assert [line["unknown_score"] for line in lines[2:]] == pytest.approx(table.unknown_score.tolist(), abs=1e-5)
    rejected = predicted(baseline, "models/model.keras", strange[:1], monkeypatch, capsys, "--reject-unknown")
    assert rejected[0]["label"] is None and rejected[0]["unknown"]


@pytest.mark.parametrize("exported", ["model.onnx", "model.tflite", "saved_model"])
def test_every_float_format_gives_the_same_verdict(baseline, tmp_path, exported, monkeypatch, capsys):
    photos = [*unlike_the_photos(tmp_path / "strange"), *pd.read_csv(baseline / "plots/test_predictions.csv").path]
    expected = predicted(baseline, "models/model.keras", photos, monkeypatch, capsys)
    got = predicted(baseline, baseline / "models/export" / exported, photos, monkeypatch, capsys)
    assert [line["unknown"] for line in got] == [line["unknown"] for line in expected]
    assert [line["unknown_score"] for line in got] == pytest.approx([line["unknown_score"] for line in expected], abs=1e-4)


def test_eval_and_export_report_the_check(baseline):
    scores = json.loads((baseline / "metrics/eval.json").read_text())["finetune"]["unknown"]
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    check = json.loads((baseline / "models/unknown.json").read_text())
    assert scores["flagged"] == (table.unknown_score > check["threshold"]).mean() == table.unknown.mean()
    assert scores["threshold"] == check["threshold"]
    exported = json.loads((baseline / "models/export/model.json").read_text())["unknown"]
    assert exported == {key: check[key] for key in ("method", "k", "threshold", "pass_share")}
    report = json.loads((baseline / "metrics/export.json").read_text())
    for name in ("saved_model", "tflite", "onnx"):
        assert report[name]["unknown_agreement"] == 1.0 and report[name]["unknown_max_abs_diff"] <= 1e-4, name

