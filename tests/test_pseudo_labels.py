"""Pseudo-labels (classifier/training/pseudo_labels.py): confident, never flagged, class-balanced."""

import sys

import numpy as np
import pandas as pd
from conftest import make_images, new_project, sh, stages_run

from classifier.training.pseudo_labels import CONFIDENCE, confident


def test_only_confident_unflagged_photos_most_confident_first_at_most_the_cap_per_class():
    probabilities = np.array([
        [0.99, 0.01], [0.97, 0.03], [0.96, 0.04], [0.98, 0.02],  # four sure of class 0
        [0.02, 0.98],  # one sure of class 1
        [0.60, 0.40], [CONFIDENCE - 1e-6, 1 - CONFIDENCE + 1e-6],  # not sure enough
        [0.999, 0.001],  # the surest of all, but flagged by the unknown check
    ])
    flagged = np.zeros(len(probabilities), bool)
    flagged[7] = True
    picks, classes = confident(probabilities, labelled_per_class=2, flagged=flagged)
    assert list(picks) == [0, 3, 4] and list(classes) == [0, 0, 1]  # class 0 capped at 2, its surest two
    picks, _ = confident(probabilities, labelled_per_class=10)
    assert 7 in picks and 5 not in picks and 6 not in picks  # unflagged, it would count


def test_a_common_class_does_not_swallow_the_pool():
    rng = np.random.default_rng(0)
    guesses = np.r_[np.zeros(900, int), np.ones(60, int), np.full(40, 2)]  # class 0 is nine tenths of the pool
    probabilities = np.full((1000, 3), 0.01)
    probabilities[np.arange(1000), guesses] = rng.uniform(0.96, 0.98, 1000)
    _, classes = confident(probabilities, labelled_per_class=30)
    assert np.bincount(classes, minlength=3).tolist() == [30, 30, 30]


def test_the_unknown_check_flags_a_pool_photo_unlike_every_training_photo():
    from types import SimpleNamespace

    from classifier.training.pseudo_labels import flagged

    rng = np.random.default_rng(0)
    centres = np.eye(8)[:2] * 5
    x_train, x_val = (np.repeat(centres, n, axis=0) + rng.normal(0, 0.3, (2 * n, 8)) for n in (40, 10))
    x_pool = np.r_[centres + rng.normal(0, 0.3, (2, 8)), [np.eye(8)[5] * 5]]  # two like the classes, one like none
    p = SimpleNamespace(train=SimpleNamespace(seed=0), unknown=SimpleNamespace(k=1, pass_share=0.95))
    assert flagged(x_train, x_val, x_pool, p).tolist() == [False, False, True]


def test_train_learns_from_confident_pool_photos_never_flagged_never_in_val_or_test(tmp_path, monkeypatch):
    import json

    from stages import train

    images = make_images(tmp_path / "photos", per_class=12)
    pool = tmp_path / "pool"
    pool.mkdir()
    for i, name in enumerate(("cat", "dog", "frog")):  # frog: no class of the data set
        for photo in (make_images(tmp_path / f"more{i}", per_class=6, classes=(name,), seed=20 + i) / name).iterdir():
            photo.rename(pool / photo.name)
    project = stages_run(tmp_path / "project", images, {"data": {"unlabelled_dir": str(pool)},
                                                        "train": {"pseudo_labels": "confident"}}, until="train")
    waiting = pd.read_csv(project / "data/pool_features/paths.csv")
    assert len(waiting) == 18 and len(np.load(project / "data/pool_features/x.npy")) == 18
    learnt = pd.read_csv(project / "reports/pseudo_labels.csv")
    manifest = pd.read_csv(project / "data/split/manifest.csv")
    per_class = len(manifest.query("split == 'train'")) / 2
    assert (learnt.label == learnt.path.str.split(".").str[0]).all()  # the colour's class, never frog's photos
    assert learnt.label.value_counts().max() <= per_class and learnt.label.nunique() == 2  # balanced
    assert (learnt.confidence >= 0.95).all()
    report = json.loads((project / "metrics/train.json").read_text())["head"]
    assert report["pseudo_labels"]["photos"] == len(learnt) and report["pseudo_labels"]["of_pool"] == 18
    assert report["train_images"] == 2 * per_class + len(learnt)  # the head learnt from them
    assert not manifest.path.str.contains("pool").any()  # never in a split: val and test are people's labels
    for split in ("val", "test"):
        assert len(np.load(project / f"data/features/{split}_y.npy")) == (manifest.split == split).sum()

    surest = learnt.sort_values("confidence").path.iloc[-1]
    waiting.loc[waiting.path == surest, "unknown"] = True  # as if the unknown check flagged it
    waiting.to_csv(project / "data/pool_features/paths.csv", index=False)
    monkeypatch.chdir(project)
    train.main()
    again = pd.read_csv(project / "reports/pseudo_labels.csv")
    assert surest not in set(again.path) and len(again) >= len(learnt) - 1


def test_without_pseudo_labels_the_stage_writes_empty_outputs_without_tensorflow(tmp_path):
    """Every `dvc repro` runs it: without pseudo-labels it must not pay TensorFlow's start-up."""
    (tmp_path / "photos").mkdir()
    project = new_project(tmp_path / "project", tmp_path / "photos")
    check = ("import runpy, sys; runpy.run_module('stages.pool_features', run_name='__main__'); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'sklearn'}))")
    assert sh(project, sys.executable, "-c", check).stdout.strip().splitlines()[-1] == "[]"
    assert np.load(project / "data/pool_features/x.npy").size == 0
    assert pd.read_csv(project / "data/pool_features/paths.csv").empty
