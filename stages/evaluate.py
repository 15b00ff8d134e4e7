"""Stage `evaluate`: test-split metrics for the head-only and the fine-tuned model.

Writes metrics/eval.json (scores, also on the test images the audit did not
flag; calibration before and after temperature scaling; with evaluate.tta,
flip averaging; every accuracy with its 95% interval, classifier/report/scores.py);
plots/per_class_<model>.csv (each class's scores, worst recall first); the data of the DVC plots: plots/test_predictions.csv
(confusion matrices), plots/roc_<model>.csv, plots/pr_<model>.csv and
plots/reliability_<model>.csv; the share of test photos the unknown check
flags (their scores in test_predictions.csv); and PNG figures under plots/ (see
classifier/report/figures.py), Grad-CAM galleries among them.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics

from classifier.data import manifest
from classifier.data.inputs import batches, decode
from classifier.errors import run
from classifier.files import read_features, read_json, write_json
from classifier.model import backbones, registry, tasks, unknown
from classifier.paths import (
    EVAL_REPORT,
    FINETUNE_LOG,
    FLAGGED,
    HEAD,
    MODEL,
    PLOTS,
    TEST_PREDICTIONS,
    TRAIN_LOG,
    TRAIN_REPORT,
    UNKNOWN,
    UNKNOWN_INFO,
    model_info,
)
from classifier.report import calibration, figures, gradcam, label_sets
from classifier.report.scores import calibrated, curves, per_class, scores, with_ci
from classifier.runtime import engines
from classifier.runtime.passes import flip_averaged, passes

MODELS = ("head", "finetune")


def explanations(model, rows, size):
    """Grad-CAM heatmaps of the fine-tuned model's predicted class for these test rows."""
    if rows.empty:
        return []
    pixels = np.stack([decode(Path(path).read_bytes(), size).numpy() for path in rows.path])
    return gradcam.heatmaps(model, pixels)[0]


def predict_test(p, models, paths, y, task):
    """Each model's class probabilities on the test split, the fine-tuned model's
    unknown scores, and its batch predictor (on runtime.engine) with its data,
    for flip averaging."""
    x_test, _ = read_features("test")
    data = batches(paths, y, p.model.image_size, p.train.batch_size)
    checked = unknown.with_score(models["finetune"], backbones.load_model(UNKNOWN))
    forward = engines.forward(checked, p.runtime.engine, next(iter(data))[0].numpy())
    predict = lambda images: task.probabilities(forward(images)["probabilities"])  # noqa: E731
    tuned = passes(forward, data, len(y), "evaluate: test")
    probabilities = {
        "head": task.probabilities(models["head"].predict(x_test, verbose=0)),
        "finetune": task.probabilities(tuned["probabilities"]),
    }
    return probabilities, tuned["unknown_score"], predict, data


def flagged(scores, check):
    """eval.json's unknown: the share of test photos the check flags, with its interval."""
    count = int((scores > check["threshold"]).sum())
    return {**with_ci("flagged", count, len(scores)), "threshold": check["threshold"], "k": check["k"],
            "pass_share": check["pass_share"]}


def promise_broken(unknown):
    """A line where the share of test photos flagged is, beyond its 95% interval, not
    the 1 - unknown.pass_share promised; None where it holds."""
    promised, interval = 1 - unknown["pass_share"], unknown["flagged_ci95"]
    if interval is None or interval["low"] <= promised <= interval["high"]:
        return None
    return (f"the unknown check flags {unknown['flagged']:.1%} of the test photos ({interval['low']:.1%} to "
            f"{interval['high']:.1%}), not the {promised:.0%} that unknown.pass_share = {unknown['pass_share']} "
            "promises: docs/unknown.md says why and what to do")


def calibrations(models, task):
    """How each model's outputs are calibrated (and, for several labels per photo,
    decided): the head's fitted here on the validation split, the fine-tuned
    model's by finetune (model.json)."""
    x_val, y_val = read_features("val")
    return {"head": task.calibration(task.probabilities(models["head"].predict(x_val, verbose=0)), y_val),
            "finetune": read_json(model_info(MODEL))}


def score(models, paths, y, classes, probabilities, temperature):
    """metrics/eval.json's scores per model."""
    report = {name: scores(y, probabilities[name], classes) for name in MODELS}
    unflagged = ~np.isin(paths, pd.read_csv(FLAGGED).path)  # what the audit did not question
    val_images = len(read_features("val")[1])  # what fitted the temperatures
    for name, path in (("head", HEAD), ("finetune", MODEL)):
        right = (probabilities[name][unflagged].argmax(1) == y[unflagged]).sum()
        report[name].update(with_ci("accuracy_unflagged", right, unflagged.sum()))
        report[name]["calibration"] = calibrated(y, probabilities[name], temperature[name])
        report[name]["calibration"]["val_images"] = val_images
        report[name]["size_mb"] = round(path.stat().st_size / 2**20, 2)
        report[name]["parameters"] = models[name].count_params()
    return report


