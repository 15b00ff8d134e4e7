"""What a killed stage leaves behind to resume from: backup/<stage>/.

Not a DVC output, so DVC neither deletes it before the rerun nor caches it. A
backup is used only by a run of the same stage with the same params.yaml and
the same dependencies in dvc.yaml (its code and its input data); otherwise,
or when any of its files cannot be read (a run killed while writing one), it
is discarded with one line. It is removed when the stage completes.
"""

import hashlib
import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

from classifier.files import replaced, write_text
from classifier.params import PARAMS_FILE

BACKUP = Path("backup")


def fingerprint(stage):
    """What the stage's run is made from: params.yaml and the stage's dvc.yaml
    dependencies, files by content, folders by their files' names, sizes and
    modification times (reading a folder of photos would cost more than it saves)."""
    digest = hashlib.sha256()
    deps = yaml.safe_load(Path("dvc.yaml").read_text())["stages"][stage]["deps"]
    for dep in map(Path, [PARAMS_FILE, *deps]):
        digest.update(str(dep).encode() + b"\0")
        if dep.is_file():
            digest.update(dep.read_bytes())
        for file in sorted(dep.rglob("*")) if dep.is_dir() else []:
            stat = file.stat()
            digest.update(f"{file} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def readable(path):
    """Whether every state file in a backup folder can be read back."""
    try:
        for file in path.glob("*.json"):
            json.loads(file.read_text())
        for file in path.glob("*.npz"):
            with np.load(file) as arrays:
                [arrays[name] for name in arrays.files]
        for file in path.glob("*.h5"):
            import h5py

            with h5py.File(file, "r") as weights:
                weights.visit(lambda name: None)
        return True
    except Exception:  # a truncated file fails in many ways
        return False


def folder(name):
    """backup/<name>/: the one a killed run of stage `name` left (said on stdout), or a new, empty one."""
    path = BACKUP / name
    stamp = path / "fingerprint"
    current = fingerprint(name)
    if path.exists():
        if not readable(path):
            print(f"{name}: the backup in {path} cannot be read (a run killed while writing it?); starting over")
            shutil.rmtree(path)
        elif not stamp.exists() or stamp.read_text() != current:
            print(f"{name}: params, code or input data changed since the backup in {path}; starting over")
            shutil.rmtree(path)
    if path.exists():
        print(f"{name}: resuming from the backup in {path}")
    else:
        path.mkdir(parents=True)
        write_text(stamp, current)
    return path


def save_arrays(path, arrays):
    """np.savez, atomically: a run killed meanwhile leaves the previous file."""
    with replaced(path, ".npz") as part:
        np.savez(part, *arrays)


def remove(name):
    shutil.rmtree(BACKUP / name, ignore_errors=True)
    if BACKUP.exists() and not any(BACKUP.iterdir()):
        BACKUP.rmdir()


@contextmanager
def scratch(name):
    """A temporary folder under backup/ (on the project's disk, ignored by Git),
    removed on exit: for large intermediate arrays that must not fill memory.
    One a killed run left behind is removed first."""
    for stale in BACKUP.glob(f"{name}-*"):
        shutil.rmtree(stale)
    BACKUP.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=BACKUP) as path:
        yield Path(path)
    if not any(BACKUP.iterdir()):
        BACKUP.rmdir()
