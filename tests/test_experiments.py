"""`dvc exp run -S` reruns only what a param touches, and the queue runs
several experiments.

The tests share one project (its own, so they may change its workspace) and
run in file order; each starts from the committed baseline run.
"""

import csv
import io
import json
import re
import time

import pandas as pd
import pytest

from conftest import copy_of, dvc, sh, tool


@pytest.fixture(scope="module")
def project(tmp_path_factory, pristine):
    return copy_of(pristine, tmp_path_factory.mktemp("experiments") / "project")


def reset(project):
    """The workspace back at the committed baseline run: Git restores params, lock,
    metrics and logs (outputs with cache: false), DVC the cached outputs. (A queued
    experiment would also take uncommitted changes with it.)"""
    sh(project, "git", "checkout", "--", ".")
    sh(project, "git", "clean", "-fdq")
    dvc(project, "checkout", "--force")
    return project


@pytest.fixture
def fresh(project):
    return reset(project)


def ran(output):
    """The stages that ran, but `scan`: it runs every time, by design (test_clean.py)."""
    return [name for name in re.findall(r"Running stage '(\w+)'", output) if name != "scan"]


def test_first_repro_runs_every_stage(project):
    log = project.with_suffix(".repro.log").read_text()
    assert re.findall(r"Running stage '(\w+)'", log)[0] == "scan"
    assert ran(log) == ["download", "clean", "split", "features", "audit", "train", "finetune", "unknown", "label_next", "evaluate",
                        "export"]


def test_backbone_change_reruns_from_features_and_cnn_baseline_learns(fresh):
    result = dvc(fresh, "exp", "run", "-S", "model.backbone=cnn", "evaluate")
    assert ran(result.output) == ["features", "audit", "train", "finetune", "unknown", "evaluate"]
    report = json.loads((fresh / "metrics/eval.json").read_text())
    assert report["head"]["accuracy"] >= 0.75  # colours are easy even from scratch

    changed = json.loads(dvc(fresh, "metrics", "diff", "--json").stdout)["metrics/eval.json"]
    assert "head.loss" in changed
    shown = dvc(fresh, "exp", "show", "--csv").stdout
    assert {"vgg16", "cnn"} <= {row["model.backbone"] for row in csv.DictReader(io.StringIO(shown))}


