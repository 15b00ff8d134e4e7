"""Several labels per photo (data.labels): the labels CSV, the task switch and the
iterative-stratification split, through the real `dvc repro split`."""

import json

import pandas as pd
import pytest
from PIL import Image

from classifier.data import labels
from classifier.data.splitting import MIN_PER_CLASS
from classifier.errors import UserError
from classifier.params import validate
from conftest import dvc, new_project
from test_params import with_change
from tools.generated import CHANNELS, make_label_sets


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (40, 40)).save(folder / name)
    (tmp_path / "outside.jpg").write_bytes((folder / "a.jpg").read_bytes())
    return folder


@pytest.mark.parametrize("text, message", [
    ("file,tags\na.jpg,sea\n", r"labels.csv: the first line must be `path,labels` \(found: file,tags\)"),
    ("", r"the first line must be `path,labels` \(found: an empty file\)"),
    ("path,labels\na.jpg,sea\n,sea\n", r"labels.csv, line 3: the path is empty"),
    ("path,labels\n../outside.jpg,sea\n", r"labels.csv, line 2: ../outside.jpg lies outside data.local_dir"),
    ("path,labels\n/etc/hostname,sea\n", r"labels.csv, line 2: /etc/hostname lies outside data.local_dir"),
    ("path,labels\na.jpg,sea\nc.jpg,sea\n", r"labels.csv, line 3: c.jpg is not a file in .*: correct the path, or delete the line"),
    ("path,labels\na.jpg,sea sunset\nb.jpg,sea\na.jpg,sea\n",
     r"labels.csv, line 4: a.jpg is listed again with other labels \(sea sunset, then sea\): keep one line"),
    ("path,labels\na.jpg,sea/land\n", r"labels.csv, line 2: the label 'sea/land' cannot be a name"),
    ("path,labels\na.jpg,.hidden\n", r"labels.csv, line 2: the label '.hidden' cannot be a name"),
    ("path,labels\na.jpg,sea,extra\n", r"labels.csv, line 2: 3 columns, expected 2"),
])
def test_each_bad_row_stops_with_one_line_naming_it(photos, text, message):
    csv_path = photos.parent / "labels.csv"
    csv_path.write_text(text)
    with pytest.raises(UserError, match=message):
        labels.read(csv_path, photos)


def test_empty_labels_are_kept_and_a_repeated_line_is_one_photo(photos):
    csv_path = photos.parent / "labels.csv"
    csv_path.write_text("\ufeffpath,labels\na.jpg,sunset sea sea\n\nb.jpg,\n./a.jpg,sea sunset\n")
    assert labels.read(csv_path, photos) == {"a.jpg": ("sea", "sunset"), "b.jpg": ()}


def test_max_per_class_keeps_photos_each_label_still_needs():
    given = {"1": ("sea",), "2": ("sea", "sun"), "3": ("sea",), "4": ("sun",), "5": (), "6": ()}
    assert labels.chosen(given, 1) == ["1", "2", "5"]
    assert labels.chosen(given, None) == list(given)


