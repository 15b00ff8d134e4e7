"""Helpers: tiny generated image sets and throw-away copies of the project."""

import contextlib
import importlib
import io
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from filelock import FileLock
from PIL import Image

from classifier.errors import run
from tools.generated import COLORS, TEST_PARAMS, environment, make_images  # noqa: F401 (for the test modules)
from tools.scratch import merge, project, set_params  # noqa: F401 (set_params: for the test modules)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# Three test workers share CI's 2 cores: one TensorFlow compute thread per process
# spends the CPU on work, not on threads waiting for each other (the 200-class
# pipeline: 147 CPU-seconds with the default pools, 111 with one thread). The
# stages and DVC that the tests start inherit it.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

def jpeg(size=(64, 64), color=(200, 70, 60), **options):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def bad_exif_jpeg():
    """A JPEG whose EXIF orientation block has two flipped bytes: Pillow's
    exif_transpose raises TypeError on it (found by mutating the block)."""
    image = Image.new("RGB", (60, 40), (200, 0, 0))
    exif = image.getexif()
    exif[0x0112], exif[0x010F] = 6, "Camera"
    data = bytearray(jpeg((60, 40), (200, 0, 0), exif=exif))
    start = data.find(b"Exif")
    data[start + 17], data[start + 59] = 31, 153
    return bytes(data)


def tensorflow_refuses_jpeg():
    """A JPEG that Pillow decodes (with libjpeg's warnings) and TensorFlow's decoder
    refuses: noise at quality 90 with two bytes of its scan changed (found by mutation)."""
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    data[1782], data[2284] = 137, 220
    return bytes(data)


def ico_holding(png_size):
    """An ICO whose one entry is a PNG of png_size (the ICO header says 256 x 256)."""
    buffer = io.BytesIO()
    Image.new("1", png_size).save(buffer, "PNG")
    png = buffer.getvalue()
    return struct.pack("<HHHBBBBHHII", 0, 1, 1, 0, 0, 0, 0, 1, 32, len(png), 22) + png


