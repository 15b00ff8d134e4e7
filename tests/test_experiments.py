"""`dvc exp run -S` reruns only what a param touches, and runs are repeatable.

The tests share one project and run in file order.
"""

import csv
import io
import json
import re
import time

import pandas as pd

from conftest import dvc, sh, stage


def ran(output):
    return re.findall(r"Running stage '(\w+)'", output)


def test_first_repro_runs_every_stage(reproduced):
    log = reproduced.with_suffix(".repro.log").read_text()
    assert ran(log) == ["download", "clean", "split", "features", "train", "finetune", "evaluate", "export"]


def test_backbone_change_reruns_from_features(reproduced):
    result = dvc(reproduced, "exp", "run", "-S", "model.backbone=mobilenetv2", "-S", "model.alpha=0.35")
    assert ran(result.output) == ["features", "train", "finetune", "evaluate", "export"]
    features = json.loads((reproduced / "metrics/eval.json").read_text())
    assert 0 <= features["finetune"]["accuracy"] <= 1


def test_learning_rate_change_skips_features(reproduced):
    result = dvc(reproduced, "exp", "run", "-S", "train.lr=0.001")
    assert ran(result.output) == ["train", "finetune", "evaluate", "export"]
    assert "Stage 'features' didn't change, skipping" in result.output


def test_metrics_diff_and_exp_show_show_the_change(reproduced):
    diff = dvc(reproduced, "metrics", "diff", "--json").stdout
    changed = json.loads(diff)["metrics/eval.json"]
    assert "head.loss" in changed
    shown = dvc(reproduced, "exp", "show", "--json").stdout
    assert "train.lr" in shown or '"lr": 0.001' in shown


def test_same_params_give_the_same_metrics(reproduced):
    before = (reproduced / "metrics/eval.json").read_text()
    result = dvc(reproduced, "repro", "--force", "--downstream", "train")
    assert ran(result.output) == ["train", "finetune", "evaluate", "export"]
    assert (reproduced / "metrics/eval.json").read_text() == before


def test_export_formats_rerun_only_export(reproduced):
    result = dvc(reproduced, "exp", "run", "-S", "export.formats=[onnx]")
    assert ran(result.output) == ["evaluate", "export"]  # evaluate checks the whole params file
    report = json.loads((reproduced / "metrics/export.json").read_text())
    assert set(report) == {"keras", "onnx"}
    assert sorted(p.name for p in (reproduced / "models/export").iterdir()) == ["model.json", "model.onnx"]
    sh(reproduced, "git", "checkout", "params.yaml")


def test_unknown_key_from_exp_run_fails_with_one_line(reproduced):
    # Plain `-S trian.lr=0.1` is refused by DVC itself; `+` adds a new key.
    result = dvc(reproduced, "exp", "run", "-S", "+trian.lr=0.1", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: unknown section 'trian' (allowed: data, clean," in result.output
    assert "Traceback" not in result.output
    sh(reproduced, "git", "checkout", "params.yaml")

    result = dvc(reproduced, "exp", "run", "-S", "+train.lrr=0.1", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: unknown key 'train.lrr' (allowed: optimizer, loss, lr," in result.output
    assert ran(result.output)[0] == "train"
    assert "Traceback" not in result.output


def test_cnn_baseline_runs_through_the_same_pipeline(reproduced):
    sh(reproduced, "git", "checkout", "params.yaml")
    result = dvc(reproduced, "exp", "run", "-S", "model.backbone=cnn")
    assert ran(result.output) == ["features", "train", "finetune", "evaluate", "export"]
    report = json.loads((reproduced / "metrics/eval.json").read_text())
    assert report["head"]["accuracy"] >= 0.75  # colours are easy even from scratch


def wait_for_queue(project, seconds=900):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = dvc(project, "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        time.sleep(5)
    raise AssertionError(f"queue still busy after {seconds}s:\n{status}")


def test_queue_runs_several_backbones(reproduced):
    dvc(reproduced, "exp", "run", "--queue", "-S", "model.backbone=cnn,mobilenetv2", "-S", "model.alpha=0.35")
    dvc(reproduced, "queue", "start", "--jobs", "1")
    status = wait_for_queue(reproduced)
    assert status.count("Success") >= 2, status
    table = dvc(reproduced, "exp", "show", "--csv").stdout
    finished = [row for row in csv.DictReader(io.StringIO(table)) if row["State"] == "Success"]
    assert {"cnn", "mobilenetv2"} <= {row["model.backbone"] for row in finished}
    assert all(0 <= float(row["finetune.accuracy"]) <= 1 for row in finished)


def test_comparison_report_has_one_row_per_experiment(reproduced):
    result = stage(reproduced, "compare")
    table = pd.read_csv(reproduced / "reports/comparison.csv")
    assert {"cnn", "mobilenetv2"} <= set(table.backbone)
    assert table.finetune_accuracy.between(0, 1).all() and (table.model_mb > 0).all()
    assert (reproduced / "reports/comparison.png").stat().st_size > 5000
    assert "compare: wrote reports/comparison.csv" in result.stdout


def test_no_finetuning_model_predicts_what_the_head_predicts(reproduced):
    """finetune.epochs 0 saves backbone + head: images through the tf.data
    pipeline must give the head's predictions on the cached features."""
    sh(reproduced, "git", "checkout", "params.yaml")
    result = dvc(reproduced, "exp", "run", "-S", "finetune.epochs=0")
    assert "finetune.epochs is 0" in result.output
    assert (reproduced / "logs/finetune").is_dir()
    timing = json.loads((reproduced / "metrics/finetune.json").read_text())["finetune"]
    assert timing["epochs"] == 0 and timing["improved"] is False
    table = pd.read_csv(reproduced / "plots/test_predictions.csv")
    assert (table["head"] == table["finetune"]).all()
    assert (table.head_confidence - table.finetune_confidence).abs().max() < 1e-4