def test_unknown_key_from_exp_run_fails_with_one_line(fresh):
    # Plain `-S trian.lr=0.1` is refused by DVC itself; `+` adds a new key.
    result = dvc(fresh, "exp", "run", "-S", "+trian.lr=0.1", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: unknown section 'trian' (allowed: data, clean," in result.output
    assert "Traceback" not in result.output
    sh(fresh, "git", "checkout", "params.yaml")

    result = dvc(fresh, "exp", "run", "-S", "+train.lrr=0.1", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: unknown key 'train.lrr' (allowed: optimizer, loss, lr," in result.output
    assert re.findall(r"Running stage '(\w+)'", result.output) == ["scan"]  # the first stage checks the whole file
    assert "Traceback" not in result.output


def test_unknown_backbone_fails_at_features_with_one_line(fresh):
    result = dvc(fresh, "exp", "run", "-S", "model.backbone=resnet", check=False)
    assert result.returncode != 0
    assert ran(result.output) == ["features"]
    assert "error: params.yaml: model.backbone = 'resnet' must be one of: vgg16, resnet50v2," in result.output
    assert "Traceback" not in result.output


def test_no_finetuning_model_predicts_what_the_head_predicts(fresh):
    """finetune.epochs 0 saves backbone + head: images through the tf.data
    pipeline must give the head's predictions on the cached features."""
    result = dvc(fresh, "exp", "run", "-S", "finetune.epochs=0", "evaluate")
    assert ran(result.output) == ["finetune", "unknown", "evaluate"]
    assert "finetune.epochs is 0" in result.output
    assert (fresh / "logs/finetune").is_dir()
    timing = json.loads((fresh / "metrics/finetune.json").read_text())["finetune"]
    assert timing["epochs"] == 0 and timing["kept"] is False
    table = pd.read_csv(fresh / "plots/test_predictions.csv")
    assert (table["head"] == table["finetune"]).all()
    assert (table.head_confidence - table.finetune_confidence).abs().max() < 1e-4


def test_cached_views_train_the_top_blocks_on_a_frozen_bottom(fresh):
    from types import SimpleNamespace

    import numpy as np

    from classifier.model import backbones, graph

    result = dvc(fresh, "exp", "run", "-S", "finetune.views=2", "-S", "finetune.unfreeze=2", "finetune")
    assert ran(result.output) == ["finetune"]
    assert "finetune: 2 views at the cut" in result.output and "finetune: val at the cut" in result.output
    report = json.loads((fresh / "metrics/finetune.json").read_text())["finetune"]
    assert report["first_trained_layer"] == "block4_conv1" and report["epochs"] == 2
    tuned = graph.backbone_of(backbones.load_model(fresh / "models/model.keras").get_layer("extractor"))
    start = backbones.build(SimpleNamespace(backbone="vgg16", weights="none", image_size=32, alpha=1.0))
    changed = {layer.name for layer, before in zip(tuned.layers, start.layers)
               if not all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), before.get_weights()))}
    # Below the cut nothing moved; above it, the two blocks trained (unless fine-tuning was dropped).
    assert changed <= {f"block{b}_conv{c}" for b in (4, 5) for c in (1, 2, 3)}
    assert bool(changed) == report["kept"]


def test_online_augmentation_runs_the_whole_backbone_every_epoch(fresh):
    result = dvc(fresh, "exp", "run", "-S", "finetune.views=0", "finetune")
    assert ran(result.output) == ["finetune"]
    assert "at the cut" not in result.output and "Epoch 2/2" in result.output
    assert json.loads((fresh / "metrics/finetune.json").read_text())["finetune"]["epochs"] == 2


def wait_for_queue(project, seconds=360):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = dvc(project, "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        time.sleep(3)
    raise AssertionError(f"queue still busy after {seconds}s:\n{status}")


# (mobilenetv2 through the whole pipeline: tests/test_real_photos.py)
QUEUED = {
    "lr": ["-S", "train.lr=0.001", "evaluate"],
    "onnx": ["-S", "export.formats=[onnx]"],
}


@pytest.fixture(scope="module")
def queued(project):
    """Experiments run by the DVC queue, two at a time."""
    reset(project)
    for name, args in QUEUED.items():
        dvc(project, "exp", "run", "--queue", "-n", name, *args)
    dvc(project, "queue", "start", "--jobs", "2")
    try:
        status = wait_for_queue(project)
        assert status.count("Success") == len(QUEUED), status
        yield project
    finally:  # no worker outlives the tests, finished or hung
        dvc(project, "queue", "stop", "--kill", check=False)


def test_queue_reruns_only_what_each_param_touches(queued):
    logs = {name: dvc(queued, "queue", "logs", name).output for name in QUEUED}
    assert ran(logs["lr"]) == ["train", "finetune", "unknown", "evaluate"]
    assert ran(logs["onnx"]) == ["evaluate", "export"]  # evaluate checks the whole params file
    table = dvc(queued, "exp", "show", "--csv").stdout
    rows = {row["Experiment"]: row for row in csv.DictReader(io.StringIO(table)) if row["Experiment"] in QUEUED}
    assert set(rows) == set(QUEUED) and all(row["State"] == "Success" for row in rows.values())
    assert rows["lr"]["train.lr"] == "0.001" and rows["onnx"]["train.lr"] == "0.003"
    # Only export formats changed: the same model as the workspace's, the same scores.
    baseline = json.loads((queued / "metrics/eval.json").read_text())
    assert float(rows["onnx"]["finetune.accuracy"]) == pytest.approx(baseline["finetune"]["accuracy"])


def test_export_formats_change_writes_only_those_formats(queued, fresh):
    dvc(fresh, "exp", "apply", "onnx")
    report = json.loads((fresh / "metrics/export.json").read_text())
    assert set(report) == {"keras", "onnx"}
    assert sorted(p.name for p in (fresh / "models/export").iterdir()) == ["README.md", "labels.txt", "model.json", "model.onnx"]


def test_comparison_report_has_one_row_per_experiment(queued):
    result = tool(queued, "compare")
    table = pd.read_csv(queued / "reports/comparison.csv")
    assert "lr" in set(table.experiment)  # "onnx" has the workspace's metrics: one row for both
    shown = {row["Experiment"] or row["rev"]: row for row in csv.DictReader(io.StringIO(dvc(queued, "exp", "show", "--csv").stdout))}
    for row in table.itertuples():  # the table is what `dvc exp show` says
        assert row.finetune_accuracy == pytest.approx(float(shown[row.experiment]["finetune.accuracy"]))
    assert (queued / "reports/comparison.png").stat().st_size > 5000
    assert "compare: wrote reports/comparison.csv" in result.stdout
