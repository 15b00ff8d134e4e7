"""The split manifest (path,label,split): which image is in which split."""

import pandas as pd

from classifier.errors import UserError
from classifier.paths import LABEL_ISSUES, MANIFEST


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


def label_issues_in_train(manifest, exclude):
    """Which rows are training images that the audit found likely mislabelled,
    where audit.exclude is label_issues (none otherwise): confident learning
    (Northcutt et al., 2021) trains without them. Val and test stay whole, so
    scores stay comparable with and without."""
    if exclude != "label_issues":
        return pd.Series(False, index=manifest.index)
    return manifest.path.isin(pd.read_csv(LABEL_ISSUES).path) & (manifest.split == "train")
