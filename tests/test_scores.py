"""evaluate's scores and curves for more than two classes, against scikit-learn's own averages."""

import warnings

import numpy as np
import pytest
from sklearn import metrics

from classifier.report.scores import balanced_accuracy, curves, per_class, scores


@pytest.fixture
def three_classes():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    logits = rng.normal(size=(60, 3)) + 2.0 * np.eye(3)[y]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probabilities


def test_curves_are_micro_averaged_over_the_classes(three_classes):
    y, probabilities = three_classes
    fpr, tpr, auc, recall, precision, ap = curves(y, probabilities)
    onehot = np.eye(3)[y]
    assert auc == pytest.approx(metrics.roc_auc_score(onehot, probabilities, average="micro"))
    assert ap == pytest.approx(metrics.average_precision_score(onehot, probabilities, average="micro"))
    assert metrics.auc(fpr, tpr) == pytest.approx(auc)


def test_scores_per_class_and_top_k(three_classes):
    y, probabilities = three_classes
    result = scores(y, probabilities, ["a", "b", "c"])
    assert result["recall"] == pytest.approx(metrics.recall_score(y, probabilities.argmax(1), average="macro"))
    assert [result["per_class"][c]["support"] for c in "abc"] == [20, 20, 20]
    assert "top5_accuracy" not in result and "roc_auc" not in result  # top-5 needs six classes; AUC is two-class
    six = np.hstack([probabilities, np.zeros((60, 3))]) * 0.97 + 0.005
    assert scores(y, six, list("abcdef"))["top5_accuracy"] == 1.0  # the right class is always among the top 5


def test_every_accuracy_has_its_wilson_interval(three_classes):
    y, probabilities = three_classes
    result = scores(y, probabilities, ["a", "b", "c"])
    n, share, z = len(y), result["accuracy"], 1.959964
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    assert result["accuracy_ci95"] == pytest.approx({"low": centre - half, "high": centre + half}, abs=1e-4)
    assert result["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y, probabilities.argmax(1)))
    low, high = result["balanced_accuracy_ci95"]["low"], result["balanced_accuracy_ci95"]["high"]
    assert low < result["balanced_accuracy"] < high and high - low > 0.05  # 60 images: wide


def test_per_class_table_is_worst_first():
    y = np.array([0] * 10 + [1] * 10 + [2] * 4)
    predicted = np.array([0] * 9 + [1] + [1] * 10 + [2] + [0] * 3)  # recalls 0.9, 1.0, 0.25
    table = per_class(y, np.eye(3)[predicted], ["a", "b", "c"])
    assert table["class"].tolist() == ["c", "a", "b"] and table.recall.tolist() == [0.25, 0.9, 1.0]
    assert table.support.tolist() == [4, 10, 10]
    assert scores(y, np.eye(3)[predicted] * 0.97 + 0.01, ["a", "b", "c"])["worst_class"] == {
        "name": "c", "recall": 0.25, "support": 4}


def test_balanced_accuracy_of_every_resample_is_scikit_learns():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 12)
    predicted = np.where(rng.random(12) < 0.6, y, rng.integers(0, 4, 12))
    resamples = rng.integers(0, 12, (50, 12))  # small: many miss a class
    assert sum(len(np.unique(y[i])) < 4 for i in resamples) > 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class predicted but not in the resample
        expected = [metrics.balanced_accuracy_score(y[i], predicted[i]) for i in resamples]
    assert balanced_accuracy(y[resamples], predicted[resamples]) == pytest.approx(expected)
    assert balanced_accuracy(y, predicted) == pytest.approx(metrics.balanced_accuracy_score(y, predicted))
