"""The unlabelled pool's labels (classifier/data/pool.py): every bad row of data/labelled.csv is one line naming it."""

import os

import pytest
from conftest import jpeg

from classifier.data import pool, review
from classifier.errors import UserError

ODD = os.fsdecode(b"caf\xe9.jpg")  # a name that is not UTF-8 (an old camera's), as Python reads it


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
    assert labelled("path,label\na.jpg,\n", folder) == {"a.jpg": pool.NONE}  # none of the classes


@pytest.mark.parametrize("text, message", [
    ("file,label\na.jpg,cat\n", "data/labelled.csv: the columns must be path,label,digest, not file,label"),
    ("path,label\n,cat\n", "data/labelled.csv, line 2: needs a path (an empty label means none of the classes)"),
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
    (raw / "dog").mkdir(parents=True)
    assert pool.copy_labelled(folder, raw, splits=["train"]) == []
    assert (raw / "dog/train/labelled/sub/b.jpg").read_bytes() == b"photo"
    assert (folder / "sub/b.jpg").exists()  # copied, not moved


def test_a_label_that_is_no_class_stops_with_the_row_and_the_classes(folder):
    (folder.parent / "data/labelled.csv").write_text("path,label\na.jpg,cat\nsub/b.jpg,dgo\n")
    raw = folder.parent / "raw"
    for name in ("cat", "dog"):
        (raw / name).mkdir(parents=True)
    with pytest.raises(UserError) as error:
        pool.copy_labelled(folder, raw, splits=[])
    assert str(error.value) == ("data/labelled.csv, line 3: 'dgo' is not a class of the data set (classes: cat, dog): "
                                "correct the label, or remove the line")
    assert not (raw / "dgo").exists()


def test_a_labelled_photo_gone_from_the_pool_is_skipped_and_said(folder, capsys):
    (folder.parent / "data/labelled.csv").write_text("path,label\ngone.jpg,cat\na.jpg,cat\n")
    raw = folder.parent / "raw"
    (raw / "cat").mkdir(parents=True)
    changed = pool.copy_labelled(folder, raw, splits=[])
    assert [(path.name, note) for path, _, note in changed] == [("gone.jpg", "not copied: gone from data.unlabelled_dir")]
    assert "1 labelled photo(s) are gone from data.unlabelled_dir, e.g. gone.jpg" in capsys.readouterr().out
    assert (raw / "cat/labelled/a.jpg").exists() and "gone.jpg" in (folder.parent / "data/labelled.csv").read_text()


def test_a_photo_replaced_since_it_was_labelled_waits_again_and_a_new_label_supersedes(folder, capsys):
    from classifier.data import review

    review.append(review.LABELLED, ["a.jpg", "cat", pool.digest(folder, "a.jpg")])
    review.append(review.LABELLED, ["sub/b.jpg", "dog", pool.digest(folder, "sub/b.jpg")])
    assert pool.read_labelled(folder) == {"a.jpg": "cat", "sub/b.jpg": "dog"}
    (folder / "a.jpg").write_bytes(b"another photo")  # replaced at the same path
    assert pool.read_labelled(folder) == {"sub/b.jpg": "dog"}
    assert "1 photo(s) replaced in data.unlabelled_dir since they were labelled, e.g. a.jpg" in capsys.readouterr().out
    review.append(review.LABELLED, ["a.jpg", "dog", pool.digest(folder, "a.jpg")])  # labelled again, otherwise
    assert pool.read_labelled(folder) == {"a.jpg": "dog", "sub/b.jpg": "dog"}


def test_a_labels_file_without_digests_is_read_and_appended_to(folder):
    from classifier.data import review

    (folder.parent / "data/labelled.csv").write_text("path,label\na.jpg,cat\n")
    review.append(review.LABELLED, ["sub/b.jpg", "dog", pool.digest(folder, "sub/b.jpg")])
    assert (folder.parent / "data/labelled.csv").read_text().splitlines() == [
        "path,label,digest", "a.jpg,cat,", f"sub/b.jpg,dog,{pool.digest(folder, 'sub/b.jpg')}"]
    assert pool.read_labelled(folder) == {"a.jpg": "cat", "sub/b.jpg": "dog"}


def raw_classes(folder, *names):
    raw = folder.parent / "raw"
    for name in names:
        (raw / name).mkdir(parents=True)
    return raw


def test_photos_marked_none_of_the_classes_are_not_trained_on_unless_asked(folder, capsys):
    (folder.parent / "data/labelled.csv").write_text("path,label\na.jpg,\nsub/b.jpg,dog\n")
    raw = raw_classes(folder, "cat", "dog")
    changed = pool.copy_labelled(folder, raw, splits=[])
    assert [(path.name, note) for path, _, note in changed] == [("a.jpg", "not copied: none of the classes")]
    assert "1 pool photo(s) marked none of the classes in data/labelled.csv: not trained on" in capsys.readouterr().out
    assert sorted(str(p.relative_to(raw)) for p in raw.rglob("*.jpg")) == ["dog/labelled/sub/b.jpg"]

    (raw / "dog/labelled/sub/b.jpg").unlink()  # download starts from a new data/raw
    (raw / pool.NONE_CLASS).mkdir()  # the user asks for a class of outside photos
    assert pool.copy_labelled(folder, raw, splits=[]) == []
    assert (raw / "unknown/labelled/a.jpg").read_bytes() == b"photo"


def queued(folder, *rows):
    (folder.parent / "reports").mkdir(exist_ok=True)
    (folder.parent / "reports/label_next.csv").write_text(
        "rank,path,queue,suggested,reason\n" + "".join(f"{i},{path},{queue},cat,why\n" for i, (path, queue) in enumerate(rows)))


def test_a_pool_photo_whose_name_is_not_utf8_is_labelled_trained_on_and_shown(folder):
    (folder / ODD).write_bytes(jpeg())
    printed = "caf%E9.jpg"  # how label_next's queue and data/labelled.csv name it
    assert pool.located(folder, printed) == ODD and pool.located(folder, "a.jpg") == "a.jpg"
    queued(folder, (printed, "next"))
    review.label_photo(folder, printed, "cat", ["cat", "dog"])  # was: "not a photo waiting"
    assert pool.read_labelled(folder) == {printed: "cat"}
    raw = raw_classes(folder, "cat", "dog")
    assert pool.copy_labelled(folder, raw, splits=[]) == []
    assert (raw / "cat/labelled" / printed).read_bytes() == jpeg()
    (folder / ODD).write_bytes(jpeg(color=(0, 0, 0)))  # replaced since: it waits again
    assert pool.read_labelled(folder) == {}


def test_the_label_view_shows_a_flagged_photo_without_a_guess_and_records_none_of_these(folder, monkeypatch):
    from classifier.cli import app

    (folder / ODD).write_bytes(jpeg())
    queued(folder, ("caf%E9.jpg", "unknown"), ("a.jpg", "next"))
    monkeypatch.setattr(app, "pool_root", lambda: folder)
    _, path, _, image, guess = app.show_next(["cat", "dog"], [])
    assert path == "caf%E9.jpg" and image.shape == (64, 64, 3)  # the picture of a name that is not UTF-8
    assert guess["value"] is None  # flagged unknown: no class preselected
    assert app.show_next(["cat", "dog"], ["caf%E9.jpg"])[4]["value"] == "cat"  # the next queue: the suggestion
    shown = app.save_label(["cat", "dog"], path, pool.NONE, [])
    assert "Saved: caf%E9.jpg is none of the classes." in shown[0] and shown[1] == "a.jpg"
    assert pool.read_labelled(folder) == {"caf%E9.jpg": pool.NONE}


def test_a_label_that_is_no_class_of_the_model_is_refused_by_the_label_file_writer(folder):
    queued(folder, ("a.jpg", "next"))
    with pytest.raises(UserError, match="'zebra' is not a class \\(classes: cat, dog\\)"):
        review.label_photo(folder, "a.jpg", "zebra", ["cat", "dog"])
    assert not (folder.parent / "data/labelled.csv").exists()
