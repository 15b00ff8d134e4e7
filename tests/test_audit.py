"""The audit stage on generated images with planted problems, through `dvc repro`."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classifier.data.manifest import label_issues_in_train
from conftest import dvc, make_images, new_project, stage

# The cnn's "features" are the pixels themselves: for these noisy one-colour
# images, two different pictures of a class have a cosine similarity of about
# 0.96, a re-saved copy above 0.999.
# split.group none: the split draws each image alone, so that the planted copies can
# straddle it and the audit must find the leaks (split.group: duplicates prevents them: test_split.py).
OVERRIDES = {"model": {"backbone": "cnn", "image_size": 32}, "audit": {"duplicate_similarity": 0.995},
             "split": {"group": "none"}}
WRONG = [f"dog/wrong.{i}.jpg" for i in range(3)]  # cat-coloured pictures in the dog folder


def noisy(colour, seed, size=(48, 40)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(np.clip(rng.normal(colour, 45, (*size[::-1], 3)), 0, 255).astype("uint8"))


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    data = make_images(tmp_path_factory.mktemp("audit") / "images", per_class=40)
    for i, name in enumerate(WRONG):
        noisy((200, 70, 60), seed=100 + i).save(data / name)
    noisy((60, 200, 60), seed=200).save(data / "cat/green.jpg")  # like neither class
    for i in range(6):  # the same photo twice, the second re-saved at another quality
        Image.open(data / f"cat/cat.{i}.jpg").save(data / f"cat/copy.{i}.jpg", quality=90)
    (data / "dog/cat.0.jpg").write_bytes((data / "cat/cat.0.jpg").read_bytes())  # one picture, two labels
    project = new_project(tmp_path_factory.mktemp("audit") / "project", data, OVERRIDES)
    dvc(project, "repro", "audit")
    return project


def report(project):
    return json.loads((project / "metrics/audit.json").read_text())


def test_planted_wrong_labels_come_first(audited):
    issues = pd.read_csv(audited / "reports/audit/label_issues.csv")
    top = {path.removeprefix("data/clean/images/") for path in issues.path[: len(WRONG)]}
    assert top == set(WRONG)
    assert (issues.suggestion[: len(WRONG)] == "cat").all()
    assert issues.score.is_monotonic_increasing  # the least likely label first
    assert report(audited)["label_issues"] == len(issues)


def test_near_duplicates_across_train_and_test_are_leaks(audited):
    pairs = pd.read_csv(audited / "reports/audit/near_duplicates.csv")
    planted = {frozenset((f"data/clean/images/cat/cat.{i}.jpg", f"data/clean/images/cat/copy.{i}.jpg")) for i in range(6)}
    found = {frozenset(pair) for pair in zip(pairs.path, pairs.duplicate_path)}
    assert found == planted
    manifest = pd.read_csv(audited / "data/split/manifest.csv").set_index("path").split
    leaking = [pair for pair in planted if "train" in {manifest[p] for p in pair} and len({manifest[p] for p in pair}) == 2]
    assert leaking, "the seeded split puts at least one planted pair across train and val/test"
    expected = {split: sum(split in {manifest[p] for p in pair} for pair in leaking) for split in ("val", "test")}
    assert report(audited)["leakage"] == expected
    flagged = pd.read_csv(audited / "reports/audit/flagged.csv")
    test_flagged = flagged[flagged.split == "test"]
    assert report(audited)["test_suspect_share"] == pytest.approx(len(test_flagged) / (manifest == "test").sum(), abs=1e-5)


def test_identical_pictures_under_two_labels_are_a_conflict(audited):
    rejected = pd.read_csv(audited / "data/clean/rejected.csv")
    assert rejected[rejected.reason == "conflict"].path.tolist() == ["data/raw/dog/cat.0.jpg"]
    conflicts = pd.read_csv(audited / "reports/audit/conflicts.csv")
    assert conflicts.to_dict("records") == [{"path": "data/raw/dog/cat.0.jpg", "label": "dog",
                                             "kept": "data/clean/images/cat/cat.0.jpg", "kept_label": "cat"}]
    assert json.loads((audited / "metrics/clean.json").read_text())["excluded"]["conflict"] == 1


def test_the_odd_one_out_is_the_first_outlier(audited):
    outliers = pd.read_csv(audited / "reports/audit/outliers.csv")
    assert outliers.path[0] == "data/clean/images/cat/green.jpg"


def test_galleries_are_drawn(audited):
    for name in ("label_issues", "near_duplicates", "outliers"):
        with Image.open(audited / f"reports/audit/{name}.png") as image:
            assert image.format == "PNG" and image.size[0] > 500


def test_exclude_file_removes_exactly_its_images(audited, tmp_path):
    audited = Path(shutil.copytree(audited, tmp_path / "copy", symlinks=True))  # the module's project stays as audited
    (audited / "data/exclude.csv").write_text("path,reason\n" + "".join(f"data/clean/images/{p},mislabeled\n" for p in WRONG))
    before = pd.read_csv(audited / "data/split/manifest.csv")
    result = dvc(audited, "repro", "split")
    assert "Running stage 'split'" in result.output  # data/exclude.csv is a dependency
    after = pd.read_csv(audited / "data/split/manifest.csv")
    assert set(before.path) - set(after.path) == {f"data/clean/images/{p}" for p in WRONG}
    assert json.loads((audited / "metrics/split.json").read_text())["excluded"] == len(WRONG)

    (audited / "data/exclude.csv").write_text("path,reason\ndata/clean/images/dog/nope.jpg,typo\n")
    failed = stage(audited, "split", check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("error: data/exclude.csv: 1 path(s) are not clean images, e.g. data/clean/images/dog/nope.jpg")


def test_label_issues_leave_the_training_split_only(audited, tmp_path, monkeypatch):
    audited = Path(shutil.copytree(audited, tmp_path / "copy", symlinks=True))
    images = pd.read_csv(audited / "data/split/manifest.csv")
    issues = set(pd.read_csv(audited / "reports/audit/label_issues.csv").path)
    in_train = issues & set(images[images.split == "train"].path)
    assert in_train, "the test needs label issues in the training split"
    (audited / "params.yaml").write_text((audited / "params.yaml").read_text().replace("exclude: none", "exclude: label_issues"))
    result = dvc(audited, "repro", "train")
    assert "Running stage 'train'" in result.output and "Running stage 'split'" not in result.output
    assert json.loads((audited / "metrics/train.json").read_text())["head"]["label_issues_left_out"] == len(in_train)

    # One issue in each split: only the training one leaves.
    picked = images.groupby("split").path.first()
    monkeypatch.chdir(tmp_path)
    Path("reports/audit").mkdir(parents=True)
    pd.DataFrame({"path": picked.values}).to_csv("reports/audit/label_issues.csv", index=False)
    flagged = label_issues_in_train(images, "label_issues")
    assert images.path[flagged].tolist() == [picked["train"]]
    assert not label_issues_in_train(images, "none").any()


def test_near_duplicates_are_found_across_and_within_blocks():
    from classifier.report.audit import near_duplicates

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1100, 64))
    planted = [(5, 6), (3, 1050), (1030, 1090)]  # in the first 1,024-row block, across, in the second
    for i, j in planted:
        x[j] = x[i] + rng.normal(scale=1e-3, size=64)
    table = pd.DataFrame({"path": [f"p{i}" for i in range(1100)], "split": "train", "label": "cat"})
    found = near_duplicates(table, x, threshold=0.99)
    assert sorted(zip(found.path, found.duplicate_path)) == sorted((f"p{i}", f"p{j}") for i, j in planted)
    assert (found.similarity > 0.99).all()
