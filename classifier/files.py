"""Reading and writing the pipeline's small files: JSON and text (atomically), cached features."""

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

from classifier.paths import FEATURES


def read_features(split):
    """Cached features (written by `features`) and labels of one split."""
    import numpy as np

    return np.load(FEATURES / f"{split}_x.npy"), np.load(FEATURES / f"{split}_y.npy")


def read_json(path):
    return json.loads(Path(path).read_text())


def write_json(path, data):
    """Write atomically: a run killed mid-write leaves the old file or the new one."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_text(path, text):
    with replaced(path) as part:
        part.write_text(text, encoding="utf-8")


@contextmanager
def replaced(path, suffix=""):
    """A new temporary file beside `path` to write `path`'s new content to (`suffix`:
    its ending, for writers that add one, as np.savez adds .npz). On success it is
    flushed to disk and renamed over `path`, and the folder flushed: a crash, a kill
    or a power cut leaves the old file or the new one, never half of one. Each
    writer has a file of its own, so two at once cannot mix their bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{secrets.token_hex(8)}{suffix}")
    # O_EXCL: this writer's own file. Mode 0o666 less the umask, as any new file
    # gets (mkstemp's is private to its owner: teammates could not read it).
    os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield part
        if path.exists():
            shutil.copymode(path, part)
        flush(part)
        os.replace(part, path)
        flush(path.parent)
    finally:
        part.unlink(missing_ok=True)


def flush(path):
    """fsync a file or a folder (a rename is durable once its folder is)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
