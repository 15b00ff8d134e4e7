"""Network sources, offline: a zip built here, served from 127.0.0.1."""

import hashlib
import io
import json
import os
import stat
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classifier.data import fetch
from classifier.data.folders import collect, given_splits
from classifier.data.sources import CIFAR10_CLASSES, label_by_name, write_cifar10
from classifier.errors import UserError
from conftest import dvc, environment, make_images, new_project, sh


class Server:
    """Serves `files` with HTTP Range support; `cut[path] = n` breaks the next response after n bytes."""

    def __init__(self):
        self.files, self.cut, self.requests, self.errors = {}, {}, [], {}
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                if self.path not in server.files:
                    self.send_error(404)
                    return
                if server.errors.get(self.path):  # statuses to answer first, in order
                    self.send_error(server.errors[self.path].pop(0))
                    return
                body = server.files[self.path]
                start = 0
                ranged = self.headers.get("Range") and not server.ignore_range
                if ranged:
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.end_headers()
                        return
                self.send_response(206 if ranged else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                limit = server.cut.pop(self.path, None)
                self.wfile.write(body[start : start + limit] if limit else body[start:])

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    served = Server()
    yield served
    served.http.shutdown()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(fetch.time, "sleep", lambda seconds: None)


def test_busy_servers_are_retried_and_missing_files_are_not(server, tmp_path):
    server.files["/a.bin"] = b"x" * 1000
    server.errors["/a.bin"] = [503, 429, 408]
    target = fetch.get_file(f"{server.url}/a.bin", tmp_path / "a.bin", size=1000)
    assert target.read_bytes() == b"x" * 1000
    assert len(server.requests) == 4
    with pytest.raises(UserError, match="HTTP 404"):
        fetch.get_file(f"{server.url}/missing.bin", tmp_path / "missing.bin")
    assert len(server.requests) == 5  # a 404 is final: no retry


def test_interrupted_transfer_resumes(server, tmp_path):
    body = os.urandom(300_000)
    server.files["/big.bin"] = body
    server.cut["/big.bin"] = 100_000
    target = fetch.get_file(f"{server.url}/big.bin", tmp_path / "big.bin", size=len(body),
                            sha256=hashlib.sha256(body).hexdigest())
    assert target.read_bytes() == body
    assert server.requests == [("/big.bin", None), ("/big.bin", "bytes=100000-")]
    assert not (tmp_path / "big.bin.part").exists()


def test_server_without_range_support_starts_over(server, tmp_path):
    body = os.urandom(50_000)
    server.files["/f"] = body
    server.cut["/f"] = 10_000
    server.ignore_range = True
    assert fetch.get_file(f"{server.url}/f", tmp_path / "f").read_bytes() == body


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    server.files["/f"] = b"x" * 1000
    with pytest.raises(UserError, match=r"SHA-256 is [0-9a-f]{64}, expected 0000"):
        fetch.get_file(f"{server.url}/f", tmp_path / "f", sha256="0" * 64)
    with pytest.raises(UserError, match="size is 1000 bytes, expected 999"):
        fetch.get_file(f"{server.url}/f", tmp_path / "f", size=999)
    assert list(tmp_path.iterdir()) == []


def test_verified_download_is_not_fetched_again(server, tmp_path):
    server.files["/f"] = b"abc"
    for _ in range(2):
        fetch.get_file(f"{server.url}/f", tmp_path / "f", size=3)
    assert len(server.requests) == 1


def test_no_network_is_one_clear_error(tmp_path):
    with pytest.raises(UserError) as error:
        fetch.get_file("http://127.0.0.1:9/archive.zip", tmp_path / "a.zip")
    assert "after 5 tries" in str(error.value) and "data.source: local" in str(error.value)


def test_http_error_is_not_retried(server, tmp_path):
    with pytest.raises(UserError, match="HTTP 404"):
        fetch.get_file(f"{server.url}/missing.zip", tmp_path / "m.zip")
    assert len(server.requests) == 1


def zip_with(tmp_path, members):
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "ok/../../evil.txt"])
def test_zip_slip_members_are_refused(tmp_path, name):
    archive = zip_with(tmp_path, [("good.txt", "fine"), (name, "evil")])
    with pytest.raises(UserError, match="refusing member"):
        fetch.unzip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_symlink_members_are_refused(tmp_path):
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = zip_with(tmp_path, [(link, "/etc/passwd")])
    with pytest.raises(UserError, match="a symbolic link"):
        fetch.unzip(archive, tmp_path / "out")