def write_tables(paths, y, classes, probabilities, temperature, scores, threshold):
    """The data of the DVC plots: test predictions, ROC, precision-recall and
    reliability per model. Returns the predictions table."""
    PLOTS.mkdir(parents=True, exist_ok=True)
    names = np.array(classes)
    table = pd.DataFrame({"path": paths, "actual": names[y]})
    for name in MODELS:
        per_class(y, probabilities[name], classes).to_csv(PLOTS / f"per_class_{name}.csv", index=False)
        table[name] = names[probabilities[name].argmax(axis=1)]
        table[f"{name}_confidence"] = probabilities[name].max(axis=1).round(6)
        fpr, tpr, _, recall, precision, _ = curves(y, probabilities[name])
        pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(PLOTS / f"roc_{name}.csv", index=False)
        pd.DataFrame({"recall": recall, "precision": precision}).to_csv(PLOTS / f"pr_{name}.csv", index=False)
        bins = calibration.reliability(probabilities[name], y)
        pd.DataFrame(bins, columns=["confidence", "accuracy", "images"]).to_csv(PLOTS / f"reliability_{name}.csv", index=False)
    scaled = calibration.scaled(probabilities["finetune"], temperature["finetune"])
    table["finetune_calibrated"] = scaled.max(axis=1).round(6)
    table["unknown_score"], table["unknown"] = scores.round(6), scores > threshold
    table.to_csv(TEST_PREDICTIONS, index=False)
    return table


def draw(report, table, y, classes, probabilities, temperature, model, size):
    """The PNG figures: confusion matrices, curves, reliability, Grad-CAM galleries."""
    for name in MODELS:
        title = f"{name}: test accuracy {report[name]['accuracy']:.3f}"
        figures.confusion(y, probabilities[name].argmax(axis=1), classes, title, PLOTS / f"confusion_{name}.png")
    figures.curves({name: curves(y, probabilities[name]) for name in MODELS}, PLOTS / "roc_pr.png")
    figures.training_curves({"head": TRAIN_LOG, "finetune": FINETUNE_LOG}, PLOTS / "training_curves.png")
    figures.reliability({name: calibration.before_after(probabilities[name], y, temperature[name]) for name in MODELS},
                        PLOTS / "reliability.png")
    figures.unknown_scores(table.unknown_score.to_numpy(), report["finetune"]["unknown"]["threshold"],
                           PLOTS / "unknown_scores.png")
    judged = table.rename(columns={"finetune": "predicted", "finetune_confidence": "confidence"})
    wrong, right = figures.mistaken(judged), figures.typical(judged)
    figures.gallery(wrong, explanations(model, wrong, size), PLOTS / "mistakes.png",
                    "most confident mistakes of the fine-tuned model, and where it looked (Grad-CAM)")
    figures.gallery(right, explanations(model, right, size), PLOTS / "explained.png",
                    "right, and sure: where the fine-tuned model looks for each class (Grad-CAM)")


def main():
    p, recipe = registry.load()
    task = tasks.of(p)
    images = manifest.read()
    classes = manifest.classes(images, task.name)
    paths, y = manifest.rows(images, "test", task.name)
    models = {"head": backbones.load_model(HEAD), "finetune": backbones.load_model(MODEL)}
    probabilities, unknown_scores, predict, data = predict_test(p, models, paths, y, task)
    check = read_json(UNKNOWN_INFO)
    trained = read_json(TRAIN_REPORT)["head"]  # what train ran: the head it kept, the class weights it used
    # What `auto` in params.yaml resolved to: what ran.
    recipe = {**recipe, "head.type": trained["type"],
              "train.class_weight": trained.get("class_weight", p.train.class_weight)}
    unknown_report = flagged(unknown_scores, check)
    tested = Tested(paths, y, classes, models, probabilities, calibrations(models, task), unknown_scores, check,
                    unknown_report, recipe)
    REPORTS[task.name](p, tested, predict, data)
    print(f"evaluate: the unknown check flags {unknown_report['flagged']:.1%} of the test photos "
          f"(threshold {check['threshold']:.4f})")
    broken = promise_broken(unknown_report)
    if broken:
        print(f"evaluate: warning: {broken}")


@dataclass
class Tested:
    """What both tasks' reports start from: the test split, each model's
    probabilities and calibration, the unknown check's scores and eval.json's part
    for it, and the recipe."""
    paths: list
    y: np.ndarray
    classes: list
    models: dict
    probabilities: dict
    calibration: dict
    unknown_scores: np.ndarray
    check: dict
    unknown: dict
    recipe: dict


