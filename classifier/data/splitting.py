"""The clean images as a table, the exclusions a user listed, groups of
near-identical shots, and a stratified, seeded train/val/test split that keeps
each group on one side (or the split the photos came in).

A photo's `label` is its class, or with several labels per photo (model.task
multi_label) its labels, space-separated ("" for none of them); the multi-label
split is Sechidis et al.'s iterative stratification (2011), from the maintained
`iterative-stratification` package.
"""

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MultiLabelBinarizer

from classifier.errors import UserError
from classifier.paths import CLEAN_IMAGES, EXCLUDE, HASHES, LABEL_SETS, RELABEL, SPLITS, clean_image, given_split

# pHashes this many bits apart or fewer are one shot. Measured on the 5,000
# dogs-vs-cats photos: their re-saved copies differ by 0 bits, the nearest
# unrelated pairs (a cat and a dog) by 10. pHash distances are even: half the bits are set.
NEAR_BITS = 6
MIN_PER_CLASS = 10  # below this a class has 1 or 2 photos per val/test split: no measure at all


def list_images(given):
    """path, label, given (the split folder it came in, where the photos came
    split) and phash of every clean image."""
    rows = [
        (str(path), folder.name, given_split(path, CLEAN_IMAGES) if given else None)
        for folder in sorted(d for d in CLEAN_IMAGES.iterdir() if d.is_dir())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
    images = pd.DataFrame(rows, columns=["path", "label", "given"])
    return images.merge(pd.read_csv(HASHES, dtype=str), on="path", how="left", validate="one_to_one")


def list_labelled_images():
    """The same table for several labels per photo: each clean image of
    data/label_sets.csv with its labels (those `clean` refused are in its report)."""
    table = pd.read_csv(LABEL_SETS, dtype=str, keep_default_na=False)
    images = pd.DataFrame({"path": [str(clean_image(raw)) for raw in table.path], "label": table.labels, "given": None})
    return images.merge(pd.read_csv(HASHES, dtype=str), on="path", how="inner", validate="one_to_one")


def label_counts(labels):
    """Photos per label of a column of space-separated label sets."""
    return pd.Series([name for names in labels for name in names.split()], dtype=str).value_counts().sort_index()


def listed(file, header, images):
    """The rows of a list you keep (data/exclude.csv, data/relabel.csv); none where the
    file is missing or empty. Its first line must name the columns (`header`; a
    `reason` may be left out) and every path must be a clean image."""
    try:
        rows = pd.read_csv(file, dtype=str)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=header.split(","))
    if not set(header.split(",")) - {"reason"} <= set(rows.columns):
        raise UserError(f"{file}: needs a header line `{header}` (found: {', '.join(rows.columns)})")
    unknown = sorted(set(rows.path) - set(images.path))
    if unknown:
        raise UserError(
            f"{file}: {len(unknown)} path(s) are not clean images, e.g. {unknown[0]} "
            f"(paths look like {images.path.iloc[0]}, as in reports/audit/*.csv)"
        )
    return rows


def excluded(images):
    """The paths of data/exclude.csv."""
    return set(listed(EXCLUDE, "path,reason", images).path)


def relabelled(images, task="single_label"):
    """data/relabel.csv as {path: label} (a path listed twice: its last line); every
    label must be a class. With several labels per photo a label is the photo's new
    set, space-separated (empty: none of these), each one a label of data.labels."""
    rows = listed(RELABEL, "path,label", images)
    if task == "multi_label":
        sets = rows.label.fillna("").map(lambda given: " ".join(sorted(set(given.split()))))
        known = set(label_counts(images.label).index)
        strange = sorted({name for given in sets for name in given.split()} - known)
        if strange:
            raise UserError(f"{RELABEL}: '{strange[0]}' is not a label (labels: {', '.join(sorted(known))})")
        return dict(zip(rows.path, sets))
    strange = sorted(set(rows.label) - set(images.label))
    if strange:
        raise UserError(f"{RELABEL}: '{strange[0]}' is not a class (classes: {', '.join(sorted(set(images.label)))})")
    return dict(zip(rows.path, rows.label))


