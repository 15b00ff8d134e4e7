"""`dvc exp run -S` reruns only what a param touches (the queue's experiments:
tests/test_experiment_queue.py).

The tests share one project (a copy of the reproduced baseline, so they may
change its workspace) and run in file order; each starts from the committed
baseline run.
"""

import csv
import io
import json
import re

import pandas as pd
import pytest

from conftest import copy_of, dvc, sh


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
    assert ran(log) == ["download", "clean", "split", "features", "pool_features", "audit", "train", "finetune", "unknown",
                        "label_next", "evaluate", "export"]


def test_backbone_change_reruns_from_features_and_cnn_baseline_learns(fresh):
    result = dvc(fresh, "exp", "run", "-S", "model.backbone=cnn", "evaluate")
    assert ran(result.output) == ["features", "pool_features", "audit", "train", "finetune", "unknown", "evaluate"]
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
