"""Stage `split`: a stratified, seeded train/val/test split of the clean images,
near-identical shots kept on one side (split.group), or the split the photos came in.

Images listed in data/exclude.csv (path,reason: what you agreed with after the
audit) leave every split; those in data/relabel.csv (path,label) move to that
class (the file stays in its folder: the manifest's label is what counts), or
with several labels per photo take that label set (space-separated; empty: none).
Several labels per photo (model.task multi_label): the photos and labels of
data/label_sets.csv, split by iterative stratification; a manifest label is
then the photo's labels, space-separated.
Writes data/split/manifest.csv (path,label,split,group) and metrics/split.json:
images per split and where each split came from (drawn, given, carved from
train), how many were excluded and relabelled, the training split's imbalance
(largest class / smallest), near-duplicate groups; with several labels per
photo, each label's photos per split.
"""

import pandas as pd

from classifier import params
from classifier.data.splitting import (
    check_counts,
    excluded,
    label_counts,
    list_images,
    list_labelled_images,
    near_duplicates,
    relabelled,
    split,
)
from classifier.errors import run
from classifier.files import read_json, write_json
from classifier.paths import EXCLUDE, GIVEN_SPLITS, MANIFEST, RELABEL, SPLIT_REPORT


def report(manifest, origin, dropped, moved, task):
    counts = manifest.groupby("split", sort=False).size()
    count = label_counts if task == "multi_label" else pd.Series.value_counts
    train = count(manifest[manifest.split == "train"].label)
    sizes = manifest.group.value_counts()
    return {
        "images": len(manifest),
        "excluded": len(dropped),
        "relabelled": len(moved),
        **{name: int(n) for name, n in counts.items()},
        "imbalance": round(float(train.max() / train.min()), 3),
        "near_duplicate_groups": int((sizes > 1).sum()),
        "images_in_near_duplicate_groups": int(sizes[sizes > 1].sum()),
        "groups_across_splits": int((manifest.groupby("group").split.nunique() > 1).sum()),
        "origin": origin,
        **({"labels": per_label(manifest)} if task == "multi_label" else {}),
    }


def per_label(manifest):
    """{label: {split: photos}}."""
    counts = {name: label_counts(part.label) for name, part in manifest.groupby("split", sort=False)}
    names = sorted(set().union(*(found.index for found in counts.values())))
    return {label: {name: int(found.get(label, 0)) for name, found in counts.items()} for label in names}


def main():
    p = params.load()
    task = p.model.task
    images = list_labelled_images() if task == "multi_label" else list_images(read_json(GIVEN_SPLITS)["splits"])
    dropped, moved = excluded(images), relabelled(images, task)
    moved = {path: label for path, label in moved.items() if path not in dropped}
    images = images[~images.path.isin(dropped)].reset_index(drop=True)
    images["label"] = [moved.get(path, label) for path, label in zip(images.path, images.label)]
    check_counts(images, task)
    images["group"] = near_duplicates(images.phash) if p.split.group == "duplicates" else range(len(images))
    manifest, origin = split(images, {"val": p.split.val, "test": p.split.test}, p.split.seed, task)
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(MANIFEST, index=False)
    summary = report(manifest, origin, dropped, moved, task)
    write_json(SPLIT_REPORT, summary)
    print("split: " + ", ".join(f"{name} {summary[name]} ({origin[name]})" for name in origin)
          + f"; {len(dropped)} excluded ({EXCLUDE}), {len(moved)} relabelled ({RELABEL}); "
          + f"{summary['near_duplicate_groups']} groups of near-identical shots")
    if summary["groups_across_splits"]:
        print(f"split: {summary['groups_across_splits']} groups of near-identical shots lie in two of the given splits "
              "(the audit lists the pairs)")


if __name__ == "__main__":
    run(main)
