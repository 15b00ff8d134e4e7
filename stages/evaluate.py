"""Stage `evaluate`: test-split metrics for the head-only and the fine-tuned model.

Writes metrics/eval.json (scores, also on the test images the audit did not
flag; calibration before and after temperature scaling; with evaluate.tta,
flip averaging); the data of the DVC plots: plots/test_predictions.csv
(confusion matrices), plots/roc_<model>.csv, plots/pr_<model>.csv and
plots/reliability_<model>.csv; and PNG figures under plots/ (see
stages/figures.py), Grad-CAM galleries among them.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics
from tqdm import tqdm

from classifier.data import manifest
from classifier.data.inputs import batches, decode
from classifier.errors import run
from classifier.model import backbones, registry
from classifier.model.heads import probabilities as to_probabilities
from classifier.paths import (
    EVAL_REPORT,
    FINETUNE_LOG,
    FLAGGED,
    HEAD,
    MODEL,
    PLOTS,
    TEST_PREDICTIONS,
    TRAIN_LOG,
    model_info,
    read_features,
    read_json,
    write_json,
)  # fmt: skip
from classifier.report import calibration, figures, gradcam
from classifier.runtime import engines, tta

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


def passes(predict, data, count, desc):
    """predict(images) over the test batches, with a progress bar."""
    rows = []
    with tqdm(total=count, desc=desc, unit="img") as bar:
        for images, _ in data:
            rows.append(predict(images.numpy()))
            bar.update(len(images))
    return np.concatenate(rows)


def flip_averaged(predict, data, y):
    """Test accuracy and loss with test-time flip averaging."""
    probabilities = passes(lambda images: tta.flip_average(predict, images), data, len(y), "evaluate: flip averaging")
    labels = list(range(probabilities.shape[1]))
    return {"accuracy": metrics.accuracy_score(y, probabilities.argmax(axis=1)),
            "loss": metrics.log_loss(y, probabilities, labels=labels)}


def explanations(model, rows, size):
    """Grad-CAM heatmaps of the fine-tuned model's predicted class for these test rows."""
    if rows.empty:
        return []
    pixels = np.stack([decode(Path(path).read_bytes(), size).numpy() for path in rows.path])
    return gradcam.heatmaps(model, pixels)[0]


def predict_test(p, models, paths, y):
    """Each model's class probabilities on the test split, and the fine-tuned model's
    batch predictor (on runtime.engine) with its data, for flip averaging."""
    x_test, _ = read_features("test")
    data = batches(paths, y, p.model.image_size, p.train.batch_size)
    forward = engines.forward(models["finetune"], p.runtime.engine, next(iter(data))[0].numpy())
    predict = lambda images: to_probabilities(forward(images))  # noqa: E731
    probabilities = {
        "head": to_probabilities(models["head"].predict(x_test, verbose=0)),
        "finetune": passes(predict, data, len(y), "evaluate: test"),
    }
    return probabilities, predict, data


def temperatures(models):
    """The head's, fitted here on the validation split; the fine-tuned model's, fitted by finetune."""
    x_val, y_val = read_features("val")
    return {
        "head": calibration.fit_temperature(to_probabilities(models["head"].predict(x_val, verbose=0)), y_val),
        "finetune": read_json(model_info(MODEL))["temperature"],
    }


def score(models, paths, y, classes, probabilities, temperature):
    """metrics/eval.json's scores per model."""
    report = {name: scores(y, probabilities[name], classes) for name in MODELS}
    unflagged = ~np.isin(paths, pd.read_csv(FLAGGED).path)  # what the audit did not question
    for name, path in (("head", HEAD), ("finetune", MODEL)):
        report[name]["accuracy_unflagged"] = (
            metrics.accuracy_score(y[unflagged], probabilities[name][unflagged].argmax(1)) if unflagged.any() else None
        )
        report[name]["calibration"] = calibrated(y, probabilities[name], temperature[name])
        report[name]["size_mb"] = round(path.stat().st_size / 2**20, 2)
        report[name]["parameters"] = models[name].count_params()
    return report


