"""Stage `train`: a head on the cached features (no backbone pass per epoch).

head.type best fits two candidates, the dense head (Keras, head.units and
head.dropout, early stopping on the val split) and a logistic-regression head
(scikit-learn, its L2 strength cross-validated on train), and keeps the one
with the lower validation log loss after temperature scaling; with
head.choose_by folds the two are compared in k-fold cross-validation over
train + val instead (classifier/training/choice.py) and only the one kept is
fitted. dense or logistic fits only that one.

For the `cnn` baseline the cached "features" are the resized images, and the
whole network is trained here, with augmentation. Writes models/head.keras,
the per-epoch log under logs/train/ and the training time in metrics/train.json.
With audit.exclude: label_issues, the training images the audit found likely
mislabelled are left out. With train.pseudo_labels: confident, the pool photos
a logistic head on the labelled photos is surest of join the training set with
the class it gives them (classifier/training/pseudo_labels.py), listed in
reports/pseudo_labels.csv (path,label,confidence).
"""

import shutil
import time
from functools import partial

import keras
import numpy as np
import pandas as pd

from classifier.data import manifest
from classifier.data.augment import augmentation
from classifier.data.inputs import from_arrays
from classifier.errors import run
from classifier.files import read_features, write_json
from classifier.model import registry, tasks
from classifier.model.heads import dense_head, small_cnn
from classifier.paths import HEAD, POOL_FEATURES, PSEUDO_LABELS, TRAIN_LOG, TRAIN_REPORT
from classifier.training import pseudo_labels
from classifier.training.choice import FOLDS, cross_validated_losses, val_losses
from classifier.training.fit import EpochSeeds, fit, optimizer, setup


def main():
    p, _ = registry.load()
    t = p.train
    strategy = setup(t.seed, t.distribute, t.mixed_precision)
    task = tasks.of(p)
    images = manifest.read()
    classes = len(manifest.classes(images, task.name))
    x_train, y_train = read_features("train")
    flagged = manifest.label_issues_in_train(images, p.audit.exclude)[images.split == "train"].to_numpy()
    x_train, y_train = x_train[~flagged], y_train[~flagged]
    x_val, y_val = read_features("val")
    from_scratch = registry.BACKBONES[p.model.backbone].from_scratch
    x_pseudo, y_pseudo, pseudo = with_pseudo_labels(p, task, manifest.classes(images, task.name), x_train, y_train,
                                                     x_val, y_val)
    x_train, y_train = np.concatenate([x_train, x_pseudo]), np.concatenate([y_train, y_pseudo])
    balanced = t.class_weight == "balanced"
    weights = task.class_weights(y_train, classes, balanced)
    names = ["dense"] if from_scratch else [name for name in ("dense", "logistic") if p.head.type in ("best", name)]
    losses, judged_on = None, "val split"
    if len(names) > 1 and p.head.choose_by == "folds":
        fitters = {"dense": partial(fold_dense, p, classes), "logistic": partial(fold_logistic, p, classes)}
        losses = cross_validated_losses(fitters, np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val]),
                                        t.seed, task)
        names, judged_on = [min(losses, key=losses.get)], f"{FOLDS}-fold cross-validation on train + val"
    candidates, report = {}, {}
    if "dense" in names:
        candidates["dense"], report = keras_head(p, strategy, x_train, y_train, x_val, y_val, classes, weights)
    else:  # no epochs to log: logs/train, a declared (persisted) output, is left empty rather than stale
        shutil.rmtree(TRAIN_LOG, ignore_errors=True)
        TRAIN_LOG.mkdir(parents=True)
    if "logistic" in names:
        start = time.perf_counter()
        candidates["logistic"], report["logistic_C"] = task.logistic_head(x_train, y_train, classes, t.loss,
                                                                          balanced=balanced)
        report["logistic_seconds"] = round(time.perf_counter() - start, 1)
    losses = losses or val_losses(candidates, x_val, y_val, task)
    chosen = min(losses, key=losses.get)
    model = candidates[chosen]
    if balanced:
        task.shift_prior(model, y_train, classes)
    HEAD.parent.mkdir(parents=True, exist_ok=True)
    model.save(HEAD)
    if weights:
        report["class_weight"] = {"min": round(min(weights.values()), 4), "max": round(max(weights.values()), 4)}
    print("train: " + ", ".join(f"{name} head: log loss {loss:.4f}" for name, loss in losses.items())
          + f" ({judged_on}); keeping the {chosen} head")
    write_json(TRAIN_REPORT, {"head": {**report, "type": chosen, "loss_calibrated": losses, "judged_on": judged_on,
                                       "train_images": len(y_train), "val_images": len(y_val),
                                       "label_issues_left_out": int(flagged.sum()),
                                       "pseudo_labels": pseudo}})


