"""`download` + `clean` through DVC on a folder full of bad files."""

import base64
import json
import re

import pandas as pd
import pytest
from PIL import Image

from conftest import HOSTILE, dvc, make_hostile, make_images, new_project, tensorflow_refuses_jpeg

EXPECTED_REJECTS = {
    "cat/empty.jpg": "empty",
    "cat/notes.jpg": "not_image",
    "cat/truncated.jpg": "corrupt",
    "cat/tiny.png": "too_small",
    "cat/tensorflow_refuses.jpg": "corrupt",  # Pillow reads it: only the recheck with TensorFlow's decoder finds it
    "dog/Thumbs.db": "system_file",
    "dog/.DS_Store": "system_file",
    "dog/huge.png": "too_large",
    "dog/dog.0.jpg": "duplicate",  # same pixels as dog/copy.jpg, which sorts first
    "dog/a.png.jpg": "name_clash",  # its clean name is a.png's
    # From the hostile-input review (conftest.make_hostile):
    **{f"dog/{name}": why for name, why in HOSTILE.items() if why and name != "loop.jpg"},
}


def make_bad_folder(root):
    make_images(root, per_class=6)
    cat, dog = root / "cat", root / "dog"
    (cat / "empty.jpg").write_bytes(b"")
    (cat / "notes.jpg").write_text("this is not a picture")
    whole = (cat / "cat.1.jpg").read_bytes()
    (cat / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    Image.new("RGB", (10, 10)).save(cat / "tiny.png")
    (cat / "tensorflow_refuses.jpg").write_bytes(tensorflow_refuses_jpeg())
    Image.new("RGB", (64, 48), (10, 200, 10)).save(cat / "webp_named.dat", "WEBP")
    (dog / "Thumbs.db").write_bytes(b"\x00" * 64)
    (dog / ".DS_Store").write_bytes(b"\x00" * 64)
    Image.new("RGB", (1200, 1000)).save(dog / "huge.png")
    (dog / "copy.jpg").write_bytes((dog / "dog.0.jpg").read_bytes())
    Image.new("L", (50, 40), 128).save(dog / "gray.png")
    Image.new("CMYK", (50, 40), (0, 100, 200, 0)).save(dog / "cmyk.jpg")
    Image.new("P", (50, 40), 3).save(dog / "palette.gif")
    Image.new("RGBA", (50, 40), (255, 0, 0, 0)).save(dog / "transparent.png")
    Image.new("RGB", (50, 40), (0, 0, 250)).save(dog / "bitmap.bmp")
    frames = [Image.new("RGB", (50, 40), color) for color in ((250, 0, 0), (0, 0, 250))]
    frames[0].save(dog / "animated.bin", "GIF", save_all=True, append_images=frames[1:])
    rotated = Image.new("RGB", (60, 40), (200, 0, 0))
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    rotated.save(dog / "rotated.jpg", exif=exif)
    make_hostile(dog)


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    data = tmp_path_factory.mktemp("bad")
    make_bad_folder(data)
    project = new_project(tmp_path_factory.mktemp("clean"), data, {"clean": {"max_pixels": 1_000_000}})
    dvc(project, "repro", "clean")
    return project


def test_report_accounts_for_every_file(cleaned):
    report = json.loads((cleaned / "metrics/clean.json").read_text())
    assert report["total"] == 12 + 9 + 8 + len(HOSTILE) - 1  # generated, bad, good but unusual, hostile but the loop
    assert report["total"] == report["kept"] + sum(report["excluded"].values())
    assert report["kept"] == report["total"] - len(EXPECTED_REJECTS)
    kept = [p for p in (cleaned / "data/clean/images").rglob("*") if p.is_file()]
    assert len(kept) == report["kept"]  # against the files on disk
    assert report["excluded"]["system_file"] == 2
    assert report["excluded"]["duplicate"] == 1


def test_rejected_csv_has_one_row_per_excluded_file(cleaned):
    rejected = pd.read_csv(cleaned / "data/clean/rejected.csv")
    assert list(rejected.columns) == ["path", "reason", "detail"]
    rows = {path.removeprefix("data/raw/"): reason for path, reason in zip(rejected.path, rejected.reason)}
    assert rows == EXPECTED_REJECTS
    duplicate = rejected[rejected.reason == "duplicate"].detail.item()
    assert duplicate == "same pixels as data/raw/dog/copy.jpg"


def test_kept_images_are_rgb_jpegs(cleaned):
    images = cleaned / "data/clean/images"
    kept = sorted(p for p in images.rglob("*") if p.is_file())
    assert len(kept) == 20 + sum(why is None for why in HOSTILE.values()) - 1  # a.png.jpg's name is taken
    for path in kept:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB", path
    assert (images / "cat/webp_named.dat.jpg").exists()
    with Image.open(images / "dog/rotated.jpg") as image:
        assert image.size == (40, 60)  # EXIF orientation applied
    with Image.open(images / "dog/transparent.png.jpg") as image:
        assert image.getpixel((5, 5)) >= (250, 250, 250)  # transparent -> white
    with Image.open(images / "dog/animated.bin.jpg") as image:
        red, _, blue = image.getpixel((25, 20))
        assert red > 200 and blue < 50  # the first frame
    assert (images / "dog/bitmap.bmp.jpg").exists()


def test_pillow_reads_the_file_that_tensorflow_refuses(cleaned):
    with Image.open(cleaned / "data/raw/cat/tensorflow_refuses.jpg") as image:
        image.load()  # no error: clean's first check passes it
    rejected = pd.read_csv(cleaned / "data/clean/rejected.csv").set_index("path")
    assert rejected.detail["data/raw/cat/tensorflow_refuses.jpg"].startswith("rejected by the TensorFlow JPEG decoder")


def test_plain_rgb_jpegs_keep_their_bytes(cleaned):
    source = cleaned / "data/raw/cat/cat.2.jpg"
    assert (cleaned / "data/clean/images/cat/cat.2.jpg").read_bytes() == source.read_bytes()


def test_names_that_are_not_utf8_go_through_and_are_listed(cleaned):
    """DVC, CSV and TensorFlow cannot take such a name: the photo is renamed, never dropped."""
    assert (cleaned / "data/clean/images/dog/caf%E9.jpg").is_file()
    renamed = pd.read_csv(cleaned / "data/renamed.csv")
    by_note = {note.split(":")[0]: row for note, (_, row) in zip(renamed.note, renamed.iterrows())}
    assert by_note["renamed"].path == "data/raw/dog/caf%E9.jpg"
    assert base64.b64decode(by_note["renamed"].original_base64).endswith(b"/dog/caf\xe9.jpg")
    assert by_note["not copied"].original.endswith("/dog/loop.jpg")  # a symlink to itself


def test_deep_and_padded_images_are_kept_right(cleaned):
    images = cleaned / "data/clean/images/dog"
    with Image.open(images / "grey16.png.jpg") as grey:
        assert abs(grey.getpixel((5, 5))[0] - 78) <= 1  # 20000 / 257, not clipped to 255
    assert (images / "trailing.jpg").stat().st_size < 20_000  # the 2 MB of trailing bytes dropped


def test_a_new_photo_in_the_folder_reruns_download_and_nothing_else_does(tmp_path):
    data = make_images(tmp_path / "photos", per_class=4)
    project = new_project(tmp_path / "project", data)
    dvc(project, "repro", "clean")
    again = dvc(project, "repro", "clean")
    assert ran(again.output) == ["scan"]  # the folder's summary: the same, so download is skipped
    (data / "cat/cat.0.jpg").rename(data / "cat/new.jpg")
    (data / "cat/cat.0.jpg").write_bytes((data / "dog/dog.0.jpg").read_bytes())
    assert ran(dvc(project, "repro", "clean").output) == ["scan", "download", "clean"]
    assert (project / "data/raw/cat/new.jpg").exists()
    assert json.loads((project / "metrics/clean.json").read_text())["total"] == 9
    (data / "cat/cat.1.jpg").write_bytes((data / "dog/dog.1.jpg").read_bytes())  # the same names, an edited photo
    assert ran(dvc(project, "repro", "clean").output) == ["scan", "download", "clean"]


def ran(output):
    return re.findall(r"Running stage '(\w+)'", output)


def test_tensorflow_errors_other_than_bad_data_stop_clean(tmp_path, monkeypatch):
    import tensorflow as tf

    from classifier.data import cleaning, inputs
    from classifier.errors import UserError

    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    Image.new("RGB", (20, 20)).save(good)
    bad.write_bytes(good.read_bytes()[:200] + b"\0" * 50)
    assert set(cleaning.undecodable([str(good), str(bad)])) == {str(bad)}

    def out_of_memory(data, size):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")

    monkeypatch.setattr(inputs, "decode", out_of_memory)
    with pytest.raises(UserError, match="TensorFlow could not read .*good.jpg \\(OOM when allocating\\)"):
        cleaning.undecodable([str(good)])
