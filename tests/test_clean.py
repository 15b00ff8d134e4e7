"""`download` + `clean` through DVC on a folder full of bad files."""

import json

import pandas as pd
import pytest
from PIL import Image

from conftest import dvc, make_images, new_project

EXPECTED_REJECTS = {
    "cat/empty.jpg": "empty",
    "cat/notes.jpg": "not_image",
    "cat/truncated.jpg": "corrupt",
    "cat/tiny.png": "too_small",
    "dog/Thumbs.db": "system_file",
    "dog/.DS_Store": "system_file",
    "dog/huge.png": "too_large",
    "dog/dog.0.jpg": "duplicate",  # same pixels as dog/copy.jpg, which sorts first
}


def make_bad_folder(root):
    make_images(root, per_class=6)
    cat, dog = root / "cat", root / "dog"
    (cat / "empty.jpg").write_bytes(b"")
    (cat / "notes.jpg").write_text("this is not a picture")
    whole = (cat / "cat.1.jpg").read_bytes()
    (cat / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    Image.new("RGB", (10, 10)).save(cat / "tiny.png")
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


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    data = tmp_path_factory.mktemp("bad")
    make_bad_folder(data)
    project = new_project(tmp_path_factory.mktemp("clean"), data, {"clean": {"max_pixels": 1_000_000}})
    dvc(project, "repro", "clean")
    return project


def test_report_accounts_for_every_file(cleaned):
    report = json.loads((cleaned / "metrics/clean.json").read_text())
    assert report["total"] == 12 + 8 + 8  # generated, bad, good but unusual
    assert report["total"] == report["kept"] + sum(report["excluded"].values())
    assert report["kept"] == 28 - len(EXPECTED_REJECTS)
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
    assert len(kept) == 20
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


def test_plain_rgb_jpegs_keep_their_bytes(cleaned):
    source = cleaned / "data/raw/cat/cat.2.jpg"
    assert (cleaned / "data/clean/images/cat/cat.2.jpg").read_bytes() == source.read_bytes()