def with_pseudo_labels(p, task, names, x_train, y_train, x_val, y_val):
    """(features, classes) of the pool photos to train on too, and their report: none
    unless train.pseudo_labels is confident; reports/pseudo_labels.csv lists them."""
    table = pd.DataFrame(columns=["path", "label", "confidence"])
    x, y, report = x_train[:0], y_train[:0], {"photos": 0}
    pool = pd.read_csv(POOL_FEATURES / "paths.csv", dtype={"path": str, "unknown": bool}, keep_default_na=False)
    if p.train.pseudo_labels == "confident" and len(pool):
        x_pool = np.load(POOL_FEATURES / "x.npy")
        found = pseudo_labels.chosen(x_train, y_train, x_val, y_val, x_pool, pool.unknown.to_numpy(), p, task,
                                     len(names))
        table = pd.DataFrame({"path": pool.path.to_numpy()[found.picks], "label": np.asarray(names)[found.classes],
                              "confidence": found.confidence.round(4)})
        x, y = x_pool[found.picks].astype(x_train.dtype), found.classes.astype(y_train.dtype)
        per_class = table.label.value_counts().reindex(names, fill_value=0).to_dict()
        report = {"photos": len(table), "of_pool": len(pool), "flagged_unknown": int(pool.unknown.sum()),
                  "per_class": per_class}
        print(f"train: {len(table)} of {len(pool)} pool photo(s) pseudo-labelled ("
              + ", ".join(f"{name} {count}" for name, count in per_class.items())
              + f"; {report['flagged_unknown']} flagged unknown, never taken): see {PSEUDO_LABELS}")
    PSEUDO_LABELS.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(PSEUDO_LABELS, index=False)
    return x, y, report


def fold_dense(p, classes, x, y):
    """The dense head fitted on one fold's training part: train.epochs, no early stopping
    (no val split to stop on), seeded, as keras_head builds and weighs it."""
    t, task = p.train, tasks.of(p)
    keras.utils.set_random_seed(t.seed)
    model = compiled(p, dense_head, x.shape[1:], classes, y)
    weights = task.class_weights(y, classes, t.class_weight == "balanced")
    model.fit(x, task.targets(y, classes, t.loss), batch_size=t.batch_size, epochs=t.epochs, class_weight=weights,
              verbose=0)
    return model


def compiled(p, build, shape, classes, y_train):
    """A new head (or the cnn) from `build`, compiled with train's optimizer and the
    task's loss (weighted as `y_train` asks, for several labels per photo)."""
    t, task = p.train, tasks.of(p)
    model = build(shape, classes, t.loss, units=p.head.units, dropout=p.head.dropout,
                  output=task.output_layer)
    model.compile(optimizer=optimizer(t.optimizer, t.lr, t.momentum), loss=task.loss(t, y_train, classes),
                  metrics=task.metrics)
    return model


def fold_logistic(p, classes, x, y):
    return tasks.of(p).logistic_head(x, y, classes, p.train.loss, balanced=p.train.class_weight == "balanced")[0]


def keras_head(p, strategy, x_train, y_train, x_val, y_val, classes, weights):
    """The dense head (or, for the cnn baseline, the whole network), trained with
    early stopping and logged by dvclive; and {"seconds", "epochs"}."""
    t = p.train
    from_scratch = registry.BACKBONES[p.model.backbone].from_scratch
    task = tasks.of(p)
    with strategy.scope():
        model = compiled(p, small_cnn if from_scratch else dense_head, x_train.shape[1:], classes, y_train)
    augment = augmentation(p.augment, t.seed) if from_scratch else None  # the cnn sees images
    seeds = EpochSeeds(len(x_train), t.seed, [augment] if augment else [])
    data = from_arrays(x_train, task.targets(y_train, classes, t.loss), t.batch_size, augment=augment,
                       order=seeds.order)
    val = from_arrays(x_val, task.targets(y_val, classes, t.loss), t.batch_size)
    timing = fit(model, data, val, seeds=seeds, epochs=t.epochs, patience=t.patience, log_dir=TRAIN_LOG,
                 class_weight=weights)
    return model, timing


if __name__ == "__main__":
    run(main)
