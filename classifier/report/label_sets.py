"""Several labels per photo: each label's calibration and decision threshold, fitted
on the val split, and the scores of label sets.

Each label's sigmoid output is calibrated by Platt scaling (a logistic regression
of the label on the output's logit, fitted on val; Platt, 1999, with his targets
(positives + 1) / (positives + 2) and 1 / (negatives + 2), so that val photos
the model separates perfectly give a finite slope): unlike one temperature for
all, it moves each label's scores where its own val photos say. Its threshold
is then half the best F1 the label reaches on val: for a calibrated score that
is the threshold that maximises F1 (Lipton, Elkan and Naryanaswamy, 2014), and
it rests on the whole F1 curve, where the F1-best val threshold itself rests on
the one or two val photos at its edge. On the MIML scenes (5 seeds) it gave a
higher test macro F1 than a global 0.5 on every seed, and the F1-best val
threshold a lower one (bench/label_thresholds.py, bench/RESULTS.md). Where a
label has fewer than MIN_POSITIVES val photos (or no val photo without it),
neither can be fitted on so few: it keeps its output as it is and the
threshold 0.5.

Scores (sklearn's): mean average precision and F1, macro (each label alike) and
micro (each decision alike), subset accuracy (the whole set right) and Hamming
loss (the share of wrong decisions), each with a 95% percentile-bootstrap
interval over photos.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.linear_model import LogisticRegression

MIN_POSITIVES = 5
FALLBACK_THRESHOLD = 0.5
RESAMPLES = 1000


def logit(probabilities):
    p = np.clip(np.asarray(probabilities, dtype="float64"), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def judged(truth):
    """Whether a label's val photos can fit a calibration and a threshold."""
    positives = int(truth.sum())
    return positives >= MIN_POSITIVES and positives < len(truth)


def fit_platt(probabilities, y):
    """Per label [a, b]: calibrated = sigmoid(a * logit(p) + b); [1, 0] (as it is)
    for a label its val photos cannot judge."""
    fitted = []
    for label in range(y.shape[1]):
        truth = y[:, label]
        if not judged(truth):
            fitted.append([1.0, 0.0])
            continue
        positives = truth.sum()
        target = np.where(truth == 1, (positives + 1) / (positives + 2), 1 / (len(truth) - positives + 2))
        # Soft targets as two weighted copies of each photo; ~no penalty: Platt's fit.
        x = np.tile(logit(probabilities[:, label]), 2)[:, None]
        model = LogisticRegression(C=1e6).fit(x, np.repeat([1, 0], len(truth)),
                                              sample_weight=np.concatenate([target, 1 - target]))
        fitted.append([float(model.coef_[0, 0]), float(model.intercept_[0])])
    return fitted


def calibrated(probabilities, platt):
    a, b = np.asarray(platt, dtype="float64").T
    return 1 / (1 + np.exp(-(a * logit(probabilities) + b)))


def best_f1(scores, truth):
    """The highest F1 any threshold on these scores gives."""
    precision, recall, _ = metrics.precision_recall_curve(truth, scores)
    with np.errstate(invalid="ignore"):
        return float(np.nan_to_num(2 * precision * recall / (precision + recall)).max())


def fit_thresholds(calibrated_val, y):
    """Per label: half the best F1 on val, or FALLBACK_THRESHOLD."""
    return [best_f1(calibrated_val[:, label], y[:, label]) / 2 if judged(y[:, label]) else FALLBACK_THRESHOLD
            for label in range(y.shape[1])]


SCORES = ("map_macro", "map_micro", "f1_macro", "f1_micro", "subset_accuracy", "hamming_loss")


def scores(y, probabilities, thresholds, seed=0):
    """{name: value, name_ci95: {low, high}} for each of SCORES; `probabilities`
    calibrated, a label said where it reaches its threshold. The interval: the
    2.5 and 97.5 percentiles over RESAMPLES bootstrap draws of the photos, each
    draw computed at once as weights (how often each photo was drawn)."""
    y, said = np.asarray(y).astype(bool), probabilities >= np.asarray(thresholds)
    point = weighted(y, probabilities, said, np.ones((1, len(y))))
    draws = np.random.default_rng(seed).multinomial(len(y), np.full(len(y), 1 / len(y)), size=RESAMPLES)
    chunks = [weighted(y, probabilities, said, part) for part in np.array_split(draws, 10)]  # bounded memory
    result = {}
    for name in SCORES:
        low, high = np.percentile(np.concatenate([chunk[name] for chunk in chunks]), [2.5, 97.5])
        result[name] = round(float(point[name][0]), 4)
        result[f"{name}_ci95"] = {"low": round(float(low), 4), "high": round(float(high), 4)}
    return result


def weighted(y, p, said, w):
    """Each of SCORES, as scikit-learn computes it (zero_division 0), on the photos
    counted w times: one value per row of w (draws x photos)."""
    w = w.astype("float64")
    tp, fp, fn = w @ (said & y), w @ (said & ~y), w @ (~said & y)  # draws x labels
    labels = y.shape[1]
    return {
        "map_macro": np.mean([average_precision(w, y[:, label], p[:, label]) for label in range(labels)], axis=0),
        "map_micro": average_precision(np.repeat(w, labels, axis=1), y.ravel(), p.ravel()),
        "f1_macro": ratio(2 * tp, 2 * tp + fp + fn).mean(axis=1),
        "f1_micro": ratio(2 * tp.sum(axis=1), (2 * tp + fp + fn).sum(axis=1)),
        "subset_accuracy": w @ (said == y).all(axis=1) / w.sum(axis=1),
        "hamming_loss": w @ (said != y).mean(axis=1) / w.sum(axis=1),
    }


def ratio(a, b):
    return np.divide(a, b, out=np.zeros_like(a, dtype="float64"), where=b > 0)


def average_precision(w, truth, score):
    """scikit-learn's average precision of one label, per row of weights w: the
    precision at each distinct score (ties taken together), weighed by the
    positives there; 0 without a positive, as scikit-learn gives."""
    order = np.argsort(-score, kind="stable")
    ordered, hits, w = score[order], w[:, order] * truth[order], w[:, order]
    ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    tie_end = ends[np.searchsorted(ends, np.arange(len(ordered)))]  # each photo's last tie
    precision = ratio(np.cumsum(hits, axis=1)[:, tie_end], np.cumsum(w, axis=1)[:, tie_end])
    return ratio((hits * precision).sum(axis=1), hits.sum(axis=1))


def per_label(y, probabilities, thresholds, labels):
    """Each label's precision, recall, F1 (at its threshold), average precision and
    support (test photos with it), the lowest F1 first."""
    said = probabilities >= np.asarray(thresholds)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y, said, zero_division=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a label with no test photo: AP undefined
        ap = metrics.average_precision_score(y, probabilities, average=None)
    table = pd.DataFrame({"label": labels, "threshold": np.round(thresholds, 4), "precision": precision.round(4),
                          "recall": recall.round(4), "f1": f1.round(4), "ap": np.round(ap, 4), "support": support})
    return table.sort_values(["f1", "label"], kind="stable").reset_index(drop=True)
