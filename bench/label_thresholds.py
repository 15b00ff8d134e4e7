"""Which rule sets each label's threshold: measured on multi-label projects that
bench/multi_label.py built and kept (one per seed), on their test splits.

Each project's fine-tuned model is run on its val and test photos; each rule
fits its thresholds on val (after each label's Platt scaling, as `finetune`
does) and is scored by macro F1 on test. Rules: a global 0.5 on the raw
outputs (fastai, Ludwig, AutoKeras); 0.5 on the Platt-calibrated scores; the
F1-best val threshold; half the best val F1 (the F1-optimal threshold of a
calibrated score is half the best F1 reachable: Lipton, Elkan and
Naryanaswamy, 2014); and, as a ceiling no rule can reach, the F1-best test
threshold. Prints a markdown table per seed and the mean paired difference of
each rule from the global 0.5, with a 95% interval over seeds (t).

    python bench/label_thresholds.py PROJECT [PROJECT ...]
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn import metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classifier.data import manifest  # noqa: E402
from classifier.report import label_sets  # noqa: E402


def predictions(project):
    """{split: (labels, the fine-tuned model's outputs)} for val and test."""
    from classifier.data.inputs import batches
    from classifier.model import backbones

    here = os.getcwd()
    os.chdir(project)
    try:
        info = json.loads(Path("models/model.json").read_text())
        images, model = manifest.read(), backbones.load_model("models/model.keras")
        found = {}
        for split in ("val", "test"):
            paths, y = manifest.rows(images, split, "multi_label")
            outputs = model.predict(batches(paths, y, info["image_size"], 32), verbose=0)
            found[split] = (y.astype(int), outputs.astype("float64"))
        return found
    finally:
        os.chdir(here)


def best_f1(truth, scores):
    return max(metrics.f1_score(truth, scores >= t, zero_division=0) for t in np.unique(scores))


def f1_best_threshold(truth, scores):
    """The val score at or above which F1 is highest (the highest such where several tie)."""
    precision, recall, cuts = metrics.precision_recall_curve(truth, scores)
    with np.errstate(invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    return cuts[np.flatnonzero(f1 == f1.max())[-1]]


def rules(y_val, p_val, y_test, p_test):
    """{rule: macro F1 on test}."""
    platt = label_sets.fit_platt(p_val, y_val)
    val, test = label_sets.calibrated(p_val, platt), label_sets.calibrated(p_test, platt)
    labels = range(y_val.shape[1])
    thresholds = {
        "raw 0.5": (p_test, [0.5] * len(labels)),
        "Platt, 0.5": (test, [0.5] * len(labels)),
        "Platt, F1-best on val": (test, [f1_best_threshold(y_val[:, i], val[:, i]) for i in labels]),
        "Platt, half the best val F1 (label_sets.fit_thresholds)": (test, label_sets.fit_thresholds(val, y_val)),
    }
    found = {name: metrics.f1_score(y_test, scores >= np.array(cut), average="macro", zero_division=0)
             for name, (scores, cut) in thresholds.items()}
    found["ceiling: F1-best on test"] = np.mean([best_f1(y_test[:, i], p_test[:, i]) for i in labels])
    return found


def main():
    results = []
    for project in sys.argv[1:]:
        split = predictions(Path(project))
        results.append(rules(*split["val"], *split["test"]))
        print(f"{project}: " + ", ".join(f"{name} {value:.4f}" for name, value in results[-1].items()))
    names = list(results[0])
    print(f"\n| rule | macro F1 on test, mean of {len(results)} seeds | difference from raw 0.5 (95% interval) |")
    print("|---|---|---|")
    for name in names:
        values = np.array([r[name] for r in results])
        difference = values - np.array([r["raw 0.5"] for r in results])
        half = stats.t.ppf(0.975, len(values) - 1) * difference.std(ddof=1) / np.sqrt(len(values))
        print(f"| {name} | {values.mean():.4f} | {difference.mean():+.4f} ({difference.mean() - half:+.4f} to "
              f"{difference.mean() + half:+.4f}) |")


if __name__ == "__main__":
    main()
