"""Stage `evaluate`: test-split metrics for the head-only and the fine-tuned model.

Writes metrics/eval.json, plots/test_predictions.csv (the data of the DVC
confusion plots) and PNG figures under plots/.
"""

import json

import keras
import matplotlib
import numpy as np
import pandas as pd
from sklearn import metrics

from stages import manifest, params
from stages.errors import run
from stages.features import load
from stages.inputs import batches
from stages.paths import EVAL_REPORT, HEAD, MODEL, PLOTS, TEST_PREDICTIONS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODELS = ("head", "finetune")


def scores(y, probabilities, classes):
    """Accuracy, loss, per-class and macro precision/recall/F1, ROC AUC for 2 classes."""
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
    result["per_class"] = {
        name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support)
    }
    return result


def confusion_png(y, predicted, classes, title, path):
    figure, axis = plt.subplots(figsize=(2 + 0.6 * len(classes), 1.5 + 0.6 * len(classes)))
    metrics.ConfusionMatrixDisplay.from_predictions(
        y, predicted, labels=range(len(classes)), display_labels=classes, ax=axis, colorbar=False
    )
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main():
    p = params.load()
    images = manifest.read()
    classes = manifest.classes(images)
    paths, y = manifest.rows(images, "test")
    x_test, _ = load("test")
    data = batches(paths, y, p.model.backbone, p.model.image_size, p.train.batch_size)
    probabilities = {
        "head": keras.models.load_model(HEAD).predict(x_test, verbose=0),
        "finetune": keras.models.load_model(MODEL).predict(data, verbose=0),
    }
    report = {name: scores(y, probabilities[name], classes) for name in MODELS}
    EVAL_REPORT.parent.mkdir(parents=True, exist_ok=True)
    EVAL_REPORT.write_text(json.dumps(report, indent=2) + "\n")

    PLOTS.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"path": paths, "actual": np.array(classes)[y]})
    for name in MODELS:
        predicted = probabilities[name].argmax(axis=1)
        table[name] = np.array(classes)[predicted]
        table[f"{name}_confidence"] = probabilities[name].max(axis=1).round(6)
        title = f"{name}: accuracy {report[name]['accuracy']:.3f}"
        confusion_png(y, predicted, classes, title, PLOTS / f"confusion_{name}.png")
    table.to_csv(TEST_PREDICTIONS, index=False)
    for name in MODELS:
        print(f"evaluate: {name} accuracy {report[name]['accuracy']:.4f} loss {report[name]['loss']:.4f}")


if __name__ == "__main__":
    run(main)
