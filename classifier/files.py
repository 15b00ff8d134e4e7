"""Reading and writing the pipeline's small files: JSON (atomically), text, cached features."""

import json
import os
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    part.write_text(text)
    os.replace(part, path)
