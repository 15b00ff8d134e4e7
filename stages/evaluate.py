"""Stage `evaluate`: test-split metrics for the head-only and the fine-tuned model.

Writes metrics/eval.json; the data of the DVC plots: plots/test_predictions.csv
(confusion matrices), plots/roc_<model>.csv and plots/pr_<model>.csv; and PNG
figures under plots/ (see stages/figures.py).
"""

import numpy as np
import pandas as pd
from sklearn import metrics

from stages import backbones, figures, manifest, params
from stages.errors import run
from stages.heads import probabilities as to_probabilities
from stages.inputs import batches
from stages.paths import (
    EVAL_REPORT, FINETUNE_LOG, HEAD, MODEL, PLOTS, TEST_PREDICTIONS, TRAIN_LOG, read_features, write_json,
)  # fmt: skip

MODELS = ("head", "finetune")


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


def main():
    p = params.load()
    backbones.check(p.model)
    images = manifest.read()
    classes = manifest.classes(images)
    paths, y = manifest.rows(images, "test")
    x_test, _ = read_features("test")
    data = batches(paths, y, p.model.image_size, p.train.batch_size)
    models = {"head": backbones.load_model(HEAD), "finetune": backbones.load_model(MODEL)}
    probabilities = {
        "head": to_probabilities(models["head"].predict(x_test, verbose=0)),
        "finetune": to_probabilities(models["finetune"].predict(data, verbose=0)),
    }
    report = {name: scores(y, probabilities[name], classes) for name in MODELS}
    for name, path in (("head", HEAD), ("finetune", MODEL)):
        report[name]["size_mb"] = round(path.stat().st_size / 2**20, 2)
        report[name]["parameters"] = models[name].count_params()
    write_json(EVAL_REPORT, report)

    PLOTS.mkdir(parents=True, exist_ok=True)
    names = np.array(classes)
    table = pd.DataFrame({"path": paths, "actual": names[y]})
    points = {}
    for name in MODELS:
        predicted = probabilities[name].argmax(axis=1)
        table[name] = names[predicted]
        table[f"{name}_confidence"] = probabilities[name].max(axis=1).round(6)
        points[name] = curves(y, probabilities[name])
        fpr, tpr, _, recall, precision, _ = points[name]
        pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(PLOTS / f"roc_{name}.csv", index=False)
        pd.DataFrame({"recall": recall, "precision": precision}).to_csv(PLOTS / f"pr_{name}.csv", index=False)
        title = f"{name}: test accuracy {report[name]['accuracy']:.3f}"
        figures.confusion(y, predicted, classes, title, PLOTS / f"confusion_{name}.png")
    table.to_csv(TEST_PREDICTIONS, index=False)
    figures.curves(points, PLOTS / "roc_pr.png")
    figures.training_curves({"head": TRAIN_LOG, "finetune": FINETUNE_LOG}, PLOTS / "training_curves.png")
    wrong = table.rename(columns={"finetune": "predicted", "finetune_confidence": "confidence"})
    figures.mistakes(wrong, PLOTS / "mistakes.png")
    for name in MODELS:
        print(f"evaluate: {name} accuracy {report[name]['accuracy']:.4f} loss {report[name]['loss']:.4f}")


if __name__ == "__main__":
    run(main)
