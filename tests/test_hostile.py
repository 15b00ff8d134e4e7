"""Hostile input, one file at a time: each is that file's error, never the run's.

The whole folder at once goes through `clean` in test_clean.py and through
`predict` in test_pipeline.py.
"""

import base64
import io
import json
import os
import sys
import warnings
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageOps

from classifier.cli import predict
from classifier.data import fetch, folders, images, walk
from classifier.data.images import BadImage, normalize
from classifier.errors import UserError
from classifier.paths import printable
from classifier.training import backup
from conftest import ROOT, bad_exif_jpeg, ico_holding, jpeg, make_hostile, sh


def reason(path, **limits):
    with pytest.raises(BadImage) as bad:
        normalize(path, **limits)
    return bad.value.reason


def decoded(data):
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def test_malformed_exif_is_that_images_corrupt(tmp_path):
    data = bad_exif_jpeg()
    with pytest.raises(TypeError):  # what stopped `clean` and `predict` before
        ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    (tmp_path / "x.jpg").write_bytes(data)
    assert reason(tmp_path / "x.jpg") == "corrupt"


def test_a_nested_image_is_checked_before_it_is_decoded(tmp_path):
    (tmp_path / "bomb.ico").write_bytes(ico_holding((2000, 2000)))
    with pytest.raises(BadImage) as bad:
        normalize(tmp_path / "bomb.ico", max_pixels=1_000_000)
    # Refused by the header check in `open`, not after decoding (the ICO's header says 256 x 256).
    assert str(bad.value) == "too_large: an image in the file has more than 1000000 pixels"
    assert normalize(tmp_path / "bomb.ico", max_pixels=4_000_000)[0]  # under the limit: decoded


def test_the_pixel_limit_is_not_left_behind_for_other_code(tmp_path):
    (tmp_path / "x.jpg").write_bytes(jpeg((60, 40)))
    assert reason(tmp_path / "x.jpg", max_pixels=100) == "too_large"
    with Image.open(tmp_path / "x.jpg") as image:  # figures and galleries open images too
        assert image.size == (60, 40)


def test_bytes_read_are_bounded_and_trailing_data_dropped(tmp_path):
    with open(tmp_path / "padded.jpg", "wb") as f:
        f.write(jpeg())
        f.truncate(50_000_000)
    assert reason(tmp_path / "padded.jpg", max_bytes=10_000_000) == "too_large"
    (tmp_path / "trailing.jpg").write_bytes(jpeg() + os.urandom(2_000_000))
    data, _ = normalize(tmp_path / "trailing.jpg")
    assert len(data) < 20_000  # re-encoded: the 2 MB of trailing bytes are gone
    assert np.abs(decoded(data) - decoded(jpeg())).max() <= 3


@pytest.mark.parametrize("array, expected", [
    (np.full((40, 40), 20000, "uint16"), round(20000 / 257)),  # 16-bit: Pillow's convert made it 255
    (np.full((40, 40), 0.5, "float32"), round(0.5 * 255)),
    (np.full((40, 40), 30000, "int32"), round(30000 / 257)),
])
def test_deep_images_are_scaled_by_their_range_not_clipped(tmp_path, array, expected):
    Image.fromarray(array).save(tmp_path / "deep.tif")
    pixels = decoded(normalize(tmp_path / "deep.tif")[0])
    assert np.abs(pixels - expected).max() <= 1


@pytest.mark.parametrize("array", [np.full((40, 40), 7.5, "float32"), np.full((40, 40), 70000, "int32")])
def test_deep_images_of_unknown_range_are_refused(tmp_path, array):
    Image.fromarray(array).save(tmp_path / "deep.tif")
    assert reason(tmp_path / "deep.tif") == "unsupported"


def test_permission_denied_is_unreadable_not_corrupt(tmp_path, monkeypatch):
    (tmp_path / "x.jpg").write_bytes(jpeg())

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(images, "open", denied, raising=False)  # tests run as root: chmod would not do
    assert reason(tmp_path / "x.jpg") == "unreadable"