def test_task_auto_is_multi_label_exactly_where_data_labels_is_set(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,labels\n")
    assert validate(with_change("model", "task", "auto")).model.task == "single_label"
    raw = with_change("data", "labels", str(csv_path))
    assert validate(raw).model.task == "multi_label"
    raw["model"]["task"] = "single_label"
    with pytest.raises(UserError, match="model.task = single_label reads its classes from folders, not data.labels"):
        validate(raw)
    with pytest.raises(UserError, match=r"model.task = multi_label needs data.labels"):
        validate(with_change("model", "task", "multi_label"))
    raw = with_change("data", "labels", str(tmp_path / "missing.csv"))
    with pytest.raises(UserError, match="data.labels = .*missing.csv' is not a file"):
        validate(raw)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A multi-label project after `dvc repro split` (60 photos, three labels)."""
    root = tmp_path_factory.mktemp("multi")
    folder, csv_path = make_label_sets(root)
    project = new_project(root / "project", folder, {"data": {"labels": str(csv_path)}})
    dvc(project, "repro", "split")
    return project, csv_path


def test_split_keeps_every_photo_and_its_labels(project):
    project, csv_path = project
    given = pd.read_csv(csv_path, keep_default_na=False)
    manifest = pd.read_csv(project / "data/split/manifest.csv", keep_default_na=False)
    assert sorted(manifest.path.str.rsplit("/", n=1).str[1]) == sorted(given.path)
    as_sets = {name: set(labels.split()) for name, labels in zip(manifest.path.str.rsplit("/", n=1).str[1], manifest.label)}
    assert as_sets == {name: set(labels.split()) for name, labels in zip(given.path, given.labels)}
    assert (manifest.label == "").sum() == (given.labels == "").sum() >= 6  # "none of these" is kept


def test_split_json_counts_each_label_per_split_and_stratifies(project):
    project, csv_path = project
    given = pd.read_csv(csv_path, keep_default_na=False)
    report = json.loads((project / "metrics/split.json").read_text())
    assert set(report["labels"]) == set(CHANNELS)
    for name, counts in report["labels"].items():
        assert sum(counts.values()) == given.labels.str.split().apply(lambda names: name in names).sum()
        # iterative stratification: each split holds its share of every label (25% val, 25% test)
        for split in ("val", "test"):
            assert abs(counts[split] - 0.25 * sum(counts.values())) <= 2, (name, counts)
    assert report["train"] + report["val"] + report["test"] == len(given)


def test_a_changed_label_reruns_download_and_split(project):
    project, csv_path = project
    text = csv_path.read_text()
    given = pd.read_csv(csv_path, keep_default_na=False)
    toggled = set(given.labels[0].split()) ^ {"red"}  # red added to the first photo, or taken away
    given.loc[0, "labels"] = " ".join(toggled)
    try:
        given.to_csv(csv_path, index=False)
        result = dvc(project, "repro", "split")
        assert "Running stage 'download'" in result.output and "Running stage 'split'" in result.output
        assert "Running stage 'clean'" not in result.output  # the same photos
        manifest = pd.read_csv(project / "data/split/manifest.csv", keep_default_na=False)
        assert set(manifest[manifest.path.str.endswith(f"/{given.path[0]}")].label.iloc[0].split()) == toggled
    finally:
        csv_path.write_text(text)
        dvc(project, "repro", "split")


def test_a_label_with_too_few_photos_stops_split(tmp_path):
    folder, csv_path = make_label_sets(tmp_path)
    rows = csv_path.read_text().splitlines()
    rows[1] = rows[1].split(",")[0] + ",rare"
    csv_path.write_text("\n".join(rows) + "\n")
    project = new_project(tmp_path / "project", folder, {"data": {"labels": str(csv_path)}})
    result = dvc(project, "repro", "split", check=False)
    assert result.returncode != 0
    assert f"error: label 'rare' has 1 clean image(s); each label needs at least {MIN_PER_CLASS}" in result.output
    assert "Traceback" not in result.output


def test_the_audit_ranks_corrupted_label_sets_first():
    """Features that carry each photo's true labels; eight photos' label sets then
    corrupted (a label added or taken away): what cleanlab's multi-label finder
    lists, on out-of-sample probabilities, is corrupted, with the set it had as
    the suggestion."""
    import numpy as np

    from classifier.report.audit import label_set_issues, out_of_sample_sets

    rng = np.random.default_rng(0)
    truth = (rng.random((160, 3)) < 0.4).astype(int)
    x = truth * 4.0 + rng.normal(0, 0.5, truth.shape)
    given = truth.copy()
    corrupted = rng.choice(160, 8, replace=False)
    given[corrupted, rng.integers(0, 3, 8)] ^= 1
    table = pd.DataFrame({"path": [f"{i}.jpg" for i in range(160)], "split": "train",
                          "label": [" ".join(np.array(["a", "b", "c"])[row == 1]) for row in given]})
    probabilities = out_of_sample_sets(x, given, folds=5, seed=0)
    issues = label_set_issues(table, given, probabilities, ["a", "b", "c"])
    assert len(issues) >= 4 and set(issues.path) <= {f"{i}.jpg" for i in corrupted}  # cleanlab flags what it is sure of
    first = issues.iloc[0]
    i = int(first.path.split(".")[0])
    assert first.suggestion == " ".join(np.array(["a", "b", "c"])[truth[i] == 1])  # the set it had


def test_relabel_csv_gives_a_photo_a_new_label_set_or_none(project):
    project, _ = project
    relabel = project / "data/relabel.csv"
    before = relabel.read_text()
    manifest = pd.read_csv(project / "data/split/manifest.csv", keep_default_na=False)
    first, second = manifest.path[0], manifest.path[1]
    try:
        relabel.write_text(f"path,label\n{first},red green red\n{second},\n")
        dvc(project, "repro", "split")
        moved = pd.read_csv(project / "data/split/manifest.csv", keep_default_na=False).set_index("path").label
        assert moved[first] == "green red" and moved[second] == ""
        assert json.loads((project / "metrics/split.json").read_text())["relabelled"] == 2

        relabel.write_text(f"path,label\n{first},green blu\n")
        result = dvc(project, "repro", "split", check=False)
        assert "error: data/relabel.csv: 'blu' is not a label (labels: blue, green, red)" in result.output
        assert "Traceback" not in result.output
    finally:
        relabel.write_text(before)
        dvc(project, "repro", "split")
