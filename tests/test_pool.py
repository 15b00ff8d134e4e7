"""The unlabelled pool's labels (classifier/data/pool.py): every bad row of data/labelled.csv is one line naming it."""

import pytest

from classifier.data import pool
from classifier.errors import UserError


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "pool/sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.jpg"):
        (tmp_path / "pool" / name).write_bytes(b"photo")
    (tmp_path / "outside.jpg").write_bytes(b"photo")
    (tmp_path / "pool/link.jpg").symlink_to(tmp_path / "outside.jpg")
    return tmp_path / "pool"


def labelled(text, root):
    (root.parent / "data/labelled.csv").write_text(text)
    return pool.read_labelled(root)


def test_labelled_rows_are_read(folder):
    assert labelled("path,label\na.jpg,cat\nsub/b.jpg,dog\na.jpg,cat\n", folder) == {"a.jpg": "cat", "sub/b.jpg": "dog"}
    assert labelled("path,label\n", folder) == {}


@pytest.mark.parametrize("text, message", [
    ("file,label\na.jpg,cat\n", "data/labelled.csv: the columns must be path,label, not file,label"),
    ("path,label\na.jpg,\n", "data/labelled.csv, line 2: needs both a path and a label"),
    ("path,label\na.jpg,cat\nmissing.jpg,cat\n", "line 3: missing.jpg is not a file in data.unlabelled_dir"),
    ("path,label\n../outside.jpg,cat\n", "line 2: ../outside.jpg is not a file in data.unlabelled_dir"),
    ("path,label\nlink.jpg,cat\n", "line 2: link.jpg is not a file in data.unlabelled_dir"),
    ("path,label\na.jpg,cat\na.jpg,dog\n", "line 3: a.jpg is labelled both cat and dog: keep one line"),
    ("path,label\na.jpg,../cat\n", "line 2: '../cat' cannot be a class name"),
])
def test_a_bad_row_stops_with_one_line_naming_it(folder, text, message):
    with pytest.raises(UserError) as error:
        labelled(text, folder)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_labels_without_a_pool_are_refused(folder):
    (folder.parent / "data/labelled.csv").write_text("path,label\na.jpg,cat\n")
    with pytest.raises(UserError, match="lists 1 photo.* but data.unlabelled_dir is null"):
        pool.read_labelled(None)


def test_labelled_photos_are_copied_into_their_class(folder):
    (folder.parent / "data/labelled.csv").write_text("path,label\nsub/b.jpg,dog\n")
    raw = folder.parent / "raw"
    assert pool.copy_labelled(folder, raw, splits=["train"]) == []
    assert (raw / "dog/train/labelled/sub/b.jpg").read_bytes() == b"photo"
    assert (folder / "sub/b.jpg").exists()  # copied, not moved
