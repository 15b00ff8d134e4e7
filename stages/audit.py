"""Stage `audit`: which labels look wrong, which images are near-copies (and
leak from train into val or test), which look like none of the classes.

Reads the cached features, the manifest and clean's report; runs no backbone.
Changes no data: a user reviews the findings and lists the paths to drop in
data/exclude.csv, which `split` reads.

Writes reports/audit/: label_issues.csv (given label, suggestion, score),
near_duplicates.csv (pairs and their cosine similarity), outliers.csv,
conflicts.csv (identical pictures under two labels, from clean), flagged.csv
(every flagged image and why, read by evaluate), PNG galleries of the top
findings; and metrics/audit.json (counts, leakage per split, the share of the
test split that is suspect).
"""

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.outlier import OutOfDistribution
from cleanlab.rank import get_label_quality_scores
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from classifier import params
from classifier.data import manifest
from classifier.errors import run
from classifier.paths import (
    AUDIT,
    AUDIT_REPORT,
    FLAGGED,
    REJECTED,
    SPLITS,
    clean_image,
    raw_label,
    read_features,
    write_json,
)  # fmt: skip
from classifier.report import figures


def pooled_features(images):
    """Every split's cached features as one array, in manifest order."""
    rows = [read_features(split)[0] for split in SPLITS]
    x = np.concatenate([r.reshape(len(r), -1) for r in rows]).astype("float32")
    table = pd.concat([images[images.split == split] for split in SPLITS], ignore_index=True)
    return x, table


def out_of_sample(x, y, folds, seed):
    """Class probabilities of every image from a logistic regression that never saw it."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, x, y, cv=cv, method="predict_proba")


def label_issues(table, y, probabilities, classes):
    """cleanlab's likely label errors, most likely first."""
    found = find_label_issues(y, probabilities, return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(y, probabilities)
    names = np.array(classes)
    return table.iloc[found].assign(
        suggestion=names[probabilities[found].argmax(axis=1)], score=scores[found].round(5)
    )[["path", "split", "label", "suggestion", "score"]]


def near_duplicates(table, x, threshold, block=1024):
    """Pairs with cosine similarity of their features above `threshold`, most similar first."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    pairs = []
    for start in range(0, len(unit), block):
        similarity = unit[start : start + block] @ unit.T
        for i, j in zip(*np.nonzero(similarity > threshold)):
            if start + i < j:
                pairs.append((start + i, j, similarity[i, j]))
    first, second, score = (np.array(column) for column in zip(*pairs)) if pairs else ([], [], [])
    a, b = table.iloc[list(first)].reset_index(drop=True), table.iloc[list(second)].reset_index(drop=True)
    found = pd.DataFrame({
        "path": a.path, "split": a.split, "label": a.label,
        "duplicate_path": b.path, "duplicate_split": b.split, "duplicate_label": b.label,
        "similarity": np.round(score, 5),
    })  # fmt: skip
    return found.sort_values("similarity", ascending=False, ignore_index=True)


def leaks(duplicates):
    """Val and test images with a near-duplicate in train."""
    rows = []
    for mine, other in (("", "duplicate_"), ("duplicate_", "")):
        part = duplicates[(duplicates[f"{mine}split"] != "train") & (duplicates[f"{other}split"] == "train")]
        rows.append(pd.DataFrame({"path": part[f"{mine}path"], "split": part[f"{mine}split"]}))
    return pd.concat(rows).drop_duplicates("path")


def outliers(table, x, share):
    """The `share` of images that look least like the rest (cleanlab's out-of-distribution score)."""
    scores = OutOfDistribution().fit_score(features=x, verbose=False)
    count = int(np.ceil(share * len(table)))
    order = np.argsort(scores)[:count]
    return table.iloc[order].assign(score=scores[order].round(5))[["path", "split", "label", "score"]]


def conflicts():
    """Identical pictures that clean found under two labels: the copy it dropped, and
    the clean image it kept (one of the two labels is wrong)."""
    rejected = pd.read_csv(REJECTED)
    found = rejected[rejected.reason == "conflict"]
    kept = found.detail.str.removeprefix("same pixels as ")
    return pd.DataFrame({
        "path": found.path, "label": found.path.map(raw_label),
        "kept": kept.map(lambda path: str(clean_image(path))),
        "kept_label": kept.map(raw_label),
    })  # fmt: skip


def flagged(issues, leaked, strange, conflicted, table):
    """Every image some finding points at, with the findings."""
    found = pd.concat([
        issues.path.to_frame().assign(finding="label_issue"),
        leaked.path.to_frame().assign(finding="leak"),
        strange.path.to_frame().assign(finding="outlier"),
        conflicted.kept.rename("path").to_frame().assign(finding="conflict"),
    ])  # fmt: skip
    found = found[found.path.isin(table.path)]
    grouped = found.groupby("path", sort=True).finding.agg(lambda f: " ".join(sorted(set(f))))
    return table.set_index("path").loc[grouped.index, ["split", "label"]].assign(findings=grouped).reset_index()


def main():
    p = params.load()
    a = p.audit
    images = manifest.read()
    classes = manifest.classes(images)
    x, table = pooled_features(images)
    y = table.label.map(classes.index).to_numpy()
    probabilities = out_of_sample(x, y, a.folds, p.split.seed)
    issues = label_issues(table, y, probabilities, classes)
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
        "out_of_sample_accuracy": float((probabilities.argmax(axis=1) == y).mean()),
        "test_suspect_share": round(float((suspects.split == "test").sum()) / test_size, 5),
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
