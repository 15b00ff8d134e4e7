"""The clean images as a table, the exclusions a user listed, and a stratified,
seeded train/val/test split.
"""

import pandas as pd
from sklearn.model_selection import train_test_split

from classifier.errors import UserError
from classifier.paths import CLEAN_IMAGES, EXCLUDE


def list_images():
    rows = [
        (str(path), folder.name)
        for folder in sorted(d for d in CLEAN_IMAGES.iterdir() if d.is_dir())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
    return pd.DataFrame(rows, columns=["path", "label"])


def excluded(images):
    """The paths of data/exclude.csv; every one must be a clean image."""
    if not EXCLUDE.exists():
        return set()
    try:
        listed = pd.read_csv(EXCLUDE, dtype=str)
    except pd.errors.EmptyDataError:
        return set()
    if "path" not in listed:
        raise UserError(f"{EXCLUDE}: needs a header line `path,reason` (found: {', '.join(listed.columns)})")
    unknown = sorted(set(listed.path) - set(images.path))
    if unknown:
        raise UserError(
            f"{EXCLUDE}: {len(unknown)} path(s) are not clean images, e.g. {unknown[0]} "
            f"(paths look like {images.path.iloc[0]}, as in reports/audit/*.csv)"
        )
    return set(listed.path)


def check_counts(images):
    counts = images.label.value_counts()
    if len(counts) < 2:
        raise UserError(f"split needs at least 2 classes with images, found {len(counts)}")
    few = counts[counts < 3]
    if len(few):
        raise UserError(
            f"class '{few.index[0]}' has {few.iloc[0]} clean image(s); "
            "each class needs at least 3 (one per split)"
        )


def stratified(images, val, test, seed):
    try:
        train, rest = train_test_split(
            images, test_size=val + test, stratify=images.label, random_state=seed
        )
        val_part, test_part = train_test_split(
            rest, test_size=test / (val + test), stratify=rest.label, random_state=seed
        )
    except ValueError as error:
        raise UserError(f"cannot split {len(images)} images with these fractions: {error}") from None
    parts = {"train": train, "val": val_part, "test": test_part}
    return pd.concat(
        [part.sort_values("path").assign(split=name) for name, part in parts.items()],
        ignore_index=True,
    )
