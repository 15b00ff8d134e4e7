"""The split manifest (path,label,split): which image is in which split."""

import pandas as pd

from classifier.errors import UserError
from classifier.paths import MANIFEST


def read():
    if not MANIFEST.exists():
        raise UserError(f"{MANIFEST} not found: run `dvc repro split` first")
    return pd.read_csv(MANIFEST)


def classes(manifest):
    """Class names in label-index order (sorted folder names)."""
    return sorted(manifest.label.unique())


def rows(manifest, split):
    """Paths and integer labels of one split."""
    names = classes(manifest)
    part = manifest[manifest.split == split]
    return part.path.tolist(), part.label.map(names.index).to_numpy()