def check_counts(images, task):
    kind, kinds = ("label", "labels") if task == "multi_label" else ("class", "classes")
    counts = label_counts(images.label) if task == "multi_label" else images.label.value_counts()
    if len(counts) < 2:
        raise UserError(f"split needs at least 2 {kinds} with images, found {len(counts)}")
    few = counts[counts < MIN_PER_CLASS]
    if len(few):
        fix = "label more photos with it, or remove it from data.labels" if task == "multi_label" else \
            "move the class out of the folder"
        raise UserError(
            f"{kind} '{few.index[0]}' has {few.iloc[0]} clean image(s); each {kind} needs at least "
            f"{MIN_PER_CLASS}, or its val and test scores rest on one or two photos: add photos, or {fix}"
        )


def near_duplicates(hashes):
    """A group number per image: images whose pHashes are within NEAR_BITS bits,
    directly or through others, share one (numbered in order of first image)."""
    bits = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    rows, columns = [], []
    for start in range(0, len(bits), 2048):  # 2048 x n distances at a time: bounded memory
        distance = np.bitwise_count(bits[start : start + 2048, None] ^ bits[None, :])
        i, j = np.nonzero(distance <= NEAR_BITS)
        rows.append(i + start)
        columns.append(j)
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    graph = coo_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(bits), len(bits)))
    return connected_components(graph, directed=False)[1]


def split_off(images, share, seed, task):
    """(rest, taken): `share` of the images' groups taken, stratified by each group's
    most common label, or for multi_label by every label of its photos (iterative
    stratification); each part in the order it was drawn."""
    groups = images.groupby("group", sort=False).label
    if task == "multi_label":
        sets = groups.agg(lambda names: sorted({name for labels in names for name in labels.split()}))
        targets = MultiLabelBinarizer().fit_transform(sets)
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
        rest, taken = (sets.index[part] for part in next(splitter.split(sets.index, targets)))
    else:
        labels = groups.agg(lambda names: names.mode().iloc[0])
        rest, taken = train_test_split(labels.index, test_size=share, stratify=labels.to_numpy(), random_state=seed)
    by_group = images.set_index("group", drop=False)
    return by_group.loc[rest].reset_index(drop=True), by_group.loc[taken].reset_index(drop=True)


def stratified(images, shares, seed, task):
    """{split: images}: each split of `shares` ({split: share of the images}) carved
    out by group, stratified; the rest is train."""
    names = list(shares)
    parts = {"train": images}
    try:
        if names:
            parts["train"], rest = split_off(images, sum(shares.values()), seed, task)
            parts[names[-1]] = rest
        if len(names) == 2:
            parts[names[0]], parts[names[1]] = split_off(rest, shares[names[1]] / sum(shares.values()), seed, task)
    except ValueError as error:
        raise UserError(f"cannot split {len(images)} images into {', '.join(['train', *names])}: {error}") from None
    return parts


def split(images, shares, seed, task):
    """The manifest (path, label, split, group) and where each split came from.
    Given splits are kept; the missing ones are carved from the given train
    (never from a given val), with `shares` of it."""
    given = sorted(set(images.given.dropna()))
    if not given:
        parts = stratified(images, shares, seed, task)
        origin = {name: "drawn" for name in SPLITS}
    else:
        missing = {name: share for name, share in shares.items() if name not in given}
        parts = stratified(images[images.given == "train"], missing, seed, task)
        parts.update({name: images[images.given == name] for name in given if name != "train"})
        origin = {name: "given" if name in given else "carved from train" for name in SPLITS if name in parts}
    manifest = pd.concat(
        [parts[name].sort_values("path").assign(split=name) for name in SPLITS if name in parts], ignore_index=True
    )
    return manifest[["path", "label", "split", "group"]], origin