def write_tables(paths, y, classes, probabilities, temperature):
    """The data of the DVC plots: test predictions, ROC, precision-recall and
    reliability per model. Returns the predictions table."""
    PLOTS.mkdir(parents=True, exist_ok=True)
    names = np.array(classes)
    table = pd.DataFrame({"path": paths, "actual": names[y]})
    for name in MODELS:
        table[name] = names[probabilities[name].argmax(axis=1)]
        table[f"{name}_confidence"] = probabilities[name].max(axis=1).round(6)
        fpr, tpr, _, recall, precision, _ = curves(y, probabilities[name])
        pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(PLOTS / f"roc_{name}.csv", index=False)
        pd.DataFrame({"recall": recall, "precision": precision}).to_csv(PLOTS / f"pr_{name}.csv", index=False)
        bins = calibration.reliability(probabilities[name], y)
        pd.DataFrame(bins, columns=["confidence", "accuracy", "images"]).to_csv(PLOTS / f"reliability_{name}.csv", index=False)
    scaled = calibration.scaled(probabilities["finetune"], temperature["finetune"])
    table["finetune_calibrated"] = scaled.max(axis=1).round(6)
    table.to_csv(TEST_PREDICTIONS, index=False)
    return table


def draw(report, table, y, classes, probabilities, temperature, model, size):
    """The PNG figures: confusion matrices, curves, reliability, Grad-CAM galleries."""
    for name in MODELS:
        title = f"{name}: test accuracy {report[name]['accuracy']:.3f}"
        figures.confusion(y, probabilities[name].argmax(axis=1), classes, title, PLOTS / f"confusion_{name}.png")
    figures.curves({name: curves(y, probabilities[name]) for name in MODELS}, PLOTS / "roc_pr.png")
    figures.training_curves({"head": TRAIN_LOG, "finetune": FINETUNE_LOG}, PLOTS / "training_curves.png")
    figures.reliability({name: (probabilities[name], temperature[name]) for name in MODELS}, y,
                        PLOTS / "reliability.png")
    judged = table.rename(columns={"finetune": "predicted", "finetune_confidence": "confidence"})
    wrong, right = figures.mistaken(judged), figures.typical(judged)
    figures.gallery(wrong, explanations(model, wrong, size), PLOTS / "mistakes.png",
                    "most confident mistakes of the fine-tuned model, and where it looked (Grad-CAM)")
    figures.gallery(right, explanations(model, right, size), PLOTS / "explained.png",
                    "right, and sure: where the fine-tuned model looks for each class (Grad-CAM)")


def main():
    p, recipe = registry.load()
    images = manifest.read()
    classes = manifest.classes(images)
    paths, y = manifest.rows(images, "test")
    models = {"head": backbones.load_model(HEAD), "finetune": backbones.load_model(MODEL)}
    probabilities, predict, data = predict_test(p, models, paths, y)
    temperature = temperatures(models)
    report = score(models, paths, y, classes, probabilities, temperature)
    if p.evaluate.tta:
        report["finetune"]["tta"] = flip_averaged(predict, data, y)
    report["recipe"] = recipe  # what `auto` in params.yaml resolved to: what ran
    write_json(EVAL_REPORT, report)
    table = write_tables(paths, y, classes, probabilities, temperature)
    draw(report, table, y, classes, probabilities, temperature, models["finetune"], p.model.image_size)
    for name in MODELS:
        print(f"evaluate: {name} accuracy {report[name]['accuracy']:.4f} loss {report[name]['loss']:.4f} "
              f"ECE {report[name]['calibration']['ece']:.4f} -> {report[name]['calibration']['ece_calibrated']:.4f} "
              f"(T = {temperature[name]:.2f})")
    if p.evaluate.tta:
        print(f"evaluate: finetune with flip averaging: accuracy {report['finetune']['tta']['accuracy']:.4f}")


if __name__ == "__main__":
    run(main)
