"""PNG figures for people who do not open `dvc plots`: curves, matrices, mistakes."""

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from PIL import Image
from sklearn import metrics

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def training_curves(logs, path):
    """Loss and accuracy per epoch, train and validation, for each training stage."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for stage, folder in logs.items():
        for split, style in (("train", "-"), ("eval", "--")):
            for axis, metric in zip(axes, ("loss", "accuracy")):
                tsv = Path(folder) / "plots/metrics" / split / f"{metric}.tsv"
                if tsv.exists():
                    data = pd.read_csv(tsv, sep="\t")
                    label = f"{stage} {'validation' if split == 'eval' else 'train'}"
                    axis.plot(data.step + 1, data[metric], style, marker=".", label=label)
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.set(xlabel="epoch", title=metric)
        axis.legend(fontsize=8)
    save(figure, path)


def confusion(y, predicted, classes, title, path):
    """Counts and, beside them, each true class normalised to 1."""
    side = 2 + 0.5 * len(classes)
    figure, axes = plt.subplots(1, 2, figsize=(2 * side + 1, side))
    for axis, normalize, name in zip(axes, (None, "true"), ("counts", "share of each true class")):
        metrics.ConfusionMatrixDisplay.from_predictions(
            y, predicted, labels=range(len(classes)), display_labels=classes, ax=axis,
            colorbar=False, normalize=normalize, values_format=".2f" if normalize else "d",
            xticks_rotation="vertical" if len(classes) > 4 else "horizontal",
        )
        axis.set_title(name, fontsize=9)
    figure.suptitle(title)
    save(figure, path)


def curves(table, path):
    """ROC and precision-recall curves from plots/roc_*.csv-like tables, one line per model."""
    figure, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (fpr, tpr, auc, recall, precision, ap) in table.items():
        roc.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
        pr.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
    roc.plot([0, 1], [0, 1], ":", color="grey")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
    roc.legend()
    pr.legend()
    save(figure, path)


def mistakes(rows, path, count=12):
    """The most confidently wrong test images, with true label, prediction, confidence."""
    wrong = rows[rows.actual != rows.predicted].sort_values("confidence", ascending=False).head(count)
    columns = 4
    lines = max(1, int(np.ceil(len(wrong) / columns)))
    figure, axes = plt.subplots(lines, columns, figsize=(3 * columns, 3.2 * lines), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, row in zip(axes.flat, wrong.itertuples()):
        with Image.open(row.path) as image:
            axis.imshow(image.convert("RGB"))
        axis.set_title(f"true {row.actual}, said {row.predicted}\n{row.confidence:.1%} sure", fontsize=9)
    if wrong.empty:
        axes.flat[0].text(0.5, 0.5, "no mistakes on the test split", ha="center")
    figure.suptitle("most confident mistakes (fine-tuned model)")
    save(figure, path)
