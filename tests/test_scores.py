"""evaluate's scores and curves for more than two classes, against scikit-learn's own averages."""

import numpy as np
import pytest
from sklearn import metrics

from classifier.report.scores import curves, scores


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
