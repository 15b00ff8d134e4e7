"""Stage `split`: a stratified, seeded train/val/test split of the clean images.

Images listed in data/exclude.csv (path,reason: what you agreed with after the
audit) leave every split. Writes data/split/manifest.csv (path,label,split)
and metrics/split.json (images per split, excluded).
"""

import pandas as pd
from sklearn.model_selection import train_test_split

from classifier import params
from classifier.errors import UserError, run
from classifier.paths import CLEAN_IMAGES, EXCLUDE, MANIFEST, SPLIT_REPORT, write_json


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


def main():
    p = params.load()
    images = list_images()
    dropped = excluded(images)
    images = images[~images.path.isin(dropped)]
    check_counts(images)
    manifest = stratified(images, p.split.val, p.split.test, p.split.seed)
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(MANIFEST, index=False)
    counts = manifest.groupby("split", sort=False).size()
    write_json(SPLIT_REPORT, {"images": len(manifest), "excluded": len(dropped), **{name: int(n) for name, n in counts.items()}})
    print("split: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + f"; {len(dropped)} excluded ({EXCLUDE})")


if __name__ == "__main__":
    run(main)
