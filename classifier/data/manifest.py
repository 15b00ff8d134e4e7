"""The split manifest (path,label,split): which image is in which split.

A label is a class name (model.task single_label) or a photo's labels,
space-separated, possibly none (multi_label): `task` says which.
"""

import numpy as np
import pandas as pd

from classifier.errors import UserError
from classifier.paths import LABEL_ISSUES, MANIFEST


def read():
    if not MANIFEST.exists():
        raise UserError(f"{MANIFEST} not found: run `dvc repro split` first")
    # As text, always: a class named NA, or a photo with no label, is not a missing value.
    return pd.read_csv(MANIFEST, dtype={"path": str, "label": str}, keep_default_na=False)


def classes(manifest, task="single_label"):
    """Class (or label) names in label-index order: sorted."""
    if task == "multi_label":
        return sorted({name for given in manifest.label for name in given.split()})
    return sorted(manifest.label.unique())


def rows(manifest, split, task="single_label"):
    """Paths and labels of one split: integer labels, or (multi_label) rows of 0/1, one column per label."""
    names = classes(manifest, task)
    part = manifest[manifest.split == split]
    if task == "multi_label":
        return part.path.tolist(), label_sets(part.label, names)
    return part.path.tolist(), part.label.map(names.index).to_numpy()


def label_sets(given, names):
    """Rows of 0/1 (float32), one column per name, from space-separated label sets."""
    index = {name: i for i, name in enumerate(names)}
    y = np.zeros((len(given), len(names)), dtype="float32")
    for row, labels in enumerate(given):
        y[row, [index[name] for name in labels.split()]] = 1
    return y


def label_text(rows, names):
    """label_sets undone: each row of 0/1 (or True/False) as its names, space-separated."""
    names = np.asarray(names)
    return [" ".join(names[np.asarray(row) == 1]) for row in rows]


def label_issues_in_train(manifest, exclude):
    """Which rows are training images that the audit found likely mislabelled,
    where audit.exclude is label_issues (none otherwise): confident learning
    (Northcutt et al., 2021) trains without them. Val and test stay whole, so
    scores stay comparable with and without."""
    if exclude != "label_issues":
        return pd.Series(False, index=manifest.index)
    return manifest.path.isin(pd.read_csv(LABEL_ISSUES).path) & (manifest.split == "train")