def make_hostile(folder):
    """One file of each kind a hostile-input review found; returns HOSTILE."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "exif.jpg").write_bytes(bad_exif_jpeg())
    (folder / "bomb.ico").write_bytes(ico_holding((10000, 10000)))
    with open(folder / "padded.jpg", "wb") as f:  # 200 MB, sparse: costs no disk
        f.write(jpeg())
        f.truncate(200_000_000)
    (folder / "trailing.jpg").write_bytes(jpeg(color=(60, 80, 200)) + os.urandom(2_000_000))
    Image.fromarray(np.full((48, 48), 20000, "uint16")).save(folder / "grey16.png")
    Image.fromarray(np.full((48, 48), 0.5, "float32")).save(folder / "float.tif")
    Image.fromarray(np.full((48, 48), 7.5, "float32")).save(folder / "float_range.tif")
    Image.new("RGB", (50, 50), (200, 200, 10)).save(folder / "a.png")
    Image.new("RGB", (50, 50), (10, 10, 10)).save(folder / "a.png.jpg")  # clean would name both a.png.jpg
    (folder / os.fsdecode(b"caf\xe9.jpg")).write_bytes(jpeg(color=(10, 200, 10)))
    (folder / "loop.jpg").symlink_to("loop.jpg")
    return HOSTILE


# make_hostile's files (printable names): the reason each is refused, None if usable.
HOSTILE = {"exif.jpg": "corrupt", "bomb.ico": "too_large", "padded.jpg": "too_large", "trailing.jpg": None,
           "grey16.png": None, "float.tif": None, "float_range.tif": "unsupported", "a.png": None,
           "a.png.jpg": None, "caf%E9.jpg": None, "loop.jpg": "broken_link"}


def sh(cwd, *args, check=True, env=None):
    """Run a command; its stdout and stderr together as .output."""
    result = subprocess.run(
        args, cwd=cwd, env=env or environment(), text=True, capture_output=True
    )
    result.output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.output}")
    return result


def dvc(cwd, *args, **kwargs):
    return sh(cwd, sys.executable, "-m", "dvc", *args, **kwargs)


def stage(cwd, name, *args, **kwargs):
    return sh(cwd, sys.executable, "-m", f"stages.{name}", *args, **kwargs)


def tool(cwd, name, *args, **kwargs):
    """A command-line tool: predict, compare or check."""
    return sh(cwd, sys.executable, "-m", f"classifier.cli.{name}", *args, **kwargs)


PREDICT = "classifier.cli.predict"  # in_process(cwd, PREDICT, ...)


def in_process(cwd, module, *args, check=True):
    """`python -m module args` in `cwd`, run in this process as its `__main__` block
    runs it (`errors.run(main)`: a UserError is one line on stderr and exit code 2),
    with what `sh` returns. For tests of what a stage or tool writes and says, where
    a process of its own is not the subject: TensorFlow starts once per test worker
    instead of once per call (about 5 s of CPU)."""
    main = importlib.import_module(module).main
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    here, argv = os.getcwd(), sys.argv
    os.chdir(cwd)
    sys.argv = [module, *map(str, args)]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            run(main)
    except SystemExit as exit:
        code = 0 if exit.code is None else exit.code if isinstance(exit.code, int) else 1  # as Python exits
    except Exception as error:  # a crash: its traceback, with what the run had printed
        error.add_note(f"{module} printed:\n{stdout.getvalue()}{stderr.getvalue()}")
        raise
    finally:
        os.chdir(here)
        sys.argv = argv
        if "keras" in sys.modules:  # the next call starts as a process of its own would
            sys.modules["keras"].backend.clear_session()
    result = subprocess.CompletedProcess([module, *args], code, stdout.getvalue(), stderr.getvalue())
    result.output = result.stdout + result.stderr
    if check and code != 0:
        raise AssertionError(f"{module} {' '.join(map(str, args))} failed ({code}):\n{result.output}")
    return result


def new_project(directory, data_dir, overrides=()):
    """A committed git + DVC copy of the project, set to read data_dir."""
    params = merge(merge({}, TEST_PARAMS), {"data": {"local_dir": str(data_dir)}})
    return project(directory, merge(params, dict(overrides)))


# The longest modules first, longest to shortest (measured with --durations): with
# `--dist loadfile` (pytest.ini) the workers start on them at once instead of
# finding one last. The real-photos run goes beside the two that wait for
# `pristine`, so that a core works while it is built.
FIRST = ("test_pipeline.py", "test_experiments.py", "test_real_photos.py", "test_experiment_queue.py", "test_app.py",
         "test_many_classes.py", "test_audit.py", "test_thirty_classes.py", "test_multi_label.py",
         "test_multi_label_pipeline.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true every test must run: a skip there means a missing install
    (Chromium, npm) or a missing ../shared, which CI has."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") == "true" and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped, which CI must run: failing", red=True)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("images"))


def reproduced(directory, data_dir, overrides=()):
    """A project after one full `dvc repro`, committed; its output in <project>.repro.log."""
    return committed_repro(new_project(directory, data_dir, overrides))


def committed_repro(project):
    """`dvc repro`, its output in <project>.repro.log, the result committed."""
    result = dvc(project, "repro")
    project.with_suffix(".repro.log").write_text(result.output)
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "baseline run")
    return project


STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])  # in the order they run


def stages_run(directory, data_dir, overrides=(), until=None):
    """A new project with every stage's outputs (up to the stage `until`), made by running
    each stage `in_process` in dvc.yaml's order: TensorFlow is imported once per test
    worker, not once per stage. For tests that read the outputs; where DVC's behaviour
    is the subject (what reruns, dvc.lock), use `reproduced`."""
    project = new_project(directory, data_dir, overrides)
    for name in STAGES[:STAGES.index(until) + 1 if until else None]:
        in_process(project, f"stages.{name}")
    return project


def browser():
    """Debian's Chromium (which .ci/run installs), or skip."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium here: apt-get install chromium")


def workspace_copy(project, target):
    """The project's files without Git, DVC's cache and the exported models:
    enough to run a stage by hand (`python -m stages.X`) without touching `project`."""
    ignore = shutil.ignore_patterns(".git", "cache", "export")
    return Path(shutil.copytree(project, target, symlinks=True, ignore=ignore))


@pytest.fixture(scope="session")
def pristine(tmp_path_factory, worker_id):
    """The two-class project after a full `dvc repro`, every export format: built
    once for all test workers (pytest-xdist's recipe for session data, under a file
    lock) and never changed. Tests take copies (`copy_of`)."""
    root = tmp_path_factory.getbasetemp()
    root = root if worker_id == "master" else root.parent
    project, done = root / "pristine" / "project", root / "pristine" / "done"
    with FileLock(root / "pristine.lock"):
        if not done.exists():
            shutil.rmtree(project.parent, ignore_errors=True)  # a worker's build that failed
            overrides = {"evaluate": {"tta": True},
                         "export": {"formats": ["saved_model", "tflite", "tflite_dynamic", "tflite_int8", "onnx"]}}
            reproduced(project, make_images(project.parent / "images"), overrides)
            done.touch()
    return project


def copy_of(project, target):
    """A copy of a reproduced project (Git, DVC's cache and its repro log with it)."""
    shutil.copytree(project, target, symlinks=True)
    shutil.copy(project.with_suffix(".repro.log"), target.with_suffix(".repro.log"))
    return target


@pytest.fixture(scope="session")
def baseline(tmp_path_factory, pristine):
    """The reproduced two-class project: for tests that only read it."""
    return copy_of(pristine, tmp_path_factory.mktemp("baseline") / "project")
