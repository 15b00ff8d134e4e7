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


# Above this many classes a confusion matrix is unreadable as a picture: the
# figure shows the most confused pairs instead (the matrix stays a DVC plot).
MATRIX_CLASSES = 20


def confusion(y, predicted, classes, title, path):
    """Counts and, beside them, each true class normalised to 1; above
    MATRIX_CLASSES classes, the most confused pairs."""
    if len(classes) > MATRIX_CLASSES:
        confused_pairs(y, predicted, classes, title, path)
        return
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


def confused_pairs(y, predicted, classes, title, path, count=25):
    """The `count` most frequent (true class, said class) mistakes, as bars."""
    matrix = metrics.confusion_matrix(y, predicted, labels=range(len(classes)))
    np.fill_diagonal(matrix, 0)
    order = np.argsort(matrix, axis=None, kind="stable")[::-1][:count]
    pairs = [(matrix.flat[i], *np.unravel_index(i, matrix.shape)) for i in order if matrix.flat[i]]
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.3 * max(1, len(pairs))))
    axis.barh(range(len(pairs)), [n for n, _, _ in pairs], color="tab:red")
    axis.set_yticks(range(len(pairs)), [f"{classes[t]} taken for {classes[s]}" for _, t, s in pairs], fontsize=8)
    axis.invert_yaxis()
    axis.set(xlabel="test images", title=f"{title}\nthe {len(pairs)} most confused pairs of {len(classes)} classes "
             "(every class: per_class_*.csv, `dvc plots show`)")
    if not pairs:
        axis.text(0.5, 0.5, "no mistakes", ha="center", transform=axis.transAxes)
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


def label_curves(curves, path):
    """Each label's precision-recall curve: {label: (recall, precision, AP)}."""
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for label, (recall, precision, ap) in curves.items():
        axis.plot(recall, precision, label=f"{label} (AP {ap:.3f})")
    axis.set(xlabel="recall", ylabel="precision", title="precision-recall per label, test split", xlim=(0, 1.01),
             ylim=(0, 1.01))
    axis.legend(fontsize=8)
    save(figure, path)


def reliability(panels, path):
    """Reliability diagrams, one panel per model: {name: [(label, bins, ece), ...]}
    (calibration.before_after), accuracy against confidence per bin; the
    diagonal is perfect calibration."""
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for axis, (name, lines) in zip(axes.flat, panels.items()):
        for label, bins, ece in lines:
            bins = np.array(bins)
            axis.plot(bins[:, 0], bins[:, 1], "o-", label=f"{label}, ECE {ece:.3f}")
        axis.plot([0, 1], [0, 1], ":", color="grey")
        axis.set(xlabel="confidence", ylabel="accuracy", title=name, xlim=(0, 1.01), ylim=(0, 1.01))
        axis.legend(fontsize=8)
    save(figure, path)


def unknown_scores(scores, threshold, path):
    """The test photos' unknown scores against the threshold: the share right of it is flagged."""
    figure, axis = plt.subplots(figsize=(6, 3.2))
    axis.hist(scores, bins=30, color="tab:blue", alpha=0.8)
    axis.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.3f}")
    axis.set(xlabel="unknown score (1 - cosine similarity to the k-th nearest training photo)", ylabel="test photos",
             title=f"{(scores > threshold).mean():.1%} of the test photos flagged as none of the classes")
    axis.legend(fontsize=8)
    save(figure, path)


def mistaken(rows, count=12):
    """The most confidently wrong rows (columns path, actual, predicted, confidence)."""
    return rows[rows.actual != rows.predicted].sort_values("confidence", ascending=False).head(count)


