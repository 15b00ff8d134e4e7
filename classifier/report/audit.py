"""What the audit finds in cached features: labels that look wrong (cleanlab on
out-of-sample probabilities), near-duplicates and the leaks between splits they
make, outliers, and the conflicting copies that clean dropped.
"""

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.multilabel_classification import filter as multilabel_filter
from cleanlab.multilabel_classification import rank as multilabel_rank
from cleanlab.outlier import OutOfDistribution
from cleanlab.rank import get_label_quality_scores
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from classifier.data import manifest
from classifier.files import read_features
from classifier.paths import REJECTED, SPLITS, clean_image, raw_label


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
    # One BLAS thread: the same probabilities on any number of cores (the sums'
    # order otherwise depends on it), and faster at these sizes (2,000 photos of
    # 200 classes on 2 cores: 22.6 s with two threads, 9.4 s with one).
    with threadpool_limits(1, user_api="blas"):
        return cross_val_predict(model, x, y, cv=cv, method="predict_proba")


def label_issues(table, y, probabilities, classes):
    """cleanlab's likely label errors, most likely first."""
    found = find_label_issues(y, probabilities, return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(y, probabilities)
    names = np.array(classes)
    return table.iloc[found].assign(
        suggestion=names[probabilities[found].argmax(axis=1)], score=scores[found].round(5)
    )[["path", "split", "label", "suggestion", "score"]]


def out_of_sample_sets(x, y, folds, seed):
    """The multi-label counterpart: each label's probability for every image from one
    logistic regression per label that never saw the image (y: rows of 0/1;
    folds stratified by every label at once)."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
    from sklearn.multiclass import OneVsRestClassifier

    model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=2000)))
    cv = MultilabelStratifiedKFold(folds, shuffle=True, random_state=seed)
    probabilities = np.zeros(y.shape)
    with threadpool_limits(1, user_api="blas"):  # as out_of_sample: the same on any number of cores
        for fitted_on, left_out in cv.split(x, y):
            probabilities[left_out] = model.fit(x[fitted_on], y[fitted_on]).predict_proba(x[left_out])
    return probabilities


def label_set_issues(table, y, probabilities, classes):
    """cleanlab's likely wrong label sets (its multi-label finder), most likely first;
    the suggestion is every label the out-of-sample model gives at least 0.5."""
    given = [list(np.flatnonzero(row)) for row in y]
    found = multilabel_filter.find_label_issues(given, probabilities, return_indices_ranked_by="self_confidence")
    scores = multilabel_rank.get_label_quality_scores(given, probabilities)
    suggestions = manifest.label_text(probabilities[found] >= 0.5, classes)
    return table.iloc[found].assign(suggestion=suggestions, score=scores[found].round(5))[
        ["path", "split", "label", "suggestion", "score"]]


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