def test_zip_bombs_are_refused(tmp_path):
    archive = zip_with(tmp_path, [("zeros.bin", bytes(20_000_000))])
    with pytest.raises(UserError, match="would unpack to 20000000 bytes, over its limit of"):
        fetch.unzip(archive, tmp_path / "out")


def petimages_zip(tmp_path):
    """The layout of Microsoft's kagglecatsanddogs zip, with its usual bad files."""
    make_images(tmp_path / "src", per_class=8)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for cls in ("cat", "dog"):
            for i, path in enumerate(sorted((tmp_path / "src" / cls).iterdir())):
                archive.write(path, f"PetImages/{cls.title()}/{i}.jpg")
        archive.writestr("PetImages/Cat/Thumbs.db", bytes(100))
        archive.writestr("PetImages/Dog/666.jpg", b"")
        archive.writestr("PetImages/Dog/11702.jpg", b"GIF89a not really")
        archive.writestr("readme[1].txt", "readme")
    return buffer.getvalue()


def test_petimages_through_dvc(server, tmp_path):
    server.files["/kagglecatsanddogs_5340.zip"] = petimages_zip(tmp_path)
    server.cut["/kagglecatsanddogs_5340.zip"] = 5000
    url = f"{server.url}/kagglecatsanddogs_5340.zip"
    project = new_project(tmp_path / "project", tmp_path, {"data": {"source": "petimages", "url": url}})
    dvc(project, "repro", "clean")

    assert sorted(p.name for p in (project / "data/raw").iterdir()) == ["cat", "dog"]
    rejected = pd.read_csv(project / "data/clean/rejected.csv")
    assert sorted(zip(rejected.path, rejected.reason)) == [
        ("data/raw/cat/Thumbs.db", "system_file"),
        ("data/raw/dog/11702.jpg", "not_image"),
        ("data/raw/dog/666.jpg", "empty"),
    ]
    report = json.loads((project / "metrics/clean.json").read_text())
    assert (report["total"], report["kept"]) == (19, 16)
    assert len(server.requests) == 2  # cut, then resumed

    dvc(project, "exp", "run", "-S", "data.max_per_class=4", "clean")
    assert len(server.requests) == 2  # the verified zip in data/downloads is reused
    assert len(list((project / "data/raw/cat").iterdir())) == 4


def test_kaggle_without_credentials_says_how_to_get_them(tmp_path, images):
    project = new_project(tmp_path / "project", images, {"data": {"source": "kaggle"}})
    env = {k: v for k, v in environment().items() if not k.startswith("KAGGLE_")}
    env["HOME"] = str(tmp_path / "home")
    result = sh(project, sys.executable, "-m", "stages.download", check=False, env=env)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]  # the kaggle client may print before it
    assert message.startswith("error: data.source: kaggle needs Kaggle API credentials")
    assert "~/.kaggle/kaggle.json" in message and "KAGGLE_USERNAME" in message
    assert "petimages needs no account" in message


def test_kaggle_labels_come_from_file_names(tmp_path, capsys):
    folder = tmp_path / "train"
    folder.mkdir()
    for name in ("cat.0.jpg", "cat.10.jpg", "dog.3.jpg", "notes.txt"):
        (folder / name).write_bytes(b"x")
    classes = label_by_name(folder, tmp_path / "classes")
    assert sorted(p.relative_to(classes).as_posix() for p in classes.rglob("*.jpg")) == [
        "cat/cat.0.jpg", "cat/cat.10.jpg", "dog/dog.3.jpg",
    ]  # fmt: skip
    assert "1 file(s) not named cat.N.jpg / dog.N.jpg left out: ['notes.txt']" in capsys.readouterr().out


def test_cifar10_keeps_its_official_test_set(tmp_path):
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 255, (30, 32, 32, 3), dtype=np.uint8), np.arange(30).reshape(-1, 1) % 10)
    test = (rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8), np.arange(10).reshape(-1, 1))
    folder = write_cifar10(train, test, tmp_path / "classes")
    assert given_splits(folder) == {"train": folder / "train", "test": folder / "test"}
    for part, count in (("train", 3), ("test", 1)):
        assert sorted(p.name for p in (folder / part).iterdir()) == sorted(CIFAR10_CLASSES)
        assert all(len(list(classes.iterdir())) == count for classes in (folder / part).iterdir())
    with Image.open(folder / "train/airplane/train_00000.png") as image:
        assert image.size == (32, 32)
        assert np.array_equal(np.asarray(image), train[0][0])
    assert collect(folder, tmp_path / "raw", None)[0] == ["test", "train"]
    assert (tmp_path / "raw/airplane/test/test_00000.png").exists()