def typical(rows, count=24):
    """The most confidently right rows of each class, up to 4 each and `count` in all
    (with many classes, one each of the first `count` classes)."""
    right = rows[rows.actual == rows.predicted].sort_values("confidence", ascending=False)
    per_class = max(1, min(4, count // max(1, right.actual.nunique())))
    chosen = right.groupby("actual", sort=True).head(per_class).sort_values(["actual", "confidence"], ascending=[True, False])
    return chosen.head(count)


def overlay(axis, image, heatmap, title):
    """The photo, and a Grad-CAM heatmap stretched over it as the photo was to the model's input."""
    axis.imshow(blend(image, heatmap))
    axis.set_title(title, fontsize=9)
    axis.axis("off")


def blend(image, heatmap, alpha=0.4):
    """uint8 RGB pixels: the image with its Grad-CAM heatmap (jet colours) stretched over it."""
    image = np.asarray(image, dtype="float32")
    heat = Image.fromarray(np.uint8(heatmap * 255)).resize(image.shape[1::-1], Image.Resampling.BILINEAR)
    colours = plt.cm.jet(np.asarray(heat) / 255.0)[..., :3] * 255
    return np.uint8((1 - alpha) * image + alpha * colours)


def explanation(photo, heatmap, title, path):
    """One photo, and beside it its Grad-CAM heatmap over it (predict --explain)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4.3))
    left.imshow(photo)
    left.axis("off")
    overlay(right, photo, heatmap, "where the model looked (Grad-CAM)")
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def grid(count, columns, cell, per_item=1, empty="nothing found"):
    """A figure for `count` items in rows of `columns`, each item `per_item` axes
    of `cell` (width, height) inches, every axis off, `empty` said where there is
    nothing; returns (figure, the axes of each item)."""
    lines = max(1, int(np.ceil(count / columns)))
    figure, axes = plt.subplots(lines, per_item * columns, figsize=(cell[0] * per_item * columns, cell[1] * lines),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    if not count:
        axes.flat[0].text(0.5, 0.5, empty, ha="center")
    flat = list(axes.flat)
    return figure, [flat[per_item * i : per_item * (i + 1)] for i in range(count)]


def gallery(rows, heatmaps, path, title, columns=4):
    """Each image, and beside it its Grad-CAM heatmap over it, with label and confidence."""
    figure, items = grid(len(rows), columns, (2.1, 2.3), per_item=2, empty="none on the test split")
    for (photo, explained), row, heatmap in zip(items, rows.itertuples(), heatmaps):
        with Image.open(row.path) as image:
            image = image.convert("RGB")
        photo.imshow(image)
        said = f"true {row.actual}, said {row.predicted}" if row.actual != row.predicted else row.actual
        photo.set_title(f"{said}\n{row.confidence:.1%} sure", fontsize=8)
        overlay(explained, image, heatmap, "Grad-CAM")
    figure.suptitle(title)
    save(figure, path)


def thumbnail(axis, path, title):
    with Image.open(path) as image:
        axis.imshow(image.convert("RGB"))
    axis.set_title(title, fontsize=8)
    axis.axis("off")


def audit_gallery(rows, caption, path, title, columns=6):
    """One image per finding, captioned with `caption` formatted from its row."""
    figure, items = grid(len(rows), columns, (2.6, 2.9))
    for (axis,), row in zip(items, rows.itertuples()):
        thumbnail(axis, row.path, f"{Path(row.path).name}\n" + caption.format(**row._asdict()))
    figure.suptitle(title)
    save(figure, path)


def pairs_gallery(pairs, path, columns=3):
    """Near-duplicate pairs side by side, with their splits, labels and similarity."""
    figure, items = grid(len(pairs), columns, (2.5, 2.9), per_item=2, empty="no near-duplicates")
    for (left, right), row in zip(items, pairs.itertuples()):
        thumbnail(left, row.path, f"{row.split}, {row.label}\nsimilarity {row.similarity:.3f}")
        thumbnail(right, row.duplicate_path, f"{row.duplicate_split}, {row.duplicate_label}")
    figure.suptitle("near-duplicates (cosine similarity of the features)")
    save(figure, path)
