"""The review's decisions (classifier/data/review.py): lines added atomically, never
dropped, only for clean images; decided cards leave the queue."""

import os
import shutil

import pandas as pd
import pytest
from conftest import ROOT

from classifier.data import review
from classifier.errors import UserError
from classifier.paths import AUDIT, EXCLUDE, RELABEL, REVIEWED


@pytest.fixture
def project(tmp_path, monkeypatch):
    for label in ("cat", "dog"):
        folder = tmp_path / "data/clean/images" / label
        folder.mkdir(parents=True)
        for i in range(3):
            (folder / f"{label}{i}.jpg").write_bytes(b"jpeg")
    (tmp_path / "data/exclude.csv").write_text("path,reason\ndata/clean/images/cat/cat2.jpg,blurred\n")
    (tmp_path / AUDIT).mkdir(parents=True)
    (tmp_path / AUDIT / "label_issues.csv").write_text(
        "path,split,label,suggestion,score\n"
        "data/clean/images/cat/cat0.jpg,train,cat,dog,0.01\n"
        "data/clean/images/dog/dog0.jpg,val,dog,cat,0.02\n")
    (tmp_path / AUDIT / "outliers.csv").write_text("path,split,label,score\ndata/clean/images/dog/dog1.jpg,test,dog,0.3\n")
    shutil.copy(ROOT / "params.yaml", tmp_path)  # one class per photo
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_decisions_are_added_to_the_files_and_cards_leave_the_queue(project):
    waiting, total = review.queue()
    assert total == 3 and [card["finding"] for card in waiting] == ["label_issue", "label_issue", "outlier"]
    assert waiting[0]["suggestion"] == "dog"

    review.exclude("data/clean/images/cat/cat0.jpg", "label_issue", "label_issue (reviewed)")
    review.relabel("data/clean/images/dog/dog0.jpg", "label_issue", "cat")
    review.keep("data/clean/images/dog/dog1.jpg", "outlier")
    assert review.read(EXCLUDE).path.tolist() == ["data/clean/images/cat/cat2.jpg", "data/clean/images/cat/cat0.jpg"]
    assert review.read(RELABEL).to_dict("records") == [{"path": "data/clean/images/dog/dog0.jpg", "label": "cat"}]
    assert review.read(REVIEWED).decision.tolist() == ["exclude", "relabel", "keep"]
    assert review.queue() == ([], 3)

    review.exclude("data/clean/images/cat/cat0.jpg", "outlier", "again")  # listed once, reviewed twice
    assert review.read(EXCLUDE).path.tolist().count("data/clean/images/cat/cat0.jpg") == 1


@pytest.mark.parametrize("path", ["data/clean/images/cat/none.jpg", "data/clean/images/../../params.yaml",
                                  "/etc/hostname", "data/clean/images/cat"])
def test_only_clean_images_are_written(project, path):
    (project / "params.yaml").write_text("x")
    with pytest.raises(UserError, match="is not a clean image"):
        review.exclude(path, "outlier", "x")
    with pytest.raises(UserError, match="is not a clean image"):
        review.keep(path, "outlier")
    assert not RELABEL.exists() and not REVIEWED.exists()


def test_relabel_to_a_class_that_does_not_exist_is_refused(project):
    with pytest.raises(UserError, match="'owl' is not a class"):
        review.relabel("data/clean/images/cat/cat0.jpg", "label_issue", "owl")


def test_a_crash_while_writing_leaves_the_file_as_it_was(project, monkeypatch):
    before = EXCLUDE.read_text()

    def crash(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        review.exclude("data/clean/images/cat/cat1.jpg", "outlier", "x")
    assert EXCLUDE.read_text() == before
    assert [name for name in os.listdir(EXCLUDE.parent) if name.startswith(".exclude")] == []


def test_a_file_without_its_last_newline_keeps_its_last_line(project):
    EXCLUDE.write_text("path,reason\ndata/clean/images/cat/cat2.jpg,blurred")
    review.exclude("data/clean/images/cat/cat1.jpg", "outlier", "x")
    assert pd.read_csv(EXCLUDE).path.tolist() == ["data/clean/images/cat/cat2.jpg", "data/clean/images/cat/cat1.jpg"]
