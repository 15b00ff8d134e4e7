"""The whole pipeline through the real `dvc repro` on a tiny generated image set."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import dvc, stage


def declared_outputs(project):
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for spec in stages.values():
        for out in spec.get("outs", []):
            yield next(iter(out)) if isinstance(out, dict) else out


def test_every_declared_output_exists(reproduced):
    for out in declared_outputs(reproduced):
        assert (reproduced / out).exists(), out
    assert (reproduced / "plots/confusion_head.png").stat().st_size > 1000
    assert (reproduced / "plots/confusion_finetune.png").stat().st_size > 1000
    for log in ("logs/train", "logs/finetune"):
        epochs = pd.read_csv(reproduced / log / "plots/metrics/eval/loss.tsv", sep="\t")
        assert len(epochs) >= 1 and epochs.loss.notna().all()


def test_eval_metrics_have_every_key_in_range(reproduced):
    report = json.loads((reproduced / "metrics/eval.json").read_text())
    assert set(report) == {"head", "finetune"}
    for scores in report.values():
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            assert 0 <= scores[key] <= 1, key
        assert scores["loss"] >= 0
        assert set(scores["per_class"]) == {"cat", "dog"}
        assert sum(c["support"] for c in scores["per_class"].values()) == 8
    # The classes differ by colour: even random-weight features separate them.
    assert report["head"]["accuracy"] >= 0.85


def test_split_is_stratified_and_disjoint(reproduced):
    manifest = pd.read_csv(reproduced / "data/split/manifest.csv")
    assert list(manifest.columns) == ["path", "label", "split"]
    assert manifest.path.is_unique and len(manifest) == 32
    counts = manifest.groupby(["split", "label"]).size().unstack()
    assert (counts["cat"] == counts["dog"]).all()
    assert counts.loc["train", "cat"] == 8 and counts.loc["test", "cat"] == 4


def test_features_are_aligned_with_the_manifest(reproduced):
    manifest = pd.read_csv(reproduced / "data/split/manifest.csv")
    for split in ("train", "val", "test"):
        x = np.load(reproduced / f"data/features/{split}_x.npy", mmap_mode="r")
        y = np.load(reproduced / f"data/features/{split}_y.npy")
        labels = manifest[manifest.split == split].label
        assert x.shape == (len(labels), 512)  # VGG16, average-pooled
        assert list(y) == [["cat", "dog"].index(name) for name in labels]
        assert np.isfinite(x).all()


def test_second_repro_runs_nothing(reproduced):
    result = dvc(reproduced, "repro")
    assert "Running stage" not in result.output
    assert "didn't change, skipping" in result.output


def test_predict_matches_evaluate_and_reports_broken_files(reproduced, tmp_path):
    table = pd.read_csv(reproduced / "plots/test_predictions.csv")
    folder = tmp_path / "new"
    folder.mkdir()
    for path in table.path[:3]:
        (folder / (reproduced / path).name).write_bytes((reproduced / path).read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    Image.new("RGB", (40, 40), (200, 70, 60)).save(folder / "red.png")

    result = stage(reproduced, "predict", str(folder), check=False)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {line["path"].split("/")[-1]: line for line in lines}
    assert len(lines) == 5
    assert by_name["broken.jpg"]["error"] == "not_image"
    assert by_name["red.png"]["label"] in ("cat", "dog")
    for _, row in table[:3].iterrows():
        line = by_name[row.path.split("/")[-1]]
        assert line["label"] == row.finetune
        assert line["confidence"] == pytest.approx(row.finetune_confidence, abs=1e-4)


def test_predict_without_a_model_says_to_run_repro(tmp_path, reproduced):
    result = stage(reproduced, "predict", "--model", str(tmp_path / "none.keras"), "x.jpg", check=False)
    assert result.returncode == 2
    assert "run `dvc repro` first" in result.stderr
    assert "Traceback" not in result.stderr
