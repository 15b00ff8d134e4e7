"""Stage `audit`: which labels look wrong, which images are near-copies (and
leak from train into val or test), which look like none of the classes.

Reads the cached features, the manifest and clean's report; runs no backbone.
Changes no data: a user reviews the findings and lists the paths to drop in
data/exclude.csv, which `split` reads.

Writes reports/audit/: label_issues.csv (given label, suggestion, score; with
several labels per photo, the given label set and the suggested one),
near_duplicates.csv (pairs and their cosine similarity), outliers.csv,
conflicts.csv (identical pictures under two labels, from clean), flagged.csv
(every flagged image and why, read by evaluate), PNG galleries of the top
findings; and metrics/audit.json (counts, leakage per split, the share of the
test split that is suspect).
"""

import time

from classifier import params
from classifier.data import manifest
from classifier.errors import run
from classifier.files import write_json
from classifier.paths import AUDIT, AUDIT_REPORT, FLAGGED
from classifier.report import figures
from classifier.report.audit import (
    conflicts,
    flagged,
    label_issues,
    label_set_issues,
    leaks,
    near_duplicates,
    out_of_sample,
    out_of_sample_sets,
    outliers,
    pooled_features,
)


def wrong_labels(p, classes, x, table):
    """cleanlab's likely label errors on out-of-sample probabilities, and how often
    those probabilities are right (the class; with several labels per photo, the
    whole set at 0.5)."""
    if p.model.task == "multi_label":
        y = manifest.label_sets(table.label, classes)
        probabilities = out_of_sample_sets(x, y, p.audit.folds, p.split.seed)
        return label_set_issues(table, y, probabilities, classes), float(((probabilities >= 0.5) == y).all(axis=1).mean())
    y = table.label.map(classes.index).to_numpy()
    probabilities = out_of_sample(x, y, p.audit.folds, p.split.seed)
    return label_issues(table, y, probabilities, classes), float((probabilities.argmax(axis=1) == y).mean())


def main():
    start = time.perf_counter()
    p = params.load()
    a = p.audit
    images = manifest.read()
    x, table = pooled_features(images)
    issues, accuracy = wrong_labels(p, manifest.classes(images, p.model.task), x, table)
    duplicates = near_duplicates(table, x, a.duplicate_similarity)
    leaked = leaks(duplicates)
    strange = outliers(table, x, a.outliers)
    conflicted = conflicts()
    suspects = flagged(issues, leaked, strange, conflicted, table)

    AUDIT.mkdir(parents=True, exist_ok=True)
    for name, frame in (("label_issues", issues), ("near_duplicates", duplicates), ("outliers", strange),
                        ("conflicts", conflicted)):
        frame.to_csv(AUDIT / f"{name}.csv", index=False)
    suspects.to_csv(FLAGGED, index=False)
    test_size = int((table.split == "test").sum())
    write_json(AUDIT_REPORT, {
        "images": len(table),
        "label_issues": len(issues),
        "near_duplicate_pairs": len(duplicates),
        "outliers": len(strange),
        "conflicts": len(conflicted),
        "leakage": {split: int((leaked.split == split).sum()) for split in ("val", "test")},
        "out_of_sample_accuracy": accuracy,
        "test_suspect_share": round(float((suspects.split == "test").sum()) / test_size, 5),
        "seconds": round(time.perf_counter() - start, 1),
    })  # fmt: skip
    top = a.gallery
    figures.audit_gallery(issues.head(top), "{label}, looks like {suggestion}\nscore {score:.3f}",
                          AUDIT / "label_issues.png", "most likely wrong labels (cleanlab, out-of-sample)")
    figures.audit_gallery(strange.head(top), "{label} ({split})\nscore {score:.3f}",
                          AUDIT / "outliers.png", "least like the rest (cleanlab out-of-distribution score)")
    figures.pairs_gallery(duplicates.head(top), AUDIT / "near_duplicates.png")
    print(f"audit: {len(issues)} label issues, {len(duplicates)} near-duplicate pairs "
          f"({len(leaked)} val/test images leak from train), {len(strange)} outliers, {len(conflicted)} conflicts")


if __name__ == "__main__":
    run(main)
