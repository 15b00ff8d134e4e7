"""The DVC experiment queue runs several experiments, each rerunning only what
its param touches, and `compare` tabulates them. A module of its own (a copy of
the reproduced baseline of its own), so that pytest-xdist can run it beside
tests/test_experiments.py: together they were the longest chain of one worker."""

import csv
import io
import json
import re
import time

import pandas as pd
import pytest
from test_experiments import ran, reset

from conftest import copy_of, dvc, tool


@pytest.fixture(scope="module")
def project(tmp_path_factory, pristine):
    return copy_of(pristine, tmp_path_factory.mktemp("queue") / "project")


@pytest.fixture
def fresh(project):
    return reset(project)


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
    assert ran(logs["onnx"]) == ["export"]
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