def one_class_per_photo(p, tested, predict, data):
    """eval.json, the tables and figures of a single-label model."""
    paths, y, classes, models, probabilities = tested.paths, tested.y, tested.classes, tested.models, tested.probabilities
    temperature = {name: tested.calibration[name]["temperature"] for name in MODELS}
    report = score(models, paths, y, classes, probabilities, temperature)
    report["finetune"]["unknown"] = tested.unknown
    if p.evaluate.tta:
        report["finetune"]["tta"] = flip_averaged(predict, data, y)
    report["recipe"] = tested.recipe
    write_json(EVAL_REPORT, report)
    table = write_tables(paths, y, classes, probabilities, temperature, tested.unknown_scores, tested.check["threshold"])
    draw(report, table, y, classes, probabilities, temperature, models["finetune"], p.model.image_size)
    for name in MODELS:
        print(f"evaluate: {name} accuracy {report[name]['accuracy']:.4f} loss {report[name]['loss']:.4f} "
              f"ECE {report[name]['calibration']['ece']:.4f} -> {report[name]['calibration']['ece_calibrated']:.4f} "
              f"(T = {temperature[name]:.2f})")
    if p.evaluate.tta:
        print(f"evaluate: finetune with flip averaging: accuracy {report['finetune']['tta']['accuracy']:.4f}")


def several_labels_per_photo(p, tested, predict, data):
    """eval.json, the tables and figures of a multi-label model: mAP, F1, subset
    accuracy and Hamming loss at each label's threshold (with their intervals), and
    F1 at a global 0.5 on the uncalibrated outputs beside them (what the thresholds
    gain); per label: scores, precision-recall curves. Grad-CAM, confusion and
    reliability figures are for one class per photo; evaluate.tta likewise."""
    task, y, classes = tasks.named("multi_label"), tested.y, tested.classes
    report, table = {}, pd.DataFrame({"path": tested.paths, "actual": manifest.label_text(y, classes)})
    PLOTS.mkdir(parents=True, exist_ok=True)
    curves_of = {}
    for name in MODELS:
        info = tested.calibration[name]
        scores = task.calibrated(tested.probabilities[name], info)
        report[name] = {**label_sets.scores(y, scores, info["thresholds"]),
                        "f1_macro_at_half": round(float(metrics.f1_score(y, tested.probabilities[name] >= 0.5,
                                                                          average="macro", zero_division=0)), 4),
                        "thresholds": dict(zip(classes, info["thresholds"])),
                        "parameters": tested.models[name].count_params()}
        label_sets.per_label(y, scores, info["thresholds"], classes).to_csv(PLOTS / f"per_label_{name}.csv", index=False)
        table[name] = manifest.label_text(task.decide(scores, info), classes)
        for label, column in zip(classes, scores.T):
            table[f"{name}_{label}"] = column.round(6)
        curves_of[name] = pr_curves(y, scores, classes, PLOTS / f"pr_labels_{name}")
        precision, recall, _ = metrics.precision_recall_curve(y.ravel(), scores.ravel())  # micro: every decision alike
        pd.DataFrame({"recall": recall, "precision": precision}).to_csv(PLOTS / f"pr_{name}.csv", index=False)
    report["finetune"]["unknown"] = tested.unknown
    report["recipe"] = tested.recipe
    write_json(EVAL_REPORT, report)
    table["unknown_score"] = tested.unknown_scores.round(6)
    table["unknown"] = tested.unknown_scores > tested.check["threshold"]
    table.to_csv(TEST_PREDICTIONS, index=False)
    figures.label_curves(curves_of["finetune"], PLOTS / "pr_labels.png")
    figures.training_curves({"head": TRAIN_LOG, "finetune": FINETUNE_LOG}, PLOTS / "training_curves.png")
    figures.unknown_scores(tested.unknown_scores, tested.check["threshold"], PLOTS / "unknown_scores.png")
    for name in MODELS:
        r = report[name]
        print(f"evaluate: {name} mAP {r['map_macro']:.4f} macro F1 {r['f1_macro']:.4f} (at 0.5: "
              f"{r['f1_macro_at_half']:.4f}) subset accuracy {r['subset_accuracy']:.4f} Hamming loss {r['hamming_loss']:.4f}")


def pr_curves(y, scores, classes, folder):
    """Each label's precision-recall curve, one CSV per label in `folder` (a DVC plot
    each); returns {label: (recall, precision, AP)}."""
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for label, truth, column in zip(classes, y.T, scores.T):
        if not truth.any():  # no test photo with it: no curve
            continue
        precision, recall, _ = metrics.precision_recall_curve(truth, column)
        pd.DataFrame({"recall": recall, "precision": precision}).to_csv(folder / f"{label}.csv", index=False)
        found[label] = (recall, precision, metrics.average_precision_score(truth, column))
    return found


REPORTS = {"single_label": one_class_per_photo, "multi_label": several_labels_per_photo}


if __name__ == "__main__":
    run(main)
