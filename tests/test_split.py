"""`split`: folders that come split, near-identical shots kept on one side, too few photos."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.model_selection import train_test_split

from classifier.data.folders import given_splits
from classifier.data.splitting import MIN_PER_CLASS, check_counts, near_duplicates
from classifier.errors import UserError
from conftest import in_process, make_images, stages_run


def test_a_folder_that_comes_split_keeps_its_split(tmp_path):
    """Train/ and Validation/ (any case) are kept; the missing test split is carved from train only."""
    make_images(tmp_path / "photos/Train", per_class=14)
    make_images(tmp_path / "photos/Validation", per_class=5, seed=1)
    project = stages_run(tmp_path / "project", tmp_path / "photos", until="split")

    assert json.loads((project / "data/given_splits.json").read_text()) == {"splits": ["train", "val"]}
    assert len(list((project / "data/raw/cat/val").iterdir())) == 5
    manifest = pd.read_csv(project / "data/split/manifest.csv")
    came_in = manifest.path.str.split("/").str[4]  # data/clean/images/<class>/<split>/...
    assert (came_in[manifest.split == "val"] == "val").all() and (manifest.split == "val").sum() == 10
    assert (came_in[manifest.split != "val"] == "train").all()
    assert sorted(manifest[manifest.split == "test"].label.value_counts()) == [3, 4]  # 25% of 28, stratified
    report = json.loads((project / "metrics/split.json").read_text())
    assert report["origin"] == {"train": "given", "val": "given", "test": "carved from train"}
    assert (report["train"], report["val"], report["test"]) == (21, 10, 7)


def split_folders(root, *names):
    for name in names:
        (root / name / "cat").mkdir(parents=True)
        (root / name / "cat/a.jpg").write_bytes(b"x")
    return root


@pytest.mark.parametrize(
    "folders, message",
    [
        (("train", "dog"), "mixes split folders (train/) with class folders (dog/)"),
        (("val", "test"), "but no train/ folder to train on"),
        (("train", "val", "Valid"), "are both the val split; keep one"),
    ],
)
def test_a_folder_half_split_stops_with_one_line(tmp_path, folders, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        given_splits(split_folders(tmp_path, *folders))


def test_a_class_missing_from_train_stops(tmp_path):
    root = split_folders(tmp_path, "train", "test")
    (root / "test/owl").mkdir()
    with pytest.raises(UserError, match="class 'owl' is in .*test but not in the train folder"):
        given_splits(root)


def test_class_folders_are_no_split(tmp_path):
    assert given_splits(split_folders(tmp_path, "cat", "training")) == {}  # "training" is a class name here


def test_too_few_photos_in_a_class_stops():
    images = pd.DataFrame({"label": ["cat"] * MIN_PER_CLASS + ["owl"] * (MIN_PER_CLASS - 1)})
    with pytest.raises(UserError, match=f"class 'owl' has {MIN_PER_CLASS - 1} clean image.*at least {MIN_PER_CLASS}"):
        check_counts(images, "single_label")
    check_counts(pd.DataFrame({"label": ["cat", "owl"] * MIN_PER_CLASS}), "single_label")


def test_near_duplicates_group_through_chains():
    hashes = ["0000000000000000", "000000000000003f", "0000000000000fff", "ffffffffffffffff", "0f0f0f0f0f0f0f0f"]
    # 6 bits from the first, 6 from that one (12 from the first): one group through the middle.
    assert near_duplicates(hashes).tolist() == [0, 0, 0, 1, 2]


def resaved(path, scale, quality):
    with Image.open(path) as image:
        buffer = io.BytesIO()
        image.resize((image.width * scale // 10, image.height * scale // 10)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def old_split(images, val, test, seed):
    """The split before split.group: what split.group: none must still give."""
    train, rest = train_test_split(images, test_size=val + test, stratify=images.label, random_state=seed)
    val_part, test_part = train_test_split(rest, test_size=test / (val + test), stratify=rest.label, random_state=seed)
    parts = {"train": train, "val": val_part, "test": test_part}
    return pd.concat([part.sort_values("path").assign(split=name) for name, part in parts.items()], ignore_index=True)


def by_burst(manifest):
    burst = manifest.path.str.extract(r"cat\.([0-7])\.(?:copy\d+\.)?jpg$")[0]
    return manifest[burst.notna()].groupby(burst.dropna())


def test_near_identical_shots_stay_in_one_split(tmp_path):
    photos = make_images(tmp_path / "photos", per_class=24)
    for i in range(8):  # eight bursts: each cat photo re-saved twice, more compressed, smaller
        for scale, quality in ((10, 60), (9, 90)):
            (photos / f"cat/cat.{i}.copy{scale}.jpg").write_bytes(resaved(photos / f"cat/cat.{i}.jpg", scale, quality))
    project = stages_run(tmp_path / "project", photos, until="split")
    manifest = pd.read_csv(project / "data/split/manifest.csv")
    bursts = by_burst(manifest)
    assert len(bursts) == 8 and (bursts.size() == 3).all()
    assert (bursts.split.nunique() == 1).all() and (bursts.group.nunique() == 1).all()
    report = json.loads((project / "metrics/split.json").read_text())
    assert (report["near_duplicate_groups"], report["images_in_near_duplicate_groups"]) == (8, 24)
    assert report["groups_across_splits"] == 0

    (project / "params.yaml").write_text((project / "params.yaml").read_text().replace("group: duplicates", "group: none"))
    in_process(project, "stages.split")
    drawn = pd.read_csv(project / "data/split/manifest.csv")
    listed = drawn[["path", "label"]].sort_values("path", ignore_index=True)  # as split lists the clean images
    expected = old_split(listed, 0.25, 0.25, 42)
    assert drawn[["path", "label", "split"]].equals(expected[["path", "label", "split"]])
    assert (by_burst(drawn).split.nunique() > 1).any()  # drawn one by one, some bursts do straddle
    assert np.array_equal(np.sort(drawn.group), np.arange(len(drawn)))


def test_relabelled_photos_move_class_and_bad_lines_stop(tmp_path):
    make_images(tmp_path / "photos", per_class=12)
    project = stages_run(tmp_path / "project", tmp_path / "photos", until="split")
    before = pd.read_csv(project / "data/split/manifest.csv")
    moved = before[before.label == "cat"].path.iloc[0]
    excluded = before.path.iloc[-1]
    (project / "data/relabel.csv").write_text(f"path,label\n{moved},dog\n{excluded},cat\n")
    (project / "data/exclude.csv").write_text(f"path,reason\n{excluded},blurred\n")
    result = in_process(project, "stages.split")
    assert "1 excluded (data/exclude.csv), 1 relabelled (data/relabel.csv)" in result.output
    after = pd.read_csv(project / "data/split/manifest.csv")
    assert after.set_index("path").label[moved] == "dog" and excluded not in set(after.path)
    assert (after.label == "dog").sum() == (before.label == "dog").sum()  # one moved in, one excluded
    assert json.loads((project / "metrics/split.json").read_text())["relabelled"] == 1

    (project / "data/relabel.csv").write_text(f"path,label\n{moved},owl\n")
    result = in_process(project, "stages.split", check=False)
    assert result.returncode != 0 and "data/relabel.csv: 'owl' is not a class (classes: cat, dog)" in result.stderr
