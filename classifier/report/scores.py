"""How good a model's test predictions are: scores per model and per class, ROC and
precision-recall curves, calibration before and after temperature scaling.
"""

import numpy as np
from sklearn import metrics

from classifier.report import calibration


def scores(y, probabilities, classes):
    """Accuracy, loss, per-class and macro precision/recall/F1; ROC AUC and average
    precision for 2 classes; top-5 accuracy for more than 5."""
    predicted = probabilities.argmax(axis=1)
    labels = list(range(len(classes)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    result = {
        "accuracy": metrics.accuracy_score(y, predicted),
        "loss": metrics.log_loss(y, probabilities, labels=labels),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }
    if len(classes) == 2:
        result["roc_auc"] = metrics.roc_auc_score(y, probabilities[:, 1])
        result["average_precision"] = metrics.average_precision_score(y, probabilities[:, 1])
    if len(classes) > 5:
        result["top5_accuracy"] = metrics.top_k_accuracy_score(y, probabilities, k=5, labels=labels)
    result["per_class"] = {
        name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support)
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