def test_every_file_of_the_hostile_folder_is_its_own_result(tmp_path):
    expected = make_hostile(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        try:
            normalize(path)
            got = None
        except BadImage as bad:
            got = bad.reason
        except OSError:
            got = "broken_link"  # predict's walk says so; download does not copy it
        assert got == expected[printable(path.name)], path


def test_predict_refuses_max_pixels_zero(tmp_path):
    result = sh(tmp_path, sys.executable, "-m", "classifier.cli.predict", "--max-pixels", "0", "x.jpg", check=False,
                env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "--max-pixels: must be a positive integer, not 0" in result.stderr


def test_predict_walk_reports_loops_links_and_unreadable_folders(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/x.jpg").write_bytes(jpeg())
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    (tmp_path / "closed").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("closed"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = {path.name: problem and problem.reason for path, problem in walk.walk(tmp_path)}
    assert found == {"closed": "unreadable", "loop.jpg": "broken_link", "x.jpg": None}


def test_glob_does_not_follow_linked_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/x.jpg").write_bytes(jpeg())
    for name in ("a", "b"):  # with ** followed: 2^40 paths
        (tmp_path / "sub" / name).symlink_to(".")
    found = [path for path, _ in walk.expand([f"{tmp_path}/**/*.jpg"])]
    assert found == [tmp_path / "sub/x.jpg"]


def test_a_name_that_is_not_utf8_can_be_found_again(tmp_path):
    path = tmp_path / os.fsdecode(b"caf\xe9.jpg")
    line = json.loads(json.dumps(predict.describe(path)))  # as a JSON consumer reads it
    assert line["path"] == f"{tmp_path}/caf%E9.jpg"
    assert base64.b64decode(line["path_base64"]) == os.fsencode(path)
    assert "path_base64" not in predict.describe(tmp_path / "café.jpg")


def test_an_unreadable_folder_stops_download_with_one_line(tmp_path, monkeypatch):
    (tmp_path / "cat/closed").mkdir(parents=True)
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": (_ for _ in ()).throw(PermissionError(13, "Permission denied", str(path)))
                        if str(path).endswith("closed") else real_scandir(path))
    with pytest.raises(UserError, match="cannot read the folder .*closed \\(Permission denied\\)"):
        folders.files(tmp_path / "cat")


# Zip archives

def zip_of(path, members):
    with zipfile.ZipFile(path, "w") as zipped, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, and writes it
        for name, data in members:
            zipped.writestr(name, data)
    return path


@pytest.mark.parametrize("members, message", [
    ([(".", b"x")], "refusing member '.', an empty name"),
    ([("cat/a.jpg", b"1"), ("cat/a.jpg", b"2")], "refusing member 'cat/a.jpg', a second member of the same name"),
])
def test_zip_members_that_would_lose_or_break_are_refused(tmp_path, members, message):
    archive = zip_of(tmp_path / "a.zip", members)
    with pytest.raises(UserError, match=message):
        fetch.unzip(archive, tmp_path / "out")


def test_a_member_that_understates_its_size_is_one_line(tmp_path):
    archive = zip_of(tmp_path / "a.zip", [("cat/a.jpg", b"x" * 5000)])
    data = bytearray(archive.read_bytes())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # the local and the central header's size field
        at = data.find(header)
        offset = 22 if header == b"PK\x03\x04" else 24
        data[at + offset: at + offset + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(UserError, match="member 'cat/a.jpg' is damaged"):
        fetch.unzip(archive, tmp_path / "out")


def test_member_count_and_total_expansion_are_capped(tmp_path, monkeypatch):
    archive = zip_of(tmp_path / "a.zip", [(f"cat/{i}.jpg", b"") for i in range(20)])
    monkeypatch.setattr(fetch, "MAX_MEMBERS", 10)
    with pytest.raises(UserError, match="has 20 members, over 10"):
        fetch.unzip(archive, tmp_path / "out")
    inner = zip_of(tmp_path / "inner.zip", [("cat/a.jpg", b"\0" * 100_000)])
    with pytest.raises(UserError, match="would unpack to 100000 bytes, over its limit of 5000"):
        fetch.unzip(inner, tmp_path / "out", limit=5000)  # what an outer archive left it


# Backups

@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/train.py").write_text("# code\n")
    (tmp_path / "data/features").mkdir(parents=True)
    (tmp_path / "data/features/train_x.npy").write_bytes(b"1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_backup_is_dropped_when_the_stages_code_or_data_change(project_dir, capsys):
    (backup.folder("train") / "state.json").write_text("{}")
    assert (backup.folder("train") / "state.json").exists()
    (project_dir / "stages/train.py").write_text("# other code\n")
    assert not (backup.folder("train") / "state.json").exists()
    assert "params, code or input data changed" in capsys.readouterr().out
    (backup.folder("train") / "state.json").write_text("{}")
    (project_dir / "data/features/train_x.npy").write_bytes(b"22")
    assert not (backup.folder("train") / "state.json").exists()


def test_a_half_written_backup_is_dropped_with_one_line(project_dir, capsys):
    folder = backup.folder("features")
    (folder / "train.progress.json").write_text('{"rows": 3')  # killed mid-write
    assert not (backup.folder("features") / "train.progress.json").exists()
    assert "features: the backup in backup/features cannot be read" in capsys.readouterr().out


def test_training_that_diverges_stops_without_a_model(project_dir):
    import keras

    from classifier.data.inputs import from_arrays
    from classifier.training.fit import EpochSeeds, fit

    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32") * 1e10
    y = keras.utils.to_categorical(np.arange(64) % 2, 2)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e30), loss="categorical_crossentropy")
    seeds = EpochSeeds(64, 0)
    data = from_arrays(x, y, 16, order=seeds.order)
    with pytest.raises(UserError, match=r"loss became nan in epoch 1: training diverged; no model was saved"):
        fit(model, data, from_arrays(x, y, 16), seeds=seeds, epochs=3, patience=3, log_dir=project_dir / "logs/train")


def test_imagenet_weights_are_fetched_under_a_lock(monkeypatch, tmp_path):
    """Queue workers share ~/.keras, and Keras downloads in place: one at a time."""
    import keras
    # A models folder of this test's own, and so a lock of its own: another test worker
    # building with the ImageNet weights meanwhile holds the shared one (CI saw it).
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    from filelock import FileLock, Timeout

    from classifier.model import backbones

    held = []

    def vgg16(weights, **kwargs):
        try:
            FileLock(backbones.weights_lock().lock_file, timeout=0).acquire()  # another descriptor: must wait
            held.append(False)
        except Timeout:
            held.append(True)
        return real(weights=None, **kwargs)

    real = keras.applications.VGG16
    monkeypatch.setattr(keras.applications, "VGG16", vgg16)
    backbones.build(SimpleNamespace(backbone="vgg16", weights="imagenet", image_size=32, alpha=1.0))
    backbones.build(SimpleNamespace(backbone="vgg16", weights="none", image_size=32, alpha=1.0))
    assert held == [True, False]
