"""How good a model's test predictions are: scores per model and per class, ROC and
precision-recall curves, calibration before and after temperature scaling.

Every accuracy comes with its 95% confidence interval, as `<name>_ci95`:
Wilson's score interval for a share of images (accuracy, top-5, a class's
recall), a percentile bootstrap over the test images for balanced accuracy
(a mean of shares, which Wilson's does not cover).
"""

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics

from classifier.report import calibration

# Above this many classes eval.json keeps only the worst class: the per-class
# table (per_class()) goes to a CSV, or `dvc metrics show` would list hundreds of rows.
LISTED_CLASSES = 20


def wilson(right, total):
    """The 95% Wilson score interval of right / total, as {low, high}."""
    if not total:
        return None
    interval = stats.binomtest(int(right), int(total)).proportion_ci(confidence_level=0.95, method="wilson")
    return {"low": round(interval.low, 4), "high": round(interval.high, 4)}


def balanced_ci(y, predicted, seed=0):
    """A 95% percentile-bootstrap interval of balanced accuracy (1,000 resamples of the test images)."""
    result = stats.bootstrap((y, predicted), balanced_accuracy, paired=True, vectorized=True, n_resamples=1000,
                             method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return {"low": round(float(low), 4), "high": round(float(high), 4)}


def balanced_accuracy(truth, said, axis=-1):
    """scikit-learn's balanced_accuracy_score (the mean recall over the classes in `truth`)
    of each row: all the bootstrap's resamples at once, a hundred times faster than one
    call per resample."""
    rows = truth.ndim == 2
    truth, said = np.atleast_2d(truth), np.atleast_2d(said)
    k = int(max(truth.max(), said.max())) + 1
    cells = np.arange(len(truth))[:, None] * k + truth  # (resample, class) pairs, numbered
    support = np.bincount(cells.ravel(), minlength=truth.shape[0] * k).reshape(-1, k)
    right = np.bincount(cells[truth == said], minlength=truth.shape[0] * k).reshape(-1, k)
    with np.errstate(invalid="ignore"):  # a resample may miss a class: the mean is over those it has
        result = np.nanmean(np.where(support > 0, right / np.maximum(support, 1), np.nan), axis=1)
    return result if rows else result[0]


def with_ci(name, right, total):
    """{name: right / total, name_ci95: its Wilson interval}."""
    return {name: right / total if total else None, f"{name}_ci95": wilson(right, total)}


def per_class(y, probabilities, classes):
    """Precision, recall (with its interval), F1 and support of each class, worst recall first."""
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, predicted, labels=list(range(len(classes))), zero_division=0
    )
    right = np.bincount(y[predicted == y], minlength=len(classes))
    intervals = [wilson(r, s) or {"low": None, "high": None} for r, s in zip(right, support)]
    table = pd.DataFrame({
        "class": classes, "recall": recall, "recall_low": [i["low"] for i in intervals],
        "recall_high": [i["high"] for i in intervals], "precision": precision, "f1": f1, "support": support,
    })
    return table.sort_values(["recall", "support", "class"], ascending=[True, False, True], ignore_index=True)


def scores(y, probabilities, classes):
    """Accuracy and balanced accuracy with their intervals, loss, macro
    precision/recall/F1, the worst class, per-class scores (up to LISTED_CLASSES
    classes); ROC AUC and average precision for 2 classes; top-5 accuracy for more than 5."""
    predicted = probabilities.argmax(axis=1)
    labels = list(range(len(classes)))
    table = per_class(y, probabilities, classes)
    result = {
        **with_ci("accuracy", (predicted == y).sum(), len(y)),
        "balanced_accuracy": metrics.balanced_accuracy_score(y, predicted),
        "balanced_accuracy_ci95": balanced_ci(y, predicted),
        "loss": metrics.log_loss(y, probabilities, labels=labels),
        "precision": float(table.precision.mean()),
        "recall": float(table.recall.mean()),
        "f1": float(table.f1.mean()),
        "worst_class": {"name": table["class"][0], "recall": float(table.recall[0]), "support": int(table.support[0])},
    }
    if len(classes) == 2:
        result["roc_auc"] = metrics.roc_auc_score(y, probabilities[:, 1])
        result["average_precision"] = metrics.average_precision_score(y, probabilities[:, 1])
    if len(classes) > 5:
        top5 = metrics.top_k_accuracy_score(y, probabilities, k=5, labels=labels, normalize=False)
        result.update(with_ci("top5_accuracy", top5, len(y)))
    if len(classes) <= LISTED_CLASSES:
        result["per_class"] = {
            row["class"]: {"precision": row.precision, "recall": row.recall, "f1": row.f1, "support": int(row.support)}
            for _, row in table.sort_values("class").iterrows()
        }
    return result


def curves(y, probabilities):
    """ROC and precision-recall points: of the second class for 2 classes,
    micro-averaged over the classes (one vs. rest) for more."""
    if probabilities.shape[1] == 2:
        truth, score = y == 1, probabilities[:, 1]
    else:
        truth = np.eye(probabilities.shape[1])[y].ravel() == 1
        score = probabilities.ravel()
    fpr, tpr, _ = metrics.roc_curve(truth, score)
    precision, recall, _ = metrics.precision_recall_curve(truth, score)
    auc = metrics.auc(fpr, tpr)
    ap = metrics.average_precision_score(truth, score)
    return fpr, tpr, auc, recall, precision, ap


def calibrated(y, probabilities, temperature):
    """ECE and log loss before and after temperature scaling (accuracy is the same)."""
    scaled = calibration.scaled(probabilities, temperature)
    labels = list(range(probabilities.shape[1]))
    return {
        "ece": calibration.ece(probabilities, y),
        "temperature": temperature,
        "ece_calibrated": calibration.ece(scaled, y),
        "loss_calibrated": metrics.log_loss(y, scaled, labels=labels),
    }
